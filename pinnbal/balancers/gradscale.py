"""Gradient-magnitude scaling (Shaa 2023, "Dynamically Weighting Loss Function
Components in Machine Learning Models", technical note, 15 Dec 2023, §3.2
step 3; the seed 000 of this project).

Every ``every`` steps each term k gets

    ŵ_k = c / (‖∇θ L_k‖ + ε),   normalised so that Σ_k ŵ_k = K

(so the scale factor c drops out), then w_k ← α w_k + (1 − α) ŵ_k and w_k is
clamped to [min, max].  ‖·‖ is the L2 norm over all trainable parameters
(row k of the Jacobian J).  The weighted gradients w_k ∇L_k then all have
about the same norm.

Where the source disagrees with itself: its prose says a larger gradient
gets a larger weight, but its formula is inversely proportional to the
gradient norm.  We implement the formula (equalise gradient magnitudes);
the prose's reading would amplify whichever term already dominates.

Numerics: the normalisation is a softmax of −log(‖∇L_k‖ + ε), so gradient
norms from 0 to 1e30 (and ε = 0) give finite weights; norms are computed
from J scaled by its largest entry, so they do not overflow.

Options: eps=1e-8, every=10, alpha=0.9, min=1e-3, max=1e3, params=all (or last, or weights).
"""

from __future__ import annotations

import torch

from ..errors import OptionError
from .base import Balancer

TINY = torch.finfo(torch.float64).tiny


def grad_norms(jacobian: torch.Tensor) -> torch.Tensor:
    """‖J_k‖₂ for every row k, in float64, without overflow or underflow of the squares."""
    J = jacobian.detach().to(torch.float64)
    scale = J.abs().amax(dim=1) if J.shape[1] else torch.zeros(J.shape[0], dtype=torch.float64)
    return scale * torch.linalg.vector_norm(J / scale.clamp_min(TINY)[:, None], dim=1)


def log_norms(jacobian: torch.Tensor) -> torch.Tensor:
    """log ‖J_k‖₂, with zero norms floored at the smallest float64 (log ≈ −708)."""
    return grad_norms(jacobian).clamp_min(TINY).log()


class GradScale(Balancer):
    name = "gradscale"
    summary = "gradient-magnitude scaling (Shaa 2023, seed sec. 3): w_k ~ 1/(||grad L_k|| + eps), summing to K"
    weight_sum = "K"
    needs = frozenset({"losses", "jacobian"})
    options = {"eps": 1e-8, "every": 10, "alpha": 0.9, "min": 1e-3, "max": 1e3, "params": "all"}

    def check_options(self) -> None:
        super().check_options()
        if self.opts["eps"] < 0:
            raise OptionError(f"balancer 'gradscale': eps={self.opts['eps']}; need eps >= 0")

    def target(self, stats, state, *, step, progress):
        norms = grad_norms(stats.jacobian)
        logits = -(norms + self.opts["eps"]).clamp_min(TINY).log()
        return len(norms) * torch.softmax(logits, dim=0)
