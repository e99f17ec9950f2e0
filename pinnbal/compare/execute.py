"""Running a sweep's jobs on this machine: one process per run (a pool of ``jobs`` workers, torch threads
split between them), the progress bar, and :func:`run_sweep`, what every executor shares around its runs
(the ledger, the summaries)."""

from __future__ import annotations

import itertools
import multiprocessing
import signal
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PinnbalError
from ..rundir import METRICS
from ..storage import read_json
from ..workflow import resume, train
from .plan import FINAL, Job, Sweep
from .results import Ledger, Outcome
from .summary import write_summaries

#: In a worker: the signals received outside a training run (a run in flight handles its own).
SIGNALLED: list[int] = []


@dataclass
class Comparison:
    """The result of :func:`compare`."""

    sweep: Sweep
    summary: Path  # the summary.md to read first
    tables: str  # what the CLI prints: what every run shared (budget, points, data split, seeds), the tables
    outcomes: list[Outcome] = field(default_factory=list)  # the runs trained now
    skipped: list[Job] = field(default_factory=list)  # finished runs found on disk
    jobs: int = 1
    threads: int = 1

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status not in FINAL]


def train_job(job: Job, settings: dict[str, Any]) -> Outcome:
    """Train one run into its directory (in a worker or in this process); never raises for a run's failure."""
    import torch

    if SIGNALLED:  # a worker told to stop before this run began: leave it for the next invocation
        return Outcome(job, "interrupted", None, "interrupted before it started", torch.get_num_threads())
    started = time.time()
    finished = finished_meanwhile(job)
    if finished is not None:
        return Outcome(job, finished["status"], finished.get("rel_l2"), None, torch.get_num_threads())
    try:
        if job.resume:
            run = resume(job.out, render=True)
        else:
            run = train(job.problem_path, job.entry.run_spec, out=job.out, force=True, seed=job.seed, progress=False,
                        render=True, **settings)
    except PinnbalError as exc:  # interrupted, diverged (this run's metrics.json says so), a locked directory
        if getattr(exc, "signum", None) is not None:
            status = "interrupted"
        else:
            status = "diverged" if wrote_status(job.out, started) == "diverged" else "failed"
        return Outcome(job, status, None, str(exc), torch.get_num_threads())
    except Exception as exc:  # a bug in a balancer or a problem: this run fails, the sweep goes on
        return Outcome(job, "failed", None, f"{type(exc).__name__}: {exc}", torch.get_num_threads())
    return Outcome(job, run.metrics["status"], run.metrics["rel_l2"], None, torch.get_num_threads())


def finished_meanwhile(job: Job) -> dict[str, Any] | None:
    """The metrics of a run another process (a second sweep on the same directory) finished after this sweep
    planned it: kept, never trained over."""
    saved = written_after(job.out, job.planned, slack=0.0) if job.planned else None
    return saved if saved is not None and saved.get("status") in FINAL else None


def wrote_status(out: Path, since: float) -> str | None:
    """The status in ``out/metrics.json`` if that file was written after ``since``."""
    return (written_after(out, since) or {}).get("status")


def written_after(out: Path, since: float, slack: float = 1.0) -> dict[str, Any] | None:
    """``out/metrics.json`` if it was written after ``since`` (less ``slack`` seconds, for coarse file-system
    clocks; none where an older result must not count, such as a run finished just before a --force sweep)."""
    try:
        if (out / METRICS).stat().st_mtime >= since - slack:
            return read_json(out / METRICS)
    except (OSError, ValueError):
        pass
    return None


def worker_init(threads: int) -> None:
    """In each worker, before any training: torch gets its share of the cores, and Ctrl-C outside a run
    is noted (no traceback; a run that has not begun is then skipped), while a run in flight catches it
    itself, checkpoints and stops."""
    import torch

    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, lambda signum, frame: SIGNALLED.append(signum))


