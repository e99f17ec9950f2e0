"""Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla 2018, "Multi-task
learning using uncertainty to weigh losses for scene geometry and semantics",
CVPR; the seed's §4).

Each term has a learnable s_k = log σ_k² and the loss is

    Σ_k  exp(−s_k) L_k + s_k

(Kendall's 1/(2σ²) L + log σ with the constant factor 2 absorbed, as in most
implementations).  The network sees weights w_k = exp(−s_k): higher
uncertainty, lower weight.  The s_k are trained alongside the network by
their own Adam step on the analytic gradient ∂/∂s_k = 1 − exp(−s_k) L_k,
whose optimum is σ_k² = L_k; the log σ term does not depend on the network,
so it never changes the network's gradient.  s_k is kept in
[−log max, −log min] so weights and σ agree with the bounds.

Options: lr=0.01 (Adam step on s), min=1e-3, max=1e3.  State: ``log_var``
(s_k), Adam moments; ``log_var`` is logged per term in the history.
"""

from __future__ import annotations

import math

import torch

from ..adam import EPS, adam_moments
from .base import Balancer



class Uncertainty(Balancer):
    name = "uncertainty"
    summary = "homoscedastic uncertainty (Kendall et al. 2018): w_k = exp(-s_k), s_k = log sigma_k^2 learned"
    options = {"lr": 0.01, "min": 1e-3, "max": 1e3}
    logged_state = ("log_var",)

    def init(self, terms):
        state = super().init(terms)
        state["log_var"] = -state["weights"].clamp_min(1e-12).log()
        state["adam_m"] = torch.zeros_like(state["log_var"])
        state["adam_v"] = torch.zeros_like(state["log_var"])
        state["adam_t"] = torch.zeros((), dtype=torch.int64)
        return state

    def target(self, stats, state, *, step, progress):
        s = state["log_var"]
        losses = stats.losses.double().clamp(0.0, 1e300)
        grad = 1.0 - torch.exp(-s) * losses
        t = state["adam_t"] + 1
        m, v, m_hat, v_hat = adam_moments(grad, state["adam_m"], state["adam_v"], float(t))
        s = s - self.opts["lr"] * m_hat / (v_hat.sqrt() + EPS)
        s = s.clamp(-math.log(self.opts["max"]), -math.log(self.opts["min"]))
        state.update(log_var=s, adam_m=m, adam_v=v, adam_t=t)
        return torch.exp(-s)
