"""Performance-based weighting (A. Shaa 2023, "Dynamically weighting loss
function components in machine learning models", §5): each term may be given
a target loss; on every update (every N steps) a term that misses it gains
weight and a term that meets it loses weight::

    ŵ_k = w_k · up      if L_k >= target_k      (missing)
    ŵ_k = w_k · down    if L_k <  target_k      (met)
    ŵ_k = max(ŵ_k, floor · w_k(initial))

Terms without a target keep their weight.  The shared EMA (w ← α w +
(1-α) ŵ, i.e. an effective factor α + (1-α)·up) smooths the changes and
[min, max] bounds them.  A step with a non-finite loss is skipped
(``state["skipped"]``).

Spec: ``performance:ic<1e-4,walls<1e-4`` (needs the spec parser to pass an
item without '=' as {"ic": "<1e-4"}); ``performance:ic=<1e-4``,
``performance:ic<=1e-4`` (parsed as {"ic<": "1e-4"}) and ``ic=1e-4`` mean the
same with today's parser.  Targets are checked against the problem's terms
at ``init``: an unknown name is an OptionError.  A term named like an option
cannot be given a target.

Options: up=1.1, down=0.95, floor=0.1, every=1, alpha=0.0 (EMA), min=1e-3,
max=1e3, plus one term<target per watched term.
"""

from __future__ import annotations

import math

import torch

from ..errors import OptionError
from .base import Balancer


class Performance(Balancer):
    name = "performance"
    summary = "multiply a term's weight by up while it misses its target loss, by down once it meets it"
    needs = frozenset({"losses"})
    options = {"up": 1.1, "down": 0.95, "floor": 0.1, "every": 1, "alpha": 0.0, "min": 1e-3, "max": 1e3}

    def __init__(self, **opts):
        super().__init__(**{k: v for k, v in opts.items() if k in self.options})
        self.targets = {}
        for key, text in ((k, v) for k, v in opts.items() if k not in self.options):
            term = key.rstrip("<").strip()
            try:
                value = float(str(text).lstrip("<").lstrip("="))
            except ValueError:
                value = float("nan")
            if not (term and math.isfinite(value) and value >= 0):
                raise OptionError(f"balancer 'performance': {key}={text!r} is neither an option ("
                                  + ", ".join(self.options) + f") nor a target term<loss (e.g. {term or 'ic'}<1e-4)")
            self.targets[term] = value
            self.opts[term] = f"<{value!r}"

    def check_options(self) -> None:
        super().check_options()
        o = self.opts
        if not (o["up"] >= 1.0 and 0.0 < o["down"] <= 1.0 and o["floor"] >= 0.0):
            raise OptionError(f"balancer 'performance': need up >= 1, 0 < down <= 1 and floor >= 0, "
                              f"got up={o['up']}, down={o['down']}, floor={o['floor']}")

    def init(self, terms):
        state = super().init(terms)
        names = [t.name for t in terms]
        for term in self.targets:
            if term not in names:
                raise OptionError(f"balancer 'performance': no term named {term!r}; terms are {', '.join(names)}")
        state["watched"] = torch.tensor([t.name in self.targets for t in terms])
        state["target"] = torch.tensor([self.targets.get(t.name, 0.0) for t in terms], dtype=torch.float64)
        return state

    def target(self, stats, state, *, step, progress):
        losses = stats.losses.detach().to(state["weights"])
        met = (losses < state["target"]).to(losses)
        factor = self.opts["up"] + (self.opts["down"] - self.opts["up"]) * met
        moved = torch.maximum(state["weights"] * factor, state["initial"] * self.opts["floor"])
        return torch.where(state["watched"], moved, state["weights"])
