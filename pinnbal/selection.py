"""Where a boundary term's points lie: ``on=`` of ``pb.Boundary`` resolved against the domain.

``on`` is a :class:`~pinnbal.geometry.Face` (faces of a box part), a shape
(the boundary points on that shape's boundary, ``on=hole``), a predicate
``lambda p: <bool tensor>`` over boundary points (``p.x``, ``p.nx``, ...), or
None (the whole boundary; on ``shape * Box(t=...)`` the spatial boundary ×
the interval).  A plain box sampled on faces, and the time faces of a
product, are drawn exactly; everything else by drawing boundary points and
keeping those selected.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from .csg import PROBE, Product, Shape
from .errors import ProblemError
from .geometry import Box, Face, sample_faces
from .points import Points


class Selection:
    """The resolved ``on=`` of one term: ``faces`` ((axis, value) pairs) when drawn exactly, else a mask."""

    def __init__(self, domain: Shape, on: Any, where: str):
        self.domain, self.on, self.where = domain, on, where
        self.faces: list[tuple[int, float]] | None = None
        self.keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
        if on is not None and not isinstance(on, (Face, Shape)) and not callable(on):
            raise ProblemError(f"{where}: on={on!r}; use a pb.Face(...), a shape (on=hole) or a predicate "
                               f"lambda p: <bool tensor>")
        if isinstance(domain, Box):
            self.faces = domain.all_faces() if on is None else on.resolve(domain, where) if isinstance(on, Face) else None
        elif isinstance(on, Face) and isinstance(domain, Product) and on_time(on, domain, where):
            self.faces = [(domain.index(name), value) for name, value in section_values(on, domain, where)]
        if self.faces is None and on is not None:
            self.keep = self.mask_of(on)
            domain.sample_boundary(64, np.random.default_rng(0), "uniform", self.keep, where)  # refuses an empty one

    def mask_of(self, on: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        tol = PROBE * self.domain.diagonal
        if isinstance(on, Face):
            faces = box_face_values(self.domain, on, self.where)
            return lambda x, n: np.any([np.abs(x[:, axis] - value) <= tol for axis, value in faces], axis=0)
        if isinstance(on, Shape):
            columns = shape_columns(self.domain, on, self.where)
            return lambda x, n: np.abs(on.sdf(x[:, columns])) <= tol
        return lambda x, n: predicate_mask(on, x, n, self.domain.names, self.where)

    def sample(self, n: int, rng: np.random.Generator, method: str) -> np.ndarray:
        if self.faces is None:
            return self.domain.sample_boundary(n, rng, method, self.keep, self.where)
        if isinstance(self.domain, Product):
            return self.domain.sample_section(n, self.faces, rng, method)
        return sample_faces(self.domain, self.faces, n, rng, method)

    def describe(self) -> str:
        if self.faces is not None:
            return f" on {len(self.faces)} face(s)"
        if self.on is None:
            return " on the whole boundary"
        return f" on {self.on!r}" if isinstance(self.on, (Face, Shape)) else " on the boundary points a predicate selects"

    def __eq__(self, other) -> bool:
        return isinstance(other, Selection) and (self.faces, self.on if self.faces is None else None) == (
            other.faces, other.on if other.faces is None else None)


def on_time(face: Face, domain: Product, where: str) -> bool:
    """Whether ``face`` names faces of the time box of ``domain`` (True) or of its spatial part (False)."""
    named = list(face.normals) + [name for name, _ in face.fixed]
    in_time = [name in domain.time.names for name in named]
    if any(in_time) and not all(in_time):
        raise ProblemError(f"{where}: {face!r} mixes time and space coordinates; give two terms, one for the "
                           f"time face and one for the spatial faces")
    return all(in_time)


def section_values(face: Face, domain: Product, where: str) -> list[tuple[str, float]]:
    """The (name, value) cross-sections ``face`` names on the time box of ``domain``."""
    return [(domain.time.names[axis], value) for axis, value in face.resolve(domain.time, where)]


def box_face_values(domain: Shape, face: Face, where: str) -> list[tuple[int, float]]:
    """The (axis, value) planes of the box parts of ``domain`` that ``face`` names; one line if none."""
    space = domain.space if isinstance(domain, Product) else domain
    boxes = [leaf for leaf in space.leaves() if isinstance(leaf, Box)]
    if not boxes:
        raise ProblemError(f"{where}: {face!r} names faces of a box, and {domain!r} has no box part; select "
                           f"with a shape (on=disk) or a predicate (on=lambda p: ...)")
    planes = []
    for name in face.normals:
        axis = space.index(name)
        planes += [(axis, v) for box in boxes for v in (box.low[axis], box.high[axis])]
    for name, value in face.fixed:
        axis = space.index(name)
        faces = sorted({v for box in boxes for v in (box.low[axis], box.high[axis])})
        if not any(np.isclose(value, v) for v in faces):
            raise ProblemError(f"{where}: Face({name}={value:g}) is not a face of a box part of the domain; "
                               f"its box faces in {name} are at {', '.join(f'{v:g}' for v in faces)}")
        planes.append((axis, value))
    return sorted(set(planes))


def shape_columns(domain: Shape, shape: Shape, where: str) -> list[int]:
    """The columns of the domain's points that ``shape``'s coordinates are, in the shape's order."""
    missing = [name for name in shape.names if name not in domain.names]
    if missing:
        raise ProblemError(f"{where}: on={shape!r} has coordinate {missing[0]!r}, which the domain has not "
                           f"(coordinates: {', '.join(domain.names)})")
    return [domain.index(name) for name in shape.names]


def predicate_mask(predicate: Callable, x: np.ndarray, normals: np.ndarray, names: list[str], where: str) -> np.ndarray:
    """``predicate(p)`` on boundary points as a bool mask (N,); one line when it is not one."""
    coords = torch.as_tensor(x, dtype=torch.float64)
    normal_tensor = torch.as_tensor(normals, dtype=torch.float64)
    p = Points(coords, names, [], None, {}, where=f"{where} on=", normals=lambda: normal_tensor)
    result = predicate(p)
    if isinstance(result, torch.Tensor):
        result = result.detach().cpu().numpy()
    mask = np.asarray(result)
    if mask.ndim == 2 and mask.shape[1] == 1:
        mask = mask[:, 0]
    if mask.shape != (len(x),) or mask.dtype != bool:
        raise ProblemError(f"{where}: on= returned {mask.dtype} of shape {mask.shape}; a predicate needs a bool "
                           f"tensor with one value per point, e.g. on=lambda p: p.x > 0")
    return mask
