"""Forward derivative engine: outputs and chosen partial derivatives carried forward through the layers.

The autograd path (:class:`pinnbal.points.Points`) takes ``p.u_xx`` by nested reverse mode: one
``torch.autograd.grad(create_graph=True)`` for u_x, another through that graph for u_xx, and the loss's
backward then differentiates through both (a double backward).  Here every layer instead receives a
*jet*: its input's value and the partial derivatives (by the coordinates) a residual asked for, and
returns its output's jet, in closed form.  The loss needs one ordinary backward, and the whole loss is
one plain forward graph that ``torch.compile`` captures whole (``fullgraph=True``); the autograd path
compiles only in pieces and then fails at the loss's backward ("torch.compile with aot_autograd does not
currently support double backward", torch 2.13).  This is forward (Taylor-mode) differentiation of the
network: Griewank & Walther, *Evaluating Derivatives* (2nd ed., SIAM 2008), ch. 13 (Taylor and tensor
propagation); Bettencourt, Johnson & Duvenaud 2019, "Taylor-mode automatic differentiation for
higher-order derivatives in JAX"; for PDE operators of networks the forward Laplacian (Li et al.,
Nature Machine Intelligence 2024) and Dangel, Siebert, Zeinhofer & Walther 2025, "Collapsing Taylor mode
automatic differentiation" (NeurIPS), which also compare against nested backpropagation.

Measured (2-core CPU, one thread, float32, 8192 points, a training step = forward, loss, backward,
Adam; ratios to nested autograd within one process, fastest of 8 rotated rounds, the range over 2–4
runs on a shared machine): Burgers u_t + u u_x − ν u_xx on a 4×32 tanh MLP 1.1–1.3× eager and
1.7–2.4× compiled, 4×64 1.1–1.3× and 1.9–2.1×, with a hard-constraint transform 1.2× and 1.7×; a
three-output steady Navier–Stokes residual (u, v, P; second derivatives in x and y) 2.0–2.5× and
4.5–5.3× on 4×32, 2.4–2.8× and 4.8–5.2× on 4×64.  The first compiled call takes 24–57 s with a cold
inductor cache (about 5 s warm).

A derivative key is a sorted tuple of coordinate indices, as in ``points.py``: () the value, (0,) ∂/∂x₀,
(0, 0) ∂²/∂x₀², (0, 1) the mixed partial (mixed partials commute).  A jet maps keys to tensors; a key
it lacks is identically zero, so zeros cost nothing (the input's second derivatives, a ReLU's σ'').
Only the requested keys and what they need (their sub-multisets: (0, 1) needs (0,) and (1,)) travel.

Rules, for a key k = (k₁ … k_n) and per point (the batch dimension is carried along):

- linear ``z = W h + b``:  z_() = W h_() + b,  z_k = W h_k  (k ≠ ()).
- elementwise ``h = σ(z)`` (activations, the Fourier cos/sin, the periodic cos/sin): Faà di Bruno over
  the set partitions π of the positions {1 … n}:  h_k = Σ_π σ^(|π|)(z) Π_{B∈π} z_{k_B};  for n ≤ 2
  h_i = σ'(z) z_i,  h_ij = σ'(z) z_ij + σ''(z) z_i z_j.  Partitions giving the same blocks are counted
  once with their multiplicity (h_iii = σ' z_iii + 3 σ'' z_i z_ii + σ''' z_i³).
- product ``a ⊙ b`` (the modified MLP's gates): Leibniz over the subsets S of the positions,
  (ab)_k = Σ_S a_{k_S} b_{k∖S};  (ab)_ij = a b_ij + a_i b_j + a_j b_i + a_ij b.
- input scaling ẑ = (x − c)/w:  ẑ_(i) = e_i / w_i, higher keys zero; a periodic coordinate's
  (cos πẑ_i, sin πẑ_i) by the elementwise rule.
- dropout: the one mask multiplies the value and every derivative (what autograd differentiates too).

σ^(m) in closed form for every activation :data:`pinnbal.nets.ACTIVATIONS` offers, any order m: tanh
through t = tanh z (σ' = 1 − t², σ'' = −2t(1 − t²), then P_{m+1}(t) = P_m'(t)(1 − t²)); sin/cos cycle;
silu z s(z) with s the logistic (silu^(m) = z s^(m) + m s^(m−1), s^(m) a polynomial in s);
gelu z Φ(z) (gelu' = Φ + zφ, gelu^(m) = (−1)^(m−1)(He_m − He_{m−2})(z) φ(z), He the probabilists'
Hermite polynomials); relu (σ' = 1[z > 0], higher ones zero, as autograd has them).

What has no rule: a network module other than the ones ``pinnbal.nets`` builds (a user's own module)
goes through nested forward-mode AD (``torch.func.jvp``, one nesting per coordinate of a key) on the
whole network when asked (``jvp=True``): correct, but 2.5× slower than the autograd path on the Burgers
step above, and it does not compile (dynamo fails on the input scaling under nested jvp); so by default
:func:`supports` names the module and :class:`ForwardPoints` keeps the autograd path for it.  The
problem's output transform u ↦ T(p, u) is arbitrary user code: it runs under nested ``torch.func.jvp``
on the network's Taylor polynomial ũ(y) = Σ_k u_k (y − x)^k / k! around the batch (which has the
network's derivatives up to the keys' order at y = x), so the network itself is never differentiated
twice; T is elementwise and cheap, and this compiles.  Closed form rather than ``torch.func`` for the
network because nested jvp evaluates the whole network 2^n times per n-th order key and repeats the
shared work across keys, where the rules compute σ(z), σ'(z)·v (PyTorch's fused backward kernel where
there is one) and σ''(z) once per layer for all keys.
"""

