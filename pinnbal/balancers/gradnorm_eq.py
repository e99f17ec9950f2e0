"""Grad-norm weighting of Wang, Sankaran, Wang & Perdikaris (2023), "An
expert's guide to training physics-informed neural networks",
arXiv:2308.08468 (code: jaxpi, ``weighting.scheme = "grad_norm"``).

Every ``every`` steps each term k gets

    λ̂_k = Σ_j ‖∇θ L_j‖ / ‖∇θ L_k‖,     λ_k ← α λ_k + (1 − α) λ̂_k,

then λ_k is clamped to [min, max].  ‖·‖ is the L2 norm over all trainable
parameters (row k of the Jacobian J).  At the fixed point every weighted
gradient λ_k ∇L_k has the norm Σ_j ‖∇L_j‖.

Where sources disagree: the paper writes the sum of the norms in the
numerator (followed here); jaxpi's released code divides their mean, i.e.
our λ̂ divided by K.  The relative weights are the same; the absolute scale
differs by K, which matters only against the min/max bounds and the learning
rate.  jaxpi's configs update every 100–1000 steps with α = 0.9; our default
``every=10`` suits shorter runs.

Numerics: computed as exp(logsumexp_j log‖∇L_j‖ − log‖∇L_k‖), zero norms
floored at the smallest float64 and λ̂ capped at 1e300, so zero, 1e-30 and
1e30 gradients give finite targets (a zero-gradient term gets the max bound).

Options: every=10, alpha=0.9, min=1e-3, max=1e3, params=all (or last, or weights).
"""

from __future__ import annotations

import math

import torch

from .base import Balancer
from .gradscale import log_norms

LOG_CAP = math.log(1e300)


class GradNormEq(Balancer):
    name = "gradnorm-eq"
    summary = "grad-norm weights (Wang et al. 2023, jaxpi): sum_j ||grad L_j|| / ||grad L_k||"
    needs = frozenset({"losses", "jacobian"})
    options = {"every": 10, "alpha": 0.9, "min": 1e-3, "max": 1e3, "params": "all"}

    def target(self, stats, state, *, step, progress):
        logs = log_norms(stats.jacobian)
        return (torch.logsumexp(logs, dim=0) - logs).clamp_max(LOG_CAP).exp()
