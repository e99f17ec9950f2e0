"""Weights inside a term: per-point schemes, alone or combined with a term-level balancer.

A per-point scheme gives every point i of a term a multiplier m_i (detached
from the graph) and the term loss becomes L_k = mean_i m_i ℓ_i, where ℓ_i is
the problem's pointwise loss (``mse`` by default, ℓ_i = r_i²).  Alone
(``--balancer rba``) the term weights stay at their initial values; combined
(``--balancer lra+rba``, see :mod:`pinnbal.balancers.compose`) the term-level
balancer sets them and sees the point-weighted losses.

Schemes that need the residual magnitude use |r_i| = √ℓ_i, exact for the
default ``mse`` loss of a one-column residual (for several columns it is the
root mean square over them; for other losses a monotone stand-in).

Per-point state follows the points it belongs to (:func:`resize_point_state`):
when the batches are redrawn (``--resample-every``, ``rad``) it starts afresh;
when ``rar`` (RAR-D) appends points, the kept points keep theirs and the new
ones start at the scheme's initial value.  Option ``terms``: ``all`` (every term
with points) or ``residual`` (PDE terms only).

Residual-based adaptive sampling (``rad``, ``rar``) moves or adds points
instead of weighting them; it is a per-point scheme too, so it combines with a
term-level method (``lra+rad``) and with weights (``rba+rar``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..adam import adam_moments
from ..errors import OptionError
from .base import Balancer, Stats, finite

KINDS = {"all": ("residual", "boundary", "initial", "data"), "residual": ("residual",)}


class PointScheme(Balancer):
    """Base of the per-point schemes: term weights fixed, points weighted by :meth:`multipliers`."""

    point_scheme = True

    options = {"terms": "all"}

    def check_options(self) -> None:
        super().check_options()
        if self.opts["terms"] not in KINDS:
            raise OptionError(f"balancer {self.name!r}: terms={self.opts['terms']!r}; choose all or residual")

    # -- what a scheme writes ---------------------------------------------------------------------
    def point_state(self) -> dict[str, float]:
        """This scheme's per-point state: entry prefix -> initial value; entries are ``<prefix>/<term>``,
        one value per point of each selected term."""
        return {}

    def init_points(self, terms) -> dict[str, torch.Tensor]:
        """This scheme's own state entries (names prefixed with the scheme's name)."""
        return {f"{prefix}/{t.name}": torch.full((t.points,), initial, dtype=torch.float64)
                for t, on in zip(terms, self.selected) if on for prefix, initial in self.point_state().items()}

    def update_points(self, stats: Stats, state: dict, step: int) -> dict:
        """Move the per-point state from this step's pointwise losses; return the entries that changed."""
        return {}

    def multipliers(self, pointwise: list[torch.Tensor], points: list, state: dict) -> list[torch.Tensor | None]:
        """Per term, the point multipliers m (N_k,) or None (plain mean)."""
        raise NotImplementedError

    # -- the Balancer interface, shared by every scheme ------------------------------------------
    def term_kinds(self) -> tuple[str, ...]:
        """The term kinds this scheme acts on (option ``terms``)."""
        return KINDS[self.opts["terms"]]

    def init(self, terms):
        self.terms = list(terms)
        self.selected = [t.kind in self.term_kinds() for t in terms]
        return super().init(terms) | self.init_points(terms)

    def target(self, stats, state, *, step, progress):
        if stats.pointwise is not None and all(finite(ell) for ell in stats.pointwise):
            state.update(self.update_points(stats, state, step))
        return state["weights"]

    def losses(self, pointwise, points, state):
        return weighted_means(pointwise, self.multipliers(pointwise, points, state))

    def redrawn(self, state):
        return state | self.init_points(self.terms)

    # -- per-point state that matches the points ---------------------------------------------------
    def fitted(self, state: dict, prefix: str, term, n: int) -> torch.Tensor:
        """Entry ``<prefix>/<term>`` fitted to the term's ``n`` current points (:func:`resize_point_state`)."""
        return resize_point_state(state.get(f"{prefix}/{term.name}"), n, self.point_state()[prefix])

    def fit_points(self, state: dict, sizes: list[int | None]) -> dict:
        """``state`` with every per-point entry fitted to terms of ``sizes`` points (after RAR-D appended
        points: the kept points keep their state, the new ones start at the initial value)."""
        state = dict(state)
        for t, on, n in zip(self.terms, self.selected, sizes):
            if on and n is not None:
                state |= {f"{prefix}/{t.name}": self.fitted(state, prefix, t, n) for prefix in self.point_state()}
        return state


