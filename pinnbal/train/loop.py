"""The training loop: the Adam stage and the second stage, each on one screen.

One Adam step (the data flow is in ARCHITECTURE.md):

1. the points are refreshed when due (``--resample-every``, or a residual-based
   scheme such as ``rar``);
2. :meth:`Trainer.step` computes the term losses, the statistics the
   balancer asks for this step, the weights, and ``.grad``;
3. a finite step is applied (Adam, learning-rate schedule); a non-finite one
   is rolled back (:class:`~pinnbal.train.callbacks.RollBack`);
4. the history gets its row, early stopping its evaluation, the checkpoint
   its turn; a signal, a spent budget, early stopping or divergence end the
   stage.

The second stage (``--then``: L-BFGS, BFGS, self-scaled BFGS or Broyden, or
Levenberg–Marquardt; see :mod:`pinnbal.train.stages`) minimises Σ_k w_k L_k with the balancer's final
weights (and per-point multipliers) held fixed, in chunks of ``log_every``
iterations so it logs and checkpoints (``resample=N`` in the spec: fresh points every N iterations); a
non-finite chunk is undone and ends
the stage, a chunk that leaves the loss unchanged means it has converged.
With ``--early-stop N`` the second stage is scored on the validation set
too and stops (best model restored) after N evaluations without a better
score: a long float64 stage can fit the noise of observations.
"""

from __future__ import annotations

import copy
import math
import time
from typing import TYPE_CHECKING

import torch

from ..balancers.pointwise import weighted_means
from ..batches import evaluate_terms
from ..jacobian import sync
from .callbacks import Budget, Checkpoints, History, RollBack
from .fused import plain_losses
from .guard import stop_on_signals
from .least_squares import SumOfSquares
from .records import result
from .stages import make_optimizer, next_chunk, redraw_due, set_chunk

if TYPE_CHECKING:
    from .trainer import Run, Trainer


def adam_stage(trainer: Trainer, history: History, checkpoints: Checkpoints, rollback: RollBack) -> None:
    cfg = trainer.config
    trainer.model.train()  # dropout, if any, is active in the Adam phase only
    while trainer.next_step < cfg.steps:
        step = trainer.next_step
        tick = time.perf_counter()
        trainer.refresh_points(step)
        rollback.before_step(trainer, step)
        losses, weights = trainer.step(trainer.adam, step)
        healthy = all_finite(losses, trainer.params)
        if healthy:
            trainer.adam.step()
            trainer.scheduler.step()
            trainer.failures = 0
        else:
            rollback.on_bad_step(trainer, step, losses)
        trainer.clock(tick)
        trainer.next_step = step + 1
        stopping = trainer.stop.signum is not None  # read once: a signal arriving later waits a step
        timed_out = Budget.spent(trainer, "adam", step)
        if healthy:
            history.record(step, "adam", losses, weights, last=step == cfg.steps - 1 or timed_out)
            if trainer.early.should_stop(step, trainer.model):
                trainer.events.append({"step": step, "event": f"no better validation loss in {cfg.early_stop} "
                                       f"evaluations", "action": "early stop; restored the best model"})
        history.advance(1)
        if trainer.early.stopped_at is not None:
            return
        if trainer.status == "diverged" or checkpoints.after_step(trainer, step + 1, stopping) or timed_out:
            return


def second_stage(trainer: Trainer, history: History, checkpoints: Checkpoints) -> None:
    """``--then``: a fixed-weight optimiser in the stage's precision, ``log_every`` iterations per chunk."""
    cfg, method = trainer.config, trainer.stage.method
    held = trainer.held_weights(trainer.balancer.fixed_weights(trainer.state))
    trainer.model.eval()  # a deterministic objective for the line search: no dropout
    fresh = trainer.lbfgs is None
    if fresh:
        trainer.switch_precision()
        trainer.lbfgs = make_optimizer(trainer.stage, trainer.params, cfg.log_every)
    if trainer.batches.compiled == {}:  # --compile on: compiled anew in the stage's dtype (Trainer.switch_precision)
        compile_stage(trainer)
    if fresh:
        trainer.frozen = trainer.freeze_points()
        trainer.early.bad = 0  # a new optimiser gets the whole patience
    optimizer = trainer.lbfgs
    weights = held.to(device=trainer.device, dtype=trainer.dtype)
    closure, last = stage_objective(trainer, weights)
    while trainer.lbfgs_done < cfg.lbfgs:
        if redraw_due(trainer.stage, trainer.lbfgs_done):
            trainer.redraw_in_stage()
            closure, last = stage_objective(trainer, weights)
        chunk = next_chunk(trainer.stage, trainer.lbfgs_done, cfg.lbfgs, cfg.log_every)
        set_chunk(optimizer, chunk)
        tick = time.perf_counter()
        kept = copy.deepcopy(trainer.model.state_dict())
        loss = float(optimizer.step(closure))
        trainer.clock(tick)
        before = trainer.lbfgs_done
        trainer.lbfgs_done += chunk
        stopping = trainer.stop.signum is not None
        losses = last["losses"] if last else evaluate_terms(trainer.model, trainer.batches).means
        if not (math.isfinite(loss) and bool(torch.isfinite(losses).all())):
            trainer.model.load_state_dict(kept)
            trainer.events.append({"step": trainer.next_step + before, "event": f"non-finite loss in {method}",
                                   "action": "kept the state before this chunk and ended the second stage"})
            return
        # no step changed the loss: converged (LM: unless its damping is still rising after rejected steps)
        stalled = loss == trainer.lbfgs_previous and getattr(optimizer, "converged", True)
        trainer.lbfgs_previous = loss
        step = trainer.next_step + trainer.lbfgs_done - 1
        timed_out = Budget.spent(trainer, method, step)
        history.record(step, method, losses, held, last=trainer.lbfgs_done >= cfg.lbfgs or stalled or timed_out,
                       force=True)
        history.advance(chunk)
        if trainer.early.should_stop(step, trainer.model):
            trainer.events.append({"step": step, "event": f"no better validation loss in {cfg.early_stop} "
                                   f"evaluations of {method}", "action": "early stop; restored the best model"})
            return
        if stalled or timed_out:
            return
        crossed = trainer.lbfgs_done // cfg.checkpoint_every > before // cfg.checkpoint_every
        if checkpoints.after_step(trainer, cfg.checkpoint_every if crossed else 1, stopping):
            return


