"""Planning and running a comparison sweep: :func:`compare`.

A sweep trains every (problem, balancer, seed) as an ordinary run directory,
then summarises and draws them from those directories alone
(:mod:`~pinnbal.compare.summary`, :mod:`~pinnbal.compare.figures`)::

    DIR/                               default runs/compare-<problem>[+<problem>...]
      summary.md                       several problems: one table each, and a ranking
      sweep.json                       how each run was trained (parallel jobs, torch threads, CPUs)
      <problem>/
        summary.csv                    one row per balancer, full-precision numbers
        summary.md                     the same as a Markdown table, with the budget
        figures/error_vs_step.png      median and min-max band of rel L2 per balancer
        figures/weights.png            median term weights over seeds, one panel per balancer
        figures/final_error.png        box plot of the final rel L2 per balancer
        figures/error_maps.png         |prediction - reference| of each balancer's median seed
        <balancer>-s<seed>/            a run directory (``pinnbal render`` and friends work on it)

``<balancer>`` is the spec as written with every character outside
``[A-Za-z0-9._=+-]`` replaced by ``_`` (``lra:every=5`` -> ``lra_every=5``).

Choices:

- **Balancer lists.**  ``--balancers`` is split on commas, but a piece of the
  form ``key=value`` (or ``term<target``) continues the options of the spec
  before it, so ``fixed,lra:alpha=0.9,every=10,relobralo`` is three
  balancers; the flag may also be repeated.  Balancer names never contain
  ``=`` or ``<``, so the rule is unambiguous.
- **Processes, not Ray.**  On one machine the runs are independent CPU (or
  one-GPU) jobs that write their own directories; the standard library's
  :class:`concurrent.futures.ProcessPoolExecutor` runs them with nothing to
  install, no cluster to start, no object store and no extra process tree to
  clean up after Ctrl-C, and a failure is an ordinary exception.  Ray earns its
  keep across machines, which is a separate executor (issue 6).  Workers use
  the ``spawn`` start method (no fork of a process that holds torch threads)
  and set ``torch.set_num_threads(cpus // jobs)`` before training: two
  processes with the default thread count each on two cores run many times
  slower than one.  ``--jobs 1`` trains in this process, one run after
  another, without paying the workers' start-up.  At most ``jobs`` runs are
  handed to the pool at a time, so after Ctrl-C (which reaches the workers
  too: their runs checkpoint and stop) no queued run starts.  Workers train
  quietly; the parent shows one progress bar over finished runs.  A run that
  fails is reported and counted; the sweep goes on.
- **Resuming.**  A run whose ``metrics.json`` says ``completed`` (or
  ``diverged``: a result, and a deterministic one) and whose ``config.json``
  matches the sweep is skipped; any other state (no directory, ``config.json``
  without ``metrics.json``, ``interrupted``) is trained again from scratch
  with ``force``.  A finished run with *other* settings is an error before
  anything starts, unless ``force`` (so old results are never overwritten
  by accident).  Every file is written atomically, so a killed sweep loses only
  the runs in flight.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import re
import signal
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import OptionError, PinnbalError
from ..rundir import read_json
from .summary import FINAL, Entry, Job, Sweep, saved_state, write_summaries

#: A piece of a --balancers list that continues the spec before it: key=value or term<target.
OPTION_PIECE = re.compile(r"^[^:]*[=<]")
UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


# -- the sweep --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What became of one run: ``completed``, ``diverged``, ``interrupted`` or ``failed``."""

    job: Job
    status: str
    rel_l2: float | None = None
    error: str | None = None
    threads: int = 0  # torch threads the run trained with


@dataclass
class Comparison:
    """The result of :func:`compare`."""

    sweep: Sweep
    summary: Path  # the summary.md to read first
    tables: str  # the Markdown tables (what the CLI prints)
    outcomes: list[Outcome] = field(default_factory=list)  # the runs trained now
    skipped: list[Job] = field(default_factory=list)  # finished runs found on disk
    jobs: int = 1
    threads: int = 1

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status not in FINAL]


def split_balancers(items: Iterable[str]) -> list[str]:
    """``["fixed,lra:alpha=0.9,every=10", "relobralo"]`` -> ``["fixed", "lra:alpha=0.9,every=10", "relobralo"]``."""
    specs: list[str] = []
    for item in items:
        for piece in (p.strip() for p in item.split(",")):
            if not piece:
                continue
            if OPTION_PIECE.match(piece):
                if not specs:
                    raise OptionError(f"--balancers {item!r}: {piece!r} is an option with no balancer before it "
                                      f"(e.g. --balancers fixed,lra:{piece})")
                specs[-1] += "," + piece
            else:
                specs.append(piece)
    if not specs:
        raise OptionError("--balancers: no balancer given; e.g. --balancers fixed,lra,relobralo")
    return specs


