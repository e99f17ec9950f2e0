"""NTK weighting (Wang, Yu & Perdikaris 2022, "When and why PINNs fail to
train: a neural tangent kernel perspective", J. Comput. Phys. 449, eq. 6.4).

With K_kk the neural tangent kernel block of term k (per-point residual
gradients, K_kk = J_k J_kᵀ), each term gets

    ŵ_k = Σ_j tr(K_jj) / tr(K_kk),

so that every term's kernel has the same average eigenvalue and all of them
converge at a similar rate: a term with small per-point gradients is
weighted up.  (Some implementations invert this ratio; we follow the
paper's eq. 6.4.)  tr(K_kk) is estimated as the mean of ‖∂r_i/∂θ‖² over a
subsample of ``points`` residual entries of the current batch (the paper
sums over all points; the mean makes terms with different point counts
comparable, as jaxpi does), then smoothed and bounded by the base class.

Options: points=64, every=100, alpha=0.9, min=1e-3, max=1e3.
"""

from __future__ import annotations

import torch

from ..errors import OptionError
from .base import Balancer


class NTK(Balancer):
    name = "ntk"
    summary = "NTK weights (Wang et al. 2022): sum_j tr(K_jj) / tr(K_kk), traces from a point subsample"
    needs = frozenset({"losses", "ntk"})
    options = {"points": 64, "every": 100, "alpha": 0.9, "min": 1e-3, "max": 1e3}

    def check_options(self) -> None:
        super().check_options()
        if self.opts["points"] < 1:
            raise OptionError(f"balancer 'ntk': points={self.opts['points']}; need an integer >= 1")

    def target(self, stats, state, *, step, progress):
        traces = stats.ntk_traces.double().clamp_min(torch.finfo(torch.float64).tiny)
        return (traces.sum() / traces).clamp(max=1e300)
