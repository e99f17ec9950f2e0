"""Relative Loss Balancing with Random Lookback, ReLoBRaLo (Bischof & Kraus
2021, "Multi-objective loss balancing for physics-informed deep learning",
arXiv:2110.09813).

With L(0) the losses at the first update and L(t-1) those at the previous
one::

    bal(t, t')_k = K · softmax_k( L_k(t) / (τ L_k(t')) )
    hist_k       = ρ λ_k(t-1) + (1 - ρ) bal(t, 0)_k
    λ_k(t)       = a · hist_k + (1 - a) · bal(t, t-1)_k

ρ ~ Bernoulli(``rho``) is drawn each update from a generator seeded by
(seed, step) (seed kept in the state, ``state["draws"]`` counts the draws),
so runs are reproducible and resume exactly.  λ(t-1) is the previous
weight vector (after bounds); λ(0) is the terms' initial weights, which the
first update returns.

Naming: the paper's look-back weight α is the option ``lookback`` here,
because ``alpha`` is the EMA that every balancer shares (w ← α w + (1-α) λ);
that EMA defaults to 0 (off) for this method.  Ratios are taken in log space
so zero, tiny and huge losses give finite weights; a step with a non-finite
loss is skipped (``state["skipped"]``) and not recorded.

Options: lookback=0.999 (paper's α), tau=0.1 (τ), rho=0.999 (E[ρ]), seed=0,
every=1, alpha=0.0 (EMA), min=1e-3, max=1e3.
"""

from __future__ import annotations

import torch

from ..errors import OptionError
from .base import Balancer
from .rlw import generator_for

TINY = torch.finfo(torch.float64).tiny


class ReLoBRaLo(Balancer):
    name = "relobralo"
    summary = "relative loss balancing with random lookback (Bischof & Kraus 2021)"
    weight_sum = "K"
    needs = frozenset({"losses"})
    options = {"lookback": 0.999, "tau": 0.1, "rho": 0.999, "seed": 0,
               "every": 1, "alpha": 0.0, "min": 1e-3, "max": 1e3}

    def check_options(self) -> None:
        super().check_options()
        o = self.opts
        if not (0.0 <= o["lookback"] <= 1.0 and 0.0 <= o["rho"] <= 1.0 and o["tau"] > 0):
            raise OptionError(f"balancer 'relobralo': need 0 <= lookback <= 1, 0 <= rho <= 1 and tau > 0, "
                              f"got lookback={o['lookback']}, rho={o['rho']}, tau={o['tau']}")

    def init(self, terms):
        state = super().init(terms)
        state["first"] = torch.ones(len(terms), dtype=torch.float64)  # L(0)
        state["prev"] = torch.ones(len(terms), dtype=torch.float64)  # L(t-1)
        state["seen"] = torch.zeros((), dtype=torch.int64)
        state["seed"] = torch.tensor(self.opts["seed"], dtype=torch.int64)
        state["draws"] = torch.zeros((), dtype=torch.int64)
        return state

    def balance(self, log_now, ref):
        x = (log_now - ref.clamp_min(TINY).log()).clamp(max=700.0).exp() / self.opts["tau"]
        return len(x) * torch.softmax(x.clamp(max=1e300), dim=0)

    def target(self, stats, state, *, step, progress):
        losses = stats.losses.detach().to(state["weights"])
        seen, prev = int(state["seen"]), state["prev"]
        state.update(prev=losses, seen=state["seen"] + 1)  # this update's copy (base.update)
        if not seen:
            state["first"] = losses
            return state["initial"]
        log_now = losses.clamp_min(TINY).log()
        g = generator_for(int(state["seed"]), step)
        rho = float(torch.rand((), generator=g, dtype=torch.float64) < self.opts["rho"])
        state["draws"] = state["draws"] + 1
        hist = rho * state["weights"] + (1.0 - rho) * self.balance(log_now, state["first"])
        a = self.opts["lookback"]
        return a * hist + (1.0 - a) * self.balance(log_now, prev)
