"""Pointwise losses applied to a term's residual r (what should be zero).

A term's loss is the mean of ℓ(r) over its points and residual columns:

- ``mse``:      ℓ(r) = r²
- ``mae``:      ℓ(r) = |r|
- ``huber``:    ℓ(r) = r²/2 if |r| ≤ δ else δ(|r| − δ/2), δ = 1 (Huber 1964)
- ``logcosh``:  ℓ(r) = log cosh r, computed stably as |r| + softplus(−2|r|) − log 2

The catalogue follows the seed documents on regression losses (MSE, MAE,
Huber/smooth-L1, log-cosh).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .errors import ProblemError


def _logcosh(r: torch.Tensor) -> torch.Tensor:
    a = r.abs()
    return a + F.softplus(-2.0 * a) - math.log(2.0)


POINTWISE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mse": lambda r: r.square(),
    "mae": lambda r: r.abs(),
    "huber": lambda r: F.huber_loss(r, torch.zeros_like(r), reduction="none", delta=1.0),
    "logcosh": _logcosh,
}


def pointwise_loss(name: str, where: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The pointwise loss called ``name``; a clear error naming ``where`` otherwise."""
    if name not in POINTWISE:
        raise ProblemError(f"{where}: unknown loss {name!r}; choose one of {', '.join(POINTWISE)}")
    return POINTWISE[name]
