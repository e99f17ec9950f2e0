"""Dynamic Weight Average, DWA (Liu, Johns & Davison 2019, "End-to-end
multi-task learning with attention", Proc. IEEE/CVF Conference on Computer
Vision and Pattern Recognition (CVPR), pp. 1871-1880).

With L_k(t-1), L_k(t-2) the losses seen at the two previous updates::

    r_k = L_k(t-1) / L_k(t-2),      w_k = K · softmax_k(r_k / T)

so the term whose loss falls slowest (largest ratio) gets the most weight;
the weights sum to K.  Like the paper (weights from the two previous
epochs), the loss of the current step enters at the next update: until two
previous losses exist the weights are the terms' initial weights.  With
``every`` = N the "previous" losses are those of the previous due steps.
The ratio is taken in log space (losses clamped to the smallest positive
float64), so 0, 1e-30 and 1e30 give finite weights; a step with a
non-finite loss is skipped (``state["skipped"]``) and not recorded.

Options: T=2.0 (temperature, > 0), every=1, alpha=0.0 (EMA), min=1e-3,
max=1e3.
"""

from __future__ import annotations

import torch

from ..errors import OptionError
from .base import Balancer

TINY = torch.finfo(torch.float64).tiny


class DWA(Balancer):
    name = "dwa"
    summary = "dynamic weight average (Liu et al. 2019): K softmax(L(t-1)/L(t-2) / T)"
    weight_sum = "K"
    needs = frozenset({"losses"})
    options = {"T": 2.0, "every": 1, "alpha": 0.0, "min": 1e-3, "max": 1e3}

    def check_options(self) -> None:
        super().check_options()
        if not self.opts["T"] > 0:
            raise OptionError(f"balancer 'dwa': T={self.opts['T']}; need a temperature > 0")

    def init(self, terms):
        state = super().init(terms)
        state["prev1"] = torch.ones(len(terms), dtype=torch.float64)  # L(t-1)
        state["prev2"] = torch.ones(len(terms), dtype=torch.float64)  # L(t-2)
        state["seen"] = torch.zeros((), dtype=torch.int64)
        return state

    def target(self, stats, state, *, step, progress):
        # state is this update's copy (base.update); it is dropped if the target is non-finite
        losses = stats.losses.detach().to(state["weights"])
        if int(state["seen"]) < 2:
            weights = state["initial"]
        else:
            log_ratio = state["prev1"].clamp_min(TINY).log() - state["prev2"].clamp_min(TINY).log()
            x = (log_ratio.clamp(max=700.0).exp() / self.opts["T"]).clamp(max=1e300)
            weights = len(x) * torch.softmax(x, dim=0)
        state.update(prev2=state["prev1"], prev1=losses, seen=state["seen"] + 1)
        return weights
