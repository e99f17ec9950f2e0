"""Reference solutions and the evaluation set that accuracy is measured on.

A reference is either a callable of ``p`` (closed form; evaluated on a dense
uniform grid of the domain) or a :class:`GridReference` holding values on a
tensor grid or at scattered points (from arrays, an ``.npz`` file, or a
solver whose result is cached to disk on first use), or a
:class:`ScatteredReference`: values at the nodes of a mesh (a finite-element
export), the usual form on a domain with holes.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator

from .errors import ProblemError
from .storage import atomic_write_bytes


class GridReference:
    """Reference values on a grid ``axes`` (meshgrid, 'ij') or at ``points``.

    ``GridReference(axes={"x": x, "t": t}, values={"u": U})`` with ``U`` of
    shape (len(x), len(t)); or ``GridReference(points={"x": X, "t": T},
    values={"u": u})`` with 1-D arrays of equal length.
    ``GridReference.cached(path, build)`` calls ``build()`` (returning a
    GridReference) on first use and stores its arrays in ``path``.
    """

    def __init__(
        self,
        axes: Mapping[str, np.ndarray] | None = None,
        values: Mapping[str, np.ndarray] | None = None,
        points: Mapping[str, np.ndarray] | None = None,
    ):
        if (axes is None) == (points is None):
            raise ProblemError("GridReference: give exactly one of axes= (a grid) or points= (scattered)")
        if not values:
            raise ProblemError("GridReference: values= must map each output name to an array")
        self.axes = {k: np.asarray(v, dtype=float).ravel() for k, v in (axes or {}).items()}
        self.points = {k: np.asarray(v, dtype=float).ravel() for k, v in (points or {}).items()}
        self.values = {k: np.asarray(v, dtype=float) for k, v in values.items()}
        self._check_shapes()

    def _check_shapes(self) -> None:
        if self.axes:
            shape = tuple(len(a) for a in self.axes.values())
            for name, v in self.values.items():
                if v.shape != shape:
                    raise ProblemError(
                        f"GridReference: values[{name!r}] has shape {v.shape}; the grid "
                        f"{list(self.axes)} needs {shape}"
                    )
        else:
            lengths = {len(a) for a in self.points.values()} | {v.size for v in self.values.values()}
            if len(lengths) != 1:
                raise ProblemError(f"GridReference: points and values have different lengths {sorted(lengths)}")
        for name, v in self.values.items():
            if not np.all(np.isfinite(v)):
                raise ProblemError(f"GridReference: values[{name!r}] contains NaN or inf")

    @classmethod
    def from_npz(
        cls, path: str | os.PathLike, axes: Mapping[str, str], values: Mapping[str, str]
    ) -> "GridReference":
        """Read a grid from ``path``: ``axes={"x": "x"}`` maps coordinate → array key."""
        try:
            data = np.load(path)
        except OSError as exc:
            raise ProblemError(f"GridReference.from_npz: cannot read {path}: {exc}") from None
        missing = [k for k in list(axes.values()) + list(values.values()) if k not in data]
        if missing:
            raise ProblemError(f"GridReference.from_npz: {path} has no array {missing[0]!r}; it has {list(data)}")
        return cls(axes={c: data[k] for c, k in axes.items()}, values={o: data[k] for o, k in values.items()})

    @classmethod
    def cached(cls, path: str | os.PathLike, build: Callable[[], "GridReference"]) -> "LazyReference":
        return LazyReference(Path(path), build)

    def resolve(self) -> "GridReference":
        return self

    def arrays(self, coord_names: list[str], output_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Points (N, d) in ``coord_names`` order and values (N, m) in ``output_names`` order."""
        source = self.axes or self.points
        if set(source) != set(coord_names):
            raise ProblemError(
                f"reference: its coordinates {sorted(source)} differ from the domain's {coord_names}"
            )
        if set(self.values) != set(output_names):
            raise ProblemError(f"reference: its outputs {sorted(self.values)} differ from the problem's {output_names}")
        order = list(source)
        if self.axes:
            mesh = np.meshgrid(*(self.axes[c] for c in order), indexing="ij")
            cols = {c: m.ravel() for c, m in zip(order, mesh)}
        else:
            cols = self.points
        x = np.stack([cols[c] for c in coord_names], axis=1)
        v = np.stack([self.values[o].ravel() for o in output_names], axis=1)
        return x, v

    def save(self, path: Path) -> None:
        arrays = {f"axis:{k}": v for k, v in self.axes.items()}
        arrays |= {f"point:{k}": v for k, v in self.points.items()}
        arrays |= {f"value:{k}": v for k, v in self.values.items()}
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: Path) -> "GridReference":
        data = np.load(path)
        pick = lambda prefix: {k[len(prefix) :]: data[k] for k in data.files if k.startswith(prefix)}  # noqa: E731
        axes, points = pick("axis:"), pick("point:")
        return cls(axes=axes or None, points=points or None, values=pick("value:"))


