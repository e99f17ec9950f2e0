"""Balancer comparison sweeps: ``pinnbal compare``.

A sweep trains every (problem, balancer, seed) as an ordinary run directory,
then summarises and draws them from those directories alone::

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
- **Statistics.**  ``n`` counts completed runs; ``failed`` counts seeds that
  diverged or crashed.  rel L2 statistics are over the completed runs
  (sample standard deviation, n - 1).  The final loss is the *unweighted* sum
  of the term losses (the weighted total is not comparable across balancers).
  Steps to target is the number of optimiser steps (Adam steps + L-BFGS
  iterations) taken when the error was first measured at or below the
  target; rel L2 is measured every ``eval_every`` steps and at the end, which
  sets its resolution.  The median runs over all seeds, a seed that never
  reached the target counting as infinite ("not reached" when the median is).
  The overhead ratio divides a balancer's median ms/step by that of ``fixed``
  in the same sweep, so both were measured under the same load.
"""

from __future__ import annotations

import io
import itertools
import math
import multiprocessing
import os
import re
import shlex
import signal
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import OptionError, PinnbalError
from .rundir import atomic_write_bytes, read_json, write_csv

#: A piece of a --balancers list that continues the spec before it: key=value or term<target.
OPTION_PIECE = re.compile(r"^[^:]*[=<]")
UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")
#: metrics.json states that are a result: skipped when the sweep runs again.
FINAL = ("completed", "diverged")
FIGURES = ("error_vs_step.png", "weights.png", "final_error.png", "error_maps.png")


# -- the sweep --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One balancer of the sweep."""

    spec: str  # as written by the user: the row label
    canonical: str  # Balancer.spec, what config.json records
    name: str  # the balancer's registry name (fixed, lra, ...)
    folder: str  # directory name


@dataclass(frozen=True)
class Job:
    """One (problem, balancer, seed) run."""

    problem: str
    problem_path: str
    entry: Entry
    seed: int
    out: Path

    @property
    def label(self) -> str:
        return f"{self.problem}/{self.out.name}"


@dataclass
class Sweep:
    """Everything a comparison needs, validated before any file is written."""

    problems: dict[str, str]  # problem name -> resolved path
    given_paths: list[str]
    entries: list[Entry]
    seeds: list[int]
    settings: dict[str, Any]
    out: Path
    target: float

    @property
    def jobs(self) -> list[Job]:
        return [Job(name, path, entry, seed, self.out / name / f"{entry.folder}-s{seed}")
                for name, path in self.problems.items() for entry in self.entries for seed in self.seeds]

    def expected_config(self, job: Job) -> dict[str, Any]:
        from .train import TrainConfig

        return {"problem_path": job.problem_path, "balancer": job.entry.canonical,
                "train": asdict(TrainConfig(**self.settings, seed=job.seed))}


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
    from .balancers import TermInfo, make_balancer
    from .loader import load_problem
    from .train import TrainConfig, pick_device

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


def config_difference(saved: dict[str, Any], expected: dict[str, Any]) -> str | None:
    """The first setting in which a saved config.json differs from the sweep's, or None."""
    from .train import TrainConfig

    for key in ("problem_path", "balancer"):
        if saved.get(key) != expected[key]:
            return f"{key} {saved.get(key)!r} (sweep: {expected[key]!r})"
    defaults, train = asdict(TrainConfig()), saved.get("train") or {}
    for key, value in expected["train"].items():
        if train.get(key, defaults[key]) != value:
            return f"{key} {train.get(key, defaults[key])!r} (sweep: {value!r})"
    return None


def saved_state(job: Job, sweep: Sweep) -> tuple[str | None, str | None]:
    """(status in metrics.json or None, how its config differs from the sweep's or None)."""
    try:
        status = read_json(job.out / "metrics.json").get("status")
        saved = read_json(job.out / "config.json")
    except (OSError, ValueError):
        return None, None
    return status, config_difference(saved, sweep.expected_config(job))


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

    from .train import train

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
        from .rundir import write_json

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


# -- statistics -------------------------------------------------------------------------------------