from __future__ import annotations

import itertools
import math
import time
import types
from collections import Counter
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ProblemError
from .nets import MLP, FourierFeatures, ModifiedMLP, PINNModel, Sine, Windowed
from .points import Points, labelled

Key = tuple[int, ...]
Jet = dict  # Key -> Tensor; a missing key is identically zero


# -- combinatorics (cached per key) --------------------------------------------------------------------

def closure(keys: Iterable[Key]) -> tuple[Key, ...]:
    """Every key the given ones need: all their sub-multisets, the value () included; lowest order first."""
    out = {()}
    for key in keys:
        key = tuple(sorted(key))
        for r in range(1, len(key) + 1):
            out.update(itertools.combinations(key, r))  # sub-tuples of a sorted tuple stay sorted
    return tuple(sorted(out, key=lambda k: (len(k), k)))


def maximal(keys: Iterable[Key]) -> list[Key]:
    """The keys no other key of ``keys`` contains (each one's nested jvp yields all of its sub-keys)."""
    keys = set(keys)
    inner = {sub for k in keys for sub in closure([k]) if sub != k}
    return sorted([k for k in keys if k not in inner])


def _set_partitions(items: tuple[int, ...]):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest):
        yield [(first,)] + part
        for i in range(len(part)):
            yield part[:i] + [(first,) + part[i]] + part[i + 1:]


def _cached(fn: Callable) -> Callable:
    """``fn`` remembered per argument tuple in a plain dict (``torch.compile`` reads it as constants, where it
    warns about ``functools.lru_cache`` and traces the function body again)."""
    memo: dict = {}

    def cached(*args):
        if args not in memo:
            memo[args] = fn(*args)
        return memo[args]

    cached.__doc__, cached.__name__ = fn.__doc__, fn.__name__
    return cached


@_cached
def faa_di_bruno(key: Key) -> tuple[tuple[int, tuple[Key, ...]], ...]:
    """(multiplicity, blocks) of h_key = Σ mult · σ^(len(blocks))(z) · Π_b z_b for h = σ(z)."""
    counts: Counter = Counter()
    for part in _set_partitions(tuple(range(len(key)))):
        counts[tuple(sorted([tuple([key[i] for i in block]) for block in part]))] += 1
    return tuple([(c, blocks) for blocks, c in sorted(counts.items(), key=lambda kv: (len(kv[0]), kv[0]))])


@_cached
def leibniz(key: Key) -> tuple[tuple[int, Key, Key], ...]:
    """(multiplicity, a-key, b-key) of (ab)_key = Σ mult · a_{a-key} · b_{b-key}."""
    counts: Counter = Counter()
    n = len(key)
    for r in range(n + 1):
        for chosen in itertools.combinations(range(n), r):
            rest = tuple([key[i] for i in range(n) if i not in chosen])
            counts[(tuple([key[i] for i in chosen]), rest)] += 1
    return tuple([(c, a, b) for (a, b), c in counts.items()])


def _factorial(key: Key) -> int:
    """α! of the multi-index a key stands for (the Taylor coefficient's denominator)."""
    return math.prod([math.factorial(c) for c in Counter(key).values()])


# -- σ and its derivatives ---------------------------------------------------------------------------

TANH = (1.0, 0.0, -1.0)  # d tanh / dz = 1 − t²   (coefficients in t, lowest degree first)
LOGISTIC = (0.0, 1.0, -1.0)  # d s / dz = s − s²


@_cached
def _chain_poly(m: int, dbase: tuple[float, ...]) -> tuple[float, ...]:
    """P_m with d^m f/dz^m = P_m(f) when df/dz = dbase(f): P_0 = f, P_{m+1} = P_m'(f) · dbase(f)."""
    if m == 0:
        return (0.0, 1.0)
    p = _chain_poly(m - 1, dbase)
    der = [i * c for i, c in enumerate(p)][1:] or [0.0]
    out = [0.0] * (len(der) + len(dbase) - 1)
    for i, a in enumerate(der):
        for j, b in enumerate(dbase):
            out[i + j] += a * b
    return tuple(out)


