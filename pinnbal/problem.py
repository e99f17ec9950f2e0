"""Problems and their loss terms: the declarative public contract.

A :class:`Problem` is a domain, named outputs, named loss terms, optionally a
reference solution, unknown coefficients and an output transform.  Problems
know nothing about balancing or training.  Every term yields a residual r
(what should be zero) on its points; its loss is ``mean(loss(r))``.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Callable, Sequence

import numpy as np
import torch

from .errors import ProblemError
from .csg import PROBE, Shape
from .geometry import Face
from .losses import pointwise_loss
from .points import Points
from .recipe import Recipe
from .reference import GridReference, LazyReference, ScatteredReference
from .selection import Selection

Value = float | Callable[[Points], torch.Tensor]
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
#: what the names that ``p`` already has mean; a coordinate, output or unknown cannot take one
RESERVED_MEANING = {"d": "the derivative function p.d(output, coordinate, ...)",
                    "coords": "all coordinates as one (N, d) tensor", "outputs": "all outputs as one (N, m) tensor"}
RESERVED = frozenset(RESERVED_MEANING)


class Term:
    """A named loss term; ``weight`` is its initial/fixed weight, ``loss`` its pointwise loss."""

    kind = "term"
    needs_derivatives = True
    has_points = True  # False: a penalty on the parameters (regularisation), no batch
    shares: str | None = None  # resolved: the earlier term whose points this one trains on (points="name")
    on_boundary = False  # its points lie on the boundary: p.nx and p.u_n are available

    def __init__(self, name: str, *, points: int, weight: float = 1.0, loss: str = "mse", outputs=None):
        self.name = name
        self.points = points
        self.weight = weight
        self.loss = loss
        self.outputs = None if outputs is None else list(outputs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, points={self.points})"

    def check(self, problem: "Problem", earlier: Sequence["Term"] = ()) -> "Term":
        """Validate against ``problem`` (a :class:`ProblemError` naming this term otherwise) and return the
        resolved term the engine trains on: its loss function, outputs, faces, observations.  The term the
        user wrote is never changed, so one term object can serve several problems.

        ``points="name"`` shares the points of an ``earlier`` (resolved) term of the same kind and faces: one
        batch, one forward pass and one derivative cache for both, two terms for every balancer."""
        resolved = copy.copy(self)
        owner = self.shared_owner(earlier) if isinstance(self.points, str) else None
        if owner is not None:
            resolved.shares, resolved.points = owner.shares or owner.name, owner.points
        resolved.resolve(problem)
        if owner is not None and getattr(resolved, "selection", None) != getattr(owner, "selection", None):
            raise ProblemError(f"term {self.name!r}: points={self.points!r} shares points on other faces; give both "
                               f"terms the same on=, or a number of points of its own")
        return resolved

    def shared_owner(self, earlier: Sequence["Term"]) -> "Term":
        """The earlier term named by ``points="name"``; one line when there is none of the same kind."""
        where = f"term {self.name!r}: points={self.points!r}"
        owner = next((t for t in earlier if t.name == self.points), None)
        if owner is None:
            names = [t.name for t in earlier if type(t) is type(self)]
            raise ProblemError(f"{where} names no earlier term; share the points of an earlier "
                               f"{type(self).__name__} ({', '.join(names) or 'there is none'}) or give a number")
        if type(owner) is not type(self) or not self.has_points:
            raise ProblemError(f"{where}: a {type(self).__name__} can share only the points of an earlier "
                               f"{type(self).__name__}, and {owner.name!r} is a {type(owner).__name__}")
        return owner

    def resolve(self, problem: "Problem") -> None:
        """Fill in what this term means in ``problem``, checking it on the way (called on a copy)."""
        where = f"term {self.name!r}"
        if not isinstance(self.name, str) or not NAME.match(self.name):
            raise ProblemError(f"term name {self.name!r}: use letters, digits, '_' or '-', starting with a letter")
        if isinstance(self.points, bool) or not isinstance(self.points, (int, np.integer)) or self.points <= 0:
            raise ProblemError(f"{where}: points={self.points!r}; need a positive integer")
        try:
            weight = float(self.weight)
        except (TypeError, ValueError):
            raise ProblemError(f"{where}: weight={self.weight!r} is not a number") from None
        if not math.isfinite(weight) or weight < 0:
            raise ProblemError(f"{where}: weight={self.weight!r}; need a finite number >= 0")
        self.loss_fn = pointwise_loss(self.loss, where)
        if self.outputs is None:
            self.outputs = list(problem.outputs)
        unknown = [o for o in self.outputs if o not in problem.outputs]
        if unknown or not self.outputs:
            raise ProblemError(f"{where}: outputs={self.outputs}; choose from {problem.outputs}")

    def sample(self, problem: "Problem", rng: np.random.Generator, method: str) -> tuple[np.ndarray, np.ndarray | None]:
        """Coordinates (N, d) for one batch and, for data terms, the values (N, k)."""
        raise NotImplementedError

    def residual(self, p: Points, values: torch.Tensor | None) -> torch.Tensor:
        """What should be zero on the batch ``p``, shape (N, c)."""
        raise NotImplementedError


class Residual(Term):
    """The PDE residual ``fn(p)`` on ``points`` interior points."""

    kind = "residual"

    def __init__(self, name: str, fn: Callable[[Points], torch.Tensor], *, points: int = 4096, weight=1.0, loss="mse"):
        super().__init__(name, points=points, weight=weight, loss=loss)
        self.fn = fn

    def resolve(self, problem: "Problem") -> None:
        super().resolve(problem)
        if not callable(self.fn):
            raise ProblemError(f"term {self.name!r}: the residual must be a function of p, got {self.fn!r}")

    def sample(self, problem, rng, method):
        return problem.domain.sample(self.points, rng, method), None

    def residual(self, p, values):
        return as_columns(self.fn(p), p.coords, f"term {self.name!r}", None, per_point=True)


class Boundary(Term):
    """A condition on the boundary: ``value`` (Dirichlet) or ``residual`` (Neumann, Robin, ...).

    ``on`` is a :class:`Face`, a shape (``on=hole``: the boundary points on
    its boundary) or a predicate ``lambda p: <bool tensor>``; omitted, the
    whole boundary (see :mod:`pinnbal.selection`).  ``value`` is a number or a
    callable of ``p`` returning (N, len(outputs)).  In ``residual``, ``p.nx``
    and ``p.u_n`` are the outward normal and the normal derivative.
    """

    kind = "boundary"
    on_boundary = True

    def __init__(
        self,
        name: str,
        *,
        on: Face | Shape | Callable[[Points], torch.Tensor] | None = None,
        value: Value | None = None,
        residual: Callable[[Points], torch.Tensor] | None = None,
        outputs: Sequence[str] | None = None,
        points: int = 512,
        weight=1.0,
        loss="mse",
    ):
        super().__init__(name, points=points, weight=weight, loss=loss, outputs=outputs)
        self.on = on
        self.value = value
        self.residual_fn = residual
        self.needs_derivatives = residual is not None

    def resolve(self, problem: "Problem") -> None:
        super().resolve(problem)
        where = f"term {self.name!r}"
        if (self.value is None) == (self.residual_fn is None):
            raise ProblemError(f"{where}: give exactly one of value= (a number or function) or residual= (a function)")
        if self.value is not None and not callable(self.value):
            try:
                v = float(self.value)
            except (TypeError, ValueError):
                raise ProblemError(f"{where}: value={self.value!r}; need a number or a function of p") from None
            if not math.isfinite(v):
                raise ProblemError(f"{where}: value={self.value!r} is not finite")
        if self.residual_fn is not None and not callable(self.residual_fn):
            raise ProblemError(f"{where}: residual= must be a function of p")
        self.selection = Selection(problem.domain, self.on, where)
        self.faces = self.selection.faces
        if self.faces is not None and self.points < len(self.faces):
            raise ProblemError(f"{where}: points={self.points} on {len(self.faces)} faces; give at least one point "
                               f"per face (points={len(self.faces)} or more)")

    def sample(self, problem, rng, method):
        return self.selection.sample(self.points, rng, method), None

    def residual(self, p, values):
        where = f"term {self.name!r}"
        if self.residual_fn is not None:
            return as_columns(self.residual_fn(p), p.coords, where, None, per_point=True)
        predicted = torch.cat([getattr(p, o) for o in self.outputs], dim=1)
        if callable(self.value):
            target = as_columns(self.value(p), p.coords, where + " value", len(self.outputs))
        else:
            target = float(self.value)
        return predicted - target


class Initial(Boundary):
    """An initial condition: a :class:`Boundary` on a time face (default ``Face(t=t_min)``)."""

    kind = "initial"

    def resolve(self, problem: "Problem") -> None:
        if self.on is None:
            if "t" not in problem.domain.names:
                raise ProblemError(f"term {self.name!r}: Initial needs on=pb.Face(<time>=<start>); the domain has no 't'")
            self.on = Face(t=float(problem.domain.low[problem.domain.index("t")]))
        super().resolve(problem)


class Data(Term):
    """Observations ``values`` (N, k) at ``x`` (N, d) of ``outputs`` (k of them)."""

    kind = "data"
    needs_derivatives = False

    def __init__(self, name: str, *, x, values, outputs: Sequence[str] | None = None, weight=1.0, loss="mse"):
        self.x_raw, self.values_raw = x, values
        super().__init__(name, points=1, weight=weight, loss=loss, outputs=outputs)

    def resolve(self, problem: "Problem") -> None:
        where = f"term {self.name!r}"
        try:
            x = np.asarray(self.x_raw, dtype=float)
            values = np.asarray(self.values_raw, dtype=float)
        except (TypeError, ValueError):
            raise ProblemError(f"{where}: x= and values= must be numeric arrays") from None
        d = problem.domain.dim
        if x.ndim == 1 and d == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != d:
            raise ProblemError(f"{where}: x has shape {x.shape}; need (N, {d}) for coordinates {problem.domain.names}")
        if values.ndim == 1:
            values = values[:, None]
        if values.shape[0] != x.shape[0]:
            raise ProblemError(f"{where}: x has {x.shape[0]} rows but values has {values.shape[0]}; they must match")
        if x.shape[0] == 0:
            raise ProblemError(f"{where}: no observations (x is empty)")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(values))):
            raise ProblemError(f"{where}: x or values contains NaN or inf; drop or fill those rows")
        dom = problem.domain
        slack = 1e-9 * (dom.high - dom.low)  # rounding in the user's own arithmetic is not a mistake
        outside = (x < dom.low - slack) | (x > dom.high + slack)
        beyond = ~dom.inside(x, PROBE * dom.diagonal)
        if not outside.any() and beyond.any():
            row = int(np.flatnonzero(beyond)[0])
            raise ProblemError(f"{where}: {beyond.sum()} of {len(x)} observations lie outside the domain (row {row}: "
                               f"{', '.join(f'{n} = {v:g}' for n, v in zip(dom.names, x[row]))}), in a hole or "
                               f"beyond a curved edge of {dom!r}")
        if outside.any():
            rows, cols = np.nonzero(outside)
            c = cols[0]
            raise ProblemError(
                f"{where}: {len(set(rows))} of {len(x)} observations lie outside the box (row {rows[0]}: "
                f"{dom.names[c]} = {x[rows[0], c]:g}, the box has {dom.names[c]} in [{dom.low[c]:g}, {dom.high[c]:g}]); "
                f"the columns of x are the box's coordinates in order ({', '.join(dom.names)})")
        self.x, self.values = x, values
        self.points = x.shape[0]
        super().resolve(problem)
        if values.shape[1] != len(self.outputs):
            raise ProblemError(
                f"{where}: values has {values.shape[1]} columns but outputs={self.outputs}; they must match"
            )

    def sample(self, problem, rng, method):
        return self.x, self.values

    def residual(self, p, values):
        return torch.cat([getattr(p, o) for o in self.outputs], dim=1) - values


class Regularisation(Term):
    """A penalty on the network's weight matrices, balanced like any other term (weight decay as a term).

    The penalty is a mean over every weight of the network's linear layers
    (biases and unknown coefficients excluded), so a weight means the same
    for any width and depth.  It has no points; balancers see it as one more
    loss L_k.  Subclasses write :meth:`penalty_of`.

    Its weight stays as declared under every weight balancer unless
    ``balanced=True``: a balancer that equalises gradient magnitudes lifts a
    penalty's small gradient like any other (``lra`` took ``pb.L2(weight=1e-4)``
    to its bound of 1000, where weight decay dominates the loss).
    """

    kind = "regularisation"
    needs_derivatives = False
    has_points = False

    def __init__(self, name: str, *, weight: float = 1e-4, balanced: bool = False):
        super().__init__(name, points=1, weight=weight)
        self.balanced = balanced

    def sample(self, problem, rng, method):
        raise ProblemError(f"term {self.name!r}: a regularisation term has no points")

    def penalty(self, model) -> torch.Tensor:
        """The penalty on ``model`` (a :class:`pinnbal.nets.PINNModel`), a scalar with graph."""
        weights = torch.cat([m.weight.reshape(-1) for m in model.linear_layers()])  # time windows: the active one's
        return self.penalty_of(weights)

    def penalty_of(self, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class L1(Regularisation):
    """mean |w| over the network's weights (lasso: pushes weights to exactly zero)."""

    def __init__(self, name: str = "l1", *, weight: float = 1e-4, balanced: bool = False):
        super().__init__(name, weight=weight, balanced=balanced)

    def penalty_of(self, w):
        return w.abs().mean()


