"""Random Loss Weighting, RLW (Lin, Ye, Zhang & Tsang 2022, "Reasonable
effectiveness of random weighting: a litmus test for multi-task learning",
Transactions on Machine Learning Research; arXiv:2111.10603).

Every update draws fresh weights, independent of the losses::

    z ~ N(0, I_K),      w = w⁰ ⊙ K · softmax(z)

with w⁰ the declared weights (1 unless the problem or ``--weights`` says
otherwise), so E[w] = w⁰: on average RLW optimises the same declared
objective as every other balancer.  The L-BFGS phase, which needs one fixed
objective, uses that expectation, w⁰, rather than the last draw.

The draw comes from a generator seeded by (seed, step), so a run is
reproducible and a resumed run draws exactly what an uninterrupted one
would; the seed is also kept in the state.  Because the draw belongs to term
positions, permuting the terms does not permute the weights (the shared
permutation check cannot hold for this method).

Options: seed=0, every=1, alpha=0.0 (EMA), min=1e-3, max=1e3.
"""

from __future__ import annotations

import torch

from .base import Balancer

MASK = (1 << 64) - 1


def generator_for(seed: int, step: int) -> torch.Generator:
    """A CPU generator whose stream depends only on (seed, step) (splitmix64-style mixing)."""
    x = (int(seed) * 0x9E3779B97F4A7C15 + int(step) + 1) & MASK
    for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        x = ((x ^ (x >> shift)) * mult) & MASK
    return torch.Generator().manual_seed(x ^ (x >> 31))


class RLW(Balancer):
    name = "rlw"
    summary = "random loss weighting (Lin et al. 2022): K softmax(z), z ~ N(0, I) every step"
    needs = frozenset({"losses"})
    options = {"seed": 0, "every": 1, "alpha": 0.0, "min": 1e-3, "max": 1e3}

    def init(self, terms):
        state = super().init(terms)
        state["seed"] = torch.tensor(self.opts["seed"], dtype=torch.int64)
        return state

    def target(self, stats, state, *, step, progress):
        g = generator_for(int(state["seed"]), step)
        z = torch.randn(len(state["weights"]), generator=g, dtype=torch.float64)
        return state["initial"] * len(z) * torch.softmax(z, dim=0)

    def fixed_weights(self, state):
        """The expected weights, E[w_k] = w⁰_k (E[K softmax(z)_k] = 1 by symmetry), not one last draw."""
        return state["initial"]
