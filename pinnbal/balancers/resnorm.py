"""ResNorm: residual normalisation, the loss-value analogue of GradNorm
(Chen, Badrinarayanan, Lee & Rabinovich 2018, "GradNorm: gradient
normalization for adaptive loss balancing in deep multitask networks",
ICML, PMLR 80:794-803) used by NVIDIA PhysicsNeMo-Sym and discussed by
Bischof & Kraus 2021, "Multi-objective loss balancing for physics-informed
deep learning", arXiv:2110.09813.

With L(0) the losses at the first update, every update takes one step on::

    J(w) = Σ_k |w_k L_k - L̄_w r_k^a|,   r_k = (L_k/L_k(0)) / mean_j(L_j/L_j(0)),
    L̄_w = mean_k w_k L_k   (held constant),   a = ``asymmetry``

then renormalises the weights to sum K.  The step is taken on log-weights
and on J divided by Σ_j w_j L_j (held constant), so its size does not depend
on the scale of the losses (the raw gradient sign(·)·L_k would need a
loss-scale-dependent step size; PhysicsNeMo-Sym leaves that to Adam)::

    w_k ← w_k · exp(-lr · sign(w_k L_k - L̄_w r_k^a) · w_k L_k / Σ_j w_j L_j)

A term whose weighted loss is above its target loses weight, one below gains
it: the weighted losses move toward L̄_w r_k^a (equal when a = 0 or when all
terms fell by the same factor).  Everything is computed in log space, so
zero, tiny and huge losses give finite weights; a step with a non-finite loss
is skipped (``state["skipped"]``).  ``asymmetry`` is GradNorm's α, renamed
because ``alpha`` is the shared EMA (default 0, off).

Options: asymmetry=1.0, lr=0.01, every=1, alpha=0.0 (EMA), min=1e-3, max=1e3.
"""

from __future__ import annotations

import math

import torch

from ..errors import OptionError
from .base import Balancer

TINY = torch.finfo(torch.float64).tiny


class ResNorm(Balancer):
    name = "resnorm"
    summary = "residual normalisation (GradNorm on loss values): w_k L_k -> mean(w L) r_k^a"
    weight_sum = "K"
    needs = frozenset({"losses"})
    options = {"asymmetry": 1.0, "lr": 0.01, "every": 1, "alpha": 0.0, "min": 1e-3, "max": 1e3}

    def check_options(self) -> None:
        super().check_options()
        if not (self.opts["lr"] > 0 and self.opts["asymmetry"] >= 0):
            raise OptionError(f"balancer 'resnorm': need lr > 0 and asymmetry >= 0, "
                              f"got lr={self.opts['lr']}, asymmetry={self.opts['asymmetry']}")

    def init(self, terms):
        state = super().init(terms)
        state["first"] = torch.ones(len(terms), dtype=torch.float64)  # L(0)
        state["seen"] = torch.zeros((), dtype=torch.int64)
        return state

    def target(self, stats, state, *, step, progress):
        losses = stats.losses.detach().to(state["weights"])
        if not int(state["seen"]):
            state.update(first=losses, seen=state["seen"] + 1)  # this update's copy (base.update)
        log_k = math.log(len(losses))
        log_l = losses.clamp_min(TINY).log()
        log_q = log_l - state["first"].clamp_min(TINY).log()
        log_r = log_q - (torch.logsumexp(log_q, 0) - log_k)
        log_w = state["weights"].clamp_min(TINY).log()
        log_wl = log_w + log_l
        log_mean = torch.logsumexp(log_wl, 0) - log_k
        direction = torch.sign(log_wl - log_mean - self.opts["asymmetry"] * log_r)
        log_w = log_w - self.opts["lr"] * direction * torch.softmax(log_wl, 0)
        return len(losses) * torch.softmax(log_w, 0)