class L2(Regularisation):
    """mean w² over the network's weights (ridge / weight decay)."""

    def __init__(self, name: str = "l2", *, weight: float = 1e-4, balanced: bool = False):
        super().__init__(name, weight=weight, balanced=balanced)

    def penalty_of(self, w):
        return w.square().mean()


class ElasticNet(Regularisation):
    """ρ mean|w| + (1 − ρ) mean w² (Zou & Hastie 2005); ``l1_ratio`` = ρ in [0, 1]."""

    def __init__(self, name: str = "elasticnet", *, weight: float = 1e-4, l1_ratio: float = 0.5,
                 balanced: bool = False):
        super().__init__(name, weight=weight, balanced=balanced)
        self.l1_ratio = l1_ratio

    def resolve(self, problem: "Problem") -> None:
        super().resolve(problem)
        if not (isinstance(self.l1_ratio, (int, float)) and 0.0 <= self.l1_ratio <= 1.0):
            raise ProblemError(f"term {self.name!r}: l1_ratio={self.l1_ratio!r}; need a number in [0, 1]")

    def penalty_of(self, w):
        return self.l1_ratio * w.abs().mean() + (1.0 - self.l1_ratio) * w.square().mean()


def as_columns(result, coords: torch.Tensor, where: str, width: int | None, per_point: bool = False) -> torch.Tensor:
    """Normalise a user callable's result on the points ``coords`` (n, d) to shape (n, c); a clear error otherwise.

    A number or 0-dim tensor is a constant column (a boundary value, a
    reference), on the points' device and dtype; ``per_point`` (residuals)
    refuses it: a residual reduced to one number would train a different loss.
    """
    n = coords.shape[0]
    if isinstance(result, (tuple, list)):
        result = torch.cat([as_columns(r, coords, where, None, per_point) for r in result], dim=1)
    scalar = isinstance(result, (int, float)) or (isinstance(result, torch.Tensor) and result.ndim == 0)
    if scalar and per_point:
        raise ProblemError(f"{where}: returned a single number; a residual needs one value per point, "
                           f"shape ({n}, 1) (did it take a mean or sum?)")
    if not isinstance(result, torch.Tensor):
        if isinstance(result, (int, float)):
            return torch.full((n, width or 1), float(result), dtype=coords.dtype, device=coords.device)
        raise ProblemError(f"{where}: returned {type(result).__name__}; need a tensor of shape ({n}, k)")
    if result.ndim == 0:
        result = result.expand(n, 1)
    elif result.ndim == 1 and result.shape[0] == n:
        result = result[:, None]
    if result.ndim != 2 or result.shape[0] != n or (width is not None and result.shape[1] not in (1, width)):
        want = f"({n}, {width})" if width else f"({n}, 1) or ({n}, k)"
        raise ProblemError(f"{where}: returned shape {tuple(result.shape)}; need {want}")
    return result


