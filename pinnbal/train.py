"""The training loop.

One Adam step (DESIGN.md's data flow):

1. every term draws its batch (resampled every ``resample_every`` steps);
2. the term losses L = (L_1 .. L_K) are computed on one shared forward graph;
3. if the balancer asks for it this step, the Jacobian J (K × P) is computed
   once (:mod:`pinnbal.jacobian`); the gradient is then Σ_k w_k J_k, with no
   second backward; otherwise one backward of Σ_k w_k L_k;
4. the balancer turns the statistics into weights; Adam steps; the history
   gets a row every ``log_every`` steps.

An optional second stage (``lbfgs`` iterations of the ``then`` optimiser:
L-BFGS, BFGS or self-scaled BFGS, see :mod:`pinnbal.stages`) follows with
the balancer's final weights held fixed, in float64 unless its spec says
otherwise; the network, points and unknowns are cast once at the switch.

Guards: a step whose loss or gradient is not finite is not applied; the
model and Adam state roll back to the last good state (kept in memory every
``ROLLBACK_EVERY`` steps), the learning rate is halved and the event goes to
``metrics.json``; ``MAX_FAILURES`` in a row end the run as ``diverged``.
A non-finite L-BFGS chunk is undone and ends that phase.  With a run
directory, a checkpoint is written every ``checkpoint_every`` steps and on
SIGINT/SIGTERM, and :func:`resume` continues from it exactly (same history
on CPU; the in-memory roll-back state is re-taken at the first resumed step).
"""

from __future__ import annotations

import copy
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .balancers import Balancer, Stats, TermInfo, make_balancer
from .balancers.compose import Composite
from .balancers.pointwise import PointScheme, weighted_means
from .batches import Batches, evaluate_terms, term_losses
from .context import TrainingContext
from .early_stop import EarlyStopping
from .errors import OptionError, PinnbalError, ProblemError, StorageError
from .guard import StopFlag, run_lock, stop_on_signals
from .loader import user_errors
from .geometry import SAMPLERS
from .jacobian import JacobianEngine, ntk_traces, sync
from .nets import PINNModel, build_network
from .problem import Problem
from .rundir import load_state, read_json, save_state
from .stages import check_size, make_optimizer, parse_stage, resolve, set_chunk

CHECKPOINT = "checkpoint.pt"
ROLLBACK_EVERY = 100  # steps between the in-memory good states a non-finite step rolls back to
MAX_FAILURES = 5  # consecutive non-finite steps before a run is declared diverged
LR_CUT = 0.5  # learning-rate factor applied at each roll-back

DTYPES = {"float32": torch.float32, "float64": torch.float64}
DEFAULT_BALANCER = "lra"


