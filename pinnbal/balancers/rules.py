"""User rules: term weights from a function the problem file defines.

A problem file (or ``pb.Problem(..., weights=fn)``) may define::

    def weights(state):
        # state: step, progress (0 at the first Adam step, 1 at the last), losses {term: L_k},
        #        weights {term: current weight}
        return {"ic": 100.0 if state["progress"] < 0.3 else 1.0}

and ``--balancer rules`` calls it every ``every`` steps.  Terms it leaves out
keep their current weight.  The seed's §7 heuristics (data first, physics
later; a term switched on when another is fitted) are one-liners this way.
The rule is called once before training, with step 0 and every loss 1.0, so
a mistake in it is reported before anything is written.
Options: every=1, min=0, max=1e6.
"""

from __future__ import annotations

import math

import torch

from ..errors import OptionError, ProblemError
from .base import Balancer


class Rules(Balancer):
    name = "rules"
    summary = "term weights from the problem file's def weights(state) -> {term: weight}"
    options = {"every": 1, "min": 0.0, "max": 1e6}

    def attach(self, problem) -> None:
        if problem.rules is None:
            raise OptionError(f"balancer 'rules': problem {problem.name!r} defines no rule; add "
                              f"`def weights(state): return {{term: weight}}` to its problem file")
        self.rule = problem.rules

    def init(self, terms):
        self.names = [t.name for t in terms]
        state = super().init(terms)
        self.call(0, 0.0, [1.0] * len(terms), state["weights"])  # a broken rule fails before training
        return state

    def call(self, step: int, progress: float, losses, weights: torch.Tensor) -> torch.Tensor:
        info = {"step": step, "progress": progress, "losses": dict(zip(self.names, map(float, losses))),
                "weights": dict(zip(self.names, weights.tolist()))}
        try:
            result = self.rule(info)
        except Exception as exc:  # the user's function: report it in one line
            raise ProblemError(f"weights(state) raised {type(exc).__name__}: {exc}") from None
        if not isinstance(result, dict):
            raise ProblemError(f"weights(state) returned {type(result).__name__}; return a dict {{term: weight}}")
        new = weights.clone()
        for name, value in result.items():
            if name not in self.names:
                raise ProblemError(f"weights(state): {name!r} is not a term; terms are {', '.join(self.names)}")
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ProblemError(f"weights(state): {name}={value!r} is not a number") from None
            if not math.isfinite(value) or value < 0:
                raise ProblemError(f"weights(state): {name}={value}; need a finite number >= 0")
            new[self.names.index(name)] = value
        return new

    def target(self, stats, state, *, step, progress):
        return self.call(step, progress, stats.losses.tolist(), state["weights"])