def folder_name(spec: str) -> str:
    """A directory name for a balancer spec: unsafe characters become ``_``."""
    return UNSAFE.sub("_", spec.strip()).strip("._") or "balancer"


def seed_list(seeds: int | Iterable[int]) -> list[int]:
    chosen = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not chosen:
        raise OptionError("--seeds: need at least one seed")
    if min(chosen) < 0 or len(set(chosen)) != len(chosen):
        raise OptionError(f"seeds {chosen}: need distinct seeds >= 0")
    return chosen


def plan(problems: Sequence[str | Path], balancers: Iterable[str], seeds: int | Iterable[int],
         out: str | Path | None, target: float, settings: dict[str, Any]) -> Sweep:
    """Load every problem and balancer and check every option; write nothing."""
    from ..balancers import TermInfo, make_balancer
    from ..loader import load_problem
    from ..train import TrainConfig, pick_device

    if not problems:
        raise OptionError("compare: name at least one problem file")
    if not (isinstance(target, (int, float)) and math.isfinite(target) and target > 0):
        raise OptionError(f"--target {target}: need a positive number")
    allowed = set(TrainConfig.__dataclass_fields__) - {"seed"}
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise OptionError(f"compare(): setting {unknown[0]!r} is not allowed here; settings are the TrainConfig "
                          f"fields except seed (use seeds=)")
    seeds = seed_list(seeds)
    config = TrainConfig(**settings, seed=seeds[0])
    pick_device(config.device)
    loaded: dict[str, Any] = {}
    paths: dict[str, str] = {}
    for given in problems:
        problem = load_problem(given)
        if problem.name in loaded:
            raise OptionError(f"{given}: a second problem named {problem.name!r}; each problem of a sweep needs "
                              f"its own name (it names the directory)")
        config.check(problem)
        loaded[problem.name], paths[problem.name] = problem, str(Path(given).resolve())
    entries, canonicals, folders = [], {}, {}
    for spec in split_balancers(balancers):
        balancer = make_balancer(spec)
        for problem in loaded.values():
            balancer.init([TermInfo(t.name, t.kind, float(config.weights.get(t.name, t.weight)), int(t.points))
                           for t in problem.terms])
        entry = Entry(spec, balancer.spec, balancer.name, folder_name(spec))
        for seen, key in ((canonicals, entry.canonical), (folders, entry.folder)):
            if key in seen:
                raise OptionError(f"--balancers: {spec!r} repeats {seen[key]!r} (same balancer or same directory "
                                  f"name {entry.folder!r}); give each once")
            seen[key] = spec
        entries.append(entry)
    default_out = Path("runs") / ("compare-" + "+".join(loaded))
    return Sweep(paths, [str(p) for p in problems], entries, seeds, dict(settings),
                 Path(out) if out else default_out, float(target))


def pending(sweep: Sweep, force: bool) -> tuple[list[Job], list[Job]]:
    """(runs to train, finished runs to keep); a finished run with other settings is an error unless ``force``."""
    todo, done = [], []
    for job in sweep.jobs:
        status, difference = saved_state(job, sweep)
        if force or status not in FINAL:
            todo.append(job)
        elif difference is None:
            done.append(job)
        else:
            raise OptionError(f"{job.out}: holds a finished run with other settings ({difference}); pass --force "
                              f"to train it again or choose another --out")
    return todo, done


# -- running ----------------------------------------------------------------------------------------


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def train_job(job: Job, settings: dict[str, Any]) -> Outcome:
    """Train one run into its directory (in a worker or in this process); never raises for a run's failure."""
    import torch

    from ..train import train

    if SIGNALLED:  # a worker told to stop before this run began: leave it for the next invocation
        return Outcome(job, "interrupted", None, "interrupted before it started", torch.get_num_threads())
    started = time.time()
    try:
        run = train(job.problem_path, job.entry.spec, out=job.out, force=True, seed=job.seed, progress=False,
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


def wrote_status(out: Path, since: float) -> str | None:
    """The status in ``out/metrics.json`` if that file was written after ``since``."""
    try:
        if (out / "metrics.json").stat().st_mtime >= since - 1:  # -1: coarse file-system clocks
            return read_json(out / "metrics.json").get("status")
    except (OSError, ValueError):
        pass
    return None


#: In a worker: the signals received outside a training run (a run in flight handles its own).
SIGNALLED: list[int] = []


def worker_init(threads: int) -> None:
    """In each worker, before any training: torch gets its share of the cores, and Ctrl-C outside a run
    is noted (no traceback; a run that has not begun is then skipped), while a run in flight catches it
    itself, checkpoints and stops."""
    import torch

    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, lambda signum, frame: SIGNALLED.append(signum))