def as_names(value) -> list:
    """A name or an iterable of names as a list (anything else as a one-item list, for validation to refuse)."""
    if isinstance(value, str):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


class Problem:
    """A PINN problem: domain, outputs, terms, and optionally reference, unknowns, transform.

    ``transform(p, u)``, if given, maps the raw network output u (N, m) to
    the problem's outputs (hard constraints), with ``p`` giving coordinates.
    ``error_outputs`` names the outputs the overall rel L2 (``metrics.json``'s
    ``rel_l2``, the benchmarks) is measured on: default every output.  A
    pressure fixed only up to a gauge, or singular at a corner, would
    otherwise weigh in a velocity comparison; every output's own error is
    reported either way (``rel_l2_per_output``).
    """

    def __init__(
        self,
        name: str,
        domain: Box,
        outputs: Sequence[str],
        terms: Sequence[Term],
        reference=None,
        unknowns: dict[str, float] | None = None,
        transform: Callable[[Points, torch.Tensor], torch.Tensor] | None = None,
        weights: Callable[[dict], dict] | None = None,
        recipe: Recipe | None = None,
        error_outputs: Sequence[str] | None = None,
    ):
        self.name = name
        self.domain = domain
        self.outputs = list(outputs) if not isinstance(outputs, str) else [outputs]
        self.terms = list(terms)
        self.reference = reference
        self.unknowns = dict(unknowns or {})
        self.transform = transform
        self.rules = weights  # term weights by user rule (``--balancer rules``); a problem file's `def weights`
        self.recipe = recipe  # the settings `pinnbal run` uses unless told otherwise; a problem file's `recipe`
        self.error_outputs = list(self.outputs) if error_outputs is None else as_names(error_outputs)
        self.validate()

    @property
    def term_names(self) -> list[str]:
        return [t.name for t in self.terms]

    @property
    def observations(self) -> int:
        """How many observed values the problem's ``pb.Data`` terms hold together (0: none)."""
        return sum(int(t.points) for t in self.terms if t.kind == "data")

    @property
    def time(self) -> str | None:
        """The time coordinate: the axis of the first ``pb.Initial`` term's face, else ``t`` if there is one."""
        initial = next((t for t in self.terms if t.kind == "initial"), None)
        if initial is not None and initial.faces:
            return self.domain.names[initial.faces[0][0]]
        return "t" if "t" in self.domain.names else None

    def validate(self) -> None:
        if not isinstance(self.name, str) or not NAME.match(self.name):
            raise ProblemError(f"Problem name {self.name!r}: use letters, digits, '_' or '-', starting with a letter")
        if not isinstance(self.domain, Shape):
            raise ProblemError(f"problem {self.name!r}: domain must be a shape (pb.Box, pb.Disk, pb.Ball, pb.Polygon "
                               f"or a combination), got {type(self.domain).__name__}")
        if self.domain.volume_fraction() < 1e-3:
            raise ProblemError(f"problem {self.name!r}: the domain {self.domain!r} fills "
                               f"{self.domain.volume_fraction():.1e} of its bounding box, (near) zero volume; check "
                               f"the shapes (a hole larger than the plate? an empty intersection?)")
        if not self.outputs or not all(isinstance(o, str) and o.isidentifier() for o in self.outputs):
            raise ProblemError(f"problem {self.name!r}: outputs={self.outputs!r}; need a list of names like ['u']")
        for name, value in self.unknowns.items():
            if not name.isidentifier():
                raise ProblemError(f"problem {self.name!r}: unknown {name!r} is not a valid name")
            try:
                ok = math.isfinite(float(value))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ProblemError(f"problem {self.name!r}: unknown {name!r} needs a finite initial value, got {value!r}")
        names = self.domain.names + self.outputs + list(self.unknowns)
        taken = sorted(set(names) & RESERVED)
        if taken:
            raise ProblemError(f"problem {self.name!r}: {taken[0]!r} cannot name a coordinate, output or unknown: "
                               f"p.{taken[0]} is already {RESERVED_MEANING[taken[0]]}; rename it")
        clash = sorted({n for n in names if names.count(n) > 1})
        if clash:
            raise ProblemError(
                f"problem {self.name!r}: {clash[0]!r} is used more than once among coordinates, "
                f"outputs and unknowns; rename one"
            )
        unmeasured = [o for o in self.error_outputs if o not in self.outputs]
        if not self.error_outputs or unmeasured:
            raise ProblemError(f"problem {self.name!r}: error_outputs={self.error_outputs!r}; name one or more of the "
                               f"outputs {', '.join(self.outputs)}")
        if not self.terms:
            raise ProblemError(f"problem {self.name!r}: no terms; add at least a pb.Residual")
        for term in self.terms:
            if not isinstance(term, Term):
                raise ProblemError(f"problem {self.name!r}: {term!r} is not a term (pb.Residual, pb.Boundary, ...)")
        resolved: list[Term] = []
        for term in self.terms:
            resolved.append(term.check(self, resolved))
        self.terms = resolved
        seen = [t.name for t in self.terms]
        dup = sorted({n for n in seen if seen.count(n) > 1})
        if dup:
            raise ProblemError(f"problem {self.name!r}: two terms are named {dup[0]!r}; term names must be unique")
        if self.reference is not None and not (
            callable(self.reference) or isinstance(self.reference, (GridReference, LazyReference, ScatteredReference))
        ):
            raise ProblemError(f"problem {self.name!r}: reference must be a function of p, a pb.GridReference or a "
                               f"pb.ScatteredReference")
        if self.transform is not None and not callable(self.transform):
            raise ProblemError(f"problem {self.name!r}: transform must be a function (p, u) -> u")
        if self.rules is not None and not callable(self.rules):
            raise ProblemError(f"problem {self.name!r}: weights must be a function (state) -> {{term: weight}}")

    def evaluation_set(self, n_grid: int = 20000) -> tuple[np.ndarray, np.ndarray | None]:
        """Points (N, d) and reference values (N, m) that accuracy is measured on."""
        if self.reference is None:
            return self.domain.grid(n_grid), None
        if not callable(self.reference):
            x, v = self.reference.arrays(self.domain.names, self.outputs)
            return x, v
        x = self.domain.grid(n_grid)
        return x, self.reference_at(x)

    def solution_grid(self, n_per_axis: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray | None]:
        """A grid over the first one or two coordinates for pictures (others at mid-box).

        Returns the axes, the points (N, d) and the reference there (or None).
        A grid reference over exactly these coordinates is used as it is.
        """
        dom, ref = self.domain, self.reference
        grid_ref = None if ref is None or callable(ref) else ref.resolve()
        if grid_ref is not None and grid_ref.axes and dom.dim <= 2 and set(grid_ref.axes) == set(dom.names):
            x, v = grid_ref.arrays(dom.names, self.outputs)
            return [grid_ref.axes[n] for n in dom.names], x, v
        axes = [np.linspace(dom.low[i], dom.high[i], n_per_axis) for i in range(min(dom.dim, 2))]
        mesh = np.meshgrid(*axes, indexing="ij")
        x = np.tile((dom.low + dom.high) / 2, (mesh[0].size, 1))
        for i, m in enumerate(mesh):
            x[:, i] = m.ravel()
        return axes, x, self.reference_on(x)

    def outside(self, x: np.ndarray) -> np.ndarray:
        """Which points of a picture grid lie outside the domain (in a hole): drawn empty."""
        return ~self.domain.inside(x, PROBE * self.domain.diagonal)

    def reference_on(self, x: np.ndarray) -> np.ndarray | None:
        """The reference at picture points ``x``, NaN outside the domain (None without a reference)."""
        ref = self.reference
        if ref is None or not (callable(ref) or isinstance(ref, ScatteredReference)):
            return None
        values = np.full((len(x), len(self.outputs)), np.nan)
        inside = ~self.outside(x)
        values[inside] = self.reference_at(x[inside]) if callable(ref) else ref.at(x[inside], self.outputs)
        return values

    def reference_at(self, x: np.ndarray) -> np.ndarray:
        """The closed-form reference at points ``x`` (N, d), shape (N, m)."""
        coords = torch.as_tensor(x, dtype=torch.float64)
        unknowns = {k: torch.tensor(float(v), dtype=torch.float64) for k, v in self.unknowns.items()}
        p = Points(coords, self.domain.names, [], None, unknowns, where="reference")
        with torch.no_grad():
            values = as_columns(self.reference(p), coords, "reference", len(self.outputs))
        values = values.expand(len(x), len(self.outputs)).detach().cpu().numpy().astype(float)
        if not np.all(np.isfinite(values)):
            raise ProblemError("reference: returned NaN or inf")
        return values

    def describe(self) -> str:
        """A human summary for ``pinnbal info``."""
        spans = ", ".join(f"{n} in [{lo:g}, {hi:g}]" for n, lo, hi in zip(self.domain.names, self.domain.low, self.domain.high))
        lines = [f"problem   {self.name}", f"domain    {spans}"]
        if not self.domain.is_box():
            lines[-1] += f"  (bounding box of {self.domain!r}, {self.domain.volume_fraction():.0%} of it inside)"
        if self.domain.periodic:
            lines.append(f"periodic  {', '.join(self.domain.periodic)} (exactly, through a cos/sin input map)")
        lines.append(f"outputs   {', '.join(self.outputs)}" + ("  (through transform=)" if self.transform else ""))
        if self.unknowns:
            lines.append("unknowns  " + ", ".join(f"{k} (init {v:g})" for k, v in self.unknowns.items()))
        lines.append("terms")
        for t in self.terms:
            extra = t.selection.describe() if hasattr(t, "selection") else ""
            extra += f", the points of {t.shares}" if t.shares else ""
            if not t.has_points:
                lines.append(f"  {t.name:<12} {t.kind:<9} {type(t).__name__} penalty on the network weights  "
                             f"weight {float(t.weight):g}")
                continue
            lines.append(f"  {t.name:<12} {t.kind:<9} {t.points:>7} points  weight {float(t.weight):g}  loss {t.loss}{extra}")
        ref = "none" if self.reference is None else ("closed form" if callable(self.reference) else
                                                     "scattered" if isinstance(self.reference, ScatteredReference) else "grid")
        lines.append(f"reference {ref}" + ("" if self.error_outputs == self.outputs else
                                           f"  (rel L2 measured on {', '.join(self.error_outputs)})"))
        if self.rules is not None:
            lines.append("rules     a weights(state) function, used with --balancer rules")
        if self.recipe is not None:
            lines.append(f"recipe    {self.recipe.describe()}")
        return "\n".join(lines)