class LazyReference:
    """A :class:`GridReference` built by ``build()`` on first use and cached at ``path``.

    If ``path`` cannot be written (a read-only install), the reference is
    still built and used, just not cached.
    """

    def __init__(self, path: Path, build: Callable[[], GridReference]):
        self.path = path
        self.build = build
        self._ref: GridReference | None = None

    def resolve(self) -> GridReference:
        if self._ref is None:
            if self.path.exists():
                self._ref = GridReference.load(self.path)
            else:
                self._ref = self.build()
                try:
                    self._ref.save(self.path)
                except OSError:
                    pass  # unwritable location: use it uncached
        return self._ref

    def arrays(self, coord_names: list[str], output_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return self.resolve().arrays(coord_names, output_names)


class ScatteredReference:
    """Reference values at scattered nodes: ``ScatteredReference(points=X, values=V)``.

    ``X`` is (N, d), its columns the domain's coordinates in order; ``V`` is
    (N, k), one column per output.  Accuracy is measured at the nodes
    themselves (no interpolation); pictures interpolate onto their grid,
    ``interpolation="linear"`` (default: piecewise linear on the Delaunay
    triangulation of the nodes, scipy's ``LinearNDInterpolator``, NaN outside
    their convex hull, so nothing is extrapolated) or ``"nearest"`` (the
    value of the nearest node, everywhere).
    """

    def __init__(self, points, values, interpolation: str = "linear"):
        try:
            self.x = np.asarray(points, dtype=float)
            self.values = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise ProblemError("ScatteredReference: points= and values= must be numeric arrays") from None
        if self.x.ndim == 1:
            self.x = self.x[:, None]
        if self.values.ndim == 1:
            self.values = self.values[:, None]
        if self.x.ndim != 2 or self.values.ndim != 2 or len(self.x) != len(self.values) or len(self.x) == 0:
            raise ProblemError(f"ScatteredReference: points {self.x.shape} and values {self.values.shape}; need "
                               f"(N, d) and (N, k) with the same N > 0")
        if not (np.all(np.isfinite(self.x)) and np.all(np.isfinite(self.values))):
            raise ProblemError("ScatteredReference: points or values contain NaN or inf; drop those rows")
        if interpolation not in ("linear", "nearest"):
            raise ProblemError(f"ScatteredReference: interpolation={interpolation!r}; choose linear or nearest")
        self.interpolation = interpolation
        self.axes: dict = {}
        self._interpolator = None

    def resolve(self) -> "ScatteredReference":
        return self

    def arrays(self, coord_names: list[str], output_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if self.x.shape[1] != len(coord_names):
            raise ProblemError(f"reference: ScatteredReference points have {self.x.shape[1]} columns; the domain's "
                               f"coordinates are {coord_names} ({len(coord_names)})")
        if self.values.shape[1] != len(output_names):
            raise ProblemError(f"reference: ScatteredReference values have {self.values.shape[1]} columns; the "
                               f"problem's outputs are {output_names} ({len(output_names)})")
        return self.x, self.values

    def at(self, x: np.ndarray, output_names: list[str]) -> np.ndarray:
        """The reference interpolated at ``x`` (M, d), shape (M, k)."""
        self.arrays([""] * x.shape[1], output_names)
        if self.x.shape[1] == 1:
            order = np.argsort(self.x[:, 0])
            nodes, values = self.x[order, 0], self.values[order]
            if self.interpolation == "nearest":
                pick = np.clip(np.searchsorted(nodes, x[:, 0]), 1, len(nodes) - 1)
                pick -= np.abs(x[:, 0] - nodes[pick - 1]) < np.abs(x[:, 0] - nodes[pick])
                return values[pick]
            return np.stack([np.interp(x[:, 0], nodes, values[:, j], left=np.nan, right=np.nan)
                             for j in range(values.shape[1])], axis=1)
        if self._interpolator is None:
            kind = LinearNDInterpolator if self.interpolation == "linear" else NearestNDInterpolator
            self._interpolator = kind(self.x, self.values)
        return np.asarray(self._interpolator(x)).reshape(len(x), -1)
