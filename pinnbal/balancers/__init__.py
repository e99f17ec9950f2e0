"""Loss balancers: a registry from CLI names to classes, and spec parsing.

``make_balancer("lra:alpha=0.9,every=10")`` returns a configured
:class:`~pinnbal.balancers.base.Balancer`; ``BALANCERS`` lists them all.
"""

from __future__ import annotations

import difflib

from ..errors import OptionError
from .base import Balancer, Stats, TermInfo
from .bayes import Bayes
from .dwa import DWA
from .fixed import Fixed
from .gradnorm import GradNorm
from .gradnorm_eq import GradNormEq
from .gradscale import GradScale
from .lra import LRA
from .performance import Performance
from .relobralo import ReLoBRaLo
from .resnorm import ResNorm
from .rlw import RLW
from .schedule import Schedule
from .softadapt import SoftAdapt
from .uncertainty import Uncertainty

BALANCERS: dict[str, type[Balancer]] = {cls.name: cls for cls in (
    Fixed, Schedule, Performance, DWA, SoftAdapt, ReLoBRaLo, ResNorm, RLW, Uncertainty, Bayes,
    LRA, GradScale, GradNormEq, GradNorm,
)}


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"name:key=value,key=value"`` → (name, {key: value}); clear errors otherwise."""
    if not isinstance(spec, str) or not spec.strip():
        raise OptionError("balancer spec is empty; use e.g. --balancer lra or --balancer lra:alpha=0.9")
    name, _, rest = spec.strip().partition(":")
    opts: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        if "=" not in item and "<" in item:  # a target such as performance:ic<1e-4
            key, _, bound = item.partition("<")
            item = f"{key}=<{bound}"
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise OptionError(f"balancer spec {spec!r}: {item!r} is not key=value (e.g. {name}:every=10)")
        if key.strip() in opts:
            raise OptionError(f"balancer spec {spec!r}: option {key.strip()!r} given twice")
        opts[key.strip()] = value.strip()
    if rest.strip() and not opts:
        raise OptionError(f"balancer spec {spec!r}: nothing after ':'; give key=value options")
    return name.strip(), opts


def make_balancer(spec: str | Balancer) -> Balancer:
    if isinstance(spec, Balancer):
        return spec
    name, opts = parse_spec(spec)
    if name not in BALANCERS:
        close = difflib.get_close_matches(name, BALANCERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise OptionError(f"unknown balancer {name!r}{hint}; `pinnbal balancers` lists: {', '.join(BALANCERS)}")
    return BALANCERS[name](**opts)


__all__ = ["BALANCERS", "Balancer", "Stats", "TermInfo", "make_balancer", "parse_spec"]