class Progress:
    """One bar over finished runs; the postfix shows the last result and the failures so far."""

    def __init__(self, total: int, done: int, jobs: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=done, unit="run", desc=f"compare ({jobs} job{'s' * (jobs > 1)})",
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


class Ledger:
    """``DIR/sweep.json``: how each run was trained (parallel jobs, torch threads, CPUs), kept across
    invocations so that the timing note of a resumed sweep describes every run, not the last command."""

    def __init__(self, out: Path):
        self.path = out / "sweep.json"
        try:
            self.runs: dict[str, dict[str, int]] = read_json(self.path)["runs"]
        except (OSError, ValueError, KeyError, TypeError):
            self.runs = {}

    def add(self, outcome: Outcome, jobs: int) -> None:
        from ..rundir import write_json

        self.runs[outcome.job.label] = {"jobs": jobs, "threads": outcome.threads, "cpus": available_cpus()}
        write_json(self.path, {"runs": self.runs})

    def describe(self, jobs: list[Job]) -> str:
        counts: dict[str, int] = {}
        for job in jobs:
            how = self.runs.get(job.label)
            key = ("conditions not recorded" if how is None else f"{how['jobs']} parallel job{'s' * (how['jobs'] > 1)}"
                   f" × {how['threads']} torch thread{'s' * (how['threads'] > 1)} on {how['cpus']} CPUs")
            counts[key] = counts.get(key, 0) + 1
        return "; ".join(f"{n} run{'s' * (n > 1)}: {key}" for key, n in counts.items())


def execute(todo: list[Job], settings: dict[str, Any], jobs: int, threads: int, report) -> list[Outcome]:
    """Train ``todo``: in this process for one job, else in ``jobs`` spawned workers."""
    outcomes: list[Outcome] = []
    if jobs == 1:
        import torch

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
    # At most `jobs` runs are submitted at a time, so that after Ctrl-C (which the workers get too: their
    # runs checkpoint and stop) no queued run starts; leaving the block waits for the workers.
    queue, running, broken = iter(todo), {}, False
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=worker_init, initargs=(threads,)) as pool:
        for job in itertools.islice(queue, jobs):
            running[pool.submit(train_job, job, settings)] = job
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # a worker process died (out of memory, killed): the pool is broken
                    outcome = Outcome(job, "failed", None, f"worker died: {type(exc).__name__}: {exc}")
                    broken = True
                outcomes.append(outcome)
                report(outcome)
                following = None if broken or outcome.status == "interrupted" else next(queue, None)
                if following is not None:
                    running[pool.submit(train_job, following, settings)] = following
    if any(o.status == "interrupted" for o in outcomes):
        raise KeyboardInterrupt
    return outcomes


def compare(problems: Sequence[str | Path], balancers: Iterable[str] = ("fixed", "lra", "relobralo"), *,
            seeds: int | Iterable[int] = 3, out: str | Path | None = None, jobs: int | None = None,
            target: float = 1e-2, force: bool = False, progress: bool = True, **settings: Any) -> Comparison:
    """Train every (problem, balancer, seed) and write the summaries and figures (see the module docstring).

    ``settings`` are :class:`~pinnbal.train.TrainConfig` fields other than
    ``seed``.  Bad input raises :class:`~pinnbal.errors.PinnbalError` before
    anything is written.
    """
    sweep = plan(problems, balancers, seeds, out, target, settings)
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise OptionError(f"--jobs {jobs}: need an integer >= 1")
    todo, done = pending(sweep, force)
    cpus = available_cpus()
    n_jobs = max(1, min(jobs or cpus, len(todo) or 1))
    threads = max(1, cpus // n_jobs)
    bar = Progress(len(todo) + len(done), len(done), n_jobs, progress and bool(todo))
    ledger = Ledger(sweep.out)

    def report(outcome: Outcome) -> None:
        bar(outcome)
        ledger.add(outcome, n_jobs)

    try:
        outcomes = execute(todo, sweep.settings, n_jobs, threads, report)
    finally:
        bar.close()
    summary, tables = write_summaries(sweep, ledger)
    return Comparison(sweep, summary, tables, outcomes, done, n_jobs, threads)
