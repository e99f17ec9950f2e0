"""Meta-gradients of a held-out objective through a few differentiable training steps.

The machinery shared by the validation-driven balancers ``meta`` (seed 003,
meta-gradient loss tuning) and ``learned`` (seed 000 §6.2): a loss L_φ with
parameters φ is judged by what a few training steps under it would do to the
validation loss, and φ follows the gradient of that judgement.

Look-ahead (truncated back-propagation through training, Andrychowicz et al.
2016, "Learning to learn by gradient descent by gradient descent"; reverse-mode
hyper-gradients of Franceschi et al. 2018, "Bilevel programming for
hyperparameter optimization and meta-learning", ICML).  From the current
parameters θ_0 = θ, T inner steps

    SGD:   θ_{t+1} = θ_t − η ∇_θ L_φ(θ_t)
    Adam:  m_{t+1} = β₁ m_t + (1−β₁) g_t,  v_{t+1} = β₂ v_t + (1−β₂) g_t²,
           θ_{t+1} = θ_t − η m̂_{t+1} / (√v̂_{t+1} + ε)
    (g_t = ∇_θ L_φ(θ_t); Adam starts from the live optimiser's moments)

are taken on functional copies of θ (:meth:`pinnbal.context.TrainingContext.evaluate`
with ``params``, so the live model never moves; each inner step sees the
training points as fresh autograd leaves, so x-derivatives stay partial at
fixed θ_t) with
``create_graph=True``:
θ_T is a differentiable function of φ, and the meta-gradient ∂V(θ_T)/∂φ
passes through every inner gradient (second order).  η is the optimiser's
current learning rate.

Validation objective.  V(θ') = (1/|S|) Σ_{k∈S} L_k^val(θ') / s_k, the plain
mean of the validation term losses over the selected terms S (every term with
points, or only the ``Data`` terms), each divided by a running scale s_k: its
value L_k^val(θ) at the start of this unroll (a constant).  Why the running
scale rather than the value at the start of training: the look-ahead asks
"which relative improvement does a step under L_φ buy", and dividing by the
current value makes every term's relative change count the same at every stage
of training (to first order V − 1 = mean_k Δ log L_k^val), so the meta-gradient
keeps its size while the losses fall by orders of magnitude, and neither the
meta learning rate nor the clip threshold has to be re-tuned over a run.
(Early stopping of φ needs a score comparable across outer steps, so it uses
the value at the first outer step instead; see ``meta``.)  Regularisation
terms (no points) are not validation information and never enter V; the
reference solution never does either.

Updates of φ: the meta-gradient is clipped to a global norm (``clip``), then
Adam takes a step with a decoupled regulariser pulling φ back to its initial
value φ₀ (AdamW-style, Loshchilov & Hutter 2019):

    φ ← φ − lr (m̂/(√v̂ + ε) + reg (φ − φ₀))

so the pull does not depend on the meta-gradient's scale; with a consistently
signed meta-gradient φ stays within about 1/reg of φ₀.

Implicit differentiation / Neumann series (seed §3.4, Rajeswaran et al. 2019)
is left out on purpose: it assumes θ is at a stationary point of L_φ, which a
PINN in mid-training is not, and each Neumann term costs one Hessian-vector
product, so J terms cost about what an unroll of T = J steps costs; it is
not cheaper here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .adam import EPS, adam_moments
from .batches import TermValues

#: scales at or below this are treated as "term solved": left out of the objective
TINY = 1e-30


@dataclass
class InnerAdam:
    """Adam's state for a differentiable look-ahead: moments per parameter name, step count, constants."""

    m: dict[str, torch.Tensor]
    v: dict[str, torch.Tensor]
    step: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


def optimizer_moments(ctx) -> InnerAdam | None:
    """The live Adam optimiser's moments for ``ctx.parameters()``; None before its first step (or not Adam)."""
    opt = ctx.optimizer
    if not isinstance(opt, torch.optim.Adam):
        return None
    group = opt.param_groups[0]
    m, v, step = {}, {}, None
    for name, p in ctx.parameters().items():
        st = opt.state.get(p)
        if not st or "exp_avg" not in st:
            return None
        m[name], v[name] = st["exp_avg"].detach(), st["exp_avg_sq"].detach()
        step = float(st["step"])
    return InnerAdam(m, v, step, tuple(group["betas"]), float(group["eps"]))


def unroll(ctx, train_loss: Callable[[TermValues], torch.Tensor], *, T: int, lr: float,
           inner: str = "sgd", moments: InnerAdam | None = None) -> dict[str, torch.Tensor]:
    """θ_T after ``T`` differentiable inner steps of ``inner`` ("sgd" or "adam") from the live θ.

    ``train_loss(values)`` turns one evaluation of the terms on the training
    batch (:class:`~pinnbal.batches.TermValues`, with graph) into the scalar
    L_φ(θ); it closes over φ, so θ_T carries the graph back to φ.  ``adam``
    without ``moments`` (the optimiser has not stepped yet) falls back to SGD:
    Adam from zero moments is sign descent, whose meta-gradient is zero.
    """
    if inner not in ("sgd", "adam"):
        raise ValueError(f"inner={inner!r}; choose sgd or adam")
    params = dict(ctx.parameters())
    adam = moments if inner == "adam" else None
    m = dict(adam.m) if adam else None
    v = dict(adam.v) if adam else None
    for t in range(T):
        loss = train_loss(ctx.evaluate(params))
        names = list(params)
        grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=True, allow_unused=True)
        new = {}
        for n, g in zip(names, grads):
            if g is None:  # a parameter the loss does not use (e.g. an unknown absent from every term)
                g = torch.zeros_like(params[n])
            if adam is None:
                new[n] = params[n] - lr * g
                continue
            m[n], v[n], m_hat, v_hat = adam_moments(g, m[n], v[n], adam.step + t + 1, adam.betas)
            # clamp: √ at an exact zero (a parameter with no gradient yet) would give an infinite derivative
            new[n] = params[n] - lr * m_hat / (v_hat.clamp_min(TINY).sqrt() + adam.eps)
        params = new
    return params


