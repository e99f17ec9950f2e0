"""Composition: one term-level balancer with per-point schemes, ``--balancer lra+rba``.

Term weights, point weights and causal weights in one API: the term-level
part (any balancer that is not a per-point scheme; ``fixed`` when none is
given) sets the K term weights and, for gradient aggregators, the direction;
each per-point scheme multiplies its point multipliers into the term losses,

    L_k = mean_i (Π_s m^s_i) ℓ_i,

which the term-level part then balances.  ``lra+causal+rba`` is valid;
at most one part may resample points (``rad`` or ``rar``).  Each part keeps its own
options (``lra:alpha=0.9+rba:eta=0.01``) and its own state entries.
"""

from __future__ import annotations

import torch

from ..errors import OptionError
from .base import Balancer, Request
from .fixed import Fixed
from .pointwise import Resampler, weighted_means


class Composite(Balancer):
    """A term-level balancer combined with one or more per-point schemes."""

    options: dict = {}

    def __init__(self, parts: list[Balancer]):
        points = [p for p in parts if p.point_scheme]
        terms = [p for p in parts if not p.point_scheme]
        if len(terms) > 1:
            raise OptionError(f"balancer {'+'.join(p.name for p in parts)!r}: combine at most one term-level "
                              f"method ({', '.join(p.name for p in terms)} are all term-level) with per-point "
                              f"schemes such as rba, sa, causal, rad, rar")
        if not points:
            raise OptionError(f"balancer {'+'.join(p.name for p in parts)!r}: '+' combines a term-level method "
                              f"with per-point schemes (rba, sa, causal, rad, rar); none given")
        names = [p.name for p in points]
        if len(set(names)) < len(names):
            raise OptionError(f"balancer {'+'.join(p.name for p in parts)!r}: each per-point scheme at most once")
        resamplers = [p.name for p in points if isinstance(p, Resampler)]
        if len(resamplers) > 1:
            raise OptionError(f"balancer {'+'.join(p.name for p in parts)!r}: at most one resampling scheme "
                              f"({' and '.join(resamplers)} both move the points); choose rad or rar")
        self.term = terms[0] if terms else Fixed()
        if self.term.shapes_loss:
            raise OptionError(f"balancer {self.term.spec!r} reshapes the pointwise loss itself; it does not combine "
                              f"with per-point schemes ({', '.join(p.name for p in points)})")
        self.points = points
        self.parts = [self.term, *points]
        self.opts = {}  # each part keeps its own options; the engine asks through request()
        self.name = "+".join(p.name for p in self.parts)
        self.kind = self.term.kind
        self.needs = frozenset().union(*(p.needs for p in self.parts))
        self.logged_state = tuple(dict.fromkeys(k for p in self.parts for k in p.logged_state))

    @property
    def spec(self) -> str:
        return "+".join(p.spec for p in self.parts)

    def attach(self, problem) -> None:
        for part in self.parts:
            part.attach(problem)

    def init(self, terms):
        state = self.term.init(terms)
        for part in self.points:
            own = part.init(terms)
            state |= {k: v for k, v in own.items() if k not in ("weights", "initial", "skipped")}
        return state

    def needs_at(self, step: int) -> frozenset[str]:
        return frozenset().union(*(p.needs_at(step) for p in self.parts))

    def request(self, step: int | None = None) -> Request:
        """Every part's request at once; ``params`` is the term-level part's."""
        merged = self.term.request(step)
        for part in self.points:
            merged = merged.merged(part.request(step))
        return merged

    def update(self, stats, state, *, step, progress):
        state = dict(state)
        finite_points = stats.pointwise is not None and all(bool(torch.isfinite(e).all()) for e in stats.pointwise)
        for part in self.points:
            if finite_points:
                state |= part.update_points(stats, state, step)
        return self.term.update(stats, state, step=step, progress=progress)

    def multipliers(self, pointwise: list[torch.Tensor], points: list,
                    state: dict) -> list[torch.Tensor | None]:
        """Per term, the product of its per-point schemes' multipliers Π_s m^s (N_k,), or None where no scheme
        weights its points (a plain mean); what :meth:`losses` applies (and what stays fixed for L-BFGS)."""
        multipliers: list = [None] * len(pointwise)
        for part in self.points:
            for k, m in enumerate(part.multipliers(pointwise, points, state)):
                if m is not None:
                    multipliers[k] = m if multipliers[k] is None else multipliers[k].to(m) * m
        return multipliers

    def losses(self, pointwise, points, state):
        return weighted_means(pointwise, self.multipliers(pointwise, points, state))

    def combine(self, jacobian, weights, state):
        return self.term.combine(jacobian, weights, state)

    def fixed_weights(self, state):
        return self.term.fixed_weights(state)

    def resamples(self, step: int) -> bool:
        return any(p.resamples(step) for p in self.points)

    def resampler(self) -> Balancer:
        return next(p for p in self.points if isinstance(p, Resampler))

    def redrawn(self, state):
        for part in self.points:
            state = part.redrawn(state)
        return state

    def fit_points(self, state: dict, sizes: list[int | None]) -> dict:
        """Every part's per-point state fitted to terms of ``sizes`` points (see
        :func:`~pinnbal.balancers.pointwise.resize_point_state`)."""
        for part in self.points:
            if hasattr(part, "fit_points"):  # a user's point scheme need not keep per-point state
                state = part.fit_points(state, sizes)
        return state

    def target(self, stats, state, *, step, progress):
        return self.term.target(stats, state, step=step, progress=progress)
