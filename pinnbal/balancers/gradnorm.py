"""GradNorm (Chen, Badrinarayanan, Lee & Rabinovich 2018, "GradNorm: Gradient
Normalization for Adaptive Loss Balancing in Deep Multitask Networks",
ICML 2018, PMLR 80:794–803; arXiv:1711.02257), Algorithm 1.

The weights are learned.  With n_k = ‖∇θ L_k‖, G_k = w_k n_k, Ḡ = mean_k G_k
(held constant), L̃_k = L_k(t) / L_k(0) and r_k = L̃_k / mean_j L̃_j,

    L_grad = Σ_k |G_k − Ḡ r_k^a|        (a = ``asymmetry``, the paper's α)

and every ``every`` steps the weights take one gradient step on L_grad, then
are renormalised to Σ_k w_k = Σ_k w_k(0) (= K for unit initial weights).  A
term whose loss falls slower (larger r_k) is pushed to a larger weighted
gradient norm.  The gradient is analytic: ∂L_grad/∂w_k = sign(G_k − Ḡ r_k^a) n_k.

``space`` picks the variable the step is taken in:

- ``log`` (default): w = exp(λ), as PhysicsNeMo-Sym parametrises GradNorm,
  with L_grad divided by Ḡ: λ_k ← λ_k − lr sign(G_k − Ḡ r_k^a) G_k / Ḡ.
  Same objective and fixed point, but scale-free: weights stay positive and
  the step does not depend on the size of the gradients.
- ``linear``: a plain gradient-descent step on w itself, w_k ← w_k − lr
  sign(·) n_k, clamped positive (Algorithm 1 leaves the update rule open).  Its step is proportional to n_k, so it crawls for small
  gradients and oscillates for large ones: with two terms 1000× apart,
  2000 steps leave the weighted gradient norms 90× (norms ~7), 700× (~7e-3)
  or 9000× (~700) apart, against 1.04× in log space; hence not the default.

Differences from the paper: it takes n_k over the last shared layer; we use
all trainable parameters (row k of the Jacobian J).  L_k(0) is each term's
first finite positive loss seen on an update step; until then L̃_k = 1.
The base EMA ``alpha`` defaults to 0 (the learned weights are used as is).

Options: asymmetry=1.5, lr=0.025, space=log, every=1, alpha=0.0, min=1e-3, max=1e3,
params=all (or last: the output layer, as in the GradNorm paper; or weights:
the weight matrices only).
"""

from __future__ import annotations

import math

import torch

from ..errors import OptionError
from .base import Balancer
from .gradscale import TINY, log_norms


class GradNorm(Balancer):
    name = "gradnorm"
    summary = "GradNorm (Chen et al. 2018): learned weights, one step on sum_k |G_k - mean(G) r_k^asymmetry|"
    weight_sum = "initial"
    needs = frozenset({"losses", "jacobian"})
    options = {"asymmetry": 1.5, "lr": 0.025, "space": "log", "every": 1, "alpha": 0.0, "min": 1e-3, "max": 1e3, "params": "all"}

    def check_options(self) -> None:
        super().check_options()
        o = self.opts
        if o["asymmetry"] < 0 or not o["lr"] > 0:
            raise OptionError(f"balancer 'gradnorm': need asymmetry >= 0 and lr > 0, got "
                              f"asymmetry={o['asymmetry']}, lr={o['lr']}")
        if o["space"] not in ("log", "linear"):
            raise OptionError(f"balancer 'gradnorm': space={o['space']!r}; choose log or linear")

    def init(self, terms):
        state = super().init(terms)
        state["loss0"] = torch.full((len(terms),), float("nan"), dtype=torch.float64)
        return state

    def target(self, stats, state, *, step, progress):
        # record L_k(0) the first time a term's loss is positive (state is this update's copy)
        losses = stats.losses.detach().to(state["loss0"])
        fresh = torch.isnan(state["loss0"]) & (losses > 0)
        state["loss0"] = torch.where(fresh, losses, state["loss0"])
        w, K = state["weights"], len(state["weights"])
        log_k = math.log(K)
        log_n = log_norms(stats.jacobian).to(w)
        log_g = w.clamp_min(TINY).log() + log_n
        log_gbar = torch.logsumexp(log_g, dim=0) - log_k
        log_rel = torch.where(state["loss0"].isnan(), 0.0, losses.clamp_min(TINY).log() - state["loss0"].log())
        log_r = log_rel - (torch.logsumexp(log_rel, dim=0) - log_k)
        sign = torch.sign(log_g - (log_gbar + self.opts["asymmetry"] * log_r))
        if self.opts["space"] == "log":
            lam = w.clamp_min(TINY).log() - self.opts["lr"] * sign * (log_g - log_gbar).exp()
        else:
            lam = (w - self.opts["lr"] * sign * log_n.exp()).clamp_min(TINY).log()
        total = state["initial"].sum()
        total = total if bool(torch.isfinite(total)) and total > 0 else torch.tensor(float(K))
        return (lam - torch.logsumexp(lam, dim=0)).exp() * total.to(w)
