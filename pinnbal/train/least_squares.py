"""The second stage's objective as a sum of squares, for Levenberg–Marquardt (``--then lm``).

With every term's loss ``mse``, Σ_k w_k L_k = ‖ρ‖² where, for term k with
N_k points, C_k residual columns and per-point multipliers m_i (1 unless a
point scheme froze them at the switch),

    ρ_kic = √(w_k m_i / (N_k C_k)) r_kic,      and for ``pb.L2``:  ρ_kj = √(w_k / n) W_j

(n weights W_j).  J = ∂ρ/∂θ (M × P) is formed per point: a point's
residuals depend on the parameters only through that point's forward pass,
so ``torch.func.vmap`` over the points of ``torch.func.jacrev`` of one
point's residuals gives every row at the cost of about one batched backward
pass (on Burgers, 9216 points × 3297 parameters: 2 s on one core, equal
to row-by-row autograd to 5e-16).  That needs derivatives without autograd
inside, so it uses the forward engine (:mod:`pinnbal.forward`, strict).

:func:`check` refuses, in one line before anything is written, what is not
a sum of squares (``mae``/``huber``/``logcosh`` losses, L1 penalties, a
balancer that reshapes the loss) or cannot be formed (autograd derivatives,
a network without forward rules) or would not fit in memory.
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from .. import forward
from ..balancers.base import Balancer
from ..balancers.compose import Composite
from ..balancers.pointwise import PointScheme
from ..batches import term_losses
from ..errors import OptionError
from ..points import labelled
from ..problem import L2

#: points per vmapped chunk of the per-point Jacobian (bounds the temporaries)
CHUNK = 1024


def memory_limit() -> int:
    """Half of this machine's physical memory, in bytes (what J, JᵀJ and their temporaries may take)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def rows(trainer) -> int:
    """M, the length of ρ: N_k C_k per term with a nonzero weight (n weights for a penalty)."""
    residuals = term_losses(trainer.model, trainer.batches.leaves(2))[1]
    count = 0
    for info, term, r, (_, x, _) in zip(trainer.terms, trainer.problem.terms, residuals, trainer.batches.items):
        if info.weight == 0:
            continue
        if r is None:
            count += sum(m.weight.numel() for m in trainer.model.linear_layers())
        else:
            count += len(x) * r.shape[1]
    return count


def check(trainer) -> None:
    """Refuse ``--then lm`` where the objective is not ‖ρ‖² or J (M × P) would not fit; one line."""
    problem, model = trainer.problem, trainer.model
    for term in problem.terms:
        if term.kind == "regularisation" and not isinstance(term, L2):
            raise OptionError(f"--then lm: term {term.name!r} ({type(term).__name__}) is not a sum of squares; "
                              f"use --then ssbfgs, or pb.L2")
        if term.kind != "regularisation" and term.loss != "mse":
            raise OptionError(f"--then lm: term {term.name!r} has loss={term.loss!r}; Levenberg–Marquardt needs "
                              f"mse on every term (or use --then ssbfgs)")
    frozen = isinstance(trainer.balancer, (PointScheme, Composite))  # per-point multipliers, fixed at the switch
    if not frozen and type(trainer.balancer).losses is not Balancer.losses:
        raise OptionError(f"--then lm: balancer {trainer.balancer.name!r} reshapes the term losses (not a sum of "
                          f"squares); use --then ssbfgs")
    if trainer.config.derivatives == "autograd":
        raise OptionError("--then lm: the per-point Jacobian needs forward derivatives; drop --derivatives autograd "
                          "or use --then ssbfgs")
    reason = forward.supports(model)
    if reason is not None:
        raise OptionError(f"--then lm: the per-point Jacobian needs forward derivatives and {reason}; "
                          f"use --then ssbfgs")
    count, M = sum(p.numel() for p in trainer.params), rows(trainer)
    need = 8 * (3 * M * count + 3 * min(M, count) ** 2)
    if need > memory_limit():
        raise OptionError(f"--then lm: the Jacobian of {M} residuals × {count} parameters and its normal matrix "
                          f"would take {need / 1e9:.1f} GB (limit {memory_limit() / 1e9:.1f} GB, half of this "
                          f"machine's memory); use fewer points, a smaller network or --then ssbfgs")


class _Evaluation(nn.Module):
    """``fn`` as the forward of a module holding the model, so ``functional_call`` can swap its parameters."""

    def __init__(self, model: nn.Module, fn):
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, *args):
        return self.fn(*args)


