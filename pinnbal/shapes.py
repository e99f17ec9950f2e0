"""Round and polygonal primitives: :class:`Ball` (any dimension), :class:`Disk`, :class:`Polygon`.

Each gives its exact signed distance, outward normal and a sampler of its
own boundary, uniform by length/area; :mod:`pinnbal.csg` combines them.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gamma
from scipy.stats import norm

from .csg import Shape
from .errors import ProblemError
from .sampling import unit_samples


def as_number(value, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ProblemError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ProblemError(f"{where}: {value!r} is not finite")
    return number


class Ball(Shape):
    """``Ball(x=0, y=0, z=0, radius=1)``: the points within ``radius`` of the centre; the keyword names are
    the coordinates, in column order (any number of them)."""

    kind = "Ball"

    def __init__(self, radius: float, **centre: float):
        if not centre:
            raise ProblemError(f"{self.kind}: give the centre by coordinate, e.g. {self.kind}(x=0.0, y=0.0, radius=1.0)")
        self.names = list(centre)
        self.centre = np.array([as_number(v, f"{self.kind}: {k}") for k, v in centre.items()])
        self.radius = as_number(radius, f"{self.kind}: radius")
        if self.radius <= 0:
            raise ProblemError(f"{self.kind}: radius={radius!r}; need a positive number")
        self.low, self.high = self.centre - self.radius, self.centre + self.radius
        self.periodic = []

    def sdf(self, x):
        return np.linalg.norm(x - self.centre, axis=1) - self.radius

    def own_normal(self, x):
        offset = x - self.centre
        length = np.linalg.norm(offset, axis=1, keepdims=True)
        return offset / np.where(length > 0, length, 1.0)

    def boundary_measure(self):
        """The sphere's surface 2π^{d/2} r^{d−1} / Γ(d/2) (2πr for a circle, 2 for an interval's ends)."""
        d = self.dim
        return float(2 * math.pi ** (d / 2) * self.radius ** (d - 1) / gamma(d / 2))

    def sample_own_boundary(self, n, rng, method):
        """A circle by angle 2πu; a higher sphere by normalised Gaussians (the sampler's u through Φ⁻¹),
        which are uniform on the sphere (Muller 1959)."""
        if self.dim == 2:
            angle = 2 * math.pi * unit_samples(n, 1, rng, method)[:, 0]
            direction = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        else:
            gauss = norm.ppf(np.clip(unit_samples(n, self.dim, rng, method), 1e-12, 1 - 1e-12))
            direction = gauss / np.linalg.norm(gauss, axis=1, keepdims=True)
        return self.centre + self.radius * direction

    def reordered(self, names):
        return type(self)(radius=self.radius, **{name: self.centre[self.index(name)] for name in names})

    def __repr__(self) -> str:
        centre = ", ".join(f"{n}={c:g}" for n, c in zip(self.names, self.centre))
        return f"{self.kind}({centre}, radius={self.radius:g})"


class Disk(Ball):
    """``Disk(x=0, y=0, radius=1)``: a ball in two coordinates."""

    kind = "Disk"

    def __init__(self, radius: float, **centre: float):
        if len(centre) != 2:
            raise ProblemError(f"Disk: give two centre coordinates, e.g. Disk(x=0.0, y=0.0, radius=1.0), got "
                               f"{list(centre)}; use pb.Ball for other dimensions")
        super().__init__(radius, **centre)


def self_crossing(v: np.ndarray) -> tuple[int, int] | None:
    """The first pair of non-neighbouring edges of the closed polygon ``v`` (n, 2) that meet, or None.

    Segments p–q and r–s meet when each one's ends lie on opposite sides of the other's line (signs of the
    cross products), or when an end lies on the other segment (a zero cross product and inside its
    bounding box): the textbook test (Cormen et al., *Introduction to Algorithms*, §33.1), O(n²)."""
    a, b, n = v, np.roll(v, -1, axis=0), len(v)

    def side(p, q, r):  # sign of (q − p) × (r − p)
        return np.sign((q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0]))

    def within(p, q, r):  # r inside the bounding box of p–q
        return np.all((np.minimum(p, q) <= r) & (r <= np.maximum(p, q)), axis=-1)

    for i in range(n):
        j = np.arange(i + 2, n if i else n - 1)  # not the edge itself, nor its neighbours (edge 0 and n − 1 are)
        if not len(j):
            continue
        d1, d2 = side(a[j], b[j], a[i]), side(a[j], b[j], b[i])
        d3, d4 = side(a[i], b[i], a[j]), side(a[i], b[i], b[j])
        meet = ((d1 * d2 < 0) & (d3 * d4 < 0)) | ((d1 == 0) & within(a[j], b[j], a[i])) \
            | ((d2 == 0) & within(a[j], b[j], b[i])) | ((d3 == 0) & within(a[i], b[i], a[j])) \
            | ((d4 == 0) & within(a[i], b[i], b[j]))
        hit = np.flatnonzero(meet)
        if len(hit):
            return i, int(j[hit[0]])
    return None


class Polygon(Shape):
    """``Polygon(x=[0, 2, 2, 0], y=[0, 0, 1, 1])``: vertices in order (either way round), edges between
    neighbours and from the last back to the first.  Inside: the even–odd crossing rule.  The polygon
    must not cross itself (not checked beyond a non-zero area)."""

    def __init__(self, **vertices):
        if len(vertices) != 2:
            raise ProblemError(f"Polygon: give the vertices as two coordinate lists, e.g. Polygon(x=[...], "
                               f"y=[...]), got {list(vertices)}")
        self.names = list(vertices)
        try:
            columns = [np.asarray(v, dtype=float).ravel() for v in vertices.values()]
        except (TypeError, ValueError):
            raise ProblemError("Polygon: vertex coordinates must be lists of numbers") from None
        if len(columns[0]) != len(columns[1]) or len(columns[0]) < 3:
            raise ProblemError(f"Polygon: need two lists of equal length >= 3, got lengths "
                               f"{len(columns[0])} and {len(columns[1])}")
        v = np.stack(columns, axis=1)
        if not np.all(np.isfinite(v)):
            raise ProblemError("Polygon: a vertex coordinate is NaN or inf")
        area = 0.5 * np.sum(v[:, 0] * np.roll(v[:, 1], -1) - np.roll(v[:, 0], -1) * v[:, 1])
        if abs(area) <= 1e-12 * np.ptp(v, axis=0).prod():
            raise ProblemError("Polygon: the vertices enclose no area (all on one line?)")
        crossing = self_crossing(v)
        if crossing is not None:
            raise ProblemError(f"Polygon: edges {crossing[0]} and {crossing[1]} cross (counting from 0, edge i runs "
                               f"from vertex i to the next); give the vertices in order around the boundary")
        self.vertices = v if area > 0 else v[::-1]  # counter-clockwise: the outward normal is the edge turned right
        self.edges = np.roll(self.vertices, -1, axis=0) - self.vertices
        self.lengths = np.linalg.norm(self.edges, axis=1)
        if np.any(self.lengths == 0):
            raise ProblemError("Polygon: two neighbouring vertices coincide; drop the repeat")
        self.outward = np.stack([self.edges[:, 1], -self.edges[:, 0]], axis=1) / self.lengths[:, None]
        self.low, self.high = v.min(axis=0), v.max(axis=0)
        self.periodic = []

    def edge_distances(self, x: np.ndarray) -> np.ndarray:
        """Distance of each point to each edge segment, shape (N, edges)."""
        rel = x[:, None, :] - self.vertices[None]
        along = np.clip(np.einsum("nei,ei->ne", rel, self.edges) / self.lengths ** 2, 0.0, 1.0)
        return np.linalg.norm(rel - along[..., None] * self.edges[None], axis=2)

    def contains(self, x: np.ndarray) -> np.ndarray:
        """The even–odd rule: a ray to +x crosses the boundary an odd number of times."""
        a, b = self.vertices, np.roll(self.vertices, -1, axis=0)
        px, py = x[:, :1], x[:, 1:2]
        straddles = (a[:, 1] > py) != (b[:, 1] > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing_x = a[:, 0] + (py - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
        return np.count_nonzero(straddles & (px < crossing_x), axis=1) % 2 == 1

    def sdf(self, x):
        distance = self.edge_distances(x).min(axis=1)
        return np.where(self.contains(x), -distance, distance)

    def own_normal(self, x):
        return self.outward[np.argmin(self.edge_distances(x), axis=1)]

    def boundary_measure(self):
        return float(self.lengths.sum())

    def sample_own_boundary(self, n, rng, method):
        """Arc length s = u · perimeter, placed on the edge it falls in."""
        s = unit_samples(n, 1, rng, method)[:, 0] * self.lengths.sum()
        ends = np.cumsum(self.lengths)
        edge = np.minimum(np.searchsorted(ends, s, side="right"), len(ends) - 1)
        fraction = (s - (ends[edge] - self.lengths[edge])) / self.lengths[edge]
        return self.vertices[edge] + fraction[:, None] * self.edges[edge]

    def reordered(self, names):
        return Polygon(**{name: self.vertices[:, self.index(name)] for name in names})

    def __repr__(self) -> str:
        return f"Polygon({len(self.vertices)} vertices in {', '.join(self.names)})"
