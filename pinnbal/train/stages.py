"""The second optimiser stage, ``--then NAME[:key=value,...]``, and its precision switch.

After the Adam stage, training continues with a fixed-weight optimiser on
Σ_k w_k L_k (the balancer's final weights, see :mod:`pinnbal.train`):

- ``lbfgs``: ``torch.optim.LBFGS`` (strong-Wolfe line search, ``history``
  pairs, zero tolerances so it runs its whole budget);
- ``bfgs``, ``ssbfgs`` and ``ssbroyden``: dense BFGS, self-scaled BFGS and
  self-scaled Broyden (:mod:`pinnbal.train.quasi_newton`), for networks up
  to :data:`~pinnbal.train.quasi_newton.MAX_PARAMETERS` parameters;
- ``lm``: Levenberg–Marquardt on the per-point residuals
  (:mod:`pinnbal.train.levenberg`, ``damping=`` sets λ₀ / max diag JᵀJ), for
  small networks and point sets whose M × P Jacobian fits in memory
  (:mod:`pinnbal.train.least_squares`);
- ``auto`` (the default): ``ssbfgs`` for networks up to :data:`AUTO_DENSE`
  parameters, ``lbfgs`` above.  Why: on Burgers (4 × 32, 3297 parameters,
  1000 Adam steps first, float64) self-scaled BFGS reached a training loss
  of 4e-9 and rel L2 1.1e-4 in 4000 iterations where L-BFGS stopped at
  1.5e-3; a dense iteration costs passes over H that grow as P² (the
  threshold was set when an iteration took six passes, 17 ms at P = 3297
  on the development CPU, about as much as one float64 loss-and-gradient
  evaluation there; it now takes two, :mod:`pinnbal.train.quasi_newton`),
  so above about 5000 parameters L-BFGS's cheap iterations win.

``--lbfgs N`` (or ``iters=N`` in the spec) is the stage's iteration budget.  The stage runs in
``dtype=float64`` by default: in float32 the loss stops changing long
before the budget ends and the line search stops on a tie (an inverse heat
problem quit after 290 of 4000 L-BFGS iterations; Xu et al. 2025, "FP64 is
all you need"); the network, the points and the unknowns are cast once at
the switch.  ``dtype=float32`` keeps the Adam stage's precision.

``first_step=adaptive`` (the default) or ``unit``: where the dense methods'
line search starts; ``unit`` tries α = 1 first at every iteration (the
textbook choice), ``adaptive`` does so only after a unit step and otherwise
starts from the last decrease (:mod:`pinnbal.train.quasi_newton`).
``metrics.json`` gives the loss-and-gradient evaluations the stage made
(``second_stage_evaluations``, L-BFGS too).

``resample=N`` draws fresh points every N iterations of the stage (0, the
default: the points of the switch throughout).  A long quasi-Newton stage
on one fixed set of collocation points fits that set: on Burgers the
training loss kept falling to 4e-9 while the error rose from 1.6e-4 to
3.3e-4 (README, "Measured").  Urbán, Stefanou & Pons 2024 (arXiv:2405.04230)
redraw the points periodically during their BFGS runs for this reason.  At
a redraw the inverse Hessian estimate is kept (the objective is the same
integral, estimated from other points) and the loss and gradient are
evaluated afresh on the new points, so no curvature pair mixes the two sets;
L-BFGS drops its history instead (``torch.optim.LBFGS`` pairs the gradient
before a chunk with the one after it), and Levenberg–Marquardt recomputes
its residuals and Jacobian.  Per-point multipliers (``sa``, ``rba``,
causal weights) are re-frozen on the new points.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..errors import OptionError
from .levenberg import LevenbergMarquardt
from .quasi_newton import FIRST_STEPS, MAX_PARAMETERS, UPDATES, QuasiNewton

METHODS = ("auto", "lbfgs", "bfgs", "ssbfgs", "ssbroyden", "lm")
#: the largest network ``auto`` gives a dense (self-scaled BFGS) second stage
AUTO_DENSE = 5000
DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: each spec option and the methods it applies to (None: every method)
OPTIONS = {"dtype": None, "history": ("lbfgs", "auto"), "iters": None, "damping": ("lm",), "resample": None,
           "first_step": UPDATES}


@dataclass(frozen=True)
class Stage:
    """A parsed ``--then`` spec."""

    method: str = "auto"
    dtype: str = "float64"
    history: int = 50  # L-BFGS memory
    iters: int | None = None  # the stage's iterations, when the spec gives them (the same as --lbfgs)
    damping: float = 1e-3  # lm: λ₀ = damping × max diag(JᵀJ)
    resample: int = 0  # fresh points every this many iterations (0: never)
    first_step: str = "adaptive"  # bfgs, ssbfgs, ssbroyden: the line search's first trial step (quasi_newton)

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]


def parse_stage(spec: str) -> Stage:
    """``"ssbfgs:dtype=float64"`` → :class:`Stage`; one clear line for anything else."""
    name, _, rest = str(spec).strip().partition(":")
    if name not in METHODS:
        raise OptionError(f"--then {spec!r}: unknown optimiser {name!r}; choose one of {', '.join(METHODS)} "
                          f"(e.g. --then ssbfgs or --then lbfgs:dtype=float32)")
    options: dict[str, object] = {}
    allowed = [key for key, methods in OPTIONS.items() if methods is None or name in methods]
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key not in allowed:
            raise OptionError(f"--then {spec!r}: {item!r} is not an option of {name}; options: {', '.join(allowed)}")
        if key == "dtype" and value not in DTYPES:
            raise OptionError(f"--then {spec!r}: dtype={value}; choose float32 or float64")
        if key == "first_step" and value not in FIRST_STEPS:
            raise OptionError(f"--then {spec!r}: first_step={value}; choose {' or '.join(FIRST_STEPS)}")
        if key in ("history", "iters", "resample"):
            if not value.isdigit() or int(value) < (1 if key == "history" else 0):
                raise OptionError(f"--then {spec!r}: {key}={value}; need an integer >= {1 if key == 'history' else 0}"
                                  + (" (0: never redraw)" if key == "resample" else ""))
            value = int(value)
        if key == "damping":
            try:
                value = float(value)
            except ValueError:
                value = -1.0
            if not value >= 0 or value == float("inf"):
                raise OptionError(f"--then {spec!r}: damping={item.partition('=')[2]}; need a number >= 0 (0: the "
                                  f"first step is plain Gauss–Newton)")
        options[key] = value
    return Stage(name, **options)


def resolve(stage: Stage, params: list[torch.Tensor]) -> Stage:
    """``auto`` made concrete for this network: ssbfgs up to :data:`AUTO_DENSE` parameters, lbfgs above."""
    if stage.method != "auto":
        return stage
    dense = sum(p.numel() for p in params) <= AUTO_DENSE
    return replace(stage, method="ssbfgs" if dense else "lbfgs")


def check_size(stage: Stage, params: list[torch.Tensor]) -> None:
    """Refuse a dense inverse Hessian that would not fit, before anything is written."""
    count = sum(p.numel() for p in params)
    if stage.method in UPDATES and count > MAX_PARAMETERS:
        gigabytes = 8 * count**2 / 1e9
        raise OptionError(f"--then {stage.method}: the network has {count} parameters and a dense inverse Hessian "
                          f"would take {gigabytes:.1f} GB (limit {MAX_PARAMETERS} parameters); use --then lbfgs or "
                          f"a smaller network")


def make_optimizer(stage: Stage, params: list[torch.Tensor], chunk: int) -> torch.optim.Optimizer:
    """The stage's optimiser over ``params``, running ``chunk`` iterations per ``step(closure)``."""
    if stage.method == "lbfgs":
        return torch.optim.LBFGS(params, lr=1.0, max_iter=chunk, history_size=stage.history,
                                 line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0)
    if stage.method == "lm":
        return LevenbergMarquardt(params, max_iter=chunk, damping=stage.damping)
    return QuasiNewton(params, update=stage.method, max_iter=chunk, first_step=stage.first_step)


