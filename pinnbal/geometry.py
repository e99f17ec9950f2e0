"""Boxes and their faces.

A :class:`Box` is an axis-aligned box whose keyword order is the column order
of every point array (time is just another coordinate); it is the simplest
:class:`~pinnbal.csg.Shape` and combines with the others (``Box(...) - Disk(...)``).
A :class:`Face` names faces of a box.  A plain box domain is sampled exactly:
interior points straight from the sampler, faces in proportion to their area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .csg import Shape
from .errors import ProblemError
from .sampling import shares, unit_samples


class Box(Shape):
    """Axis-aligned box ``Box(x=(-1, 1), t=(0, 1))``; keyword order = column order.

    ``periodic="x"`` (or a list of names): the solution is periodic in x with
    period hi − lo.  The network then sees (cos πx̂, sin πx̂) instead of the
    scaled coordinate x̂ ∈ [−1, 1], so the prediction and every derivative
    match at both ends exactly, with no loss term (the Fourier input map of
    Dong & Ni 2021, used by jaxpi).
    """

    def __init__(self, periodic: str | Sequence[str] = (), **bounds: tuple[float, float]):
        if not bounds:
            raise ProblemError("Box() needs at least one coordinate, e.g. Box(x=(0.0, 1.0))")
        self.names = list(bounds)
        self.periodic = [periodic] if isinstance(periodic, str) else list(periodic)
        unknown = [n for n in self.periodic if n not in self.names]
        if unknown:
            raise ProblemError(f"Box: periodic={unknown[0]!r} is not a coordinate; coordinates are {self.names}")
        lows, highs = [], []
        for name, span in bounds.items():
            try:
                lo, hi = (float(v) for v in span)
            except (TypeError, ValueError):
                raise ProblemError(
                    f"Box: coordinate {name!r} needs a pair (lo, hi) of numbers, got {span!r}"
                ) from None
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
                raise ProblemError(
                    f"Box: coordinate {name!r} has empty or infinite range ({lo}, {hi}); need lo < hi"
                )
            lows.append(lo)
            highs.append(hi)
        self.low = np.array(lows)
        self.high = np.array(highs)

    def __repr__(self) -> str:
        spans = ", ".join(f"{n}=({lo:g}, {hi:g})" for n, lo, hi in zip(self.names, self.low, self.high))
        return f"Box({spans}" + (f", periodic={self.periodic}" if self.periodic else "") + ")"

    def sample(self, n: int, rng: np.random.Generator, method: str = "uniform") -> np.ndarray:
        """``n`` points in the interior, shape (n, dim)."""
        unit = unit_samples(n, self.dim, rng, method)
        return self.low + unit * (self.high - self.low)

    def grid(self, n_total: int) -> np.ndarray:
        """A uniform tensor grid of about ``n_total`` points covering the closed box."""
        per_axis = max(2, round(n_total ** (1.0 / self.dim)))
        axes = [np.linspace(lo, hi, per_axis) for lo, hi in zip(self.low, self.high)]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    def all_faces(self) -> list[tuple[int, float]]:
        return [(i, v) for i in range(self.dim) for v in (self.low[i], self.high[i])]

    def is_box(self) -> bool:
        return True

    def sdf(self, x: np.ndarray) -> np.ndarray:
        """Exact signed distance: q = |x − c| − h; outside ‖max(q, 0)‖, inside max_i q_i."""
        q = np.abs(x - (self.low + self.high) / 2) - (self.high - self.low) / 2
        return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)

    def own_normal(self, x: np.ndarray) -> np.ndarray:
        """±e_i of the face nearest each point (the axis where |x − c| − h is largest)."""
        centre, half = (self.low + self.high) / 2, (self.high - self.low) / 2
        axis = np.argmax(np.abs(x - centre) - half, axis=1)
        n = np.zeros_like(x)
        rows = np.arange(len(x))
        n[rows, axis] = np.where(x[rows, axis] >= centre[axis], 1.0, -1.0)
        return n

    def boundary_measure(self) -> float:
        return float(sum(np.prod(np.delete(self.high - self.low, axis)) for axis, _ in self.all_faces()))

    def sample_own_boundary(self, n, rng, method):
        return sample_faces(self, self.all_faces(), n, rng, method)

    def reordered(self, names):
        return Box(**{name: (self.low[self.index(name)], self.high[self.index(name)]) for name in names})

    def __mul__(self, other: Shape) -> Shape:
        """``Box(x=...) * Box(t=...)`` is one box over both; a box times any other shape is a product."""
        if not isinstance(other, Box):
            return super().__mul__(other)
        clash = sorted(set(self.names) & set(other.names))
        if clash:
            raise ProblemError(f"{self!r} * {other!r}: both factors have coordinate {clash[0]!r}")
        bounds = {n: (lo, hi) for box in (self, other) for n, lo, hi in zip(box.names, box.low, box.high)}
        return Box(periodic=self.periodic + other.periodic, **bounds)


@dataclass(frozen=True)
class Face:
    """Faces of a box.

    ``Face(t=0.0)`` is the face where ``t`` equals 0 (must be a face of the
    box); ``Face("x")`` is both faces normal to ``x``; several names or
    values may be combined: ``Face("x", y=1.0)``.
    """

    normals: tuple[str, ...]
    fixed: tuple[tuple[str, float], ...]

    def __init__(self, *normals: str, **fixed: float):
        if not normals and not fixed:
            raise ProblemError('Face() needs a coordinate, e.g. Face("x") or Face(t=0.0)')
        for n in normals:
            if not isinstance(n, str):
                raise ProblemError(f"Face: positional arguments are coordinate names, got {n!r}")
        object.__setattr__(self, "normals", tuple(normals))
        try:
            object.__setattr__(self, "fixed", tuple((k, float(v)) for k, v in fixed.items()))
        except (TypeError, ValueError):
            raise ProblemError(f"Face: coordinate values must be numbers, got {fixed!r}") from None

    def __repr__(self) -> str:
        parts = [repr(n) for n in self.normals] + [f"{k}={v:g}" for k, v in self.fixed]
        return f"Face({', '.join(parts)})"

    def resolve(self, box: Box, where: str) -> list[tuple[int, float]]:
        """The (axis, value) pairs this names on ``box``; a clear error if one is not a face."""
        faces: list[tuple[int, float]] = []
        for name in self.normals:
            if name not in box.names:
                raise ProblemError(f"{where}: Face({name!r}) names no coordinate; coordinates are {box.names}")
            i = box.index(name)
            faces += [(i, box.low[i]), (i, box.high[i])]
        for name, value in self.fixed:
            if name not in box.names:
                raise ProblemError(f"{where}: Face({name}=...) names no coordinate; coordinates are {box.names}")
            i = box.index(name)
            if not (np.isclose(value, box.low[i]) or np.isclose(value, box.high[i])):
                raise ProblemError(
                    f"{where}: Face({name}={value:g}) is not a face of the box; "
                    f"{name} runs from {box.low[i]:g} to {box.high[i]:g}"
                )
            faces.append((i, box.low[i] if np.isclose(value, box.low[i]) else box.high[i]))
        return sorted(set(faces))


def sample_faces(
    box: Box, faces: list[tuple[int, float]], n: int, rng: np.random.Generator, method: str = "uniform"
) -> np.ndarray:
    """``n`` points on the union of ``faces``, each face drawn in proportion to its area.

    Every face gets at least one point (``n`` >= the number of faces, checked
    with the term): a small face of a thin box, or two faces sharing one
    point, would otherwise never be constrained.
    """
    areas = np.array([np.prod(np.delete(box.high - box.low, axis)) for axis, _ in faces])
    counts = shares(n, areas)
    for empty in np.flatnonzero(counts == 0):  # one point each, taken from the best-served face
        counts[np.argmax(counts)] -= 1
        counts[empty] = 1
    blocks = []
    for (axis, value), count in zip(faces, counts):
        if count == 0:
            continue
        pts = np.empty((count, box.dim))
        others = [i for i in range(box.dim) if i != axis]
        unit = unit_samples(count, len(others), rng, method)
        pts[:, others] = box.low[others] + unit * (box.high[others] - box.low[others])
        pts[:, axis] = value
        blocks.append(pts)
    return np.concatenate(blocks, axis=0)


def to_tensor(array: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(array, dtype=dtype, device=device)