def compile_stage(trainer: Trainer) -> None:
    """Compile the second stage's loss before anything evaluates it (the frozen per-point multipliers, the
    first chunk), timed apart (``stage_compile_s`` in ``metrics.json``, counted in the training time and the
    budget): one forward and backward of the term losses at the current parameters, the gradient dropped."""
    tick = time.perf_counter()
    if fused_objective(trainer) is None or trainer.fused_gradient(torch.ones(len(trainer.terms))) is None:
        evaluate_terms(trainer.model, trainer.batches).losses.sum().backward()
    trainer.lbfgs.zero_grad(set_to_none=True)
    sync(trainer.device)
    elapsed = time.perf_counter() - tick
    trainer.train_seconds += elapsed
    trainer.stage_compile_s = (trainer.stage_compile_s or 0.0) + elapsed


def stage_objective(trainer: Trainer, weights: torch.Tensor):
    """The second stage's closure on the current points and the dict where it leaves the term losses (empty
    for lm, whose closure gives residuals: its term losses are evaluated after each chunk instead)."""
    return (SumOfSquares(trainer, weights), {}) if trainer.stage.method == "lm" else fixed_objective(trainer, weights)


def fixed_objective(trainer: Trainer, weights: torch.Tensor):
    """The second stage's closure, Σ_k w_k L_k at fixed weights (and frozen per-point multipliers), and the
    dict where it leaves the last term losses."""
    objective = trainer.balancer if trainer.frozen is None else FrozenPoints(trainer.frozen)
    optimizer, last = trainer.lbfgs, {}

    def closure():
        optimizer.zero_grad(set_to_none=True)
        if fused_objective(trainer) is not None:
            fused = trainer.fused_gradient(weights)
            if fused is not None:
                last["losses"] = torch.stack([ell.mean() for ell in fused[1]])
                return fused[0]
        values = evaluate_terms(trainer.model, trainer.batches, objective, trainer.state)
        total = (weights * values.losses).sum()
        total.backward()
        last["losses"] = values.means
        return total.detach()

    return closure, last


def fused_objective(trainer: Trainer):
    """The one-graph gradient (:mod:`pinnbal.train.fused`) when the second stage's objective is its plain weighted
    sum (no frozen per-point multipliers, the balancer's term losses plain means), else None."""
    plain = trainer.frozen is None and plain_losses(trainer.balancer)
    return trainer.fused if plain else None


class FrozenPoints:
    """The term losses L_k = mean_i m_i ℓ_i with multipliers fixed at the switch to the second stage."""

    def __init__(self, multipliers: list[torch.Tensor | None]):
        self.multipliers = multipliers

    def losses(self, pointwise, points, state) -> list[torch.Tensor]:
        return weighted_means(pointwise, self.multipliers)


def all_finite(losses: torch.Tensor, params: list[torch.Tensor]) -> bool:
    """Every loss and every gradient finite, in one device sync rather than one per tensor."""
    checks = [torch.isfinite(losses).all()] + [torch.isfinite(p.grad).all() for p in params if p.grad is not None]
    return bool(torch.stack(checks).all())


def fit(trainer: Trainer, progress_bar: bool = True) -> Run:
    """Train from where the run stands (a fresh run or a restored checkpoint): Adam, then the second stage (in
    each time window in turn under ``--time-windows``)."""
    started = time.perf_counter() - trainer.wall_seconds
    history, checkpoints = History(trainer, progress_bar, started), Checkpoints(started)
    trainer.status = "running"
    try:
        with stop_on_signals(trainer.stop):
            while True:
                adam_stage(trainer, history, checkpoints, RollBack())
                if trainer.config.lbfgs and trainer.status == "running" and trainer.early.stopped_at is None:
                    second_stage(trainer, history, checkpoints)
                if trainer.status != "running" or trainer.window + 1 >= trainer.config.time_windows:
                    break
                trainer.enter_window(trainer.window + 1)  # --time-windows: the next window starts where this ended
    finally:
        history.close()
    if trainer.status == "running":
        trainer.status = "completed"
    trainer.model.eval()
    trainer.wall_seconds = time.perf_counter() - started
    return result(trainer, trainer.wall_seconds)