@_cached
def _hermite(m: int) -> tuple[float, ...]:
    """Probabilists' Hermite He_m: He_0 = 1, He_1 = z, He_{m+1} = z He_m − m He_{m−1}."""
    if m < 2:
        return ((1.0,), (0.0, 1.0))[m]
    a, b = _hermite(m - 1), _hermite(m - 2)
    out = [0.0] + list(a)
    for i, c in enumerate(b):
        out[i] -= (m - 1) * c
    return tuple(out)


def _horner(coeffs: tuple[float, ...], t: torch.Tensor) -> torch.Tensor:
    out = coeffs[-1] * t + coeffs[-2] if len(coeffs) > 1 else torch.full_like(t, coeffs[0])
    for c in reversed(coeffs[:-2]):
        out = out * t + c
    return out


def _tanh(z: torch.Tensor, n: int, t: torch.Tensor) -> list:
    out = [t]
    if n >= 1:
        out.append(1 - t * t)
    if n >= 2:
        out.append(-2 * t * out[1])
    out += [_horner(_chain_poly(m, TANH), t) for m in range(3, n + 1)]
    return out


def _trig(z: torch.Tensor, n: int, shift: int, value: torch.Tensor) -> list:
    """sin (shift 0) or cos (shift 1) and derivatives: sin^(m) = sin(z + mπ/2), cycling sin, cos, −sin, −cos."""
    cycle = [value, torch.cos(z), None, None] if shift == 0 else [torch.sin(z), value, None, None]
    out = []
    for m in range(shift, shift + n + 1):
        i = m % 4
        if cycle[i] is None:
            cycle[i] = -cycle[i - 2]
        out.append(cycle[i])
    return out


def _silu(z: torch.Tensor, n: int, value: torch.Tensor) -> list:
    s = torch.sigmoid(z)
    out = [value]
    if n >= 1:
        out.append(s * (1 + z * (1 - s)))
    if n >= 2:
        out.append(s * (1 - s) * (2 + z * (1 - 2 * s)))
    for m in range(3, n + 1):  # silu^(m) = z s^(m) + m s^(m−1)
        out.append(z * _horner(_chain_poly(m, LOGISTIC), s) + m * _horner(_chain_poly(m - 1, LOGISTIC), s))
    return out


def _gelu(z: torch.Tensor, n: int, value: torch.Tensor) -> list:
    out = [value]
    if n == 0:
        return out
    pdf = torch.exp(-0.5 * z * z) * (1 / math.sqrt(2 * math.pi))
    out.append(0.5 * (1 + torch.erf(z * (1 / math.sqrt(2)))) + z * pdf)
    for m in range(2, n + 1):  # gelu^(m) = (−1)^(m−1) (He_m − He_{m−2})(z) φ(z)
        he, low = list(_hermite(m)), _hermite(m - 2)
        for i, c in enumerate(low):
            he[i] -= c
        out.append((-1) ** (m - 1) * _horner(tuple(he), z) * pdf)
    return out


def _relu(z: torch.Tensor, n: int, value: torch.Tensor) -> list:
    return [value] + ([(z > 0).to(z.dtype)] if n >= 1 else []) + [None] * max(n - 1, 0)


class Smooth:
    """σ at z (the pre-activation): its value, σ'(z)·v and σ''(z)·a·b as the layer rules use them, and
    σ^(m)(z) (None: identically zero) for higher orders, computed once on demand up to ``order``.

    Subclasses name σ (``at``), the list of its derivatives (``derivs``) and, where PyTorch has one, the
    fused kernel of σ'(z)·v (the one autograd's own backward uses): one pass instead of two."""

    at: Callable  # z ↦ σ(z)
    derivs: Callable  # (z, n, σ(z)) ↦ [σ, σ', …, σ^(n)] at z

    def __init__(self, z: torch.Tensor, order: int):
        self.z, self.order = z, order
        self.value = self.at(z)
        self._list = None

    def d(self, m: int) -> torch.Tensor | None:
        if self._list is None:
            self._list = self.derivs(self.z, self.order, self.value)
        return self._list[m]

    def first(self, v: torch.Tensor) -> torch.Tensor:
        """σ'(z) v."""
        return self.d(1) * v

    def second(self, acc, coef: int, a: torch.Tensor, b: torch.Tensor, hb: torch.Tensor | None):
        """acc + coef σ''(z) a b (``hb`` = σ'(z) b when known)."""
        d2 = self.d(2)
        if d2 is None:
            return acc
        ab = a * b  # both (1, w) in the first layer: the small product first
        return coef * (d2 * ab) if acc is None else torch.addcmul(acc, d2, ab, value=coef)


class Tanh(Smooth):
    at = staticmethod(torch.tanh)
    derivs = staticmethod(_tanh)

    def first(self, v):
        return torch.ops.aten.tanh_backward(v.expand_as(self.value), self.value)

    def second(self, acc, coef, a, b, hb):
        """σ'' = −2 tanh(z) σ': σ'' a b = −2 t a (σ' b), reusing h_b = σ' b."""
        if hb is None:
            return super().second(acc, coef, a, b, hb)
        ta = self.value * a
        return -2 * coef * (ta * hb) if acc is None else torch.addcmul(acc, ta, hb, value=-2 * coef)


