"""Points in the unit cube, and shares of a point count.

Points are drawn uniformly at random (default), or quasi-randomly with
``scipy.stats.qmc`` (Sobol, Latin hypercube): scipy's generators are
maintained, scrambled and seedable, so we use them rather than writing our
own low-discrepancy sequences.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import qmc

from .errors import ProblemError

SAMPLERS = ("uniform", "sobol", "lhs")


def unit_samples(n: int, dim: int, rng: np.random.Generator, method: str) -> np.ndarray:
    """``n`` points in the unit cube [0, 1]^dim by ``method`` (uniform | sobol | lhs)."""
    if dim == 0:
        return np.zeros((n, 0))
    if method == "uniform":
        return rng.random((n, dim))
    # the scrambling seed is drawn from rng: handed rng itself, scipy spawns a child generator, and a spawn
    # count is not part of rng's saved state, so a resumed run would scramble differently
    if method == "sobol":
        sampler = qmc.Sobol(d=dim, scramble=True, seed=np.random.default_rng(int(rng.integers(2**63))))
        # Sobol balance needs powers of two; draw the next one up and keep n.
        m = max(0, math.ceil(math.log2(max(n, 1))))
        return sampler.random_base2(m)[:n]
    if method == "lhs":
        return qmc.LatinHypercube(d=dim, seed=np.random.default_rng(int(rng.integers(2**63)))).random(n)
    raise ProblemError(f"unknown sampler {method!r}; choose one of {', '.join(SAMPLERS)}")


def shares(n: int, measures: np.ndarray) -> np.ndarray:
    """``n`` split in proportion to ``measures`` (lengths, areas), whole numbers summing to ``n``: the floor
    of each share, the remainder handed out by largest fractional part, deterministically."""
    exact = n * measures / measures.sum()
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]] += 1
    return counts
