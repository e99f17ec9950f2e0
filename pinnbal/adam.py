"""One Adam moment update, shared by every weight pinnbal learns itself.

Adam (Kingma & Ba 2015, "Adam: a method for stochastic optimization", ICLR) with gradient g at step t
(counted from 1):

    m ← β₁ m + (1 − β₁) g,    v ← β₂ v + (1 − β₂) g²,    m̂ = m / (1 − β₁ᵗ),    v̂ = v / (1 − β₂ᵗ)

Users: the log-variances of ``uncertainty``, the per-point λ of ``sa`` (ascent), the loss parameters φ
of ``meta``/``learned`` and the differentiable inner steps of their look-ahead (:mod:`pinnbal.lookahead`).
Each applies its own step from m̂ and v̂ (a descent, an ascent, a decoupled pull towards φ₀, a clamped
square root inside a differentiated graph).  Written with out-of-place operations, so it works inside a
graph that is differentiated again; ``t`` may be a number or a tensor of per-entry step counts.
torch.optim.Adam is not used here: these weights live in checkpointed state dicts (and one of them inside
a second-order graph), not in parameter groups.
"""

from __future__ import annotations

import torch

BETAS = (0.9, 0.999)
EPS = 1e-8


def adam_moments(grad: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: float | torch.Tensor,
                 betas: tuple[float, float] = BETAS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(m, v, m̂, v̂) after one step with gradient ``grad`` at step ``t``."""
    b1, b2 = betas
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad.square()
    return m, v, m / (1 - b1 ** t), v / (1 - b2 ** t)
