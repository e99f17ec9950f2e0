"""Point batches and one evaluation of every loss term on them.

:class:`Batches` holds each term's current points (drawn by the problem's
sampler, redrawn on request; a term declared with ``points="other"`` holds
the very tensor of ``other``); :func:`evaluate_terms` runs the model on them,
once per distinct batch,
and returns each term's residual, its pointwise loss ℓ_i and the term
losses L_k, which the balancer's ``losses`` hook may form (per-point
weights) instead of the plain mean.  The derivatives a batch's terms read
(found once by running them on the first batch) are carried forward through the
network (:mod:`pinnbal.forward`) unless ``--derivatives autograd``.
"""

from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass, field

import numpy as np
import torch

from . import forward
from .errors import OptionError
from .nets import PINNModel
from .points import Points, labelled
from .problem import Problem

#: candidate points scored per forward pass in residual-based sampling (bounds its memory)
CHUNK = 8192


class Batches:
    """Each term's current point batch as tensors, redrawn on request.

    ``part="validation"`` draws a held-out set from its own random stream
    (fresh collocation, boundary and initial points) and, for ``Data``
    terms, the fraction ``holdout`` of the observations that the training
    part (built with the same ``holdout``) never sees.  Regularisation terms
    have no points (``x`` is None).
    """

    def __init__(self, problem: Problem, config, device, dtype, part: str = "train",
                 holdout: float = 0.0):
        self.problem, self.config = problem, config
        self.device, self.dtype = device, dtype
        self.part, self.holdout = part, holdout
        self.rng = np.random.default_rng(config.seed if part == "train" else [config.seed, 1])
        self.keys: dict[str, frozenset | None] = {}  # owner term -> the derivatives its batch's terms read
        self.compiled: dict[str, forward.Compiled] | None = None  # owner term -> its compiled losses (--compile)
        self.draw()

    def draw(self) -> None:
        self.items = []
        for term in self.problem.terms:
            if not term.has_points or term.shares:  # a sharer gets its owner's tensor from relink()
                self.items.append((term, None, None))
                continue
            x, values = term.sample(self.problem, self.rng, self.config.sampler)
            if term.kind == "data" and self.holdout:
                x, values = self.split(x, values)
            # contiguous copies: a user's flipped or strided view (x[::-1]) is a valid array torch cannot wrap
            xt = torch.as_tensor(np.ascontiguousarray(x), dtype=self.dtype,
                                 device=self.device).requires_grad_(self.needs_grad(term))
            vt = None if values is None else torch.as_tensor(np.ascontiguousarray(values), dtype=self.dtype,
                                                              device=self.device)
            self.items.append((term, xt, vt))
        self.relink()

    def needs_grad(self, term) -> bool:
        """Whether ``term``'s points need derivatives: its own, or those of a term sharing them."""
        return term.needs_derivatives or any(t.needs_derivatives for t in self.problem.terms if t.shares == term.name)

    def relink(self) -> None:
        """Every term declared with ``points="other"`` on ``other``'s current tensor (after a draw, a redraw,
        a cast or a restore): one batch, so one forward pass and one derivative cache."""
        owners = {t.name: x for t, x, _ in self.items if not t.shares}
        self.items = [(t, owners[t.shares] if t.shares else x, v) for t, x, v in self.items]

    def split(self, x: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This part's share of the observations: a fixed random ``holdout`` fraction is validation."""
        n = len(x)
        if n < 2:  # a single observation: both parts use it
            return x, values
        held = min(max(int(round(self.holdout * n)), 1), n - 1)
        order = np.random.default_rng([self.config.seed, 2]).permutation(n)
        rows = order[:held] if self.part == "validation" else order[held:]
        return x[rows], values[rows]

    def redraw_by_residual(self, model: PINNModel, k: int, candidates: int, select, add: int | None = None) -> None:
        """Residual-based adaptive sampling of term ``k``'s points (RAD, RAR-D).

        A dense set of ``candidates`` × N fresh points (N the term's declared count, drawn by the run's
        sampler from this batch's random stream) is scored by its pointwise loss ℓ, evaluated
        :data:`CHUNK` points at a time; ``select(ℓ, n, rng)`` returns the indices of the n it picks.
        ``add`` None: the term's points are replaced by n = (their count) picked ones (RAD).  ``add`` = m:
        the term keeps its points, first and in order, and the m picked ones are appended after them
        (RAR-D): per-point state of the kept points stays theirs (see
        :func:`pinnbal.balancers.pointwise.resize_point_state`).  ``add=0`` leaves the term as it is.
        """
        term, x, values = self.items[k]
        if term.shares:  # its points follow the term it shares them with
            return
        if values is not None:
            raise ValueError(f"term {term.name!r}: observations are fixed; residual-based sampling moves only "
                             f"sampled points (residual, boundary, initial terms)")
        if add == 0:
            return
        pool = np.concatenate([term.sample(self.problem, self.rng, self.config.sampler)[0] for _ in range(candidates)])
        chosen = pool[select(self.pointwise_loss(model, term, pool), len(x) if add is None else add, self.rng)]
        new = torch.as_tensor(chosen, dtype=self.dtype, device=self.device)
        if add is not None:
            new = torch.cat([x.detach(), new])
        self.items[k] = (term, new.requires_grad_(self.needs_grad(term)), values)
        self.relink()

    def pointwise_loss(self, model: PINNModel, term, pool: np.ndarray) -> np.ndarray:
        """The pointwise loss ℓ of ``term`` at each point of ``pool`` (M, d), :data:`CHUNK` points at a time."""
        ell = []
        for chunk in np.array_split(pool, max(1, math.ceil(len(pool) / CHUNK))):
            xt = torch.as_tensor(chunk, dtype=self.dtype, device=self.device)
            if self.derivative_keys(model, term.shares or term.name) is None:  # autograd needs a graph
                r = term.residual(self.term_points(model, term, xt.requires_grad_(term.needs_derivatives)), None)
            else:
                with torch.no_grad():
                    r = term.residual(self.term_points(model, term, xt), None)
            ell.append(term.loss_fn(r).mean(dim=1).detach().double().cpu().numpy())
        return np.concatenate(ell)

    def derivative_keys(self, model: PINNModel, owner: str) -> frozenset | None:
        """The (output, coordinates) derivatives the terms on ``owner``'s points read, to be taken forward;
        None: by autograd (``--derivatives autograd``, or a network without forward rules under ``auto``)."""
        if owner not in self.keys:
            mode = getattr(self.config, "derivatives", "autograd")
            reason = None if mode == "autograd" else forward.supports(model)
            if mode == "forward" and reason is not None:
                raise OptionError(f"--derivatives forward: {reason}; use --derivatives autograd")
            if mode == "auto" and reason is not None and not self.keys:
                sys.stderr.write(f"pinnbal: derivatives by autograd: {reason}\n")
            if mode == "autograd" or reason is not None:
                self.keys[owner] = None
            else:
                items = [(t, x, v) for t, x, v in self.items if x is not None and (t.shares or t.name) == owner]
                # probed on the whole batch: a mistake in the user's residual reads as on any other step
                self.keys[owner] = forward.term_keys(model, [t for t, _, _ in items], items[0][1],
                                                     [v for _, _, v in items], n=len(items[0][1]))
        return self.keys[owner]

    def term_points(self, model: PINNModel, term, x: torch.Tensor) -> Points:
        """The ``p`` of ``term`` on ``x`` (one of its batch's tensors, or candidates like them)."""
        p = model.points(x, where=f"term {term.name!r}", on_boundary=term.on_boundary)
        keys = self.derivative_keys(model, term.shares or term.name)
        return p if keys is None else forward.as_forward(p, keys)

    def compiled_losses(self, model: PINNModel, owner: str) -> forward.Compiled:
        """``owner``'s batch as one compiled function (x, values) → [(residual, ℓ)] of its terms (made on first
        use; see :mod:`pinnbal.train.compiling`)."""
        if owner not in self.compiled:
            terms = [t for t, x, _ in self.items if x is not None and (t.shares or t.name) == owner]
            self.compiled[owner] = forward.compiled_batch_losses(model, terms, self.derivative_keys(model, owner))
        return self.compiled[owner]

    def cast(self, dtype: torch.dtype) -> None:
        """Every batch (points and values) in ``dtype`` from now on, later draws included."""
        self.dtype = dtype
        self.items = [(t, None if x is None else x.detach().to(dtype).requires_grad_(x.requires_grad),
                       None if v is None else v.to(dtype)) for t, x, v in self.items]
        self.relink()

    def leaves(self, n: int | None = None) -> "Batches":
        """A view of these batches (the first ``n`` points of each, or all) as new autograd leaves.

        Derivatives taken on it (p.u_x) are partial derivatives at fixed parameters even when the
        parameters are themselves functions of the original points (a look-ahead θ'(x)), and its graph
        is its own.
        """
        view = copy.copy(self)
        view.compiled = None  # a view is evaluated by other models (look-ahead, NTK): never the compiled loss
        view.items = [(t, None, None) if x is None else
                      (t, x[:n].detach().clone().requires_grad_(x.requires_grad), None if v is None else v[:n])
                      for t, x, v in self.items]
        view.relink()
        return view

    @property
    def points(self) -> list[torch.Tensor | None]:
        return [None if x is None else x.detach() for _, x, _ in self.items]


@dataclass
class TermValues:
    """One evaluation of every term on a batch: residuals (N_k, c), pointwise losses ℓ (N_k,), term losses.

    ``terms`` are the K term losses as separate scalars (what per-term
    gradients are taken from: the backward of one never walks another's
    graph); ``losses`` is the same stacked, (K,), for the weighted sum.
    """

    residuals: list[torch.Tensor | None]
    pointwise: list[torch.Tensor]
    terms: list[torch.Tensor]
    losses: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.losses = torch.stack(self.terms)

    @property
    def means(self) -> torch.Tensor:
        """The plain mean pointwise loss of each term, detached (what the history records)."""
        return torch.stack([ell.detach().mean() for ell in self.pointwise])


def evaluate_terms(model: PINNModel, batches: Batches, balancer=None,
                   state: dict | None = None) -> TermValues:
    """Every term's residual and pointwise loss; the term losses by ``balancer.losses`` (default: means)."""
    residuals, pointwise = [], []
    shared: dict[int, Points] = {}  # one Points (forward pass, derivative cache) per distinct batch tensor
    compiled: dict[str, object] = {}  # owner -> the iterator over its terms' (residual, ℓ) (--compile)
    for term, x, values in batches.items:
        if x is None:  # a regularisation term: a penalty on the parameters, one "point"
            residuals.append(None)
            pointwise.append(term.penalty(model).reshape(1))
            continue
        if batches.compiled is not None:
            owner = term.shares or term.name
            if owner not in compiled:
                observed = [v for t, x_, v in batches.items if x_ is not None and (t.shares or t.name) == owner]
                normals = model.normals_at(x) if term.on_boundary else None
                compiled[owner] = iter(batches.compiled_losses(model, owner)(x, observed, normals))
            r, ell = next(compiled[owner])
            residuals.append(r)
            pointwise.append(ell)
            continue
        p = shared.get(id(x))
        if p is None:
            p = shared[id(x)] = batches.term_points(model, term, x)
        r = term.residual(labelled(p, f"term {term.name!r}"), values)
        residuals.append(r)
        pointwise.append(term.loss_fn(r).mean(dim=1))
    terms = [ell.mean() for ell in pointwise] if balancer is None else balancer.losses(pointwise, batches.points, state)
    return TermValues(residuals, pointwise, list(terms))


def term_losses(model: PINNModel, batches: Batches) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    """The K term losses (mean pointwise loss of each term's residual), shape (K,), and the residuals."""
    values = evaluate_terms(model, batches)
    return values.losses, values.residuals