class Progress:
    """One bar over finished runs; the postfix shows the last result and the failures so far."""

    def __init__(self, total: int, done: int, jobs: int, enabled: bool, where: str = ""):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=done, unit="run", desc=f"compare{where} ({jobs} job{'s' * (jobs > 1)})",
                        disable=not enabled, dynamic_ncols=True, leave=True)
        self.failures = 0

    def __call__(self, outcome: Outcome) -> None:
        if outcome.status in FINAL and outcome.error is None:
            last = f"rel L2 {outcome.rel_l2:.2e}" if outcome.rel_l2 is not None else "done"
        else:
            self.failures += 1
            last = f"{outcome.status}: {(outcome.error or '')[:80]}"
        shown = {"last": f"{outcome.job.label} {last}"}
        if self.failures:
            shown["failed"] = str(self.failures)
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def drive(todo: list[Job], jobs: int, submit, wait_any, collect, report, stop_on_crash: bool = True,
          cancel=None) -> list[Outcome]:
    """Train ``todo`` on an executor with at most ``jobs`` runs in flight; report each run as it ends.

    The loop shared by the process pool and the Ray executor: ``submit(job)``
    starts a run and returns a handle, ``wait_any(handles)`` returns the
    handles that have finished (at least one), ``collect(handle)`` its
    :class:`Outcome`, raising when the worker itself died.  Handing out runs
    one by one keeps queued runs from starting after Ctrl-C (the runs in
    flight checkpoint and stop: the workers get the signal too, or
    ``cancel(handles)`` passes it on) and after a dead worker when
    ``stop_on_crash`` (a broken process pool).  Raises KeyboardInterrupt after
    an interrupted run.
    """
    outcomes: list[Outcome] = []
    queue, running, stop = iter(todo), {}, False
    try:
        for job in itertools.islice(queue, jobs):
            running[submit(job)] = job
        while running:
            for handle in wait_any(list(running)):
                job = running.pop(handle)
                try:
                    outcome = collect(handle)
                    outcome.job = job  # the job as this process knows it (a remote one may hold resolved paths)
                except Exception as exc:  # the worker died (out of memory, killed, a lost node)
                    outcome = Outcome(job, "failed", None, f"worker died: {type(exc).__name__}: {exc}")
                    stop = stop or stop_on_crash
                stop = stop or outcome.status == "interrupted"
                outcomes.append(outcome)
                report(outcome)
                following = None if stop else next(queue, None)
                if following is not None:
                    running[submit(following)] = following
    except KeyboardInterrupt:
        if cancel is not None and running:
            cancel(list(running))
        raise
    if any(o.status == "interrupted" for o in outcomes):
        raise KeyboardInterrupt
    return outcomes


def execute(todo: list[Job], settings: dict[str, Any], jobs: int, threads: int, report) -> list[Outcome]:
    """Train ``todo``: in this process for one job, else in ``jobs`` spawned workers."""
    if jobs == 1:
        import torch

        outcomes: list[Outcome] = []
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for job in todo:
                outcomes.append(train_job(job, settings))
                report(outcomes[-1])
                if outcomes[-1].status == "interrupted":
                    raise KeyboardInterrupt
        finally:
            torch.set_num_threads(before)
        return outcomes
    # leaving the block waits for the workers (after Ctrl-C their runs checkpoint and stop)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=worker_init, initargs=(threads,)) as pool:
        return drive(todo, jobs, lambda job: pool.submit(train_job, job, settings),
                     lambda futures: wait(futures, return_when=FIRST_COMPLETED)[0],
                     lambda future: future.result(), report)


def run_sweep(sweep: Sweep, todo: list[Job], done: list[Job], jobs: int, threads: int, progress: bool, execute_with,
              where: str = "", cluster: dict[str, int] | None = None) -> Comparison:
    """What every executor shares around its runs: the progress bar, the ledger, the summaries.

    ``execute_with(report)`` trains ``todo`` and calls ``report(outcome)`` as
    each run ends; ``where`` goes in the bar's title and ``cluster`` (a Ray
    cluster's ``cpus`` and ``gpus``) in the ledger.
    """
    bar = Progress(len(todo) + len(done), len(done), jobs, progress and bool(todo), where)
    ledger = Ledger(sweep.out)

    def report(outcome: Outcome) -> None:
        bar(outcome)
        ledger.add(outcome, jobs, cluster)

    try:
        outcomes = execute_with(report)
    finally:
        bar.close()
    summary, tables = write_summaries(sweep, ledger)
    return Comparison(sweep, summary, tables, outcomes, done, jobs, threads)
