"""What watches a training loop rather than trains: each a small object with named hooks.

The loops of :mod:`pinnbal.train.loop` call them at fixed points of a step
(the model in the spirit of Lightning Fabric's plain loop with callbacks):

- :class:`History`: ``record`` a history row (every ``log_every`` steps and
  the last), evaluate rel L2 and the validation loss on their cadence, show
  the row on the progress bar (tqdm: maintained, light, terminals and
  notebooks), and tell ``on_row`` listeners;
- :class:`RollBack`: ``before_step`` keeps a good state in memory every
  ``ROLLBACK_EVERY`` steps; ``on_bad_step`` restores it after a non-finite
  loss or gradient and halves the learning rate; ``MAX_FAILURES`` in a row
  end the run as ``diverged``;
- :class:`Checkpoints`: ``after_step`` writes ``checkpoint.pt`` every
  ``checkpoint_every`` steps and when a stop signal arrived (then the loop
  ends); a failed write is an event, training goes on;
- :class:`Budget`: ``spent`` ends a stage when ``--budget`` seconds of
  training are used (Adam gets half when a second stage follows);
- early stopping is :class:`pinnbal.train.early_stop.EarlyStopping`, and
  SIGINT/SIGTERM arrive through :mod:`pinnbal.train.guard`.

Each keeps what a resumed run needs in the trainer's checkpointed counters,
so a resume continues exactly.
"""

from __future__ import annotations

import copy
import math
import time
from typing import TYPE_CHECKING, Any

import torch

from ..errors import StorageError
from ..rundir import write_checkpoint
from .records import snapshot

if TYPE_CHECKING:
    from .trainer import Trainer

ROLLBACK_EVERY = 100  # steps between the in-memory good states a non-finite step rolls back to
MAX_FAILURES = 5  # consecutive non-finite steps before a run is declared diverged
LR_CUT = 0.5  # learning-rate factor applied at each roll-back


class History:
    """History rows and the progress bar of one :meth:`Trainer.fit`."""

    def __init__(self, trainer: Trainer, enabled: bool, started: float):
        from tqdm.auto import tqdm

        self.trainer, self.started = trainer, started
        total = (trainer.config.steps + trainer.config.lbfgs) * trainer.config.time_windows
        self.bar = tqdm(total=total, disable=not enabled, unit="step",
                        desc=f"{trainer.problem.name} [{trainer.balancer.name}]", dynamic_ncols=True, leave=True,
                        initial=trainer.step_offset + trainer.next_step + trainer.lbfgs_done)

    def record(self, step: int, phase: str, losses: torch.Tensor, weights: torch.Tensor, last: bool,
               force: bool = False) -> None:
        """Append the row of ``step`` when it is due (or ``force``/``last``) and show it."""
        t = self.trainer
        if not (force or last or step % t.config.log_every == 0):
            return
        step += t.step_offset  # the run's step count across --time-windows
        w = weights.detach().double().cpu()
        row: dict[str, Any] = {"step": step, "phase": phase, "wall_s": round(time.perf_counter() - self.started, 4),
                               "loss": float((w * losses.double().cpu()).sum())}
        row |= {f"loss/{term.name}": value for term, value in zip(t.terms, losses.double().cpu().tolist())}
        row |= {f"weight/{term.name}": weight for term, weight in zip(t.terms, w.tolist())}
        for key in t.balancer.logged_state:
            row |= {f"{key}/{term.name}": value for term, value in zip(t.terms, t.state[key].tolist())}
        row |= {f"unknown/{name}": float(value.detach()) for name, value in t.model.unknowns.items()}
        evaluate_now = last or step >= t.next_eval  # second-stage rows skip steps: catch up on crossing
        if evaluate_now:
            t.next_eval = step - step % t.config.eval_every + t.config.eval_every
        if evaluate_now and t.validation is not None:
            row["val_loss"] = t.early.measure(t.model, t.validation, step)
        row["rel_l2"] = t.rel_l2()[0] if evaluate_now and t.eval_v is not None else None
        t.history.append(row)
        self.show(row, w)
        for listener in t.on_row:
            listener(row)

    def show(self, row: dict[str, Any], weights: torch.Tensor) -> None:
        shown = {"loss": f"{row['loss']:.2e}"}
        shown |= {f"w_{term.name}": f"{wt:.3g}" for term, wt in zip(self.trainer.terms, weights.tolist())}
        if row["rel_l2"] is not None:
            shown["rel_l2"] = f"{row['rel_l2']:.2e}"
        self.bar.set_postfix(shown, refresh=False)

    def advance(self, steps: int) -> None:
        self.bar.update(steps)

    def close(self) -> None:
        self.bar.close()


class RollBack:
    """Undo a non-finite Adam step: back to the last good state, half the learning rate."""

    def __init__(self):
        self.good: dict[str, Any] | None = None  # in memory only: re-taken at the first step after a resume

    def before_step(self, trainer: Trainer, step: int) -> None:
        if self.good is None or (step % ROLLBACK_EVERY == 0 and not trainer.failures):
            self.good = {"step": step, "model": copy.deepcopy(trainer.model.state_dict()),
                         "adam": copy.deepcopy(trainer.adam.state_dict())}

    def on_bad_step(self, trainer: Trainer, step: int, losses: torch.Tensor) -> None:
        trainer.failures += 1
        trainer.model.load_state_dict(self.good["model"])
        trainer.adam.load_state_dict(self.good["adam"])
        for group in trainer.adam.param_groups:
            group["lr"] *= LR_CUT
        bad = [t.name for t, v in zip(trainer.terms, losses.tolist()) if not math.isfinite(v)] or ["gradient"]
        trainer.events.append({"step": step, "event": "non-finite " + ", ".join(bad),
                               "action": f"rolled back to step {self.good['step']}, "
                                         f"lr -> {trainer.adam.param_groups[0]['lr']:.3g}"})
        if trainer.failures >= MAX_FAILURES:
            trainer.status = "diverged"
            trainer.diverged_terms = bad


class Checkpoints:
    """``checkpoint.pt`` on the step cadence and on a stop signal."""

    def __init__(self, started: float):
        self.started = started

    def after_step(self, trainer: Trainer, done: int, stopping: bool) -> bool:
        """Checkpoint when ``done`` is a multiple of ``checkpoint_every``, and when stopping; True: stop now."""
        if trainer.out is not None and (stopping or done % trainer.config.checkpoint_every == 0):
            trainer.wall_seconds = time.perf_counter() - self.started
            try:
                write_checkpoint(trainer.out, snapshot(trainer))
            except StorageError as exc:  # keep training: the previous checkpoint is intact, the next may succeed
                trainer.events.append({"step": done - 1, "event": f"checkpoint not written: {exc}",
                                       "action": "kept training; the previous checkpoint is intact"})
                if stopping:
                    raise
        if stopping:
            trainer.status = "interrupted"
        return stopping


class Budget:
    """``--budget SECONDS`` of training time."""

    @staticmethod
    def spent(trainer: Trainer, stage: str, step: int) -> bool:
        """True (and an event) when the budget ends this stage: Adam at half the budget if a second stage
        follows, else at all of it; the second stage at the whole budget."""
        budget = trainer.config.budget / trainer.config.time_windows  # each window its share
        if stage == "adam" and trainer.config.lbfgs:
            budget /= 2
        if not (budget and trainer.train_seconds - trainer.window_started >= budget):
            return False
        trainer.events.append({"step": step, "event": f"time budget: {trainer.train_seconds:.1f} s of training",
                               "action": f"ended the {stage} stage"})
        return True

