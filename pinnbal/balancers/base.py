"""The balancer interface.

A balancer turns training statistics into one weight per loss term::

    state = balancer.init(terms)                       # dict of tensors
    weights, state = balancer.update(stats, state, step=s, progress=s/S)

State is returned, never hidden in the object (like an optax transformation),
so it can be checkpointed and logged.  A balancer declares what it needs
(``needs``: ``"losses"``, ``"jacobian"``, ``"ntk"``, ``"context"``) and the engine asks it
through one typed :class:`Request` (:meth:`Balancer.request`): which statistics this
step, over which parameters, on how many NTK points, with how much data held out.
The engine computes each statistic once per step and only on the steps the
balancer asks for it, and never reads a balancer's options by name.

Cadence, smoothing and bounds are written once here and apply to every
adaptive balancer through the shared options:

- ``every`` (N): recompute the target weights every N steps, keep them between;
- ``alpha`` (α): EMA, w ← α w + (1 − α) ŵ;
- ``params`` (gradient-based methods): ``all`` parameters, the ``last``
  (output) layer's, as GradNorm's paper does, or the ``weights`` (the linear
  layers' weight matrices: no biases, no unknowns, as the LRA authors' code
  does); frozen parameters are never included and unused ones contribute zeros;
- ``min`` / ``max``: clamp weights to [min, max] (guards against the
  runaway weights that unbounded LRA reaches, 1e6 on Kovasznay flow);
- a non-finite loss, Jacobian or target (NaN/inf from a diverging term) is
  ignored: the weights and state stay as they were and ``state["skipped"]``
  counts it, so ``target`` only ever sees finite statistics.

The exact order of one update, on a due step with finite statistics::

    ŵ = target(stats)                        # the method's formula, normalised as it says
    w = α w_prev + (1 − α) ŵ                 # EMA
    w = clamp(w, min, max)                   # bounds, last

written as small steps chained after the target (:func:`ema`, :func:`clamp`,
:func:`chain`; a method adds or reorders them by overriding
:meth:`Balancer.smoothing`), so a normalisation a method claims (``weight_sum``: Σ_k w_k = K, or the sum
of the initial weights) survives the EMA exactly (both sides have that sum)
and holds after the update whenever no weight sits at a bound; a bound that
binds wins over the sum (the weights are not renormalised afterwards, which
would push them past the bound again).  The tests check this invariant for
every balancer that declares one.

A new method subclasses :class:`Balancer` and writes :meth:`target`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch

from ..errors import OptionError


@dataclass(frozen=True)
class TermInfo:
    name: str
    kind: str  # residual | boundary | initial | data
    weight: float
    points: int = 1  # points per batch (evidence per update, for the Bayesian balancer)


@dataclass(frozen=True)
class Request:
    """What a balancer asks the engine for (:meth:`Balancer.request`).

    The per-step fields (``jacobian``, ``ntk_points``, ``context``) say what to
    measure on one step; ``params`` and ``holdout`` are fixed for the run.
    """

    jacobian: bool = False  # the per-term gradients J (K × P)
    ntk_points: int = 0  # NTK trace estimates from this many points per term (0: none)
    context: bool = False  # a TrainingContext: functional model, validation batches, optimiser
    params: str = "all"  # J over every parameter, the output layer's ("last") or the weight matrices ("weights")
    holdout: float = 0.0  # fraction of Data observations kept out of training for the balancer to validate on

    def merged(self, other: "Request") -> "Request":
        """Both requests at once (the parts of a composition); ``params`` from ``self``, the term-level part."""
        return Request(self.jacobian or other.jacobian, max(self.ntk_points, other.ntk_points),
                       self.context or other.context, self.params, max(self.holdout, other.holdout))


@dataclass
class Stats:
    """What the engine measured this step; fields are None unless asked for."""

    losses: torch.Tensor  # (K,), detached
    jacobian: torch.Tensor | None = None  # (K, P): J[k] = dL_k/dθ
    ntk_traces: torch.Tensor | None = None  # (K,): mean over points of ‖∂r_i/∂θ‖² per term
    #: per term, the detached pointwise loss ℓ(r_i) averaged over residual columns, shape (N_k,)
    pointwise: list[torch.Tensor] | None = None
    #: per term, the batch coordinates (N_k, d), detached; None for terms without points
    points: list[torch.Tensor | None] | None = None
    #: a :class:`pinnbal.context.TrainingContext` (functional model, validation set), on request
    context: Any = None


class Balancer:
    """Base class: options, cadence, EMA, bounds and guards; subclasses write ``target``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: "weights" (a weighted sum of the term gradients) or "direction" (a gradient aggregator)
    kind: ClassVar[str] = "weights"
    needs: ClassVar[frozenset[str]] = frozenset({"losses"})
    #: state entries of shape (K,) worth seeing; logged as ``<entry>/<term>`` history columns
    logged_state: ClassVar[tuple[str, ...]] = ()
    #: the normalisation the weights keep (see the module docstring): "K" (Σ w = K), "initial" (Σ w = Σ w⁰) or ""
    weight_sum: ClassVar[str] = ""
    #: True for the per-point schemes (rba, sa, causal, rar), which combine with a term-level method
    point_scheme: ClassVar[bool] = False

    @property
    def shapes_loss(self) -> bool:
        """True when :meth:`losses` is more than a mean of the pointwise loss (e.g. meta's poly/net)."""
        return False
    #: option name -> default; the type of the default is the option's type
    options: ClassVar[dict[str, Any]] = {"every": 1, "alpha": 0.0, "min": 1e-3, "max": 1e3}

    def __init__(self, **opts: Any):
        unknown = sorted(set(opts) - set(self.options))
        if unknown:
            raise OptionError(
                f"balancer {self.name!r}: unknown option {unknown[0]!r}; options are "
                + ", ".join(f"{k}={v}" for k, v in self.options.items())
            )
        self.opts = {k: coerce(self.name, k, opts.get(k, v), v) for k, v in self.options.items()}
        self.check_options()

    def check_options(self) -> None:
        o = self.opts
        if "every" in o and o["every"] < 1:
            raise OptionError(f"balancer {self.name!r}: every={o['every']}; need an integer >= 1")
        if "alpha" in o and not 0.0 <= o["alpha"] < 1.0:
            raise OptionError(f"balancer {self.name!r}: alpha={o['alpha']}; need 0 <= alpha < 1")
        if "params" in o and o["params"] not in ("all", "last", "weights"):
            raise OptionError(f"balancer {self.name!r}: params={o['params']!r}; choose all (every parameter), "
                              f"last (the output layer, as GradNorm's paper does) or weights (the weight "
                              f"matrices: no biases, no unknowns, as LRA's authors' code does)")
        if "min" in o and not 0.0 <= o["min"] < o["max"]:
            raise OptionError(f"balancer {self.name!r}: need 0 <= min < max, got min={o['min']}, max={o['max']}")

    @property
    def spec(self) -> str:
        """The canonical spec string, e.g. ``lra:alpha=0.9,every=10,...``."""
        name = getattr(self, "spec_name", self.name)
        if not self.opts:
            return name
        return name + ":" + ",".join(f"{k}={v}" for k, v in self.opts.items())

    # -- interface ----------------------------------------------------------
    def attach(self, problem) -> None:
        """Called once with the :class:`~pinnbal.problem.Problem` before :meth:`init`; most methods ignore it."""

    def init(self, terms: list[TermInfo]) -> dict[str, torch.Tensor]:
        initial = torch.tensor([t.weight for t in terms], dtype=torch.float64)
        return {"weights": initial, "initial": initial.clone(), "skipped": torch.zeros((), dtype=torch.int64)}

    def due(self, step: int) -> bool:
        return step % self.opts.get("every", 1) == 0

    def needs_at(self, step: int) -> frozenset[str]:
        return self.needs if self.due(step) else frozenset({"losses"})

    def request(self, step: int | None = None) -> Request:
        """What the engine should measure at ``step`` (None: everything this balancer may ask during a run).

        Derived from :attr:`needs`, :meth:`needs_at` and the shared options
        ``params``, ``points`` (NTK) and ``holdout``; a method with other needs overrides this.
        """
        needs = self.needs if step is None else self.needs_at(step)
        context = "context" in needs
        return Request(jacobian="jacobian" in needs,
                       ntk_points=int(self.opts.get("points", 64)) if "ntk" in needs else 0,
                       context=context, params=self.opts.get("params", "all"),
                       holdout=float(self.opts.get("holdout", 0.0)) if context else 0.0)

    def update(self, stats: Stats, state: dict, *, step: int, progress: float) -> tuple[torch.Tensor, dict]:
        """One update: the cadence, the non-finite guard, :meth:`target`, then :meth:`smoothing` (EMA, bounds)."""
        if not self.due(step):
            return state["weights"], state
        if not all(finite(x) for x in (stats.losses, stats.jacobian, stats.ntk_traces) if x is not None):
            return skipped(state)
        new_state = dict(state)  # target may write its own entries; the caller's dict is never mutated
        target = self.target(stats, new_state, step=step, progress=progress)
        if not finite(target):
            return skipped(state)
        weights = chain(*self.smoothing())(state["weights"], target.to(state["weights"]))
        new_state["weights"] = weights
        return weights, new_state

    def smoothing(self) -> list[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
        """What follows the target, in order: the EMA (``alpha``, 0 when the method has no such option), then
        the bounds (``min``/``max``) when the method declares them."""
        steps = [ema(self.opts.get("alpha", 0.0))]
        if "min" in self.opts:
            steps.append(clamp(self.opts["min"], self.opts["max"]))
        return steps

    def fixed_weights(self, state: dict) -> torch.Tensor:
        """The weights a fixed-weight second stage (L-BFGS) minimises Σ_k w_k L_k with: the last ones."""
        return state["weights"]

    def combine(self, jacobian: torch.Tensor, weights: torch.Tensor, state: dict) -> torch.Tensor:
        """The update direction (P,) from J (K, P): Σ_k w_k J_k unless a method says otherwise.

        Gradient aggregators whose result is not a weighted sum of the rows
        (ConFIG, GradDrop) override this; the engine calls it on every step
        where J was computed, instead of a backward pass.
        """
        return weights.to(jacobian) @ jacobian

    def losses(self, pointwise: list[torch.Tensor], points: list[torch.Tensor | None],
               state: dict) -> list[torch.Tensor]:
        """The K term losses (scalars with graph) from each term's pointwise loss ℓ_i (N_k,): the mean by default.

        Per-point schemes (``sa``, ``rba``, ``causal``) weight the points
        inside a term here: L_k = mean_i m_i ℓ_i.  A list, not a stacked
        tensor: the per-term gradients are taken from each scalar, so the
        backward pass of term k never walks the other terms' graphs.
        """
        return [ell.mean() for ell in pointwise]

    def resamples(self, step: int) -> bool:
        """True on steps where the method redraws collocation points by residual (``rar``); then
        :meth:`select` picks them from candidates."""
        return False

    def resampler(self) -> "Balancer":
        """The part of this balancer that :meth:`resamples` (itself, or a part of a composition)."""
        return self

    def redrawn(self, state: dict) -> dict:
        """The batches were redrawn (``--resample-every``): per-point state no longer matches its points."""
        return state

    def target(self, stats: Stats, state: dict, *, step: int, progress: float) -> torch.Tensor:
        """The weights this method wants now (before EMA and bounds), shape (K,)."""
        raise NotImplementedError


def finite(x: torch.Tensor) -> bool:
    return bool(torch.isfinite(x).all())


def skipped(state: dict) -> tuple[torch.Tensor, dict]:
    """The non-finite guard: the weights and state stay as they were, ``state["skipped"]`` counts it."""
    state = dict(state, skipped=state["skipped"] + 1)
    return state["weights"], state


# -- the steps after a target, each (previous weights, proposed weights) -> weights; chained in order --
def ema(alpha: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """w = α w_prev + (1 − α) ŵ."""
    return lambda previous, proposed: alpha * previous + (1.0 - alpha) * proposed


def clamp(low: float, high: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """w = min(max(ŵ, low), high)."""
    return lambda previous, proposed: proposed.clamp(low, high)


def chain(*steps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable:
    """The steps applied in turn, each to the previous weights and what the step before proposed."""
    def apply(previous: torch.Tensor, proposed: torch.Tensor) -> torch.Tensor:
        for step in steps:
            proposed = step(previous, proposed)
        return proposed
    return apply


def coerce(balancer: str, key: str, value: Any, default: Any) -> Any:
    """Convert an option value (often a string from the CLI) to the default's type."""
    kind = type(default)
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if kind is int:
            as_float = float(value)
            if as_float != int(as_float):
                raise ValueError
            return int(as_float)
        if kind is float:
            result = float(value)
            if result != result or result in (float("inf"), float("-inf")):
                raise ValueError
            return result
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        raise OptionError(
            f"balancer {balancer!r}: option {key}={value!r} is not a valid {kind.__name__} (default {default!r})"
        ) from None