@dataclass
class Group:
    """The runs of one balancer on one problem, read back from their directories."""

    entry: Entry
    runs: list[Any]  # SavedRun, completed or diverged, config matching the sweep
    seeds: int  # seeds in the sweep

    @property
    def completed(self) -> list[Any]:
        return [r for r in self.runs if r.metrics.get("status") == "completed"]

    def errors(self, output: str | None = None) -> list[float]:
        """Final rel L2 of the completed runs (of one output if given)."""
        values = (r.metrics.get("rel_l2") if output is None else (r.metrics.get("rel_l2_per_output") or {}).get(output)
                  for r in self.completed)
        return [float(v) for v in values if v is not None]


def read_groups(sweep: Sweep, problem: str) -> list[Group]:
    from .runs import read_run

    groups = {entry.spec: Group(entry, [], len(sweep.seeds)) for entry in sweep.entries}
    for job in sweep.jobs:
        if job.problem != problem:
            continue
        status, difference = saved_state(job, sweep)
        if status in FINAL and difference is None:
            groups[job.entry.spec].runs.append(read_run(job.out))
    return list(groups.values())


def spread(values: list[float], prefix: str) -> dict[str, float | None]:
    """mean, sample std, median, min, max of ``values`` (None where undefined)."""
    a = np.asarray(values, dtype=float)
    stats = {"mean": a.mean() if a.size else None, "std": a.std(ddof=1) if a.size > 1 else None,
             "median": np.median(a) if a.size else None, "min": a.min() if a.size else None,
             "max": a.max() if a.size else None}
    return {f"{prefix}_{k}": None if v is None else float(v) for k, v in stats.items()}


