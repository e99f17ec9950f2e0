"""One run's objects and the balanced step: :class:`Trainer`.

The trainer builds the network, the batches and the optimisers, holds the
balancer's state and the progress counters a resume needs, and computes one
balanced step (:meth:`Trainer.step`):

1. the term losses L = (L_1 .. L_K) on one shared forward graph
   (:func:`pinnbal.batches.evaluate_terms`, point schemes weighting points inside a term);
2. what the balancer's :class:`~pinnbal.balancers.base.Request` asks for this step:
   the Jacobian J (K × P) once (:mod:`pinnbal.jacobian`), NTK traces, a training context;
3. the weights from the balancer; the gradient Σ_k w_k J_k with no second backward
   when J was computed, else one backward of Σ_k w_k L_k; an aggregator's
   direction where the balancer is one.

The loops that drive it (:func:`pinnbal.train.loop.fit`) are in :mod:`pinnbal.train.loop`, what watches them in
:mod:`pinnbal.train.callbacks`, what a run records (checkpoint, metrics, config) in
:mod:`pinnbal.train.records`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..balancers import Balancer, Stats, TermInfo, make_balancer
from ..balancers.compose import Composite
from ..balancers.pointwise import PointScheme
from ..batches import Batches, TermValues, evaluate_terms, term_losses
from ..context import TrainingContext
from ..errors import ProblemError
from .fused import plain_losses, weights_ahead
from ..jacobian import JacobianEngine, ntk_traces, sync
from . import least_squares, windows
from .compiling import switch_on
from ..loader import user_errors
from ..nets import PINNModel, Windowed, network_for, routed
from ..problem import Problem
from .config import DTYPES, TrainConfig, adam_progress, lr_schedule, pick_device
from .early_stop import EarlyStopping
from .guard import StopFlag
from .stages import check_size, new_objective, parse_stage, resolve


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
        with torch.no_grad(), routed(self.model.network):
            return self.model(xt.reshape(-1, self.problem.domain.dim)).cpu().double().numpy()


class Trainer:
    """Owns the model, optimisers, batches, balancer state and progress counters of one run."""

    def __init__(self, problem: Problem, balancer: str | Balancer, config: TrainConfig,
                 problem_path: str | None = None, out: Path | None = None):
        config.check(problem)
        windows.check(problem, config.time_windows)
        self.problem, self.config, self.problem_path = problem, config, problem_path
        self.full_problem = problem  # self.problem is the window in training under --time-windows
        self.balancer = make_balancer(balancer)
        self.request = self.balancer.request()  # what the balancer may ask for during the run
        self.device, self.dtype = pick_device(config.device), DTYPES[config.dtype]
        torch.manual_seed(config.seed)
        self.build_model()
        self.window, self.step_offset, self.window_started = 0, 0, 0.0  # --time-windows: where the march stands
        if self.config.time_windows > 1:
            self.problem = windows.window_problem(problem, 0, self.config.time_windows, None)
        self.balancer.attach(problem)  # once, with the whole problem (a window's is a slice of it)
        self.build_window()
        self.jacobian = JacobianEngine(config.jacobian)
        with user_errors():
            self.eval_x, self.eval_v = problem.evaluation_set()
        self.out = None if out is None else Path(out)
        self.build_optimisers()
        check_size(self.stage, self.params)
        self.reset_counters()
        self.stop = StopFlag()
        self.on_row: list[Callable[[dict[str, Any]], None]] = []  # called with every history row as it is recorded
        self.probe()
        if self.stage.method == "lm" and config.lbfgs:
            least_squares.check(self)
        switch_on(self)

    def build_model(self) -> None:
        """The network (seeded) and its trainable parameters (:meth:`choose_params`): every one, the output
        layer's (``params=last``) or the weight matrices (``params=weights``) for per-term gradients."""
        cfg = self.config
        self.model = PINNModel(self.problem, network_for(self.problem, asdict(cfg))).to(device=self.device,
                                                                                      dtype=self.dtype)
        if isinstance(self.model.network, Windowed):
            self.activate(0)
        self.choose_params()

    def activate(self, i: int) -> None:
        """Window ``i``'s network in training, the others frozen (their values stay in the model)."""
        network = self.model.network
        network.active = i
        for j, net in enumerate(network.nets):
            net.requires_grad_(j == i)

    def choose_params(self) -> None:
        """The trainable parameters and the subset per-term gradients are taken over."""
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        subsets = {"last": self.model.output_layer, "weights": self.model.weight_matrices}
        chosen = subsets.get(self.request.params)
        self.jacobian_params = self.params if chosen is None else chosen()

    def build_window(self) -> None:
        """The batches, the terms and a fresh balancer state for ``self.problem`` (the run's, or a time window's)."""
        self.build_batches()
        self.build_terms()
        self.state = self.hold(self.balancer.init(self.terms))

    def build_optimisers(self) -> None:
        """Fresh early stopping, Adam and its schedule, training context and second-stage spec (its optimiser is
        made at the switch)."""
        cfg = self.config
        self.early = EarlyStopping(cfg.early_stop)
        self.adam = adam_for(self.params, cfg.lr)
        self.scheduler = lr_schedule(self.adam, cfg)
        self.context = TrainingContext(self) if self.request.context else None
        self.stage = resolve(parse_stage(cfg.then), self.params)
        self.lbfgs: torch.optim.Optimizer | None = None  # the second stage's optimiser, made at the switch
        self.frozen: list[torch.Tensor | None] | None = None  # per-point multipliers held through the second stage

    def build_batches(self) -> None:
        """Training batches, and validation batches for early stopping and validation-driven balancers
        (on held-out observations: ``--holdout`` or what the balancer asks, the larger)."""
        cfg, wants_context = self.config, self.request.context
        holdout = max(cfg.holdout, self.request.holdout)
        self.batches = Batches(self.problem, cfg, self.device, self.dtype, holdout=holdout)
        self.validation = (Batches(self.problem, cfg, self.device, self.dtype, part="validation", holdout=holdout)
                           if wants_context or cfg.early_stop else None)

    def build_terms(self) -> None:
        """What the balancer knows of each term, and the terms no balancer moves."""
        cfg = self.config
        # per-point state is sized from the batch each term trains on (after a holdout), not the declared count
        self.terms = [TermInfo(t.name, t.kind, float(cfg.weights.get(t.name, t.weight)), 1 if x is None else len(x))
                      for t, (_, x, _) in zip(self.problem.terms, self.batches.items)]
        # held: switched off (declared weight 0) and unbalanced regularisation; computed once, the step applies them
        held = [info.weight == 0 or (term.kind == "regularisation" and not term.balanced)
                for info, term in zip(self.terms, self.problem.terms)]
        self.held = torch.tensor(held) if any(held) else None
        self.declared = torch.tensor([t.weight for t in self.terms], dtype=torch.float64)
        # an aggregator sees the rows w_k g_k of the declared objective (held rows zero); None: all w_k = 1
        self.row_scale = (None if self.balancer.kind != "direction" or bool((self.declared == 1).all())
                          else torch.where(self.held, 0.0, self.declared) if self.held is not None else self.declared)
        # the held terms' part of an aggregator's step, Σ_held w_k g_k, as coefficients on J's rows
        self.held_rows = None if self.held is None else torch.where(self.held, self.declared, 0.0)

    def reset_counters(self) -> None:
        """The progress counters: everything besides tensors a resumed run needs to continue exactly."""
        self.history: list[dict[str, Any]] = []
        self.next_step = 0  # the next Adam step
        self.lbfgs_done = 0  # second-stage iterations done
        self.lbfgs_previous: float | None = None  # loss at the start of the last second-stage chunk
        self.train_seconds = 0.0
        self.compile_s: float | None = None  # first-call compile time of the Adam stage's loss (--compile on)
        self.stage_compile_s: float | None = None  # the second stage's compile (--compile on), summed over windows
        self.wall_seconds = 0.0
        self.next_eval = 0
        self.status = "running"
        self.failures = 0  # consecutive non-finite steps
        self.events: list[dict[str, Any]] = []
        self.diverged_terms: list[str] = []

    def enter_window(self, i: int, warm: bool = True) -> None:
        """Start window ``i`` of ``--time-windows`` (:mod:`pinnbal.train.windows`): its network from window
        i − 1's weights (``warm``; a resume restores them instead), its problem, batches, terms, a fresh balancer
        state and optimisers; the counters of the finished window move into ``step_offset``."""
        network = self.model.network
        if warm:
            network.nets[i].load_state_dict(network.nets[i - 1].state_dict())
        self.activate(i)
        self.choose_params()
        self.step_offset += self.next_step + self.lbfgs_done
        self.window, self.window_started = i, self.train_seconds
        self.next_step, self.lbfgs_done, self.lbfgs_previous, self.failures = 0, 0, None, 0
        self.problem = windows.window_problem(self.full_problem, i, self.config.time_windows,
                                              windows.previous_window(self.model, i))
        self.build_window()
        self.build_optimisers()
        self.probe()
        switch_on(self)

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

    # -- the step ----------------------------------------------------------------
    def refresh_points(self, step: int) -> None:
        """New points when due: every ``--resample-every`` steps, and when a residual-based scheme asks."""
        every = self.config.resample_every
        if every and step and step % every == 0:
            self.redraw()
        if self.balancer.resamples(step):
            self.resample_by_residual()

    def redraw(self) -> None:
        """Fresh points for every term; per-point balancer state starts afresh on them."""
        self.batches.draw()
        self.state = self.balancer.redrawn(self.state)

    def redraw_in_stage(self) -> None:
        """Fresh points in the second stage (``--then NAME:resample=N``): the balancer's per-point state and the
        frozen multipliers follow the new points, and the optimiser measures its objective afresh."""
        self.redraw()
        self.frozen = self.freeze_points()
        self.lbfgs_previous = None
        new_objective(self.lbfgs)

    def clock(self, tick: float) -> None:
        """Count the training time since ``tick`` (after the device has finished the step)."""
        sync(self.device)
        elapsed = time.perf_counter() - tick
        fused = None if self.fused is None or self.lbfgs is not None else self.fused.take_compile_seconds()
        if self.batches.compiled is not None and self.compile_s is None and self.lbfgs is None:
            self.compile_s = elapsed  # the first compiled step: tracing, compiling forward and backward, the step
        elif fused is not None:  # the one-graph gradient first ran after the first step (a cadence balancer)
            self.compile_s = (self.compile_s or 0.0) + fused
        self.train_seconds += elapsed

    def resample_by_residual(self) -> None:
        """Residual-based adaptive sampling of the scheme's terms from fresh candidates: RAD replaces their
        points (per-point state starts afresh), RAR-D appends to them (kept points keep their state)."""
        scheme = self.balancer.resampler()
        appended = False
        for k, term in enumerate(self.problem.terms):
            if term.kind in scheme.term_kinds():
                add = scheme.added(k, len(self.batches.items[k][1]))  # None: replace every point
                appended |= add is not None
                self.batches.redraw_by_residual(self.model, k, scheme.candidates, scheme.select, add=add)
        if appended:
            self.state = self.balancer.fit_points(self.state, [None if x is None else len(x)
                                                               for _, x, _ in self.batches.items])
        else:
            self.state = self.balancer.redrawn(self.state)

    def step(self, optimizer, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Set ``.grad`` for one balanced step; return (losses, weights)."""
        optimizer.zero_grad(set_to_none=True)
        if self.fused is not None and weights_ahead(self.balancer, step):  # the weights before the step
            weights = self.held_weights(self.state["weights"])
            fused = self.fused_gradient(weights)
            if fused is not None:
                return torch.stack([ell.mean() for ell in fused[1]]), weights
        request = self.balancer.request(step)
        whole = self.jacobian_params is self.params  # J over every parameter: the step is Σ w_k J_k
        values, J = self.losses_and_jacobian(request.jacobian, whole)
        losses = values.losses
        traces = self.ntk_traces(request.ntk_points) if request.ntk_points else None
        rows = J if J is None or self.row_scale is None else self.row_scale.to(J)[:, None] * J
        stats = Stats(losses=losses.detach(), jacobian=rows if request.jacobian else None, ntk_traces=traces,
                      pointwise=[ell.detach() for ell in values.pointwise], points=self.batches.points,
                      context=self.context if request.context else None)
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

    def losses_and_jacobian(self, jacobian: bool, whole: bool) -> tuple[TermValues, torch.Tensor | None]:
        """This step's term values and the per-term gradients J (K × P over the Jacobian's parameters; None when
        not taken).  Under ``--compile on``, for plain mean term losses and J over every parameter, both come
        from one compiled graph (:mod:`pinnbal.train.fused`); else the term losses' graph, and J from it when
        ``jacobian``.

        A weights balancer that reads only the step's losses (``relobralo``, ``bayes``) gets its gradient as
        Σ_k w_k J_k from those rows when every term has a batch of its own: the K rows then cost one backward,
        and the graph is one."""
        rows_anyway = self.balancer.kind == "weights" and self.fused is not None and self.fused.separate
        if (jacobian or rows_anyway) and whole and self.fused is not None and plain_losses(self.balancer):
            out = self.fused.rows(self.params)
            if out is not None:
                J, pointwise = out
                return TermValues([None] * len(pointwise), pointwise, [ell.mean() for ell in pointwise]), J
            self.fused_failed()
        values = evaluate_terms(self.model, self.batches, self.balancer, self.state)
        J = self.jacobian(values.terms, self.jacobian_params, retain_graph=not whole) if jacobian else None
        return values, J

    def fused_failed(self) -> None:
        """The one-graph gradient has failed: the event, and per-batch graphs from now on."""
        self.events.append({"step": self.next_step, "event": f"one-graph gradient failed: {self.fused.reason}",
                            "action": "per-batch compiled graphs from now on"})
        self.fused = None

    def fused_gradient(self, weights: torch.Tensor):
        """``.grad`` of Σ_k w_k L_k from the one-graph gradient (:mod:`pinnbal.train.fused`, ``--compile on``) and
        (the sum, the pointwise losses ℓ_k); None when it is off or has just failed (then off, an event says
        why)."""
        if self.fused is None:
            return None
        out = self.fused(self.params, weights.to(device=self.device, dtype=self.dtype))
        if out is None:
            self.fused_failed()
        return out

    def set_grad(self, flat: torch.Tensor) -> None:
        """Each parameter's ``.grad`` from the flat direction (P,)."""
        offset = 0
        for p in self.params:
            p.grad = flat[offset: offset + p.numel()].view_as(p).clone()
            offset += p.numel()

    def switch_precision(self) -> None:
        """Cast the network, its unknowns and every batch to the second stage's dtype, once, at the switch.

        Under ``--compile on`` the second stage's loss is compiled too, anew in its dtype (the first chunk pays
        the compile); ``lm`` runs eagerly (its per-point Jacobian takes backwards a compiled graph does not)."""
        dtype = self.stage.torch_dtype
        if self.batches.compiled is not None and (self.stage.method == "lm" or dtype != self.dtype):
            self.batches.compiled = None if self.stage.method == "lm" else {}
        if self.stage.method == "lm":
            self.fused = None
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
    def predict(self, x: np.ndarray) -> np.ndarray:
        out = []
        mode = self.model.training
        self.model.eval()
        with torch.no_grad(), routed(self.model.network):
            for chunk in np.array_split(x, max(1, len(x) // 32768 + 1)):
                xt = torch.as_tensor(chunk, dtype=self.dtype, device=self.device)
                out.append(self.model(xt).double().cpu().numpy())
        self.model.train(mode)
        return np.concatenate(out)

    def rel_l2(self) -> tuple[float, dict[str, float]]:
        """Relative L2 error over the evaluation set: overall (on the problem's ``error_outputs``) and per output."""
        pred = self.predict(self.eval_x)
        ref = self.eval_v
        measured = [self.problem.outputs.index(o) for o in self.problem.error_outputs]  # a window's problem keeps them
        overall = float(np.linalg.norm(pred[:, measured] - ref[:, measured])
                        / max(np.linalg.norm(ref[:, measured]), 1e-300))
        per = {o: float(np.linalg.norm(pred[:, j] - ref[:, j]) / max(np.linalg.norm(ref[:, j]), 1e-300))
               for j, o in enumerate(self.problem.outputs)}
        return overall, per


def adam_for(params: list[torch.Tensor], lr: float) -> torch.optim.Adam:
    """``torch.optim.Adam`` with its fused kernel where the parameters' device has one (CPU and CUDA): one
    kernel per step instead of about ten small operations per parameter tensor, the same update to rounding.
    Measured on this project's 2-core CPU, idle, 2026-12-07, by a one-off script that timed ``optimizer.step()``
    alone (not in the repository; 4 x 32 tanh network, 2000 steps, fastest of 3 rounds, one process): 0.38 ms per
    step for the default single-tensor loop, 0.28 ms foreach, 0.11 ms fused.  Against a
    compiled Burgers step of 12-14 ms that day, the step-level bench (`pinnbal bench speed --balancers fixed
    --steps 150 --rounds 3 --repeats 3 --compiled`, two runs each way, alternating) could not tell the two apart."""
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, fused=fused or None)