def resize_point_state(values: torch.Tensor | None, n: int, initial: float) -> torch.Tensor:
    """Per-point state ``values`` (m,) of one term, fitted to the ``n`` points the term trains on now.

    The state can lag its batch: it is sized from the declared point count (a ``--holdout`` trains a data
    term on fewer observations), RAR-D appends points, a checkpoint from before a change is resumed.  The
    rule, used by every scheme with per-point state (``rba``, ``sa``):

    - ``n == m``: unchanged;
    - ``n > m``: points were appended.  Batches only grow by RAR-D, which keeps the existing points first,
      in order, and appends the new ones (:meth:`pinnbal.batches.Batches.redraw_by_residual`); every
      change that replaces points (``--resample-every``, RAD) restarts the state through
      :meth:`PointScheme.redrawn`.  So the first m points are the old ones and keep their state; the
      n − m new ones start at ``initial``;
    - ``n < m``, or no state yet (``values`` None): a different set of points; the term starts afresh,
      n × ``initial``.

    A new tensor (float64 on the CPU, like all per-point state); ``values`` is never modified.
    """
    m = 0 if values is None else len(values)
    if values is not None and m == n:
        return values
    fresh = torch.full((n,), float(initial), dtype=torch.float64)
    if values is not None and n > m:
        fresh[:m] = values.to(fresh)
    return fresh


def weighted_means(pointwise: list[torch.Tensor], multipliers: list[torch.Tensor | None]) -> list[torch.Tensor]:
    """L_k = mean_i m_i ℓ_i (m detached), or the plain mean where m is None."""
    return [ell.mean() if m is None else (m.to(ell).detach() * ell).mean() for ell, m in zip(pointwise, multipliers)]


def magnitude(ell: torch.Tensor) -> torch.Tensor:
    """|r_i| from the pointwise loss: √ℓ_i (exact for mse)."""
    return ell.detach().clamp_min(0).sqrt()