def median_of(values: Iterable[float | None]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return float(np.median(kept)) if kept else None


def steps_to(history: list[dict[str, Any]], target: float) -> float:
    """Optimiser steps taken when rel L2 was first measured <= target (inf if never)."""
    for row in history:
        if row.get("rel_l2") is not None and row["rel_l2"] <= target:
            return row["step"] + 1
    return math.inf


def output_names(groups: list[Group]) -> list[str]:
    for group in groups:
        for run in group.completed:
            return list(run.metrics.get("rel_l2_per_output") or {})
    return []


def term_names(groups: list[Group]) -> list[str]:
    for group in groups:
        for run in group.runs:
            return list(run.metrics.get("final_losses") or {})
    return []


def group_row(group: Group, outputs: list[str], terms: list[str], target: float) -> dict[str, Any]:
    """One summary.csv row (without the overhead ratio, which needs the fixed row)."""
    done = group.completed
    row: dict[str, Any] = {"balancer": group.entry.spec, "n": len(done), "failed": group.seeds - len(done)}
    row |= spread(group.errors(), "rel_l2")
    if len(outputs) > 1:
        for output in outputs:
            row |= spread(group.errors(output), f"rel_l2/{output}")
    row["final_loss_median"] = median_of(sum(r.metrics["final_losses"].values()) for r in done)
    for term in terms:
        row[f"final_loss/{term}_median"] = median_of(r.metrics["final_losses"].get(term) for r in done)
    row["wall_s_median"] = median_of(r.metrics.get("wall_s") for r in done)
    row["ms_per_step_median"] = median_of(r.metrics.get("ms_per_step") for r in done)
    row["steps_to_target"], row["target_reached"] = None, None
    if any(r.get("rel_l2") is not None for run in group.runs for r in run.history):  # else: no reference
        reached = [steps_to(r.history, target) for r in group.runs] + [math.inf] * (group.seeds - len(group.runs))
        middle = float(np.median(reached))
        if math.isinf(middle):
            row["steps_to_target"] = "not reached"
        else:  # whole steps unless an even number of seeds splits the middle pair
            row["steps_to_target"] = int(middle) if middle.is_integer() else middle
        row["target_reached"] = f"{sum(math.isfinite(s) for s in reached)}/{group.seeds}"
    return row


def summary_rows(groups: list[Group], target: float) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of summary.csv and its columns."""
    outputs, terms = output_names(groups), term_names(groups)
    rows = [group_row(g, outputs, terms, target) for g in groups]
    fixed = sorted((r for g, r in zip(groups, rows) if g.entry.name == "fixed"), key=lambda r: r["balancer"] != "fixed")
    base = fixed[0]["ms_per_step_median"] if fixed else None  # plain `fixed` first, else the first fixed spec
    for row in rows:
        ms = row["ms_per_step_median"]
        row["overhead_vs_fixed"] = ms / base if ms is not None and base else None
    columns = list(dict.fromkeys(k for row in rows for k in row))
    columns.remove("overhead_vs_fixed")
    columns.insert(columns.index("ms_per_step_median") + 1, "overhead_vs_fixed")
    return rows, columns


# -- Markdown ---------------------------------------------------------------------------------------


def mean_std(row: dict[str, Any], prefix: str) -> str:
    mean, std = row[f"{prefix}_mean"], row[f"{prefix}_std"]
    return num(mean) if mean is None or std is None else f"{num(mean)} ± {num(std, 1)}"


def num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}e}"


def markdown_table(rows: list[dict[str, Any]], outputs: list[str], target: float) -> str:
    best = min((r["rel_l2_median"] for r in rows if r["rel_l2_median"] is not None), default=None)
    head = ["balancer", "n", "failed", "rel L2 mean ± std", "median", "min", "max"]
    head += [f"{o}: mean ± std" for o in outputs] + [f"{o}: median" for o in outputs]
    head += ["final loss (median)", "wall s (median)", "ms/step (median)", "overhead vs fixed",
             f"steps to rel L2 ≤ {target:g}"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        median = num(r["rel_l2_median"])
        if best is not None and r["rel_l2_median"] == best:
            median = f"**{median}**"
        cells = [f"`{r['balancer']}`", str(r["n"]), str(r["failed"]), mean_std(r, "rel_l2"), median,
                 num(r["rel_l2_min"]), num(r["rel_l2_max"])]
        cells += [mean_std(r, f"rel_l2/{o}") for o in outputs]
        cells += [num(r[f"rel_l2/{o}_median"]) for o in outputs]
        wall, ms, ratio = r["wall_s_median"], r["ms_per_step_median"], r["overhead_vs_fixed"]
        steps = r["steps_to_target"]
        steps = steps if steps is None or isinstance(steps, str) else f"{steps:g}"
        reach = "–" if steps is None else f"{steps} ({r['target_reached']})"
        cells += [num(r["final_loss_median"]), "–" if wall is None else f"{wall:.1f}",
                  "–" if ms is None else f"{ms:.2f}", "–" if ratio is None else f"{ratio:.2f}×", reach]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def budget(settings: dict[str, Any]) -> str:
    from .train import TrainConfig

    c = TrainConfig(**settings)
    return (f"{c.steps} Adam steps (lr {c.lr:g}) + {c.lbfgs} L-BFGS iterations; {c.arch} {c.depth}×{c.width} "
            f"{c.activation}; {c.dtype}")


def seeds_text(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 2:
        return f"seeds {seeds[0]}–{seeds[-1]}"
    return "seed" + "s" * (len(seeds) > 1) + " " + ", ".join(map(str, seeds))


def reproduce(sweep: Sweep) -> str:
    """A ``pinnbal compare`` command line that reruns (or resumes) this sweep."""
    from .train import TrainConfig

    defaults = asdict(TrainConfig())
    words = ["pinnbal", "compare", *sweep.given_paths, "--balancers", ",".join(e.spec for e in sweep.entries),
             "--seeds", str(len(sweep.seeds))]
    if sweep.seeds[0]:
        words += ["--seed", str(sweep.seeds[0])]
    for key, value in sweep.settings.items():
        if key == "weights":
            value = ",".join(f"{k}={v:g}" for k, v in value.items())
        if key in ("steps", "lbfgs") or (value and value != defaults.get(key, value)):
            words += ["--" + key.replace("_", "-"), str(value)]
    words += ["--out", str(sweep.out), "--target", f"{sweep.target:g}"]
    return shlex.join(words)


def header(sweep: Sweep, ledger: Ledger, problem: str | None = None) -> list[str]:
    import platform

    import torch

    from . import __version__

    seeds = sweep.seeds
    return [f"- budget: {budget(sweep.settings)}",
            f"- {seeds_text(seeds)} ({len(seeds)} per balancer); target rel L2 ≤ {sweep.target:g}",
            f"- timings: {ledger.describe([j for j in sweep.jobs if problem in (None, j.problem)])}; "
            f"{platform.platform()}; pinnbal {__version__}, torch {torch.__version__}",
            f"- command: `{reproduce(sweep)}`"]


LEGEND = ("n: completed runs; failed: seeds that diverged or crashed. rel L2 over the completed runs (± sample "
          "std); **bold**: lowest median. Final loss: unweighted sum of the term losses at the last step. "
          "Overhead: median ms/step ÷ that of `fixed` in this sweep. Steps to target: median over seeds of the "
          "optimiser steps taken when rel L2 was first measured at or below the target (never: infinite); "
          "in brackets, the seeds that reached it.")


def write_problem_summary(sweep: Sweep, problem: str, ledger: Ledger) -> tuple[str, list[Group]]:
    """summary.csv, summary.md and the figures of one problem; returns its table and groups."""
    folder = sweep.out / problem
    groups = read_groups(sweep, problem)
    rows, columns = summary_rows(groups, sweep.target)
    write_csv(folder / "summary.csv", rows, columns)
    outputs = output_names(groups)
    table = markdown_table(rows, outputs if len(outputs) > 1 else [], sweep.target)
    title = f"{problem} · {seeds_text(sweep.seeds)} · {budget(sweep.settings)}"
    drawn = draw_figures(folder / "figures", groups, title, sweep.target)
    pictures = [f"![{p.stem.replace('_', ' ')}](figures/{p.name})" for p in drawn]
    text = "\n\n".join([f"# Balancer comparison: {problem}", "\n".join(
        [f"- problem file: `{sweep.problems[problem]}`", *header(sweep, ledger, problem)]), table, LEGEND, *pictures])
    atomic_write_bytes(folder / "summary.md", (text + "\n").encode())
    return table, groups


def ranks(values: list[float | None]) -> list[float]:
    """Rank 1 = lowest; ties share the mean rank; a missing value ranks last."""
    keyed = [math.inf if v is None else v for v in values]
    return [1 + sum(o < v for o in keyed) + (sum(o == v for o in keyed) - 1) / 2 for v in keyed]


def ranking_table(sweep: Sweep, medians: dict[str, list[float | None]]) -> str:
    """Mean rank of the median rel L2 over the problems that have a reference."""
    scored = {p: ranks(m) for p, m in medians.items() if any(v is not None for v in m)}
    if not scored:
        return "No problem has a reference solution: no ranking."
    mean = [float(np.mean([r[i] for r in scored.values()])) for i in range(len(sweep.entries))]
    order = sorted(range(len(sweep.entries)), key=lambda i: mean[i])
    lines = ["| balancer | mean rank | " + " | ".join(scored) + " |", "|" + " --- |" * (len(scored) + 2)]
    for i in order:
        cells = [f"{scored[p][i]:g} ({num(medians[p][i])})" for p in scored]
        lines.append(f"| `{sweep.entries[i].spec}` | {mean[i]:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_summaries(sweep: Sweep, ledger: Ledger) -> tuple[Path, str]:
    """Per-problem summaries and figures; with several problems also DIR/summary.md. Returns (path, tables)."""
    tables, medians = [], {}
    for problem in sweep.problems:
        table, groups = write_problem_summary(sweep, problem, ledger)
        tables.append(f"## {problem}\n\n{table}")
        medians[problem] = [median_of(g.errors()) for g in groups]
    if len(sweep.problems) == 1:
        return sweep.out / next(iter(sweep.problems)) / "summary.md", tables[0]
    ranking = ("## Ranking\n\nMean rank of the median rel L2 (1 = best); per problem: rank (median rel L2).\n\n"
               + ranking_table(sweep, medians))
    tables.append(ranking)
    links = "\n".join(f"- [{p}]({p}/summary.md)" for p in sweep.problems)
    text = "\n\n".join([f"# Balancer comparison: {', '.join(sweep.problems)}", "\n".join(header(sweep, ledger)),
                        links, *tables, LEGEND])
    atomic_write_bytes(sweep.out / "summary.md", (text + "\n").encode())
    return sweep.out / "summary.md", "\n\n".join(tables)


# -- figures ----------------------------------------------------------------------------------------


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def series(run, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one history column, rows where it was logged."""
    rows = [r for r in run.history if r.get(key) is not None]
    return np.array([r["step"] for r in rows], dtype=float), np.array([r[key] for r in rows], dtype=float)


def on_grid(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Several (steps, values) curves on the union of their steps, each holding its last value
    (NaN before its first): (grid, values of shape (curves, grid))."""
    grid = np.unique(np.concatenate([s for s, _ in curves]))
    values = np.full((len(curves), grid.size), np.nan)
    for i, (steps, v) in enumerate(curves):
        at = np.searchsorted(steps, grid, side="right") - 1
        values[i] = np.where(at >= 0, v[np.clip(at, 0, None)], np.nan)
    return grid, values


def band(runs: list[Any], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(steps, median, min, max) over runs of one history column; None if no run logged it."""
    curves = [c for c in (series(r, key) for r in runs) if c[0].size]
    if not curves:
        return None
    grid, values = on_grid(curves)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns before a curve starts
        return grid, np.nanmedian(values, 0), np.nanmin(values, 0), np.nanmax(values, 0)


def label_axes(ax, xlabel: str, ylabel: str, log: bool = True) -> None:
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")


def mark_lbfgs(ax, runs: list[Any]) -> None:
    """A dashed line where L-BFGS takes over from Adam (after the last Adam step)."""
    if not any(row.get("phase") == "lbfgs" for r in runs for row in r.history):
        return
    start = 1 + max((row["step"] for r in runs for row in r.history if row.get("phase") == "adam"), default=-1)
    ax.axvline(start, color="grey", ls="--", lw=0.8)
    ax.text(start, 0.98, " L-BFGS", transform=ax.get_xaxis_transform(), va="top", fontsize=8, color="grey")


def plot_error_vs_step(groups: list[Group], title: str, target: float, path: Path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    drawn = False
    for i, group in enumerate(groups):
        curve = band(group.runs, "rel_l2")
        if curve is None:
            continue
        steps, median, low, high = curve
        color = f"C{i % 10}"
        ax.plot(steps, median, color=color, lw=1.6, marker="." if steps.size < 30 else None, label=group.entry.spec)
        ax.fill_between(steps, low, high, color=color, alpha=0.2, lw=0)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.axhline(target, color="k", ls=":", lw=0.8, label=f"target {target:g}")
    mark_lbfgs(ax, [r for g in groups for r in g.runs])
    label_axes(ax, "step", "relative L2 error")
    ax.legend(fontsize=8)
    fig.suptitle(f"rel L2 error: median and min–max over seeds\n{title}", fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def plot_weights(groups: list[Group], title: str, path: Path):
    plt = pyplot()
    fig, axes = plt.subplots(1, len(groups), figsize=(3.6 * len(groups) + 1, 3.8), sharey=True, squeeze=False)
    terms = term_names(groups)
    for ax, group in zip(axes[0], groups):
        for j, term in enumerate(terms):
            curve = band(group.runs, f"weight/{term}")
            if curve is not None:
                ax.plot(curve[0], curve[1], color=f"C{j % 10}", lw=1.4, label=term)
        if not group.runs:
            ax.text(0.5, 0.5, "no finished run", transform=ax.transAxes, ha="center")
        mark_lbfgs(ax, group.runs)
        label_axes(ax, "step", "weight (median over seeds)" if ax is axes[0][0] else "")
        ax.set_title(group.entry.spec, fontsize=9)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"term weights: median over seeds\n{title}", fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def plot_final_error(groups: list[Group], title: str, path: Path):
    data = [(i, g.errors()) for i, g in enumerate(groups) if g.errors()]
    if not data:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(7.5, 1.3 * len(groups) + 3), 4.4))
    ax.boxplot([v for _, v in data], positions=[i for i, _ in data], widths=0.5, showfliers=False)
    for i, values in data:
        offsets = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
        ax.scatter(i + offsets, values, s=14, color=f"C{i % 10}", zorder=3)
    ax.set_xticks(range(len(groups)), [g.entry.spec for g in groups], rotation=20 if len(groups) > 4 else 0,
                  fontsize=8)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    label_axes(ax, "balancer", "final relative L2 error")
    fig.suptitle(f"final rel L2 error, one dot per seed\n{title}", fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def median_run(group: Group):
    """The completed run with the median error (the lower one of the middle two)."""
    done = sorted((r for r in group.completed if r.metrics.get("rel_l2") is not None),
                  key=lambda r: r.metrics["rel_l2"])
    return done[(len(done) - 1) // 2] if done else None


def plot_error_maps(groups: list[Group], title: str, path: Path):
    """|prediction - reference| from each balancer's median run; one column per balancer, a row per output."""
    maps = []
    for group in groups:
        run = median_run(group)
        if run is not None and (run.path / "predictions.npz").is_file():
            with np.load(run.path / "predictions.npz") as saved:
                if "reference" in saved:
                    arrays = {k: saved[k] for k in saved.files}
                    maps.append((group.entry.spec, run, arrays))
    if not maps:
        return None
    from matplotlib.colors import LogNorm

    plt = pyplot()
    first = maps[0][2]
    outputs, coords = [str(o) for o in first["output_names"]], [str(c) for c in first["coord_names"]]
    n_axes = int(first["n_axes"])
    fig, grid = plt.subplots(len(outputs), len(maps), figsize=(3.8 * len(maps) + 1.2, 3.2 * len(outputs) + 0.6),
                             squeeze=False, sharey="row" if n_axes == 1 else "all", layout="constrained")
    for j, output in enumerate(outputs):
        errors = [np.abs(a["prediction"][:, j] - a["reference"][:, j]) for _, _, a in maps]
        top = max(float(e.max()) for e in errors) or 1.0
        norm = LogNorm(vmin=top * 1e-4, vmax=top)
        for k, ((spec, run, arrays), error) in enumerate(zip(maps, errors)):
            ax = grid[j, k]
            ax.set_title(f"{spec} · seed {run.metrics['seed']} · rel L2 {run.metrics['rel_l2']:.2e}", fontsize=8)
            if n_axes == 1:
                ax.plot(arrays["axis0"], np.maximum(error, top * 1e-8), lw=1.2)
                label_axes(ax, coords[0], f"|error| {output}")
                continue
            shape = (arrays["axis0"].size, arrays["axis1"].size)
            extent = [arrays["axis0"][0], arrays["axis0"][-1], arrays["axis1"][0], arrays["axis1"][-1]]
            image = ax.imshow(np.clip(error, norm.vmin, None).reshape(shape).T, origin="lower", extent=extent,
                              aspect="auto", cmap="magma", norm=norm)
            label_axes(ax, coords[0], coords[1], log=False)
        if n_axes > 1:
            fig.colorbar(image, ax=list(grid[j]), label=f"|prediction − reference| {output}")
    fig.suptitle(f"|prediction − reference| of each balancer's median seed\n{title}", fontsize=10)
    return save(fig, path)


def draw_figures(folder: Path, groups: list[Group], title: str, target: float) -> list[Path]:
    """The four comparison figures, from the run directories; returns those drawn."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn = [plot_error_vs_step(groups, title, target, folder / FIGURES[0]),
             plot_weights(groups, title, folder / FIGURES[1]),
             plot_final_error(groups, title, folder / FIGURES[2]),
             plot_error_maps(groups, title, folder / FIGURES[3])]
    return [p for p in drawn if p is not None]
