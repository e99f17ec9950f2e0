"""SoftAdapt (Heydari, Thompson & Mehmood 2019, "SoftAdapt: Techniques for
adaptive loss weighting of neural networks with multi-part loss functions",
arXiv:1912.12355).

With L_k(t) this step's loss and L_k(t-1) the loss at the previous update::

    s_k = L_k(t) - L_k(t-1)                      normalized = false
    s_k = (L_k(t) - L_k(t-1)) / L_k(t-1)         normalized = true (default)
    w_k = K · softmax_k(β s_k)                   loss_weighted = false (default)
    w_k = K · L_k(t) e^(β s_k) / Σ_j L_j(t) e^(β s_j)    loss_weighted = true

A term whose loss falls slower (or rises) gets more weight; the weights sum
to K.  ``normalized`` here is the relative rate of change, which does not
depend on the scale of the losses; the paper's "normalized SoftAdapt"
instead divides the slopes by Σ_j |s_j|.  The loss-weighted form is evaluated in log
space (log L_k + β s_k).  The first update has no previous loss and returns
the initial weights; a step with a non-finite loss is skipped
(``state["skipped"]``) and not recorded.

Options: beta=0.1, normalized=true, loss_weighted=false, every=1,
alpha=0.0 (EMA), min=1e-3, max=1e3.
"""

from __future__ import annotations

import torch

from .base import Balancer

TINY = torch.finfo(torch.float64).tiny


class SoftAdapt(Balancer):
    name = "softadapt"
    summary = "SoftAdapt (Heydari et al. 2019): K softmax(beta * rate of change of L_k)"
    weight_sum = "K"
    needs = frozenset({"losses"})
    options = {"beta": 0.1, "normalized": True, "loss_weighted": False,
               "every": 1, "alpha": 0.0, "min": 1e-3, "max": 1e3}

    def init(self, terms):
        state = super().init(terms)
        state["prev"] = torch.ones(len(terms), dtype=torch.float64)  # L(t-1)
        state["seen"] = torch.zeros((), dtype=torch.int64)
        return state

    def target(self, stats, state, *, step, progress):
        losses = stats.losses.detach().to(state["weights"])
        seen, prev = int(state["seen"]), state["prev"]
        state.update(prev=losses, seen=state["seen"] + 1)  # this update's copy (base.update)
        if not seen:
            return state["initial"]
        log_now = losses.clamp_min(TINY).log()
        if self.opts["normalized"]:
            s = (log_now - prev.clamp_min(TINY).log()).clamp(max=700.0).exp() - 1.0
        else:
            s = losses - prev
        x = (self.opts["beta"] * s).clamp(-1e300, 1e300)
        if self.opts["loss_weighted"]:
            x = x + log_now
        return len(x) * torch.softmax(x, dim=0)
