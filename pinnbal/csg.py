"""Constructive solid geometry: the shape interface, ``a - b``, ``a | b``, ``a & b`` and ``shape * Box(t=...)``.

Every shape is described by its signed distance φ(x) (negative inside, zero
on the boundary): exact for the primitives (:class:`~pinnbal.geometry.Box`,
:class:`~pinnbal.shapes.Ball`, :class:`~pinnbal.shapes.Polygon`), and for the
combinations the usual bounds, whose sign and zero set are exact (Ricci 1973;
the R-function view of Rvachev):

    φ(a − b) = max(φ_a, −φ_b),   φ(a | b) = min(φ_a, φ_b),   φ(a & b) = max(φ_a, φ_b).

Interior points are drawn from the bounding box by the run's sampler and
kept where φ ≤ 0 (rejection).  Boundary points are drawn on the boundary of
every primitive in proportion to its length or area, and a candidate x with
the primitive's outward normal n is kept when the combination's inside test
differs at x − δn and x + δn (δ = 1e-5 of the bounding-box diagonal): that
is exactly "x lies on the combination's boundary", and it also drops the
parts of two boundaries that coincide (a step cut out of a channel wall).
The combination's outward normal there is n if x − δn is inside, else −n,
so a hole's normal points into the hole.  This is the sampling scheme of
DeepXDE's and Modulus' CSG (read, not copied); the δ-probe orientation is ours.

On ``shape * Box(t=(0, 1))`` (space × time), the boundary is the spatial
boundary × the time interval; the time faces belong to ``pb.Initial`` or an
explicit ``on=pb.Face(t=...)``, which draws interior points of the shape at
that time.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .errors import ProblemError
from .sampling import shares, unit_samples

#: probes and tolerances are this fraction of the bounding-box diagonal
PROBE = 1e-5
#: rejection sampling gives up after this many rounds without enough points
ROUNDS = 60

Keep = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (points, normals) -> bool mask


class Shape:
    """A domain: named coordinates (keyword order = column order), a bounding box, a signed distance.

    Subclasses that are primitives write :meth:`sdf`, :meth:`own_normal`,
    :meth:`boundary_measure`, :meth:`sample_own_boundary` and :meth:`reordered`;
    combinations write :meth:`sdf` and :meth:`leaves`.
    """

    names: list[str]
    low: np.ndarray
    high: np.ndarray
    periodic: list[str] = []

    # -- what every shape is ---------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def features(self) -> int:
        """The network's input width: one per coordinate, two (cos, sin) per periodic one."""
        return self.dim + len(self.periodic)

    @property
    def diagonal(self) -> float:
        return float(np.linalg.norm(self.high - self.low))

    def index(self, name: str) -> int:
        if name not in self.names:
            raise ProblemError(f"{name!r} is not a coordinate of the domain; coordinates are {self.names}")
        return self.names.index(name)

    def sdf(self, x: np.ndarray) -> np.ndarray:
        """Signed distance of the points ``x`` (N, d) to the boundary: negative inside, shape (N,)."""
        raise NotImplementedError

    def inside(self, x: np.ndarray, slack: float = 0.0) -> np.ndarray:
        """Whether each point lies in the closed domain grown by ``slack`` (shrunk when negative)."""
        return self.sdf(x) <= slack

    def leaves(self) -> list["Shape"]:
        """The primitives whose boundaries make up this shape's boundary."""
        return [self]

    def is_box(self) -> bool:
        return False

    # -- primitives ------------------------------------------------------------------------------------
    def own_normal(self, x: np.ndarray) -> np.ndarray:
        """A primitive's outward unit normal at (near-)boundary points ``x``, shape (N, d)."""
        raise NotImplementedError

    def boundary_measure(self) -> float:
        """A primitive's boundary length (2D) or area (3D)."""
        raise NotImplementedError

    def sample_own_boundary(self, n: int, rng: np.random.Generator, method: str) -> np.ndarray:
        """``n`` points on a primitive's whole boundary, uniform by length/area."""
        raise NotImplementedError

    def reordered(self, names: list[str]) -> "Shape":
        """The same shape with its coordinates in the order ``names``."""
        raise NotImplementedError

    # -- sampling --------------------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator, method: str = "uniform") -> np.ndarray:
        """``n`` interior points, shape (n, dim): the sampler's points in the bounding box, those inside kept."""
        accepted, rate = [], self.volume_fraction()
        for _ in range(ROUNDS):
            missing = n - sum(len(a) for a in accepted)
            if missing <= 0:
                break
            unit = unit_samples(math.ceil(1.2 * missing / rate) + 16, self.dim, rng, method)
            x = self.low + unit * (self.high - self.low)
            accepted.append(x[self.inside(x)])
        return np.concatenate(accepted)[:n]

    def volume_fraction(self) -> float:
        """The fraction of the bounding box inside the domain (16384 Sobol points, fixed seed)."""
        if not hasattr(self, "_fraction"):
            unit = unit_samples(16384, self.dim, np.random.default_rng(0), "sobol")
            self._fraction = float(self.inside(self.low + unit * (self.high - self.low)).mean())
        return self._fraction

    def candidates(self, n: int, rng: np.random.Generator, method: str) -> tuple[np.ndarray, np.ndarray]:
        """About ``n`` points on the boundary with their outward normals (fewer for a combination: the
        primitives' points that are not on its boundary are dropped)."""
        leaves = self.leaves()
        if leaves == [self]:
            x = self.sample_own_boundary(n, rng, method)
            return x, self.own_normal(x)
        counts = shares(n, np.array([leaf.boundary_measure() for leaf in leaves]))
        points, normals = [], []
        for leaf, count in zip(leaves, counts):
            if count:
                x = leaf.sample_own_boundary(int(count), rng, method)
                points.append(x)
                normals.append(leaf.own_normal(x))
        x, n_leaf = np.concatenate(points), np.concatenate(normals)
        keep, outward = self.orient(x, n_leaf)
        return x[keep], outward[keep]

    def orient(self, x: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For points ``x`` on a primitive's boundary with its normals ``n``: which lie on this shape's
        boundary (inside on one side, outside on the other), and this shape's outward normal there."""
        delta = PROBE * self.diagonal
        behind, ahead = self.inside(x - delta * n), self.inside(x + delta * n)
        return behind != ahead, np.where(behind[:, None], n, -n)

    def sample_boundary(self, n: int, rng: np.random.Generator, method: str = "uniform",
                        keep: Keep | None = None, where: str = "boundary") -> np.ndarray:
        """``n`` boundary points, uniform by length/area, those ``keep`` selects (all when None)."""
        accepted: list[np.ndarray] = []
        rate = 1.0
        for _ in range(ROUNDS):
            missing = n - sum(len(a) for a in accepted)
            if missing <= 0:
                return np.concatenate(accepted)[:n]
            x, normals = self.candidates(math.ceil(1.2 * missing / rate) + 16, rng, method)
            order = rng.permutation(len(x))  # candidates come primitive by primitive: keep the first n unbiased
            x, normals = x[order], normals[order]
            chosen = x if keep is None else x[keep(x, normals)]
            rate = max(len(chosen) / max(len(x) + 16, 1), 1e-3)
            accepted.append(chosen)
        got = sum(len(a) for a in accepted)
        raise ProblemError(f"{where}: its on= selects {'no' if got == 0 else 'too few'} boundary points of "
                           f"{self!r}; check the face, shape or predicate")

    def normal(self, x: np.ndarray) -> np.ndarray:
        """The outward unit normal at boundary points ``x`` (N, d): the nearest primitive's, oriented."""
        leaves = self.leaves()
        if leaves == [self]:
            return self.own_normal(x)
        nearest = np.argmin(np.stack([np.abs(leaf.sdf(x)) for leaf in leaves]), axis=0)
        n = np.zeros_like(x)
        for i, leaf in enumerate(leaves):
            rows = nearest == i
            if rows.any():
                n[rows] = leaf.own_normal(x[rows])
        return self.orient(x, n)[1]

    def grid(self, n_total: int) -> np.ndarray:
        """About ``n_total`` points of a uniform tensor grid, those in the closed domain."""
        per_axis = max(2, round((n_total / max(self.volume_fraction(), 1e-3)) ** (1.0 / self.dim)))
        axes = [np.linspace(lo, hi, per_axis) for lo, hi in zip(self.low, self.high)]
        x = np.stack([m.ravel() for m in np.meshgrid(*axes, indexing="ij")], axis=1)
        return x[self.inside(x, PROBE * self.diagonal)]

    # -- combinations ----------------------------------------------------------------------------------
    def __sub__(self, other: "Shape") -> "Shape":
        return Difference(self, other)

    def __or__(self, other: "Shape") -> "Shape":
        return Union(self, other)

    def __and__(self, other: "Shape") -> "Shape":
        return Intersection(self, other)

    def __mul__(self, other: "Shape") -> "Shape":
        return Product(self, other)


class Combination(Shape):
    """Two shapes on the same coordinates; the right one reordered to the left one's column order."""

    symbol = "?"

    def __init__(self, a: Shape, b: Shape):
        for part in (a, b):
            if not isinstance(part, Shape):
                raise ProblemError(f"{self.symbol}: {part!r} is not a shape (pb.Box, pb.Disk, pb.Ball, pb.Polygon)")
            if isinstance(part, Product):
                raise ProblemError(f"{a!r} {self.symbol} {b!r}: combine the spatial shapes first, then multiply "
                                   f"by the time box: (a {self.symbol} b) * pb.Box(t=(...))")
        if sorted(a.names) != sorted(b.names):
            raise ProblemError(f"{a!r} {self.symbol} {b!r}: the coordinates differ ({', '.join(a.names)} vs "
                               f"{', '.join(b.names)}); every part of a domain needs the same coordinates")
        if a.periodic or b.periodic:
            raise ProblemError(f"{a!r} {self.symbol} {b!r}: periodic coordinates are for a plain pb.Box domain")
        self.a, self.b = a, (b if b.names == a.names else b.reordered(a.names))
        self.names = list(a.names)
        self.low, self.high = self.bounds()
        self.periodic = []

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.minimum(self.a.low, self.b.low), np.maximum(self.a.high, self.b.high)

    def leaves(self) -> list[Shape]:
        return self.a.leaves() + self.b.leaves()

    def reordered(self, names: list[str]) -> Shape:
        return type(self)(self.a.reordered(names), self.b.reordered(names))

    def __repr__(self) -> str:
        return f"{self.a!r} {self.symbol} {self.operand(self.b)}"

    def operand(self, part: Shape) -> str:
        """``part`` as the right operand: bracketed when it is itself a combination."""
        return f"({part!r})" if isinstance(part, Combination) else repr(part)


class Difference(Combination):
    """``a - b``: the points of ``a`` not in ``b`` (a plate with a hole)."""

    symbol = "-"

    def bounds(self):
        return self.a.low, self.a.high

    def sdf(self, x):
        return np.maximum(self.a.sdf(x), -self.b.sdf(x))


class Union(Combination):
    """``a | b``: the points in either."""

    symbol = "|"

    def sdf(self, x):
        return np.minimum(self.a.sdf(x), self.b.sdf(x))


class Intersection(Combination):
    """``a & b``: the points in both."""

    symbol = "&"

    def bounds(self):
        low, high = np.maximum(self.a.low, self.b.low), np.minimum(self.a.high, self.b.high)
        if np.any(low >= high):
            raise ProblemError(f"{self.a!r} & {self.b!r}: the shapes do not overlap")
        return low, high

    def sdf(self, x):
        return np.maximum(self.a.sdf(x), self.b.sdf(x))


class Product(Shape):
    """``space * Box(t=(0, 1))``: a spatial shape times an interval (or box) of further coordinates.

    Its boundary (what ``pb.Boundary`` samples by default) is the spatial
    boundary × the interval; the faces of the interval (``pb.Face(t=0.0)``)
    are cross-sections: interior points of the shape at that time.
    """

    def __init__(self, space: Shape, time: Shape):
        if not isinstance(space, Shape) or not isinstance(time, Shape) or not time.is_box():
            raise ProblemError(f"{space!r} * {time!r}: the right factor of * must be a pb.Box of further "
                               f"coordinates, e.g. shape * pb.Box(t=(0.0, 1.0))")
        clash = sorted(set(space.names) & set(time.names))
        if clash:
            raise ProblemError(f"{space!r} * {time!r}: both factors have coordinate {clash[0]!r}; a product "
                               f"needs different coordinates")
        self.space, self.time = space, time
        self.names = space.names + time.names
        self.low = np.concatenate([space.low, time.low])
        self.high = np.concatenate([space.high, time.high])
        self.periodic = list(time.periodic)

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[:, : self.space.dim], x[:, self.space.dim:]

    def sdf(self, x):
        xs, xt = self.split(x)
        return np.maximum(self.space.sdf(xs), self.time.sdf(xt))

    def candidates(self, n, rng, method):
        xs, ns = self.space.candidates(n, rng, method)
        xt = self.time.sample(len(xs), rng, method)
        return np.hstack([xs, xt]), np.hstack([ns, np.zeros_like(xt)])

    def normal(self, x):
        """The spatial normal on the lateral boundary, ±e_t on a time face (whichever is nearer)."""
        xs, xt = self.split(x)
        lateral = np.abs(self.space.sdf(xs)) <= np.abs(self.time.sdf(xt))
        spatial = np.hstack([self.space.normal(xs), np.zeros_like(xt)])
        timewise = np.hstack([np.zeros_like(xs), self.time.normal(xt)])
        return np.where(lateral[:, None], spatial, timewise)

    def sample_section(self, n: int, faces: list[tuple[int, float]], rng: np.random.Generator,
                       method: str) -> np.ndarray:
        """``n`` points on the cross-sections ``faces`` ((axis, value) pairs of time coordinates): interior
        points of the shape there, split equally between the faces."""
        blocks = []
        for (axis, value), count in zip(faces, shares(n, np.ones(len(faces)))):
            xs = self.space.sample(int(count), rng, method)
            xt = self.time.sample(int(count), rng, method)
            xt[:, axis - self.space.dim] = value
            blocks.append(np.hstack([xs, xt]))
        return np.concatenate(blocks)

    def reordered(self, names):
        if list(names) != self.names:
            raise ProblemError(f"{self!r}: a product's coordinates must come in the same order everywhere "
                               f"({', '.join(self.names)})")
        return self

    def __repr__(self) -> str:
        space = f"({self.space!r})" if isinstance(self.space, Combination) else repr(self.space)
        return f"{space} * {self.time!r}"
