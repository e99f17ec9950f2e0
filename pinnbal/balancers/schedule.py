"""Progress schedules: adaptive weighting based on training progress
(A. Shaa 2023, "Dynamically weighting loss function components in machine
learning models", §2: epoch-based adjustment §2.2(a), performance-triggered
adjustment §2.2(b)).

Each named term ramps from a start weight a to an end weight b as the
position s ∈ [0, 1] advances; terms not named keep their initial weight::

    linear       w = a + (b - a) s
    exponential  w = a (b/a)^s                  (geometric; needs a, b > 0)
    cosine       w = b + (a - b) (1 + cos(π s)) / 2
    step         w = a if s < at else b

Without a trigger s = progress, step / (steps − 1): 0 at the first Adam step and 1 at
the last, so the ramp reaches b (the L-BFGS phase keeps the last weights).  With ``trigger=<term><θ``
the ramp waits until that term's loss first drops below θ, at step t0
(stored in ``state["trigger_step"]``, -1 until then; checked on due steps
only), and s = min(1, (step - t0) / span); before the trigger w = a.

Spec: ``schedule:ic=100>1,pde=0.1>1,shape=cosine,trigger=ic<1e-3``
(term=start>end; term=c holds c).  A term named like an option (shape, at,
trigger, span, every) cannot be scheduled.  Terms are checked against the
problem at ``init``: an unknown name is an OptionError.  No EMA or bounds.

Options: shape=linear, at=0.5, trigger="" (none), span=1000, every=1, plus
one term=start>end per scheduled term.
"""

from __future__ import annotations

import math

import torch

from ..errors import OptionError
from .base import Balancer

SHAPES = ("linear", "exponential", "cosine", "step")


def ramp(text: str) -> tuple[float, float] | None:
    """``"100>1"`` -> (100.0, 1.0), ``"5"`` -> (5.0, 5.0); None if malformed, negative or non-finite."""
    try:
        values = tuple(float(x) for x in str(text).split(">"))
    except ValueError:
        return None
    if len(values) == 1:
        values = values * 2
    return values if len(values) == 2 and all(math.isfinite(v) and v >= 0 for v in values) else None


class Schedule(Balancer):
    name = "schedule"
    summary = "per-term weight ramps over training progress (linear/exponential/cosine/step), optional trigger"
    needs = frozenset({"losses"})
    options = {"shape": "linear", "at": 0.5, "trigger": "", "span": 1000, "every": 1}

    def __init__(self, **opts):
        super().__init__(**{k: v for k, v in opts.items() if k in self.options})
        self.ramps = {}
        for term, text in ((k, v) for k, v in opts.items() if k not in self.options):
            self.ramps[term] = ramp(text)
            if self.ramps[term] is None:
                raise OptionError(f"balancer 'schedule': {term}={text!r} is neither an option ("
                                  + ", ".join(self.options) + f") nor a weight ramp start>end >= 0 (e.g. {term}=100>1)")
            if self.opts["shape"] == "exponential" and min(self.ramps[term]) == 0 < max(self.ramps[term]):
                raise OptionError(f"balancer 'schedule': {term}={text!r}; shape=exponential needs weights > 0")
            self.opts[term] = f"{self.ramps[term][0]!r}>{self.ramps[term][1]!r}"
        term, _, threshold = self.opts["trigger"].partition("<")
        self.trigger = None
        if self.opts["trigger"]:
            limit = ramp(threshold.lstrip("="))
            if not term.strip() or limit is None or limit[0] != limit[1]:
                raise OptionError(f"balancer 'schedule': trigger={self.opts['trigger']!r}; "
                                  "write trigger=TERM<THRESHOLD, e.g. trigger=ic<1e-3")
            self.trigger = (term.strip(), limit[0])

    def check_options(self) -> None:
        super().check_options()
        o = self.opts
        if o["shape"] not in SHAPES or not 0.0 <= o["at"] <= 1.0 or o["span"] < 1:
            raise OptionError(f"balancer 'schedule': need shape in {'/'.join(SHAPES)}, 0 <= at <= 1 and "
                              f"span >= 1, got shape={o['shape']!r}, at={o['at']}, span={o['span']}")

    def init(self, terms):
        state = super().init(terms)
        names = [t.name for t in terms]
        for term in list(self.ramps) + ([self.trigger[0]] if self.trigger else []):
            if term not in names:
                raise OptionError(f"balancer 'schedule': no term named {term!r}; terms are {', '.join(names)}")
        pairs = [self.ramps.get(t.name, (t.weight, t.weight)) for t in terms]
        state["start"] = torch.tensor([a for a, _ in pairs], dtype=torch.float64)
        state["end"] = torch.tensor([b for _, b in pairs], dtype=torch.float64)
        state["trigger_term"] = torch.tensor(names.index(self.trigger[0]) if self.trigger else -1)
        state["trigger_step"] = torch.tensor(-1, dtype=torch.int64)
        return state

    def target(self, stats, state, *, step, progress):
        s = min(max(float(progress), 0.0), 1.0)
        if self.trigger:
            if int(state["trigger_step"]) < 0 and float(stats.losses[int(state["trigger_term"])]) < self.trigger[1]:
                state["trigger_step"] = torch.tensor(step, dtype=torch.int64)  # this update's copy (base.update)
            t0 = int(state["trigger_step"])
            if t0 < 0:
                return state["start"]  # not triggered yet: hold the start weights (even for step with at=0)
            s = min(max((step - t0) / self.opts["span"], 0.0), 1.0)
        a, b = state["start"], state["end"]
        shape = self.opts["shape"]
        if shape == "linear":
            return a + (b - a) * s
        if shape == "cosine":
            return b + (a - b) * (1.0 + math.cos(math.pi * s)) / 2.0
        if shape == "step":
            return a if s < self.opts["at"] else b
        geometric = a.clamp_min(1e-300) ** (1.0 - s) * b.clamp_min(1e-300) ** s
        return torch.where(a == b, a, geometric)