class SumOfSquares:
    """ρ and J for the trainer's current batches at fixed ``weights`` (and frozen multipliers)."""

    def __init__(self, trainer, weights: torch.Tensor):
        self.trainer = trainer
        self.weights = [float(w) for w in weights]
        model = trainer.model
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.owners: dict[str, list[int]] = {}  # owner term -> indices of the terms on its batch
        for k, (term, x, _) in enumerate(trainer.batches.items):
            if x is not None:
                self.owners.setdefault(term.shares or term.name, []).append(k)

    def __call__(self, jacobian: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        trainer = self.trainer
        params = {f"model.{n}": p.detach() for n, p in trainer.model.named_parameters() if p.requires_grad}
        blocks: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
        for owner, ks in self.owners.items():
            blocks.update(self.batch(owner, ks, params, jacobian))
        for k, term in enumerate(trainer.problem.terms):
            if term.kind == "regularisation":
                blocks[k] = self.penalty(k, params, jacobian)
        order = [blocks[k] for k in range(len(trainer.problem.terms)) if self.weights[k] != 0]
        rho = torch.cat([r for r, _ in order])
        return rho, (torch.cat([J for _, J in order]) if jacobian else None)

    def scale(self, k: int, n: int, columns: int) -> torch.Tensor | float:
        """√(w_k m_i / (N_k C_k)) for term k's rows (per point when multipliers are frozen)."""
        base = self.weights[k] / (n * columns)
        frozen = self.trainer.frozen
        m = None if frozen is None else frozen[k]
        return math.sqrt(base) if m is None else (base * m.to(torch.float64)).sqrt()[:, None]

    def batch(self, owner: str, ks: list[int], params: dict, jacobian: bool) -> dict:
        """ρ rows (and their J rows) of the terms ``ks`` on ``owner``'s batch."""
        trainer = self.trainer
        model, batches = trainer.model, trainer.batches
        items = [batches.items[k] for k in ks]
        terms = [t for t, _, _ in items]
        x = items[0][1].detach()
        values = [v for _, _, v in items]
        keys = batches.derivative_keys(model, owner)
        normals = model.normals_at(x) if getattr(terms[0], "on_boundary", False) else None
        where = f"term {terms[0].name!r}"

        def residuals(xs, vs, ns):
            p = forward.as_forward(model.points(xs, where, normals=ns), keys, strict=True)
            return tuple(term.residual(labelled(p, f"term {term.name!r}"), v) for term, v in zip(terms, vs))

        evaluation = _Evaluation(model, residuals)
        out = {}
        if not jacobian:
            with torch.no_grad():
                rs = functional_call(evaluation, params, (x, values, normals))
            for k, r in zip(ks, rs):
                out[k] = ((self.scale(k, *r.shape) * r.to(torch.float64)).reshape(-1), None)
            return out

        def one(ps, xi, vi, ni):  # one point's residual rows, as the Jacobian's function and as its value
            vs = [None if v is None else v[None] for v in vi]
            rows = tuple(r.reshape(-1) for r in functional_call(evaluation, ps, (xi[None], vs,
                                                                                 None if ni is None else ni[None])))
            return rows, tuple(r.detach() for r in rows)

        in_dims = (None, 0, [None if v is None else 0 for v in values], None if normals is None else 0)
        # the residuals come with the Jacobian (has_aux), not from a second evaluation
        grads, rs = vmap(jacrev(one, has_aux=True), in_dims=in_dims, chunk_size=CHUNK)(params, x, values, normals)
        for k, r, g in zip(ks, rs, grads):
            n, columns = r.shape
            J = torch.cat([g[f"model.{name}"].reshape(n, columns, -1) for name in self.names], dim=2)
            s = self.scale(k, n, columns)
            s_rows = s if isinstance(s, float) else s[:, :, None]
            out[k] = ((s * r.to(torch.float64)).reshape(-1), (s_rows * J.to(torch.float64)).reshape(n * columns, -1))
        return out

    def penalty(self, k: int, params: dict, jacobian: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ρ = √(w_k / n) W for an L2 term (its weights W, n of them) and, when asked, ∂ρ/∂θ."""
        model = self.trainer.model

        def rows(ps):
            def weights():
                return torch.cat([m.weight.reshape(-1) for m in model.linear_layers()])
            W = functional_call(_Evaluation(model, weights), ps, ())
            return math.sqrt(self.weights[k] / W.numel()) * W.to(torch.float64)

        rho = rows(params)
        if not jacobian:
            return rho, None
        grads = jacrev(rows)(params)
        return rho, torch.cat([grads[f"model.{n}"].reshape(len(rho), -1) for n in self.names], dim=1)