def evaluations(optimizer: torch.optim.Optimizer | None) -> int | None:
    """The loss-and-gradient evaluations a quasi-Newton stage (dense or L-BFGS) has made, None for others."""
    if not isinstance(optimizer, (QuasiNewton, torch.optim.LBFGS)) or not optimizer.state:
        return None
    state = next(iter(optimizer.state.values()))
    return state.get("evaluations", state.get("func_evals"))


def new_objective(optimizer: torch.optim.Optimizer) -> None:
    """The points were redrawn: the optimiser forgets what it measured on the old ones (module docstring)."""
    if isinstance(optimizer, torch.optim.LBFGS):
        optimizer.state.clear()
    else:
        optimizer.objective_changed()


def next_chunk(stage: Stage, done: int, total: int, log_every: int) -> int:
    """Iterations in the next chunk: up to ``log_every``, never past the budget or the next redraw."""
    chunk = min(log_every, total - done)
    if stage.resample:
        chunk = min(chunk, stage.resample - done % stage.resample)
    return chunk


def redraw_due(stage: Stage, done: int) -> bool:
    """Whether the points are redrawn before iteration ``done`` (``resample=N``: at N, 2N, ...)."""
    return bool(stage.resample) and done > 0 and done % stage.resample == 0


def set_chunk(optimizer: torch.optim.Optimizer, chunk: int) -> None:
    """Let the next ``step`` run ``chunk`` iterations (L-BFGS: and at most 4 × chunk evaluations)."""
    group = optimizer.param_groups[0]
    group["max_iter"] = chunk
    if isinstance(optimizer, torch.optim.LBFGS):
        group["max_eval"] = 4 * chunk
