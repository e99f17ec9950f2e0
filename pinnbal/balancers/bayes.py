"""Bayesian precision weighting (the seed's §4.2: uncertainty weights from a
posterior rather than a point estimate).

Each term's pointwise residuals are modelled as Gaussian with an unknown
precision τ_k, r_i ~ N(0, 1/τ_k), under a conjugate Gamma(a₀, b₀) prior.
With n_k points and mean squared residual L_k (the term's ``mse`` loss) the
posterior is

    τ_k | r ~ Gamma(a₀ + n_k/2,  b₀ + n_k L_k / 2),
    E[τ_k | r] = (a₀ + n_k/2) / (b₀ + n_k L_k / 2),

and the weights are the posterior mean precisions, rescaled so that they sum
to the sum of the initial weights:  w_k ∝ E[τ_k | r].  Each update uses the
current batch as the evidence (the residuals move as the network trains, so
old batches are stale); the base EMA (``alpha``) smooths across updates.
The prior keeps a term with a tiny loss from an unbounded precision
(τ ≤ (a₀ + n/2)/b₀) and a term with few points close to the prior mean a₀/b₀.
For a non-``mse`` loss, L_k is read as that loss's mean, a heuristic.

``warmup`` (a fraction of the Adam steps, 0 by default) holds the initial
weights before the first update.  Why: at the start every residual is large
and the PDE's falls fastest (u ≈ 0 satisfies a linear PDE at once), so its
precision runs ahead and the observations' weight drops to ``min`` before
they are fitted; the posterior then explains the data as noise and the Adam
stage never leaves u ≈ 0 (measured on problems/heat_inverse.py, seed 0:
κ stayed at 0.37 and rel L2 at 0.99 through 1000 Adam steps).  Holding the
weights until the data are fitted is the "fit first, then estimate the noise"
order of iterative reweighting.

Options: a0=1.0, b0=1e-4, alpha=0.9, every=1, min=1e-3, max=1e3, warmup=0.0.
"""

from __future__ import annotations

import torch

from ..errors import OptionError
from .base import Balancer


class Bayes(Balancer):
    name = "bayes"
    summary = "posterior mean precision of each term's residuals under a Gamma prior"
    weight_sum = "initial"
    options = {"a0": 1.0, "b0": 1e-4, "alpha": 0.9, "every": 1, "min": 1e-3, "max": 1e3,
               "warmup": 0.0}

    def check_options(self) -> None:
        super().check_options()
        if not 0.0 <= self.opts["warmup"] <= 1.0:
            raise OptionError(f"balancer 'bayes': warmup={self.opts['warmup']}; need a fraction of the Adam steps "
                              f"0 <= warmup <= 1")

    def update(self, stats, state, *, step, progress):
        """The base update once ``progress`` (the Adam stage's position, 0 to 1) reaches ``warmup``."""
        if progress < self.opts["warmup"]:
            return state["weights"], state
        return super().update(stats, state, step=step, progress=progress)

    def init(self, terms):
        state = super().init(terms)
        state["points"] = torch.tensor([float(t.points) for t in terms], dtype=torch.float64)
        return state

    def target(self, stats, state, *, step, progress):
        n, losses = state["points"], stats.losses.double().clamp(0.0, 1e300)
        precision = (self.opts["a0"] + n / 2) / (self.opts["b0"] + n * losses / 2)
        return precision / precision.sum() * state["initial"].sum()