class RBA(PointScheme):
    """Residual-based attention (Anagnostopoulos, Toscano, Stergiopulos & Karniadakis 2024,
    "Residual-based attention in physics-informed neural networks", CMAME 421, eq. 10–11).

    Every step each point's attention moves toward its normalised residual::

        λ_i ← γ λ_i + η |r_i| / max_j |r_j|,        L_k = mean_i λ_i^p ℓ_i

    λ starts at 0 and stays in [0, η/(1 − γ)] by construction; each step's loss uses the λ
    updated from that step's residuals.  The paper
    weights the residual before squaring, (λ_i r_i)², which is p = 2.
    Options: gamma=0.999, eta=0.01, power=2, terms=all.
    """

    name = "rba"
    summary = "residual-based attention (Anagnostopoulos et al. 2024): lambda <- gamma lambda + eta |r|/max|r|"
    options = {"gamma": 0.999, "eta": 0.01, "power": 2.0, "terms": "all"}

    def check_options(self) -> None:
        super().check_options()
        if not 0.0 <= self.opts["gamma"] < 1.0 or self.opts["eta"] <= 0 or self.opts["power"] <= 0:
            raise OptionError(f"balancer 'rba': need 0 <= gamma < 1, eta > 0 and power > 0; got {self.opts}")

    def point_state(self):
        return {"rba": 0.0}

    def attention(self, ell: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """γ λ + η |r| / max|r| from this step's pointwise losses."""
        r = magnitude(ell).double().cpu()
        return self.opts["gamma"] * previous + self.opts["eta"] * r / r.max().clamp_min(1e-300)

    def update_points(self, stats, state, step):
        return {f"rba/{t.name}": self.attention(ell, self.fitted(state, "rba", t, len(ell)))
                for t, on, ell in zip(self.terms, self.selected, stats.pointwise) if on}

    def multipliers(self, pointwise, points, state):
        # the step's loss uses the attention updated from this step's residuals (the paper's order)
        return [self.attention(ell, self.fitted(state, "rba", t, len(ell))) ** self.opts["power"] if on else None
                for t, on, ell in zip(self.terms, self.selected, pointwise)]


class SA(PointScheme):
    """Self-adaptive weights (McClenny & Braga-Neto 2023, "Self-adaptive physics-informed neural
    networks", J. Comput. Phys. 474, eq. 6–8): trainable point weights that the loss maximises.

    The network minimises and the weights maximise L_k(θ, λ) = mean_i m(λ_i) ℓ_i with the polynomial
    mask m(λ) = λ^q; λ takes an Adam ascent step (the paper's optimiser) on

        ∂L_k/∂λ_i = q λ_i^(q−1) ℓ_i / N_k

    so points with large residuals gain weight.  λ starts at ``init`` and is kept in [0, max].  Each
    point's Adam moments and step count are its own: a point that RAR-D appends starts its bias correction.
    Options: lr=0.005, q=2, init=1, max=1000, terms=all.
    """

    name = "sa"
    summary = "self-adaptive point weights (McClenny & Braga-Neto 2023): Adam ascent on mask(lambda_i)"
    options = {"lr": 0.005, "q": 2.0, "init": 1.0, "max": 1e3, "terms": "all"}
    BETAS = (0.9, 0.999)

    def check_options(self) -> None:
        super().check_options()
        o = self.opts
        if o["lr"] < 0 or o["q"] <= 0 or not 0 <= o["init"] <= o["max"]:
            raise OptionError(f"balancer 'sa': need lr >= 0, q > 0 and 0 <= init <= max; got {o}")

    def point_state(self):
        # λ, its Adam moments and its Adam step count: per point, so that points RAR-D appends start
        # their own bias correction
        return {"sa": self.opts["init"], "sa_m": 0.0, "sa_v": 0.0, "sa_n": 0.0}

    def update_points(self, stats, state, step):
        q = self.opts["q"]
        new = {}
        for t, on, ell in zip(self.terms, self.selected, stats.pointwise):
            if not on:
                continue
            lam, m, v, n = (self.fitted(state, prefix, t, len(ell)) for prefix in ("sa", "sa_m", "sa_v", "sa_n"))
            n = n + 1
            grad = q * lam.clamp_min(0) ** (q - 1) * ell.detach().double().cpu() / len(lam)
            m, v, m_hat, v_hat = adam_moments(grad, m, v, n, self.BETAS)
            ascent = m_hat / (v_hat.sqrt() + 1e-12)
            new[f"sa/{t.name}"] = (lam + self.opts["lr"] * ascent).clamp(0.0, self.opts["max"])
            new[f"sa_m/{t.name}"], new[f"sa_v/{t.name}"], new[f"sa_n/{t.name}"] = m, v, n
        return new

    def multipliers(self, pointwise, points, state):
        return [self.fitted(state, "sa", t, len(ell)) ** self.opts["q"] if on else None
                for t, on, ell in zip(self.terms, self.selected, pointwise)]


class Causal(PointScheme):
    """Causal weighting (Wang, Sankaran & Perdikaris 2024, "Respecting causality for training
    physics-informed neural networks", CMAME 421, eq. 2.11–2.12 and Algorithm 1).

    The residual points of a term are split by time into M slices with losses L^1..L^M; slice i
    is weighted by how well every earlier slice is already fitted::

        w_i = exp(−ε Σ_{j<i} L^j)   (detached),       L_k = (1/M) Σ_i w_i L^i

    so w is non-increasing in time and later times train only once earlier ones are solved.
    ε anneals: when the smallest weight exceeds δ, ε ← growth·ε (up to ``eps_max``), the paper's
    schedule ε ∈ {1e-2, 1e-1, 1, 10, 100} by default.  Empty slices are skipped.
    Options: eps=0.01, eps_max=100, growth=10, delta=0.99, slices=32, time=auto (the problem's time
    coordinate: the one its Initial term starts from, else t), terms=residual.
    """

    name = "causal"
    summary = "causal weights (Wang et al. 2024): slice i weighted by exp(-eps * sum of earlier slice losses)"
    options = {"eps": 0.01, "eps_max": 100.0, "growth": 10.0, "delta": 0.99, "slices": 32, "time": "auto",
               "terms": "residual"}
    logged_state = ("causal_min",)

    def check_options(self) -> None:
        super().check_options()
        o = self.opts
        if not (0 < o["eps"] <= o["eps_max"] and o["growth"] >= 1 and 0 < o["delta"] < 1 and o["slices"] >= 1):
            raise OptionError(f"balancer 'causal': need 0 < eps <= eps_max, growth >= 1, 0 < delta < 1, "
                              f"slices >= 1; got {o}")

    def attach(self, problem) -> None:
        names = problem.domain.names
        time = problem.time if self.opts["time"] == "auto" else self.opts["time"]
        if time not in names:
            missing = ("no time coordinate (no t and no Initial term)" if time is None
                       else f"no coordinate {time!r}")
            raise OptionError(f"balancer 'causal': the problem has {missing} (coordinates: {', '.join(names)}); "
                              f"name the time axis with time=<coordinate>")
        self.axis = names.index(time)
        self.span = (float(problem.domain.low[self.axis]), float(problem.domain.high[self.axis]))

    def init_points(self, terms):
        return {"causal_eps": torch.tensor(self.opts["eps"], dtype=torch.float64),
                "causal_min": torch.ones(len(terms), dtype=torch.float64)}

    def redrawn(self, state):
        return state  # slices are by time, not by point: nothing to reset

    def slice_weights(self, ell: torch.Tensor, t: torch.Tensor, eps: float):
        """Per-slice mean losses and weights over the non-empty slices in time order, each point's
        slice index, the points per slice and which slices are non-empty."""
        lo, hi = self.span
        m = self.opts["slices"]
        index = ((t.detach() - lo) / (hi - lo) * m).floor().clamp(0, m - 1).long()
        counts = torch.zeros(m, dtype=ell.dtype, device=ell.device).index_add_(0, index, torch.ones_like(ell))
        sums = torch.zeros(m, dtype=ell.dtype, device=ell.device).index_add_(0, index, ell)
        present = counts > 0
        means = sums[present] / counts[present]
        earlier = torch.cumsum(means.detach(), 0) - means.detach()
        return means, torch.exp(-eps * earlier), index, counts, present

    def multipliers(self, pointwise, points, state):
        eps = float(state["causal_eps"])
        out = []
        for on, ell, x in zip(self.selected, pointwise, points):
            if not on or x is None:
                out.append(None)
                continue
            _, w, index, counts, present = self.slice_weights(ell.detach(), x[:, self.axis], eps)
            per_slice = torch.zeros_like(counts)
            per_slice[present] = w / (counts[present] * int(present.sum()))
            # mean_i m_i ℓ_i = (1/M) Σ_s w_s L^s  with  m_i = N w_s / (M n_s)
            out.append(per_slice[index] * len(ell))
        return out

    def update_points(self, stats, state, step):
        eps = float(state["causal_eps"])
        smallest = torch.ones(len(self.terms), dtype=torch.float64)
        for k, (on, ell, x) in enumerate(zip(self.selected, stats.pointwise, stats.points or [])):
            if on and x is not None:
                smallest[k] = float(self.slice_weights(ell, x[:, self.axis], eps)[1].min())
        if smallest.min() > self.opts["delta"]:
            eps = min(eps * self.opts["growth"], self.opts["eps_max"])
        return {"causal_eps": torch.tensor(eps, dtype=torch.float64), "causal_min": smallest}


class Resampler(PointScheme):
    """Base of residual-based adaptive sampling (Wu, Zhu, Tan, Kartha & Lu 2023, "A comprehensive study of
    non-adaptive and residual-based adaptive sampling for physics-informed neural networks", CMAME 403).

    Every ``every`` steps a dense candidate set S₀ of ``candidates`` × N fresh points (N the term's
    points) is drawn by the run's sampler, the residual is evaluated on it (in chunks) and points are
    drawn from S₀ without replacement with probability proportional to the paper's density

        p(x) ∝ |r(x)|^k / mean_{S₀} |r|^k + c

    k = 1, c = 1 being the paper's recommended default; c = 0 samples only where the residual is
    non-zero, k → ∞ approaches greedy selection of the largest residuals.  Not a weighting: every point
    counts equally.  The paper draws from a candidate set far denser than the collocation points; with
    ``candidates=50`` a region covering 2% of the domain holds about N candidates, so the points can all
    gather in a feature that narrow.  Sampled terms only (``terms=residual``, default, or ``all``:
    residual, boundary and initial terms); observations (data terms) are never moved.
    """

    options = {"every": 500, "k": 1.0, "c": 1.0, "candidates": 50, "terms": "residual"}

    def check_options(self) -> None:
        super().check_options()
        o = self.opts
        if o["k"] < 0 or o["c"] < 0 or o["candidates"] < 1 or (o["k"] == 0 and o["c"] == 0):
            raise OptionError(f"balancer {self.name!r}: need k >= 0, c >= 0 (not both 0) and candidates >= 1; "
                              f"got {o}")

    def term_kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in super().term_kinds() if kind != "data")

    @property
    def candidates(self) -> int:
        """Candidate points drawn per round, as a multiple of the term's points."""
        return self.opts["candidates"]

    def resamples(self, step: int) -> bool:
        return step > 0 and step % self.opts["every"] == 0

    def multipliers(self, pointwise, points, state):
        return [None] * len(pointwise)

    def density(self, ell: np.ndarray) -> np.ndarray:
        """The sampling probabilities of the candidates, p ∝ |r|^k / mean|r|^k + c, from their pointwise
        losses ℓ (|r| = √ℓ); normalised to sum to 1."""
        r = np.sqrt(np.clip(ell, 0, None)) ** self.opts["k"]
        p = r / max(r.mean(), 1e-300) + self.opts["c"]
        p = np.where(np.isfinite(p), p, 0.0)
        if p.sum() <= 0:
            p = np.ones_like(p)
        return p / p.sum()

    def select(self, ell: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """Indices of ``n`` of the candidates, drawn without replacement with :meth:`density`."""
        p, n = self.density(ell), min(n, len(ell))
        nonzero = np.flatnonzero(p)
        if len(nonzero) >= n:
            return rng.choice(len(ell), size=n, replace=False, p=p)
        # c = 0 and fewer candidates with a residual than points wanted: all of those, the rest uniformly
        return np.concatenate([nonzero, rng.choice(np.flatnonzero(p == 0), size=n - len(nonzero), replace=False)])

    def added(self, k: int, current: int) -> int | None:
        """How many points this round adds to term ``k`` (``current`` points now); None: replace them all."""
        return None


class RAD(Resampler):
    """Residual-based adaptive distribution, RAD (Wu, Zhu, Tan, Kartha & Lu 2023, CMAME 403).

    Every ``every`` steps all N points of each selected term are replaced by N points drawn without
    replacement from ``candidates`` × N fresh candidates with

        p(x) ∝ |r(x)|^k / mean |r|^k + c

    so the batch keeps its size and follows the residual.  Per-point state of other schemes
    (``rba+rad``) restarts on a redraw.  See :class:`Resampler`.
    Options: every=500, k=1, c=1, candidates=50, terms=residual.
    """

    name = "rad"
    summary = "residual-based adaptive distribution RAD (Wu et al. 2023): all points redrawn, p ~ |r|^k/mean|r|^k + c"


class RAR(Resampler):
    """Residual-based adaptive refinement with distribution, RAR-D (Wu, Zhu, Tan, Kartha & Lu 2023,
    CMAME 403).

    Every ``every`` steps each selected term keeps its points and gains ``add`` new ones, drawn without
    replacement from ``candidates`` × N fresh candidates with

        p(x) ∝ |r(x)|^k / mean |r|^k + c

    so points accumulate where the residual has been large.  The paper adds m points per round, a
    small number next to the initial set, many rounds over the run; here ``add`` is a count (≥ 1) or,
    below 1, a fraction of the term's points at the start of the run: 0.1 by default, so the growth
    is linear (the same m every round, as in the paper) and 20 rounds triple the batch.  ``max_points``
    caps a term's points (0: no cap).  The kept points come first, in order, and keep the per-point
    state of other schemes (``rba+rar``); the new ones start at its initial value
    (:func:`resize_point_state`).  The grown batches are part of the checkpoint.  See :class:`Resampler`.
    Options: every=500, add=0.1, max_points=0, k=1, c=1, candidates=50, terms=residual.
    """

    name = "rar"
    summary = "residual-based adaptive refinement RAR-D (Wu et al. 2023): add points with p ~ |r|^k/mean|r|^k + c"
    options = {"every": 500, "add": 0.1, "max_points": 0, "k": 1.0, "c": 1.0, "candidates": 50, "terms": "residual"}

    def check_options(self) -> None:
        super().check_options()
        add, cap = self.opts["add"], self.opts["max_points"]
        if add <= 0 or (add >= 1 and add != int(add)) or cap < 0:
            raise OptionError(f"balancer 'rar': need add > 0 (a count >= 1, or a fraction of the term's points "
                              f"below 1) and max_points >= 0 (0: no cap); got add={add}, max_points={cap}")

    def added(self, k: int, current: int) -> int:
        add = self.opts["add"]
        m = int(add) if add >= 1 else max(1, math.ceil(add * self.terms[k].points))
        if self.opts["max_points"]:
            m = min(m, max(0, self.opts["max_points"] - current))
        return m
