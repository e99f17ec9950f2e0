"""Per-problem recipes: the settings ``pinnbal run`` uses for a problem unless told otherwise.

A problem file may declare, beside its ``problem``::

    recipe = pb.Recipe(balancer="fixed", then="ssbfgs", steps=2000,
                       source="our measurement: gallery/benchmarks/accuracy.md")

Every keyword but ``balancer`` and ``source`` is a :class:`~pinnbal.train.TrainConfig`
field (``steps``, ``lbfgs``, ``then``, ``lr``, ``warmup``, ``arch``, ``width``, ...).
The order of precedence is the library defaults, then the recipe, then what
the command line (or ``pb.train(...)``) gives: a recipe never overrides a
flag the user typed.  ``pinnbal info`` prints the recipe and its source; a
problem without one trains with the library defaults.  Names are checked
when a run starts (one line naming the unknown setting); values are checked
like command-line values.
"""

from __future__ import annotations

from typing import Any, Iterable

from .errors import ProblemError


class Recipe:
    """Defaults for one problem: a balancer spec and training settings, with where they come from."""

    def __init__(self, *, balancer: str | None = None, source: str = "", **settings: Any):
        if balancer is not None and not isinstance(balancer, str):
            raise ProblemError(f"recipe: balancer={balancer!r}; give a spec string such as 'lra' or 'fixed'")
        self.balancer = balancer
        self.source = str(source)
        self.settings = dict(settings)

    def check(self, fields: Iterable[str]) -> None:
        """Refuse a setting that is not a training field, in one line."""
        fields = list(fields)
        unknown = sorted(set(self.settings) - set(fields))
        if unknown:
            raise ProblemError(f"recipe: unknown setting {unknown[0]!r}; settings are balancer, source, "
                               f"{', '.join(f for f in fields if f != 'seed')}")
        if "seed" in self.settings:
            raise ProblemError("recipe: seed is chosen per run (--seed), not by a recipe; remove it")

    def describe(self) -> str:
        parts = ([f"balancer={self.balancer}"] if self.balancer else []) + [f"{k}={v}" for k, v in self.settings.items()]
        return ", ".join(parts) + (f"  ({self.source})" if self.source else "")

    def __repr__(self) -> str:
        return f"Recipe({self.describe()})"