class Sin(Smooth):
    at = staticmethod(torch.sin)
    derivs = staticmethod(lambda z, n, value: _trig(z, n, 0, value))


class Cos(Smooth):
    at = staticmethod(torch.cos)
    derivs = staticmethod(lambda z, n, value: _trig(z, n, 1, value))


class SiLU(Smooth):  # no fused σ'·v: aten.silu_backward has no derivative, and the loss's backward needs one
    at = staticmethod(F.silu)
    derivs = staticmethod(_silu)


class GELU(Smooth):
    at = staticmethod(F.gelu)
    derivs = staticmethod(_gelu)

    def first(self, v):
        return torch.ops.aten.gelu_backward(v.expand_as(self.z), self.z)


class ReLU(Smooth):
    at = staticmethod(F.relu)
    derivs = staticmethod(_relu)

    def first(self, v):
        return torch.ops.aten.threshold_backward(v.expand_as(self.z), self.z, 0)


def _activation(module: nn.Module) -> type[Smooth] | None:
    kind = type(module)
    if kind is nn.GELU:
        return GELU if module.approximate == "none" else None
    return {nn.Tanh: Tanh, Sine: Sin, nn.SiLU: SiLU, nn.ReLU: ReLU}.get(kind)


# -- jet arithmetic ------------------------------------------------------------------------------------

def _times(coef: int, t: torch.Tensor) -> torch.Tensor:
    return t if coef == 1 else coef * t


def _accumulate(acc, term):
    return term if acc is None else acc + term


def elementwise(jet: Jet, kind: type[Smooth], keys: tuple[Key, ...]) -> Jet:
    """h = σ(z) by Faà di Bruno: h_k = Σ mult · σ^(m)(z) · Π_b z_b over the grouped partitions of k."""
    act = kind(jet[()], max([len(k) for k in keys]))
    out = {(): act.value}
    for key in keys[1:]:
        acc = None
        for coef, blocks in faa_di_bruno(key):
            if any([b not in jet for b in blocks]):
                continue
            if len(blocks) == 1:  # the whole key: σ'(z) z_k (multiplicity 1)
                acc = _accumulate(acc, act.first(jet[key]))
            elif len(blocks) == 2:
                a, b = blocks
                acc = act.second(acc, coef, jet[a], jet[b], out.get(b) if len(b) == 1 else None)
            elif act.d(len(blocks)) is not None:
                factor = jet[blocks[0]]
                for b in blocks[1:]:
                    factor = factor * jet[b]
                acc = _accumulate(acc, _times(coef, factor * act.d(len(blocks))))
        if acc is not None:
            out[key] = acc
    return out


def multiply(a: Jet, b: Jet, keys: tuple[Key, ...]) -> Jet:
    """a ⊙ b by Leibniz."""
    out = {}
    for key in keys:
        acc = None
        for coef, ka, kb in leibniz(key):
            if ka in a and kb in b:
                acc = _accumulate(acc, _times(coef, a[ka] * b[kb]))
        if acc is not None:
            out[key] = acc
    return out


def add(a: Jet, b: Jet, sign: int = 1) -> Jet:
    """a + b (``sign`` −1: a − b)."""
    out = dict(a)
    for key, v in b.items():
        out[key] = (out[key] + v if sign > 0 else out[key] - v) if key in out else (v if sign > 0 else -v)
    return out


#: under ``torch.compile`` a layer with at most this many outputs is a broadcast product and a sum, not a
#: matrix product (see :func:`linear`)
NARROW = 4


def linear(jet: Jet, weight: torch.Tensor, bias: torch.Tensor | None) -> Jet:
    """z = h Wᵀ + b: the bias on the value only.

    Under ``torch.compile`` a narrow layer (≤ :data:`NARROW` outputs: a network's output layer) and a
    single-row input (the first layer's derivative rows e_i / w_i) are written z_j = Σ_i h_i W_ji + b_j, a
    broadcast product and a sum, which inductor fuses into the kernels around it, where a matrix product
    with one or a few columns or rows (and, in the backward, an outer product) is a BLAS call that runs far
    below the machine's speed.  Measured (2-core CPU, torch 2.13, 8192 × 32 → 1, forward and backward
    compiled): 0.51 ms against 0.91 ms; → 3: 1.05 ms against 1.85 ms; a compiled Burgers step (4 × 32, one
    thread) 53.3 → 46.9 ms for the output layer and 48.2 → 45.7 ms more for the rows.  Eagerly the matrix
    product is faster (0.66 against 0.90 ms), so it stays."""
    if not torch.compiler.is_compiling():
        return {key: F.linear(v, weight, None if key else bias) for key, v in jet.items()}
    narrow = weight.shape[0] <= NARROW
    return {key: (_narrow_linear if narrow or v.shape[0] == 1 else F.linear)(v, weight, None if key else bias)
            for key, v in jet.items()}


