"""Loss balancers: a registry from CLI names to classes, and spec parsing.

``make_balancer("lra:alpha=0.9,every=10")`` returns a configured
:class:`~pinnbal.balancers.base.Balancer`; ``BALANCERS`` lists them all.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import re
import sys
from pathlib import Path

from ..errors import OptionError
from .aggregators import AGGREGATORS
from .base import Balancer, Stats, TermInfo
from .compose import Composite
from .bayes import Bayes
from .dwa import DWA
from .fixed import Fixed
from .gradnorm import GradNorm
from .gradnorm_eq import GradNormEq
from .gradscale import GradScale
from .learned import Learned
from .lra import LRA
from .meta import Meta
from .ntk import NTK
from .performance import Performance
from .pointwise import RAD, RAR, RBA, SA, Causal
from .relobralo import ReLoBRaLo
from .resnorm import ResNorm
from .rlw import RLW
from .rules import Rules
from .schedule import Schedule
from .softadapt import SoftAdapt
from .uncertainty import Uncertainty

BALANCERS: dict[str, type[Balancer]] = {cls.name: cls for cls in (
    Fixed, Schedule, Performance, DWA, SoftAdapt, ReLoBRaLo, ResNorm, RLW, Uncertainty, Bayes,
    LRA, GradScale, GradNormEq, GradNorm, NTK, *AGGREGATORS, Rules, RBA, SA, Causal, RAD, RAR, Learned, Meta,
)}


CUSTOM = re.compile(r"^(?P<module>[^:]+):(?P<cls>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<rest>.*))?$")


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"name:key=value,key=value"`` → (name, {key: value}); clear errors otherwise."""
    if not isinstance(spec, str) or not spec.strip():
        raise OptionError("balancer spec is empty; use e.g. --balancer lra or --balancer lra:alpha=0.9")
    name, _, rest = spec.strip().partition(":")
    custom = CUSTOM.match(spec.strip())
    if name not in BALANCERS and custom:  # mymodule:MyBalancer[:options]
        name, rest = f"{custom['module']}:{custom['cls']}", custom["rest"] or ""
    opts: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        if "=" not in item and "<" in item:  # a target such as performance:ic<1e-4
            key, _, bound = item.partition("<")
            item = f"{key}=<{bound}"
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise OptionError(f"balancer spec {spec!r}: {item!r} is not key=value (e.g. {name + ':every=10'!r})")
        if key.strip() in opts:
            raise OptionError(f"balancer spec {spec!r}: option {key.strip()!r} given twice")
        opts[key.strip()] = value.strip()
    if rest.strip() and not opts:
        raise OptionError(f"balancer spec {spec!r}: nothing after ':'; give key=value options")
    return name.strip(), opts


def load_custom(module: str, cls_name: str) -> type[Balancer]:
    """``mymodule:MyBalancer`` (an importable module) or ``path/to/file.py:MyBalancer``."""
    where = f"balancer {module + ':' + cls_name!r}"
    try:
        if module.endswith(".py"):
            if not Path(module).is_file():
                raise OptionError(f"{where}: no such file {module!r}")
            spec = importlib.util.spec_from_file_location(f"pinnbal_custom_{Path(module).stem}", module)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
        else:
            if str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            mod = importlib.import_module(module)
    except OptionError:
        raise
    except Exception as exc:  # the user's module failed to import: say so in one line
        raise OptionError(f"{where}: cannot import {module!r}: {type(exc).__name__}: {str(exc)!r}") from None
    cls = getattr(mod, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Balancer)):
        raise OptionError(f"{where}: {module!r} has no Balancer subclass named {cls_name!r}")
    return cls


#: '+' joins the parts of a composition; a '+' inside a number (1e+3) is not followed by a name
PLUS = re.compile(r"\+(?=\s*[A-Za-z_])")


def make_balancer(spec: str | Balancer) -> Balancer:
    """A configured balancer from ``name[:opts]``, ``module:Class[:opts]`` or ``a+b+...`` (a composition)."""
    if isinstance(spec, Balancer):
        return spec
    if isinstance(spec, str) and PLUS.search(spec):
        return Composite([make_one(part) for part in PLUS.split(spec)])
    return make_one(spec)


def make_one(spec: str) -> Balancer:
    name, opts = parse_spec(spec)
    if ":" in name:
        balancer = load_custom(*name.split(":"))(**opts)
        balancer.spec_name = name  # so the saved spec names the module and class, and round-trips
        return balancer
    if name not in BALANCERS:
        close = difflib.get_close_matches(name, BALANCERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise OptionError(f"unknown balancer {name!r}{hint}; `pinnbal balancers` lists: {', '.join(BALANCERS)}")
    return BALANCERS[name](**opts)


__all__ = ["BALANCERS", "Balancer", "Stats", "TermInfo", "make_balancer", "parse_spec"]
