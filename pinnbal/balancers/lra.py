"""Learning-rate annealing, LRA (Wang, Teng & Perdikaris 2021, "Understanding
and mitigating gradient flow pathologies in physics-informed neural
networks", SIAM J. Sci. Comput. 43(5), Algorithm 1, eq. 40).

Reference terms r (the PDE residuals, or the term named by ``ref``) keep
their weight.  Every ``every`` steps each other term k gets

    ŵ_k = S(∇θ L_r) / mean|∇θ (w_k L_k)|           form = "weighted" (default)
    ŵ_k = S(∇θ L_r) / mean|∇θ L_k|                 form = "paper"

with S = max|·| (``variant="max"``, the paper) or mean|·| (``variant="mean"``,
the mean/mean variant PhysicsNeMo-Sym uses), then w_k ← α w_k + (1 − α) ŵ_k
and w_k clamped to [min, max].

Why ``weighted`` is the default: eq. (40) as written, unbounded, drove
weights to 1e6–1e10 on Kovasznay flow and the 1D wave equation in our
prototype and ended worse than fixed weights.  The authors' released code
takes the denominator from the gradient of the already weighted term
w_k L_k; the update is then multiplicative and its fixed point is
w_k = sqrt(S_r / mean|∇L_k|), a damped version of the paper's ratio, which
held (Kovasznay 5.4e-3 vs 3.1e-2 with fixed weights).  Both forms are
bounded here.  The ratio uses the flat parameter vector (the authors' code
averages per layer first).

``params=all`` stays the default over the authors' ``weights``: seed 0, 1000
Adam + 500 second-stage iterations, Burgers 9.4e-4 (all) vs 4.2e-3
(weights), inverse heat 4.4e-3 vs 4.1e-3 (README, "params=weights").

Options: alpha=0.9, every=10, variant=max, form=weighted, ref="" (all
residual terms), min=1e-3, max=1e3, params=all (or last: the output layer; or weights:
the weight matrices, as the authors' code).
"""

from __future__ import annotations

import torch

from ..errors import OptionError
from .base import Balancer


class LRA(Balancer):
    name = "lra"
    summary = "learning-rate annealing (Wang et al. 2021): max|grad L_pde| / mean|grad w_k L_k|"
    needs = frozenset({"losses", "jacobian"})
    options = {"alpha": 0.9, "every": 10, "variant": "max", "form": "weighted", "ref": "",
               "min": 1e-3, "max": 1e3, "params": "all"}

    def check_options(self) -> None:
        super().check_options()
        if self.opts["variant"] not in ("max", "mean"):
            raise OptionError(f"balancer 'lra': variant={self.opts['variant']!r}; choose max or mean")
        if self.opts["form"] not in ("weighted", "paper"):
            raise OptionError(f"balancer 'lra': form={self.opts['form']!r}; choose weighted or paper")

    def init(self, terms):
        state = super().init(terms)
        names = [t.name for t in terms]
        if self.opts["ref"]:
            if self.opts["ref"] not in names:
                raise OptionError(f"balancer 'lra': ref={self.opts['ref']!r} is not a term; terms are {names}")
            is_ref = [t.name == self.opts["ref"] for t in terms]
        else:
            is_ref = [t.kind == "residual" for t in terms]
            if not any(is_ref):
                is_ref[0] = True  # no PDE term: balance against the first term
        state["is_ref"] = torch.tensor(is_ref)
        return state

    def target(self, stats, state, *, step, progress):
        g = stats.jacobian.abs().to(torch.float64)
        is_ref = state["is_ref"]
        ref_rows = g[is_ref.to(g.device)]
        scale = (ref_rows.amax() if self.opts["variant"] == "max" else ref_rows.mean(dim=1).amax()).cpu()
        mean_k = g.mean(dim=1).cpu()  # K numbers leave the device; the state stays on the CPU
        if self.opts["form"] == "weighted":
            mean_k = mean_k * state["weights"]
        # a term whose weighted gradient is exactly 0 (weight 0: switched off) asks for the upper bound
        # instead of scale / 0 = inf, which would void the update of every term
        ratio = torch.where(mean_k > 0, scale / mean_k.clamp_min(torch.finfo(torch.float64).tiny),
                            torch.full_like(mean_k, self.opts["max"]))
        return torch.where(is_ref, state["weights"], ratio)