def _narrow_linear(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    z = (h.unsqueeze(-2) * weight).sum(-1)
    return z if bias is None else z + bias


def concat(jets: list[Jet], n: int) -> Jet:
    """Jets side by side (dim 1); a column block without a key contributes zeros there."""
    keys = sorted({k for jet in jets for k in jet}, key=lambda k: (len(k), k))
    out = {}
    for key in keys:
        parts = []
        for jet in jets:
            width = jet[()].shape[1]
            parts.append(jet[key].expand(n, width) if key in jet else jet[()].new_zeros(n, width))
        out[key] = torch.cat(parts, dim=1)
    return out


# -- modules -------------------------------------------------------------------------------------------

CONTAINERS = (nn.Sequential, nn.ModuleList, MLP, ModifiedMLP)


def closed_form(module: nn.Module) -> str | None:
    """None when every part of ``module`` has a forward rule here, else a one-line reason naming the part."""
    kind = type(module)
    if kind in CONTAINERS:
        for child in module.children():
            reason = closed_form(child)
            if reason:
                return reason
        return None
    if kind is Windowed:  # the window in training: its network behind a fixed affine map of the time feature
        return closed_form(module.current)
    if _activation(module) is not None or kind in (FourierFeatures, nn.Dropout, nn.Identity):
        return None
    if isinstance(module, nn.Linear) and type(module).forward is nn.Linear.forward:  # FactorizedLinear too
        return None
    extra = f"(approximate={module.approximate!r})" if kind is nn.GELU else ""
    return f"network part {kind.__name__}{extra} has no forward-derivative rule"


def propagate(module: nn.Module, jet: Jet, keys: tuple[Key, ...]) -> Jet:
    """``module``'s output jet from its input jet (``closed_form(module)`` must be None)."""
    kind = type(module)
    act = _activation(module)
    if act is not None:
        return elementwise(jet, act, keys)
    if isinstance(module, nn.Linear):
        return linear(jet, module.weight, module.bias)
    if kind is nn.Sequential:
        for child in module:
            jet = propagate(child, jet, keys)
        return jet
    if kind is MLP:
        return propagate(module.layers, jet, keys)
    if kind is ModifiedMLP:
        return _modified(module, jet, keys)
    if kind is FourierFeatures:
        proj = {key: (2 * math.pi * v) @ module.B for key, v in jet.items()}
        return concat([elementwise(proj, Cos, keys), elementwise(proj, Sin, keys)], jet[()].shape[0])
    if kind is nn.Dropout:
        if not module.training or module.p == 0:
            return jet
        mask = F.dropout(torch.ones_like(jet[()]), module.p, True)
        return {key: v * mask for key, v in jet.items()}
    if kind is nn.Identity:
        return jet
    if kind is Windowed:
        if module.active is None:
            raise ValueError("a time-windowed network outside training has no single window to take forward")
        scale, shift = module.local(jet[()], module.active)
        return propagate(module.current, linear(jet, torch.diag(scale), shift), keys)
    raise ValueError(closed_form(module) or f"{kind.__name__}: no forward rule")


def _modified(module: ModifiedMLP, jet: Jet, keys: tuple[Key, ...]) -> Jet:
    """H ← (1 − Z) ⊙ U + Z ⊙ V, written U + Z ⊙ (V − U) (one product per layer)."""
    u = propagate(module.act, propagate(module.encode_u, jet, keys), keys)
    v = propagate(module.act, propagate(module.encode_v, jet, keys), keys)
    gap = add(v, u, -1)
    h = jet
    for layer in module.hidden:
        z = propagate(module.act, propagate(layer, h, keys), keys)
        h = add(u, multiply(z, gap, keys))
    return propagate(module.out, h, keys)


def feature_jet(model: PINNModel, x: torch.Tensor, keys: tuple[Key, ...]) -> Jet:
    """The jet of ``model.features(x)``: (x − c)/w, a periodic coordinate as (cos πẑ, sin πẑ)."""
    z = (x - model.center) / model.half_width
    inverse = 1 / model.half_width
    n, d = x.shape
    if not model.periodic:
        rows = torch.diag(inverse).to(z.dtype)  # row i: ∂ẑ/∂x_i = e_i / w_i
        return {(): z, **{(i,): rows[i: i + 1] for i in range(d) if (i,) in keys}}
    columns = []
    for i in range(d):
        column = {(): z[:, i: i + 1], **({(i,): inverse[i].reshape(1, 1).to(z.dtype)} if (i,) in keys else {})}
        if i in model.periodic:
            arg = {key: math.pi * v for key, v in column.items()}
            columns += [elementwise(arg, Cos, keys), elementwise(arg, Sin, keys)]
        else:
            columns.append(column)
    return concat(columns, n)


# -- forward-mode AD fallback (torch.func.jvp) -----------------------------------------------------------

def nested_jvp(f: Callable, x: torch.Tensor, key: Key, directions: list[torch.Tensor]) -> Jet:
    """f(x) and its derivatives along every sub-multiset of ``key``: len(key) nested ``torch.func.jvp``
    (``directions[i]``: the tangent e_i, shaped like x, made once outside every nesting)."""
    if not key:
        return {(): f(x)}
    i = key[-1]
    primal, tangent = torch.func.jvp(lambda y: nested_jvp(f, y, key[:-1], directions), (x,), (directions[i],))
    out = dict(primal)
    for k, v in tangent.items():
        out.setdefault(tuple(sorted(k + (i,))), v)
    return out


def jvp_jet(f: Callable, x: torch.Tensor, keys: tuple[Key, ...]) -> Jet:
    """The jet of any row-wise f: (N, d) → (N, m) by nested jvp, one nesting per maximal key."""
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    directions = [eye[i].expand_as(x).contiguous() for i in range(x.shape[1])]
    out: Jet = {}
    for key in maximal(keys):
        for k, v in nested_jvp(f, x, key, directions).items():
            out.setdefault(k, v)
    return out


def _transformed(model: PINNModel, y: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``problem.transform(p, u)`` checked as :meth:`PINNModel.forward` checks it."""
    problem = model.problem
    p = Points(y, problem.domain.names, [], None, model.unknown_values(), where="transform")
    out = problem.transform(p, u)
    want = (y.shape[0], len(problem.outputs))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ProblemError(f"transform: returned {got}; need shape {want}, one row per point and one "
                           f"column per output ({', '.join(problem.outputs)})")
    return out


def transform_jet(model: PINNModel, x: torch.Tensor, jet: Jet, keys: tuple[Key, ...], by: str = "autograd") -> Jet:
    """The jet of T(p, u(x)) from u's jet, by differentiating T on u's Taylor polynomial around the batch,
    ũ(y) = Σ_k u_k (y − x)^k / k!: ũ and u agree in every derivative the keys need at y = x, so T's are
    exact, and the network is not differentiated again (T is elementwise on (N, m): cheap).

    ``by="autograd"``: nested reverse mode on that small graph (what :class:`Points` does, with ũ for the
    network), fast eagerly; ``by="jvp"``: nested ``torch.func.jvp``, the one that compiles (no double
    backward), slower eagerly (functorch runs T's ops through decompositions).  (y − x) is zero in value
    and under ordinary autograd, so the outputs stay differentiable by the parameters and by x."""
    if len(keys) == 1:
        return {(): _transformed(model, x, jet[()])}

    def through(y):
        delta = y - x
        u = jet[()]
        for key in keys[1:]:
            if key in jet:
                power = delta[:, key[0]: key[0] + 1]
                for i in key[1:]:
                    power = power * delta[:, i: i + 1]
                u = u + jet[key] * (power / _factorial(key) if len(key) > 1 else power)
        return _transformed(model, y, u)

    if by == "jvp":
        return jvp_jet(through, x, keys)
    graph = torch.is_grad_enabled()
    with torch.enable_grad():  # also under no_grad (scoring candidate points): T's derivatives need it
        y = x * 1 if x.requires_grad else x.detach().requires_grad_(True)  # x's graph kept when it has one
        p = Points(y, model.problem.domain.names, model.problem.outputs, through, where="transform")
        m = len(model.problem.outputs)
        out = {(): p.outputs}
        for key in keys[1:]:
            out[key] = torch.cat([p._derivative(j, key) for j in range(m)], dim=1)
    return out if graph else {key: v.detach() for key, v in out.items()}


# -- the engine ----------------------------------------------------------------------------------------

def supports(model, jvp: bool = False) -> str | None:
    """None when :func:`forward_jets` can take ``model``'s derivatives, else a one-line reason.

    ``jvp=False`` (the default): the network must be made of parts with closed-form rules (every network
    :func:`pinnbal.nets.build_network` builds); ``jvp=True`` also accepts any other network, through
    nested ``torch.func.jvp`` (slower than the autograd path: keep autograd there)."""
    if not isinstance(model, PINNModel):
        return f"{type(model).__name__} is not a PINNModel"
    for name in ("forward", "features"):
        if getattr(type(model), name) is not getattr(PINNModel, name):
            return f"{type(model).__name__} overrides PINNModel.{name}"
    return None if jvp else closed_form(model.network)


def forward_jets(model: PINNModel, x: torch.Tensor, keys: Iterable[Key], jvp: bool = False,
                 compilable: bool = False) -> Jet:
    """``model``'s outputs (key ()) and the derivatives ``keys`` (sorted coordinate-index tuples, every output
    at once) at the points ``x`` (N, d): a dict key → (N, m), carrying also every sub-key they need.

    The network by the closed-form rules (or, with ``jvp=True`` and a network without them, nested jvp);
    the transform, if any, by :func:`transform_jet` (by jvp when ``compilable``: no autograd inside, so
    the loss needs one backward and compiles whole; else by autograd on T alone, faster eagerly)."""
    reason = supports(model, jvp)
    if reason is not None:
        raise ValueError(f"forward derivatives: {reason}")
    keys = closure(keys)
    if closed_form(model.network) is None:
        jet = propagate(model.network, feature_jet(model, x, keys), keys)
    else:
        jet = jvp_jet(lambda y: model.network(model.features(y)), x, keys)
    n, m = x.shape[0], jet[()].shape[1]
    jet = {key: jet[key].expand(n, m) if key in jet else jet[()].new_zeros(n, m) for key in keys}
    if model.problem.transform is not None:
        jet = transform_jet(model, x, jet, keys, "jvp" if compilable else "autograd")
    return jet


class ForwardPoints(Points):
    """:class:`Points` whose outputs and derivatives ``keys`` ((output index, key) pairs) come from one
    :func:`forward_jets` propagation on first use; ``p.u_xx`` and ``p.d(...)`` read them unchanged.  A key
    not given falls back to the base class's autograd (correct, slower; :func:`missed` lists them).  Every
    attribute here is private: a public one would hide a coordinate or output of that name.  The
    positional and other keyword arguments are the base class's.

    ``strict=True`` (what a compiled loss needs: ``torch.compile`` cannot take the double backward an
    autograd fallback makes) raises :class:`NotForward` instead of falling back."""

    def __init__(self, *args, keys=(), jvp: bool = False, strict: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._keys, self._jvp, self._strict, self._missed = frozenset(keys), jvp, strict, set()

    @property
    def outputs(self) -> torch.Tensor:
        if self._outputs is None and self._model is not None:
            self._fill()
        if self._outputs is None:  # no model: the base class's error (``Points.outputs``: dynamo reads no super())
            return Points.outputs.fget(self)
        return self._outputs

    def _fill(self) -> None:
        reason = supports(self._model, self._jvp)
        if reason is not None:
            if self._strict:
                raise NotForward(f"{self._where}: {reason}")
            self._outputs = self._model(self._coords)
            return
        jet = forward_jets(self._model, self._coords, {key for _, key in self._keys}, self._jvp, self._strict)
        self._outputs = jet[()]
        for key, value in jet.items():
            for j in range(value.shape[1]) if key else ():
                self._cache[(j, key)] = value[:, j: j + 1]

    def _derivative(self, j: int, key: tuple[int, ...]) -> torch.Tensor:
        if key:
            self.outputs  # noqa: B018 (fills the cache)
            if (j, key) not in self._cache:
                if self._strict:
                    raise NotForward(f"{self._where}: derivative {key} of output {j} is not among the keys taken "
                                     f"forward ({sorted(self._keys)})")
                self._missed.add((j, key))
        return super()._derivative(j, key)


class NotForward(ValueError):
    """A strict :class:`ForwardPoints` was asked for what it would have to take by autograd."""


def as_forward(p: Points, keys, jvp: bool = False, strict: bool = False) -> ForwardPoints:
    """``p`` (what ``model.points(...)`` made, nothing read from it yet) as a :class:`ForwardPoints` taking
    ``keys`` forward: every attribute copied, so whatever the base class holds (normals, …) comes along."""
    q = ForwardPoints.__new__(ForwardPoints)
    q.__dict__.update(p.__dict__)
    q._cache = dict(p._cache)
    q._keys, q._jvp, q._strict, q._missed = frozenset(keys), jvp, strict, set()
    return q


def missed(p: ForwardPoints) -> set:
    """The (output index, key) pairs ``p`` had to take by autograd (not among its ``keys``)."""
    return set(p._missed)


def forward_points(model: PINNModel, x: torch.Tensor, where: str, keys, jvp: bool = False, strict: bool = False,
                   **kwargs) -> ForwardPoints:
    """``model.points(x, where, **kwargs)`` with the derivatives ``keys`` taken forward."""
    return as_forward(model.points(x, where, **kwargs), keys, jvp, strict)


# -- which keys a residual uses ------------------------------------------------------------------------

class _Recording(Points):
    """Points that remember each derivative the residual asks for (top-level requests, not the recursion)."""

    def d(self, output: str, *coords: str) -> torch.Tensor:
        if output in self._output_names and coords and all([c in self._coord_names for c in coords]):
            key = tuple(sorted([self._coord_names.index(c) for c in coords]))
            self._used.add((self._output_names.index(output), key))
        return super().d(output, *coords)


def probe_keys(model: PINNModel, fn: Callable[[Points], object], x: torch.Tensor, where: str = "probe",
               n: int = 4, **kwargs) -> frozenset:
    """The (output index, key) pairs ``fn(p)`` reads, found by running it once (autograd) on ``n`` points
    of ``x`` (``p`` made by ``model.points(x[:n], where, **kwargs)``, so boundary normals are there).  A
    residual whose reads depend on the values (a branch) may read others elsewhere: :class:`ForwardPoints`
    then falls back to autograd for those."""
    xs = x[:n].detach().clone().requires_grad_(x.requires_grad)
    p = _Recording.__new__(_Recording)
    p.__dict__.update(model.points(xs, where, **kwargs).__dict__)
    p._used = set()
    fn(p)
    return frozenset(p._used)


def term_keys(model: PINNModel, terms, x: torch.Tensor, values=None, n: int = 4) -> frozenset:
    """The union of :func:`probe_keys` over ``terms`` sharing the batch ``x`` (``values``: each term's)."""
    values = values if values is not None else [None] * len(terms)
    keys: set = set()
    for term, v in zip(terms, values):
        where = f"term {term.name!r}"
        keys |= probe_keys(model, lambda p: term.residual(p, None if v is None else v[:n]), x, where, n,
                           **_points_options(term))
    return frozenset(keys)


# -- compiled evaluation -------------------------------------------------------------------------------

def batch_losses(model: PINNModel, terms, keys, jvp: bool = False, strict: bool = False) -> Callable:
    """f(x, values, normals) → [(residual, pointwise loss ℓ)] for ``terms`` sharing the batch ``x`` (``values``:
    each term's observations or None; ``normals``: the outward normals on boundary points, computed outside
    — the domain's numpy code has no place in a compiled graph), derivatives forward; the eager function
    (:func:`compiled_batch_losses` compiles it)."""
    terms = list(terms)

    def evaluate(x: torch.Tensor, values: list, normals: torch.Tensor | None = None) -> list:
        where = f"term {terms[0].name!r}"
        # strict: every derivative is carried forward, none by autograd, so no gradient by the points is needed
        # (the backward would otherwise compute one, a product with the first layer, and accumulate it)
        p = forward_points(model, x.detach() if strict else x, where, keys, jvp, strict, normals=normals,
                           **_points_options(terms[0]))
        out = []
        for term, v in zip(terms, values):
            r = term.residual(labelled(p, f"term {term.name!r}"), v)
            out.append((r, term.loss_fn(r).mean(dim=1)))
        return out

    return evaluate


def _points_options(term) -> dict:
    """The keyword arguments ``model.points`` takes for ``term`` (``on_boundary`` where the model has it)."""
    return {"on_boundary": term.on_boundary} if hasattr(term, "on_boundary") else {}


def compiled_batch_losses(model: PINNModel, terms, keys, **options) -> "Compiled":
    """:func:`batch_losses` under ``torch.compile`` (strict: every derivative forward, or the eager path
    with the reason); ``options`` go to ``torch.compile``."""
    return Compiled(batch_losses(model, terms, keys, strict=True), eager=batch_losses(model, terms, keys), **options)


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def own_code(fn: Callable) -> Callable:
    """``fn`` with a code object of its own.  Dynamo keeps its compiled graphs per code object, and every
    batch's loss is a closure of the same code (:func:`batch_losses`) over a different model and terms: on
    one code object each batch would be a recompilation of the others, and past ``recompile_limit`` (8)
    dynamo runs the rest eagerly, silently (a run or a benchmark process with many batches)."""
    return types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


def compile_own(fn: Callable, **options) -> Callable:
    """``torch.compile(own_code(fn), **options)``, with dynamo's fake-tensor dispatch cache off.

    That cache is process-wide; entries an earlier graph's inductor lowering left there (on a cold
    compile cache only: a warm one skips the lowering) made the next trace of a transform's nested
    ``torch.func.jvp`` fail ("RuntimeError when making fake tensor call": ``pi * x`` reported as
    writing to overlapping memory), so a later graph of the same process (the second stage's, a
    benchmark's next problem) ran eagerly.  Measured on Burgers (lra, warm compile cache): compile
    time 7.2 s with the cache, 6.6 s without (``tests/test_compile.py`` reproduces the failure in a
    process of its own on an empty compile cache)."""
    import torch._dynamo.config  # torch.compile imports it anyway

    torch._dynamo.config.fake_tensor_cache_enabled = False
    return torch.compile(own_code(fn), **options)


class Compiled:
    """``fn`` under ``torch.compile`` (mode default); when compiling or running it raises, ``eager`` (default
    ``fn``) from then on, with ``reason`` (one line) saying why.  ``compile_seconds``: the first call's wall
    time (tracing, compiling and one forward run; the backward graph compiles on the first backward).

    Compile only what needs no autograd inside (a strict :class:`ForwardPoints`).  A compiled graph takes
    one backward (repeated ones with ``retain_graph`` too, as the per-term Jacobian loop does) but no
    double backward (meta-gradients) and no ``is_grads_batched`` (vmapped) backward; those failures show
    only at ``backward``, out of this wrapper's reach: use the eager path there."""

    def __init__(self, fn: Callable, eager: Callable | None = None, **options):
        self.fn = fn
        self.eager = eager or fn
        self.compiled = compile_own(fn, **options)
        self.reason: str | None = None
        self.compile_seconds: float | None = None

    def __call__(self, *args, **kwargs):
        if self.reason is None:
            start = time.perf_counter()
            try:
                out = self.compiled(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 (any failure: the eager path still works, or re-raises)
                self.reason = one_line(error)
            else:
                if self.compile_seconds is None:
                    self.compile_seconds = time.perf_counter() - start
                return out
        return self.eager(*args, **kwargs)