def objective(losses: torch.Tensor, scale: torch.Tensor, select: torch.Tensor) -> torch.Tensor:
    """V = mean over the selected terms of L_k / s_k (terms with s_k <= TINY are left out); 0 if none is left."""
    keep = select.to(device=losses.device) & (scale.to(losses.device) > TINY)
    if not bool(keep.any()):
        return losses.sum() * 0.0
    return (losses[keep] / scale.to(losses)[keep]).mean()


def validation_scale(ctx) -> torch.Tensor:
    """The validation term losses at the live θ, detached (float64, on the CPU like balancer state): the
    running scale s_k."""
    return ctx.evaluate(None, "validation").losses.detach().double().cpu()


def lookahead_objective(ctx, train_loss, *, T: int, lr: float, scale: torch.Tensor, select: torch.Tensor,
                        inner: str = "sgd", moments: InnerAdam | None = None) -> torch.Tensor:
    """V(θ_T): the validation objective after the unroll, with the graph back to whatever ``train_loss`` uses."""
    theta = unroll(ctx, train_loss, T=T, lr=lr, inner=inner, moments=moments)
    return objective(ctx.evaluate(theta, "validation").losses, scale, select)


def meta_gradient(ctx, train_loss, wrt: list[torch.Tensor], **kwargs) -> tuple[float, list[torch.Tensor]]:
    """(V(θ_T), ∂V/∂x for x in ``wrt``): zeros for inputs V does not depend on.  kwargs: as
    :func:`lookahead_objective`."""
    value = lookahead_objective(ctx, train_loss, **kwargs)
    if not value.requires_grad:
        return float(value), [torch.zeros_like(x) for x in wrt]
    grads = torch.autograd.grad(value, wrt, allow_unused=True)
    return float(value.detach()), [torch.zeros_like(x) if g is None else g.detach() for x, g in zip(wrt, grads)]


def clip_grads(grads: list[torch.Tensor], max_norm: float) -> tuple[list[torch.Tensor], float]:
    """Scale ``grads`` to a global L2 norm of at most ``max_norm`` (0: no clipping); also return the norm."""
    norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads))) if grads else 0.0
    if max_norm > 0 and norm > max_norm:
        grads = [g * (max_norm / norm) for g in grads]
    return grads, norm




def adam_step(phi: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], m: dict[str, torch.Tensor],
              v: dict[str, torch.Tensor], t: int, *, lr: float, reg: float, phi0: dict[str, torch.Tensor]):
    """One Adam step on φ with the decoupled pull ``reg`` (φ − φ₀); ``t`` is the step number (from 1).

    Returns the new φ, m and v (new tensors; the inputs are not modified).
    """
    new_phi, new_m, new_v = {}, {}, {}
    for name, p in phi.items():
        new_m[name], new_v[name], m_hat, v_hat = adam_moments(grads[name].to(p), m[name], v[name], t)
        new_phi[name] = p - lr * (m_hat / (v_hat.sqrt() + EPS) + reg * (p - phi0[name].to(p)))
    return new_phi, new_m, new_v


def adam_update(state: dict, names: list[str], grads, *, lr: float, reg: float, phi0: dict[str, torch.Tensor],
                project: Callable[[dict], dict] = lambda phi: phi) -> bool:
    """One :func:`adam_step` on the φ tensors ``state[name]`` (moments ``m_<name>``, ``v_<name>``, step
    count ``adam_t``), projected by ``project`` and written into ``state``.

    Returns False, leaving ``state`` untouched, if anything came out non-finite.
    """
    t = int(state["adam_t"]) + 1
    new, m, v = adam_step({n: state[n] for n in names}, dict(zip(names, grads)),
                          {n: state[f"m_{n}"] for n in names}, {n: state[f"v_{n}"] for n in names}, t,
                          lr=lr, reg=reg, phi0=phi0)
    new = project(new)
    if not all_finite(*new.values(), *m.values(), *v.values()):
        return False
    for n in names:
        state[n], state[f"m_{n}"], state[f"v_{n}"] = new[n], m[n], v[n]
    state["adam_t"] = torch.tensor(t, dtype=torch.int64)
    return True


def skip(state: dict) -> torch.Tensor:
    """A non-finite statistic or meta-gradient: count it in ``state["skipped"]`` and keep the weights."""
    state["skipped"] = state["skipped"] + 1
    return state["weights"]


def all_finite(*tensors) -> bool:
    return all(bool(torch.isfinite(x).all()) for x in tensors)


def selection(ctx, validate: str = "all") -> torch.Tensor:
    """Which terms enter the validation objective: those with points (``all``), or only ``Data`` terms (``data``)."""
    return torch.tensor([bool(getattr(t, "has_points", True)) and (validate == "all" or t.kind == "data")
                         for t in ctx.terms], dtype=torch.bool)