@dataclass
class TrainConfig:
    """Every setting of a run; saved as ``config.json``."""

    steps: int = 1000
    lbfgs: int = 4000  # iterations of the second stage
    then: str = "auto"  # the second stage: auto, lbfgs, bfgs or ssbfgs[:dtype=float64|float32] (pinnbal.stages)
    lr: float = 5e-3
    lr_decay: float = 0.9  # multiply the learning rate by this ...
    lr_decay_every: int = 1000  # ... every this many steps (smoothly)
    warmup: int = 0  # Adam steps over which the learning rate ramps linearly up to lr (0: none)
    budget: float = 0.0  # seconds of training: Adam gets up to half when a second stage follows (0: no limit)
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    arch: str = "mlp"
    width: int = 32
    depth: int = 4
    activation: str = "tanh"
    sampler: str = "uniform"
    resample_every: int = 0  # 0: keep the first batch
    jacobian: str = "auto"
    log_every: int = 10
    eval_every: int = 500
    checkpoint_every: int = 500  # steps between checkpoints (needs a run directory)
    dropout: float = 0.0  # dropout after each hidden activation (mlp, fourier), Adam phase only
    early_stop: int = 0  # stop after this many evaluations without a better validation loss (0: never)
    holdout: float = 0.0  # fraction of Data observations kept out of training, for validation
    weights: dict[str, float] = field(default_factory=dict)

    def check(self, problem: Problem) -> None:
        if not 0.0 <= self.holdout < 1.0:
            raise OptionError(f"--holdout {self.holdout}: need a fraction 0 <= holdout < 1")
        for name in ("steps", "lbfgs", "resample_every", "seed", "early_stop", "warmup"):
            if getattr(self, name) < 0:
                raise OptionError(f"--{name.replace('_', '-')} {getattr(self, name)}: need a number >= 0")
        for name in ("log_every", "eval_every", "lr_decay_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise OptionError(f"--{name.replace('_', '-')} {getattr(self, name)}: need an integer >= 1")
        if self.steps + self.lbfgs == 0:
            raise OptionError("nothing to do: --steps and --lbfgs are both 0")
        if not (self.budget >= 0 and math.isfinite(self.budget)):
            raise OptionError(f"--budget {self.budget}: need a number of seconds >= 0 (0: no limit)")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise OptionError(f"--lr {self.lr}: need a positive number")
        if not 0 < self.lr_decay <= 1:
            raise OptionError(f"--lr-decay {self.lr_decay}: need 0 < decay <= 1")
        parse_stage(self.then)  # a bad --then is one line before anything starts
        if self.dtype not in DTYPES:
            raise OptionError(f"--dtype {self.dtype}: choose one of {', '.join(DTYPES)}")
        if self.sampler not in SAMPLERS:
            raise OptionError(f"--sampler {self.sampler}: choose one of {', '.join(SAMPLERS)}")
        unknown = sorted(set(self.weights) - set(problem.term_names))
        if unknown:
            raise OptionError(f"--weights: {unknown[0]!r} is not a term; terms are {', '.join(problem.term_names)}")
        for k, v in self.weights.items():
            if not (math.isfinite(v) and v >= 0):
                raise OptionError(f"--weights: {k}={v}; need a finite number >= 0")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise OptionError(f"--device {name}: choose auto, cpu or cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return torch.device(name)


@dataclass
class Run:
    """The result of :func:`train`: history rows, final metrics, the model."""

    problem: Problem
    model: PINNModel
    config: TrainConfig
    balancer: str
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    out: Path | None = None

    def predict(self, x) -> np.ndarray:
        """Outputs (N, m) at coordinates ``x`` (N, d)."""
        param = next(self.model.parameters())
        xt = torch.as_tensor(np.asarray(x, dtype=float), dtype=param.dtype, device=param.device)
        with torch.no_grad():
            return self.model(xt.reshape(-1, self.problem.domain.dim)).cpu().double().numpy()


class Trainer:
    """Owns the model, optimiser, balancer state and history of one run."""

    def __init__(self, problem: Problem, balancer: str | Balancer, config: TrainConfig,
                 problem_path: str | None = None, out: Path | None = None):
        config.check(problem)
        self.problem, self.config = problem, config
        self.balancer = make_balancer(balancer)
        self.problem_path = problem_path
        self.device = pick_device(config.device)
        self.dtype = DTYPES[config.dtype]
        torch.manual_seed(config.seed)
        network = build_network(problem.domain.features, len(problem.outputs), config.arch, config.width,
                                config.depth, config.activation, dropout=config.dropout)
        self.model = PINNModel(problem, network).to(device=self.device, dtype=self.dtype)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        # which parameters per-term gradients are taken over: every one, the output layer's (params=last) or
        # the weight matrices (params=weights)
        subsets = {"last": self.model.output_layer, "weights": self.model.weight_matrices}
        chosen = subsets.get(self.balancer.opts.get("params"))
        self.jacobian_params = self.params if chosen is None else chosen()
        # early stopping and validation-driven balancers evaluate on held-out points (and observations)
        wants_context = "context" in self.balancer.needs
        holdout = max(config.holdout, float(self.balancer.opts.get("holdout", 0.0)) if wants_context else 0.0)
        self.batches = Batches(problem, config, self.device, self.dtype, holdout=holdout)
        self.validation = (Batches(problem, config, self.device, self.dtype, part="validation", holdout=holdout)
                           if wants_context or config.early_stop else None)
        # per-point state is sized from the batch each term trains on (after a holdout), not the declared count
        self.terms = [TermInfo(t.name, t.kind, float(config.weights.get(t.name, t.weight)),
                               1 if x is None else len(x))
                      for t, (_, x, _) in zip(problem.terms, self.batches.items)]
        # terms no balancer moves: switched off (declared weight 0) and unbalanced regularisation; computed
        # once, the step only applies them
        held = [info.weight == 0 or (term.kind == "regularisation" and not term.balanced)
                for info, term in zip(self.terms, problem.terms)]
        self.held = torch.tensor(held) if any(held) else None
        self.declared = torch.tensor([t.weight for t in self.terms], dtype=torch.float64)
        # an aggregator sees the rows w_k g_k of the declared objective (held rows zero); None: all w_k = 1
        self.row_scale = (None if self.balancer.kind != "direction" or bool((self.declared == 1).all())
                          else torch.where(self.held, 0.0, self.declared) if self.held is not None else self.declared)
        # the held terms' part of an aggregator's step, Σ_held w_k g_k, as coefficients on J's rows
        self.held_rows = None if self.held is None else torch.where(self.held, self.declared, 0.0)
        self.balancer.attach(problem)
        self.state = self.hold(self.balancer.init(self.terms))
        self.jacobian = JacobianEngine(config.jacobian)
        self.early = EarlyStopping(config.early_stop)
        with user_errors():
            self.eval_x, self.eval_v = problem.evaluation_set()
        self.history: list[dict[str, Any]] = []
        self.out = None if out is None else Path(out)
        self.adam = torch.optim.Adam(self.params, lr=config.lr)
        self.scheduler = lr_schedule(self.adam, config)
        self.context = TrainingContext(self) if wants_context else None
        self.stage = resolve(parse_stage(config.then), self.params)
        check_size(self.stage, self.params)
        self.lbfgs: torch.optim.Optimizer | None = None  # the second stage's optimiser, made at the switch
        self.frozen: list[torch.Tensor | None] | None = None  # per-point multipliers held through L-BFGS
        # progress counters: everything a resumed run needs to continue exactly
        self.next_step = 0  # the next Adam step
        self.lbfgs_done = 0  # L-BFGS iterations done
        self.lbfgs_previous: float | None = None  # loss at the start of the last L-BFGS chunk
        self.train_seconds = 0.0
        self.wall_seconds = 0.0
        self.next_eval = 0
        self.status = "running"
        self.stop = StopFlag()
        self.good: dict[str, Any] | None = None  # the last good state, in memory, for roll-backs
        self.failures = 0  # consecutive non-finite steps
        self.events: list[dict[str, Any]] = []
        self.diverged_terms: list[str] = []
        self.probe()

    # -- checks before anything is written ----------------------------------
    def probe(self) -> None:
        """Evaluate every term once on its first training batch (a graph of its own), and the model on a few
        evaluation points: shapes, names, NaN and errors in the user's functions fail here, before anything
        is written."""
        with user_errors():
            losses, _ = term_losses(self.model, self.batches.leaves())
            self.model(torch.as_tensor(self.eval_x[:4], dtype=self.dtype, device=self.device))  # the transform
        for term, value in zip(self.problem.terms, losses):
            if not torch.isfinite(value):
                raise ProblemError(f"term {term.name!r}: loss is {value.item()} at initialisation; check its residual/value "
                                   f"for division by zero, log of negatives or NaN data")

    def held_weights(self, weights: torch.Tensor) -> torch.Tensor:
        """``weights`` with the held terms put back to their declared values."""
        if self.held is None:
            return weights
        return torch.where(self.held.to(weights.device), self.declared.to(weights), weights)

    def hold(self, state: dict) -> dict:
        """``state`` whose weights (what the EMA continues from, and L-BFGS uses) respect the held terms;
        an aggregator's state is its own (its coefficients apply to the scaled rows)."""
        if self.held is None or self.balancer.kind == "direction":
            return state
        return dict(state, weights=self.held_weights(state["weights"]))

    def ntk_traces(self, points: int) -> torch.Tensor:
        """NTK trace estimates from the first ``points`` points of each batch, on a graph of their own.

        A per-point gradient through the full batch's graph would cost a whole
        backward pass per point; a fresh forward on the subsample keeps each small.
        """
        values = evaluate_terms(self.model, self.batches.leaves(points))
        # a regularisation term has no residual: its penalty is its one "point"
        residuals = [ell if r is None else r for r, ell in zip(values.residuals, values.pointwise)]
        return ntk_traces(residuals, self.params, points)

    # -- the loop -------------------------------------------------------------
    def fit(self, progress_bar: bool = True) -> Run:
        """Train from where the run stands (a fresh run or a restored checkpoint)."""
        total = self.config.steps + self.config.lbfgs
        bar = make_bar(total, progress_bar, f"{self.problem.name} [{self.balancer.name}]",
                       initial=self.next_step + self.lbfgs_done)
        started = time.perf_counter() - self.wall_seconds
        self.status = "running"
        try:
            with stop_on_signals(self.stop):
                self._adam(bar, started)
                if self.config.lbfgs and self.status == "running" and self.early.stopped_at is None:
                    self._lbfgs(bar, started)
        finally:
            bar.close()
        if self.status == "running":
            self.status = "completed"
        self.model.eval()
        self.wall_seconds = time.perf_counter() - started
        return self.result(self.wall_seconds)

    def _adam(self, bar, started: float) -> None:
        cfg = self.config
        self.model.train()  # dropout, if any, is active in the Adam phase only
        while self.next_step < cfg.steps:
            step = self.next_step
            tick = time.perf_counter()
            if cfg.resample_every and step and step % cfg.resample_every == 0:
                self.batches.draw()
                self.state = self.balancer.redrawn(self.state)
            if self.balancer.resamples(step):
                self.resample_by_residual()
            if self.good is None or (step % ROLLBACK_EVERY == 0 and not self.failures):
                self.good = {"step": step, "model": copy.deepcopy(self.model.state_dict()),
                             "adam": copy.deepcopy(self.adam.state_dict())}
            losses, weights = self.step(self.adam, step)
            checks = [torch.isfinite(losses).all()] + [torch.isfinite(p.grad).all() for p in self.params
                                                        if p.grad is not None]
            healthy = bool(torch.stack(checks).all())  # one device sync per step, not one per tensor
            if healthy:
                self.adam.step()
                self.scheduler.step()
                self.failures = 0
            else:
                self.roll_back(step, losses)
            sync(self.device)
            self.train_seconds += time.perf_counter() - tick
            self.next_step = step + 1
            stopping = self.stop.signum is not None  # read once: a signal arriving later waits a step
            timed_out = self.out_of_time("adam", step)
            if healthy:
                self.record(step, "adam", losses, weights, started, bar, last=step == cfg.steps - 1 or timed_out)
                if self.early.should_stop(step, self.model):
                    self.events.append({"step": step, "event": f"no better validation loss in {cfg.early_stop} "
                                        f"evaluations", "action": "early stop; restored the best model"})
            bar.update(1)
            if self.early.stopped_at is not None:
                return
            if self.status == "diverged" or self.checkpoint_if_due(started, step + 1, stopping) or timed_out:
                return

    def out_of_time(self, stage: str, step: int) -> bool:
        """True (and an event) when ``--budget`` ends this stage: Adam at half the budget if a second stage
        follows, else at all of it; the second stage at the whole budget."""
        budget = self.config.budget
        if stage == "adam" and self.config.lbfgs:
            budget /= 2
        if not (budget and self.train_seconds >= budget):
            return False
        self.events.append({"step": step, "event": f"time budget: {self.train_seconds:.1f} s of training",
                            "action": f"ended the {stage} stage"})
        return True

    def resample_by_residual(self) -> None:
        """Residual-based adaptive sampling of the scheme's terms from fresh candidates: RAD replaces their
        points (per-point state starts afresh), RAR-D appends to them (kept points keep their state)."""
        scheme = self.balancer.resampler()
        appended = False
        for k, term in enumerate(self.problem.terms):
            if term.kind in scheme.term_kinds():
                add = scheme.added(k, len(self.batches.items[k][1]))  # None: replace every point
                appended |= add is not None
                self.batches.redraw_by_residual(self.model, k, scheme.opts["candidates"], scheme.select, add=add)
        if appended:
            self.state = self.balancer.fit_points(self.state, [None if x is None else len(x)
                                                               for _, x, _ in self.batches.items])
        else:
            self.state = self.balancer.redrawn(self.state)

    def roll_back(self, step: int, losses: torch.Tensor) -> None:
        """A non-finite loss or gradient: restore the last good state, halve the learning rate."""
        self.failures += 1
        self.model.load_state_dict(self.good["model"])
        self.adam.load_state_dict(self.good["adam"])
        for group in self.adam.param_groups:
            group["lr"] *= LR_CUT
        bad = [t.name for t, v in zip(self.terms, losses.tolist()) if not math.isfinite(v)] or ["gradient"]
        self.events.append({"step": step, "event": "non-finite " + ", ".join(bad),
                            "action": f"rolled back to step {self.good['step']}, lr -> {self.adam.param_groups[0]['lr']:.3g}"})
        if self.failures >= MAX_FAILURES:
            self.status = "diverged"
            self.diverged_terms = bad

    def step(self, optimizer, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Set ``.grad`` for one balanced step; return (losses, weights)."""
        optimizer.zero_grad(set_to_none=True)
        values = evaluate_terms(self.model, self.batches, self.balancer, self.state)
        losses = values.losses
        needs = self.balancer.needs_at(step)
        traces = self.ntk_traces(self.balancer.opts["points"]) if "ntk" in needs else None
        whole = self.jacobian_params is self.params  # J over every parameter: the step is Σ w_k J_k
        J = self.jacobian(values.terms, self.jacobian_params, retain_graph=not whole) if "jacobian" in needs else None
        rows = J if J is None or self.row_scale is None else self.row_scale.to(J)[:, None] * J
        stats = Stats(losses=losses.detach(), jacobian=rows, ntk_traces=traces,
                      pointwise=[ell.detach() for ell in values.pointwise], points=self.batches.points,
                      context=self.context if "context" in needs else None)
        weights, state = self.balancer.update(stats, self.state, step=step, progress=adam_progress(step, self.config.steps))
        self.state = self.hold(state)
        if J is not None and self.balancer.kind == "direction":
            flat = self.balancer.combine(rows, weights.to(J), self.state)
            if self.row_scale is not None:  # held terms at their declared weights; logged: effective c_k w_k
                if self.held is not None:
                    flat = flat + self.held_rows.to(J) @ J
                weights = self.held_weights(weights * self.row_scale)
            self.set_grad(flat)
            return values.means, weights
        weights = self.held_weights(weights)
        w = weights.to(losses)
        if J is not None and whole:
            self.set_grad(self.balancer.combine(J, w, self.state))
        else:
            (w * losses).sum().backward()
        # the history records the plain mean pointwise losses, comparable across balancers
        return values.means, weights

    def set_grad(self, flat: torch.Tensor) -> None:
        """Each parameter's ``.grad`` from the flat direction (P,)."""
        offset = 0
        for p in self.params:
            p.grad = flat[offset: offset + p.numel()].view_as(p).clone()
            offset += p.numel()

    def _lbfgs(self, bar, started: float) -> None:
        """The second stage (``--then``): a fixed-weight optimiser in the stage's precision."""
        held = self.held_weights(self.balancer.fixed_weights(self.state))
        self.model.eval()  # a deterministic objective for the line search: no dropout
        if self.lbfgs is None:
            self.switch_precision()
            self.lbfgs = make_optimizer(self.stage, self.params, self.config.log_every)
            self.frozen = self.freeze_points()
        weights = held.to(device=self.device, dtype=self.dtype)
        optimizer, last = self.lbfgs, {}
        objective = self.balancer if self.frozen is None else FrozenPoints(self.frozen)

        def closure():
            optimizer.zero_grad(set_to_none=True)
            values = evaluate_terms(self.model, self.batches, objective, self.state)
            total = (weights * values.losses).sum()
            total.backward()
            last["losses"] = values.means
            return total.detach()

        while self.lbfgs_done < self.config.lbfgs:
            chunk = min(self.config.log_every, self.config.lbfgs - self.lbfgs_done)
            set_chunk(optimizer, chunk)
            tick = time.perf_counter()
            kept = copy.deepcopy(self.model.state_dict())
            loss = float(optimizer.step(closure))
            sync(self.device)
            self.train_seconds += time.perf_counter() - tick
            before = self.lbfgs_done
            self.lbfgs_done += chunk
            stopping = self.stop.signum is not None
            losses = last["losses"]
            if not (math.isfinite(loss) and bool(torch.isfinite(losses).all())):
                self.model.load_state_dict(kept)
                self.events.append({"step": self.next_step + before,
                                    "event": f"non-finite loss in {self.stage.method}",
                                    "action": "kept the state before this chunk and ended the second stage"})
                return
            stalled = loss == self.lbfgs_previous  # no step changed the loss: the stage has converged
            self.lbfgs_previous = loss
            step = self.next_step + self.lbfgs_done - 1
            timed_out = self.out_of_time(self.stage.method, step)
            self.record(step, self.stage.method, losses, held, started, bar,
                        last=self.lbfgs_done >= self.config.lbfgs or stalled or timed_out, force=True)
            bar.update(chunk)
            if stalled or timed_out:
                return
            crossed = self.lbfgs_done // self.config.checkpoint_every > before // self.config.checkpoint_every
            if self.checkpoint_if_due(started, self.config.checkpoint_every if crossed else 1, stopping):
                return

    def switch_precision(self) -> None:
        """Cast the network, its unknowns and every batch to the second stage's dtype, once, at the switch."""
        dtype = self.stage.torch_dtype
        if dtype == self.dtype:
            return
        self.model.to(dtype=dtype)
        for batches in (self.batches, self.validation):
            if batches is not None:
                batches.cast(dtype)
        self.dtype = dtype

    def freeze_points(self) -> list[torch.Tensor | None] | None:
        """The per-point multipliers at the switch to L-BFGS, held for the whole phase (None: no point scheme).

        Recomputed at every closure call (rba from the current residuals, causal from the current slice
        losses) they would move the objective under the line search; frozen, L-BFGS minimises one fixed
        function, mean_i m_i ℓ_i per term, as Adam's last step weighted it.
        """
        if not isinstance(self.balancer, (PointScheme, Composite)):
            return None
        values = evaluate_terms(self.model, self.batches)
        pointwise = [ell.detach() for ell in values.pointwise]
        return [None if m is None else m.detach().clone()
                for m in self.balancer.multipliers(pointwise, self.batches.points, self.state)]

    # -- checkpoints ------------------------------------------------------------
    def checkpoint_if_due(self, started: float, done: int, stopping: bool) -> bool:
        """Checkpoint when ``done`` is a multiple of ``checkpoint_every``, and when stopping; True: stop now."""
        if self.out is not None and (stopping or done % self.config.checkpoint_every == 0):
            self.wall_seconds = time.perf_counter() - started
            try:
                save_state(self.out / CHECKPOINT, self.checkpoint())
            except StorageError as exc:  # keep training: the previous checkpoint is intact, the next may succeed
                self.events.append({"step": done - 1, "event": f"checkpoint not written: {exc}",
                                    "action": "kept training; the previous checkpoint is intact"})
                if stopping:
                    raise
        if stopping:
            self.status = "interrupted"
        return stopping

    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights_only-loadable tensors, numbers, strings."""
        return {
            "model": self.model.state_dict(),
            "adam": self.adam.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "lbfgs": None if self.lbfgs is None else self.lbfgs.state_dict(),
            "lbfgs_multipliers": self.frozen,
            "balancer": dict(self.state),
            "batches": [None if x is None else x.detach() for _, x, _ in self.batches.items],
            "sampler_rng": self.batches.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
            "counters": {"next_step": self.next_step, "lbfgs_done": self.lbfgs_done, "next_eval": self.next_eval,
                         "lbfgs_previous": self.lbfgs_previous, "train_seconds": self.train_seconds,
                         "wall_seconds": self.wall_seconds, "failures": self.failures, "events": self.events},
            "early_stop": self.early.state(),
            "jacobian": {"strategy": self.jacobian.strategy, "timings": self.jacobian.timings},
        }

    def restore(self, saved: dict[str, Any]) -> None:
        if saved["lbfgs"] is not None:  # saved in the second stage: its precision first, so nothing is rounded
            self.switch_precision()
        self.model.load_state_dict(saved["model"])
        self.adam.load_state_dict(saved["adam"])
        self.scheduler.load_state_dict(saved["scheduler"])
        if saved["lbfgs"] is not None:
            self.lbfgs = make_optimizer(self.stage, self.params, self.config.log_every)
            self.lbfgs.load_state_dict(saved["lbfgs"])
            self.frozen = saved.get("lbfgs_multipliers")
        self.state = dict(saved["balancer"])
        self.batches.items = [(t, None if x is None else x.to(self.device).requires_grad_(t.needs_derivatives), v)
                              for (t, _, v), x in zip(self.batches.items, saved["batches"])]
        self.batches.rng.bit_generator.state = saved["sampler_rng"]
        torch.set_rng_state(saved["torch_rng"])
        self.history = list(saved["history"])
        for name, value in saved["counters"].items():
            setattr(self, name, value)
        self.early.load(saved["early_stop"])
        self.jacobian.strategy = saved["jacobian"]["strategy"]
        self.jacobian.timings = dict(saved["jacobian"]["timings"])

    # -- records ----------------------------------------------------------------
    def record(self, step, phase, losses, weights, started, bar, last: bool, force: bool = False) -> None:
        if not (force or last or step % self.config.log_every == 0):
            return
        w = weights.detach().double().cpu()
        row: dict[str, Any] = {"step": step, "phase": phase, "wall_s": round(time.perf_counter() - started, 4),
                               "loss": float((w * losses.double().cpu()).sum())}
        row |= {f"loss/{t.name}": value for t, value in zip(self.terms, losses.double().cpu().tolist())}
        row |= {f"weight/{t.name}": weight for t, weight in zip(self.terms, w.tolist())}
        for key in self.balancer.logged_state:
            for t, value in zip(self.terms, self.state[key].tolist()):
                row[f"{key}/{t.name}"] = value
        for name, value in self.model.unknowns.items():
            row[f"unknown/{name}"] = float(value.detach())
        evaluate_now = last or step >= self.next_eval  # L-BFGS rows skip steps: catch up on crossing
        if evaluate_now:
            self.next_eval = step - step % self.config.eval_every + self.config.eval_every
        if evaluate_now and self.validation is not None:
            row["val_loss"] = self.early.measure(self.model, self.validation, step)
        row["rel_l2"] = self.rel_l2()[0] if evaluate_now and self.eval_v is not None else None
        self.history.append(row)
        if bar is not None:
            shown = {"loss": f"{row['loss']:.2e}"}
            shown |= {f"w_{t.name}": f"{wt:.3g}" for t, wt in zip(self.terms, w.tolist())}
            if row["rel_l2"] is not None:
                shown["rel_l2"] = f"{row['rel_l2']:.2e}"
            bar.set_postfix(shown, refresh=False)

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = []
        mode = self.model.training
        self.model.eval()
        with torch.no_grad():
            for chunk in np.array_split(x, max(1, len(x) // 32768 + 1)):
                xt = torch.as_tensor(chunk, dtype=self.dtype, device=self.device)
                out.append(self.model(xt).double().cpu().numpy())
        self.model.train(mode)
        return np.concatenate(out)

    def rel_l2(self) -> tuple[float, dict[str, float]]:
        """Relative L2 error over the evaluation set, overall and per output."""
        pred = self.predict(self.eval_x)
        ref = self.eval_v
        overall = float(np.linalg.norm(pred - ref) / max(np.linalg.norm(ref), 1e-300))
        per = {o: float(np.linalg.norm(pred[:, j] - ref[:, j]) / max(np.linalg.norm(ref[:, j]), 1e-300))
               for j, o in enumerate(self.problem.outputs)}
        return overall, per

    def result(self, wall: float) -> Run:
        last = self.history[-1] if self.history else {}
        rel, per = self.rel_l2() if self.eval_v is not None else (None, None)
        steps_run = self.next_step + self.lbfgs_done
        metrics = {
            "problem": self.problem.name,
            "balancer": self.balancer.name,
            "balancer_spec": self.balancer.spec,
            "seed": self.config.seed,
            "status": self.status,
            "steps": steps_run,
            "adam_steps": self.next_step,
            "lbfgs_iterations": self.lbfgs_done,
            "wall_s": round(wall, 3),
            "train_s": round(self.train_seconds, 3),
            "ms_per_step": round(1000 * self.train_seconds / max(steps_run, 1), 3),
            "rel_l2": rel,
            "rel_l2_per_output": per,
            "final_loss": last.get("loss"),
            "final_losses": {t.name: last.get(f"loss/{t.name}") for t in self.terms},
            "final_weights": {t.name: last.get(f"weight/{t.name}") for t in self.terms},
            "unknowns": {k: float(v.detach()) for k, v in self.model.unknowns.items()},
            "jacobian_strategy": self.jacobian.strategy if self.jacobian.timings or self.jacobian.strategy != "auto"
            else None,
            "jacobian_timings_ms": {k: round(1000 * v, 3) for k, v in self.jacobian.timings.items()},
            "device": str(self.device),
            "events": self.events,
        }
        return Run(self.problem, self.model, self.config, self.balancer.spec, self.history, metrics)

    def config_record(self) -> dict[str, Any]:
        return {
            "problem": self.problem.name,
            "problem_path": self.problem_path,
            "balancer": self.balancer.spec,
            "terms": [asdict(t) for t in self.terms],
            "holdout_used": self.batches.holdout,  # --holdout, or more where a validation balancer needs it
            "train": asdict(self.config),
            "versions": {"pinnbal": __version__, "torch": torch.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
            "machine": platform.platform(),
        }


def lr_schedule(adam: torch.optim.Adam, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """lr_s = lr · min(1, (s + 1)/warmup) · decay^(s/every): a linear warm-up (Goyal et al. 2017; the recipe of
    Wang et al. 2023, "An expert's guide to training PINNs") then smooth exponential decay; without warm-up
    the plain exponential decay."""
    gamma = config.lr_decay ** (1.0 / config.lr_decay_every)
    if not config.warmup:
        return torch.optim.lr_scheduler.ExponentialLR(adam, gamma)
    warmup = config.warmup
    return torch.optim.lr_scheduler.LambdaLR(adam, lambda s: min(1.0, (s + 1) / warmup) * gamma**s)


class FrozenPoints:
    """The term losses L_k = mean_i m_i ℓ_i with multipliers fixed at the switch to L-BFGS."""

    def __init__(self, multipliers: list[torch.Tensor | None]):
        self.multipliers = multipliers

    def losses(self, pointwise, points, state) -> list[torch.Tensor]:
        return weighted_means(pointwise, self.multipliers)


def adam_progress(step: int, steps: int) -> float:
    """Training progress of Adam step ``step`` of ``steps``: 0 at the first step, 1.0 at the last, so a
    schedule's ramp reaches its end value (a single step is the last one: 1.0)."""
    return 1.0 if steps <= 1 else min(step / (steps - 1), 1.0)


def make_bar(total: int, enabled: bool, desc: str, initial: int = 0):
    """A tqdm progress bar (tqdm: maintained, light, works in terminals and notebooks)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, unit="step", dynamic_ncols=True, leave=True,
                initial=initial)


def history_columns(run: Run) -> list[str]:
    """Every key of the history rows, in the order they first appear (``rel_l2`` last)."""
    columns = list(dict.fromkeys(k for row in run.history for k in row))
    columns.remove("rel_l2")
    return columns + ["rel_l2"]


class Interrupted(PinnbalError):
    """The run stopped on SIGINT/SIGTERM after writing a checkpoint; ``signum`` says which."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


def train(problem: Problem | str, balancer: str | Balancer | None = None, *, out: str | Path | None = None,
          force: bool = False, progress: bool = False, render: bool = True, problem_path: str | None = None,
          **settings: Any) -> Run:
    """Train ``problem`` with ``balancer``; write a run directory to ``out`` if given.

    ``settings`` are :class:`TrainConfig` fields (``steps``, ``lbfgs``,
    ``seed``, ``width``, ...).  What they and ``balancer`` leave out comes from
    the problem's recipe (:mod:`pinnbal.recipe`), then the library defaults
    (``lra``).  Everything is validated before ``out`` is created, so bad
    input never leaves a half-written run directory.
    """
    from .loader import load_problem
    from .rundir import prepare_out_dir

    if isinstance(problem, (str, Path)):
        problem_path = str(Path(problem).resolve())
        problem = load_problem(problem)
    unknown = sorted(set(settings) - set(TrainConfig.__dataclass_fields__))
    if unknown:
        raise OptionError(f"train(): unknown setting {unknown[0]!r}; settings are "
                          f"{', '.join(TrainConfig.__dataclass_fields__)}")
    settings, balancer = with_recipe(problem, settings, balancer)
    config = TrainConfig(**settings)
    trainer = Trainer(problem, balancer, config, problem_path, out=out)
    if out is None:
        return finish(trainer, None, progress, render)
    out = Path(out)
    created = not out.exists()
    prepare_out_dir(out, force)
    try:
        with run_lock(out):
            write_run_start(out, trainer)
            try:
                return finish(trainer, out, progress, render)
            except (ProblemError, OptionError):
                # a mistake met mid-run (a rule returning NaN at step 4): before any checkpoint, leave nothing
                if not (out / CHECKPOINT).exists():
                    (out / "config.json").unlink(missing_ok=True)
                raise
    finally:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


def with_recipe(problem: Problem, settings: dict[str, Any],
                balancer: str | Balancer | None) -> tuple[dict[str, Any], str | Balancer]:
    """The run's settings and balancer: the problem's recipe under what was given, ``lra`` when neither says."""
    recipe = problem.recipe
    if recipe is None:
        return settings, balancer if balancer is not None else DEFAULT_BALANCER
    recipe.check(TrainConfig.__dataclass_fields__)
    return recipe.settings | settings, balancer if balancer is not None else (recipe.balancer or DEFAULT_BALANCER)


def resume(out: str | Path, *, progress: bool = False, render: bool = True) -> Run:
    """Continue the run in ``out`` from its checkpoint, exactly where it stopped."""
    from .loader import load_problem

    out = Path(out)
    if not (out / "config.json").is_file():
        raise OptionError(f"--resume {out}: not a run directory (no config.json)")
    if not (out / CHECKPOINT).is_file():
        raise OptionError(f"--resume {out}: no {CHECKPOINT} to resume from; the run stopped before its first "
                          f"checkpoint, start it again with --force")
    with run_lock(out):
        saved_metrics = out / "metrics.json"
        if saved_metrics.is_file() and read_json(saved_metrics).get("status") == "completed":
            raise OptionError(f"--resume {out}: that run has already completed")
        config = read_json(out / "config.json")
        problem_path = config["problem_path"]
        if not problem_path or not Path(problem_path).is_file():
            raise OptionError(f"--resume {out}: its problem file {problem_path!r} is gone")
        trainer = Trainer(load_problem(problem_path), config["balancer"], TrainConfig(**config["train"]),
                          problem_path, out=out)
        trainer.restore(load_state(out / CHECKPOINT))
        return finish(trainer, out, progress, render)


def finish(trainer: Trainer, out: Path | None, progress: bool, render: bool) -> Run:
    """Fit, write the run files, and turn an interruption or a divergence into a clear error."""
    try:
        run = trainer.fit(progress_bar=progress)
    except KeyboardInterrupt:  # a second signal: stop at once; the last checkpoint stays valid
        trainer.status = "interrupted"
        if out is not None and trainer.history:
            write_run(out, trainer.result(trainer.wall_seconds), trainer, render=False)
        raise
    if out is not None:
        run.out = out
        write_run(out, run, trainer, render=render and run.metrics["status"] == "completed")
    status = run.metrics["status"]
    if status == "interrupted":
        raise Interrupted(f"interrupted after step {run.metrics['steps'] - 1}"
                          + (f"; continue with: pinnbal run --resume {out}" if out else ""), trainer.stop.signum)
    if status == "diverged":
        bad = trainer.diverged_terms
        raise PinnbalError(f"training diverged at step {run.metrics['steps'] - 1}: {', '.join(bad)} non-finite "
                           f"{MAX_FAILURES} times in a row despite roll-backs; try a smaller --lr, "
                           f"--dtype float64 or a bounded balancer" + (f" (partial run kept in {out})" if out else ""))
    return run


def write_run_start(out: Path, trainer: Trainer) -> None:
    from .rundir import write_json

    for stale in ("metrics.json", CHECKPOINT):  # a forced re-run: the old run's files are not this run's
        (out / stale).unlink(missing_ok=True)
    write_json(out / "config.json", trainer.config_record())


def write_predictions(path: Path, run: Run, trainer: Trainer) -> None:
    """The prediction (and reference) on a picture grid, so figures need no model rebuild."""
    import io

    from .rundir import atomic_write_bytes
    from .scenes import volume_arrays

    problem = run.problem
    axes, x, ref = problem.solution_grid(400 if problem.domain.dim == 1 else 200)
    arrays = {f"axis{i}": a for i, a in enumerate(axes)}
    arrays |= {"n_axes": np.array(len(axes)), "points": x, "prediction": trainer.predict(x),
               "coord_names": np.array(problem.domain.names), "output_names": np.array(problem.outputs),
               "time_name": np.array(problem.time or "")}
    if ref is not None:
        arrays["reference"] = ref
    arrays |= volume_arrays(problem, trainer.predict)  # a coarse 3D grid for pyvista scenes (3+ coordinates)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def write_run(out: Path, run: Run, trainer: Trainer, render: bool) -> None:
    from .rundir import write_csv, write_json

    write_csv(out / "history.csv", run.history, history_columns(run))
    save_state(out / "model.pt", {"model": trainer.model.state_dict(),
                                  "balancer": {k: v.clone() for k, v in trainer.state.items()}})
    write_predictions(out / "predictions.npz", run, trainer)
    write_json(out / "metrics.json", run.metrics)
    if render:
        from .plots import render_run

        render_run(out)
