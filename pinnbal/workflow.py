"""A run from problem file to run directory: :func:`train`, :func:`resume` (the public API behind
``pb.train`` and ``pinnbal run``).

The engine (:mod:`pinnbal.train`) trains; this module adds what a user's run
needs around it: the problem's recipe, the run directory (validated before
anything is created, locked while training, nothing half-written on a
mistake), the figures, and one clear error for an interruption or a
divergence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import rundir
from .balancers import Balancer
from .errors import OptionError, PinnbalError, ProblemError
from .loader import load_problem
from .problem import Problem
from .train import MAX_FAILURES, Run, TrainConfig, Trainer, default_balancer, fit
from .train.config import OBSERVED, SPEC_SETTINGS, expand_settings
from .train.guard import run_lock
from .train.records import config_record, restore, result


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
    if isinstance(problem, (str, Path)):
        problem_path = str(Path(problem).resolve())
        problem = load_problem(problem)
    unknown = sorted(set(settings) - set(TrainConfig.__dataclass_fields__) - set(SPEC_SETTINGS))
    if unknown:
        raise OptionError(f"train(): unknown setting {unknown[0]!r}; settings are "
                          f"{', '.join([*TrainConfig.__dataclass_fields__, *SPEC_SETTINGS])}")
    settings, balancer = with_recipe(problem, settings, balancer)
    trainer = Trainer(problem, balancer, TrainConfig(**settings), problem_path, out=out)
    if out is None:
        return finish(trainer, None, progress, render)
    out = Path(out)
    created = not out.exists()
    rundir.prepare_out_dir(out, force)
    try:
        with run_lock(out):
            rundir.write_run_start(out, config_record(trainer))
            try:
                return finish(trainer, out, progress, render)
            except (ProblemError, OptionError):
                # a mistake met mid-run (a rule returning NaN at step 4): before any checkpoint, leave nothing
                rundir.forget_start(out)
                raise
    finally:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


def with_recipe(problem: Problem, settings: dict[str, Any],
                balancer: str | Balancer | None) -> tuple[dict[str, Any], str | Balancer]:
    """The run's settings and balancer: the problem's recipe under what was given, the library's default
    (:func:`pinnbal.train.config.default_balancer`) when neither names a balancer."""
    recipe = problem.recipe
    chosen = balancer if balancer is not None else problem_balancer(problem)[0]
    if recipe is None:
        return expand_settings(settings), chosen
    recipe.check([*TrainConfig.__dataclass_fields__, *SPEC_SETTINGS])
    return expand_settings(recipe.settings) | expand_settings(settings), chosen


def problem_balancer(problem: Problem) -> tuple[str, str]:
    """The balancer a run of ``problem`` uses when the command line names none, and why (a phrase for
    ``pinnbal info``): the recipe's, else the library default for the problem."""
    if problem.recipe is not None and problem.recipe.balancer:
        return problem.recipe.balancer, "its recipe's"
    n = problem.observations
    observed = f": {n} observations, {'at least' if n >= OBSERVED else 'fewer than'} {OBSERVED}" if n else ""
    return default_balancer(problem), f"the library default{observed}"


def resume(out: str | Path, *, progress: bool = False, render: bool = True) -> Run:
    """Continue the run in ``out`` from its checkpoint, exactly where it stopped."""
    out = Path(out)
    config = rundir.read_config(out)
    if config is None:
        raise OptionError(f"--resume {out}: not a run directory (no {rundir.CONFIG})")
    if not rundir.has_checkpoint(out):
        raise OptionError(f"--resume {out}: no {rundir.CHECKPOINT} to resume from; the run stopped before its first "
                          f"checkpoint, start it again with --force")
    with run_lock(out):
        if (rundir.read_metrics(out) or {}).get("status") == "completed":
            raise OptionError(f"--resume {out}: that run has already completed")
        problem_path = config["problem_path"]
        if not problem_path or not Path(problem_path).is_file():
            raise OptionError(f"--resume {out}: its problem file {problem_path!r} is gone")
        trainer = Trainer(load_problem(problem_path), config["balancer"], TrainConfig(**config["train"]),
                          problem_path, out=out)
        restore(trainer, rundir.read_checkpoint(out))
        return finish(trainer, out, progress, render)


def finish(trainer: Trainer, out: Path | None, progress: bool, render: bool) -> Run:
    """Fit, write the run files, and turn an interruption or a divergence into a clear error."""
    try:
        run = fit(trainer, progress_bar=progress)
    except KeyboardInterrupt:  # a second signal: stop at once; the last checkpoint stays valid
        trainer.status = "interrupted"
        if out is not None and trainer.history:
            write_run(out, result(trainer, trainer.wall_seconds), trainer, render=False)
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


def write_run(out: Path, run: Run, trainer: Trainer, render: bool) -> None:
    """The run directory's files for ``run``; its figures too when ``render``."""
    rundir.write_run(out, run.history, run.metrics, trainer.model, trainer.state, trainer.predict)
    if render:
        from .render import render_run  # matplotlib loads only when figures are drawn (half a second at start-up)

        render_run(out)


__all__ = ["Interrupted", "finish", "resume", "train", "with_recipe"]
