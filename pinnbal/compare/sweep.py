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
  keep across machines: ``executor="ray"`` (:mod:`~pinnbal.compare.ray_executor`)
  runs the same :func:`train_job` as one Ray task per run, through the same
  :func:`drive` loop, progress bar, ledger and summaries.  Workers use
  the ``spawn`` start method (no fork of a process that holds torch threads)
  and set ``torch.set_num_threads(cpus // jobs)`` before training: two
  processes with the default thread count each on two cores run many times
  slower than one.  ``--jobs 1`` trains in this process, one run after
  another, without paying the workers' start-up.  At most ``jobs`` runs are
  handed to the pool at a time, so after Ctrl-C (which reaches the workers
  too: their runs checkpoint and stop) no queued run starts.  Workers train
  quietly; the parent shows one progress bar over finished runs.  A run that
  fails is reported and counted; the sweep goes on.
- **One budget, one data split.**  Every run of a sweep trains with the same
  settings (steps, L-BFGS iterations, points per term, network), and on the
  same observations: ``learned`` and ``meta`` hold out a fraction of each
  ``pb.Data`` term's observations for validation (their ``holdout`` option),
  so when a balancer of the sweep does, every run's ``holdout``
  (``TrainConfig.holdout``) is raised to the largest fraction any of them
  uses (a larger ``--holdout`` stays), and the baselines train on the same
  80 % rather than on all of the data.  The split depends only on the seed,
  so it is the same for every balancer.  A sweep whose problems have no
  ``pb.Data`` term keeps the given ``--holdout`` (there is nothing to split).
  The summaries state the budget and the split.
- **Resuming.**  A run whose ``metrics.json`` says ``completed`` (or
  ``diverged``: a result, and a deterministic one) and whose ``config.json``
  matches the sweep is skipped; any other state (no directory, ``config.json``
  without ``metrics.json``, ``interrupted``) is trained again from scratch
  with ``force``.  A finished run with *other* settings (the holdout
  included, so a run trained on another data split is never taken as
  comparable) is an error before anything starts, unless ``force`` (so old
  results are never overwritten by accident).  Every file is written
  atomically, so a killed sweep loses only the runs in flight.
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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import OptionError, PinnbalError
from ..rundir import read_json
from .summary import FINAL, Entry, Job, Sweep, TermSize, saved_state, write_summaries

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
    tables: str  # what the CLI prints: what every run shared (budget, points, data split, seeds), the tables
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
         out: str | Path | None, target: float, settings: dict[str, Any], here: bool = True) -> Sweep:
    """Load every problem and balancer and check every option; write nothing.

    ``here=False`` (the runs train elsewhere, on a Ray cluster): a CUDA device
    is not required on this machine; the executor checks the cluster instead.
    """
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
    try:
        pick_device(config.device)
    except OptionError:
        if here or not config.device.startswith("cuda"):
            raise
    loaded: dict[str, Any] = {}
    paths: dict[str, str] = {}
    for given in problems:
        problem = load_problem(given)
        if problem.name in loaded:
            raise OptionError(f"{given}: a second problem named {problem.name!r}; each problem of a sweep needs "
                              f"its own name (it names the directory)")
        config.check(problem)
        loaded[problem.name], paths[problem.name] = problem, str(Path(given).resolve())
    entries, canonicals, folders, needed = [], {}, {}, {}
    for spec in split_balancers(balancers):
        balancer = make_balancer(spec)
        if (fraction := validation_holdout(balancer)) > 0:
            needed[spec] = fraction
        for problem in loaded.values():
            balancer.attach(problem)  # e.g. causal needs a time coordinate, rules a rule: refuse before any run
            balancer.init([TermInfo(t.name, t.kind, float(config.weights.get(t.name, t.weight)), int(t.points))
                           for t in problem.terms])
        entry = Entry(spec, balancer.spec, balancer.name, folder_name(spec))
        for seen, key in ((canonicals, entry.canonical), (folders, entry.folder)):
            if key in seen:
                raise OptionError(f"--balancers: {spec!r} repeats {seen[key]!r} (same balancer or same directory "
                                  f"name {entry.folder!r}); give each once")
            seen[key] = spec
        entries.append(entry)
    settings = dict(settings)
    # one data split for every balancer: the largest holdout any of them trains with (see the module docstring)
    observed = any(t.kind == "data" and t.points >= 2 for p in loaded.values() for t in p.terms)
    shared = max([config.holdout, *needed.values()]) if observed else config.holdout
    if shared != config.holdout:
        settings["holdout"] = shared
    terms = {name: [TermSize(t.name, t.kind, int(t.points)) for t in problem.terms if t.has_points]
             for name, problem in loaded.items()}
    default_out = Path("runs") / ("compare-" + "+".join(loaded))
    return Sweep(paths, [str(p) for p in problems], entries, seeds, settings,
                 Path(out) if out else default_out, float(target), terms, float(config.holdout), needed)


def validation_holdout(balancer) -> float:
    """The fraction of each Data term's observations ``balancer`` holds out for its validation set when it
    trains (the rule of :class:`pinnbal.train.Trainer`); 0 for a balancer without one."""
    if "context" not in balancer.needs:
        return 0.0
    part = getattr(balancer, "term", balancer)  # a Composite (lra+rba) keeps its options on its term-level part
    return float(part.opts.get("holdout", 0.0))


def pending(sweep: Sweep, force: bool) -> tuple[list[Job], list[Job]]:
    """(runs to train, finished runs to keep); a finished run with other settings is an error unless ``force``.

    An interrupted run with a checkpoint and this sweep's settings is continued, not started again.
    """
    from ..train import CHECKPOINT

    todo, done = [], []
    for job in sweep.jobs:
        status, difference = saved_state(job, sweep)
        if not force and status == "interrupted" and difference is None and (job.out / CHECKPOINT).is_file():
            todo.append(replace(job, resume=True))  # continue it from its checkpoint
        elif force or status not in FINAL:
            todo.append(job)
        elif difference is None:
            done.append(job)
        else:
            why = ""
            if difference.startswith("holdout ") and sweep.needed:
                why = (f"; this sweep holds out {sweep.holdout:g} of the observations for every balancer, as "
                       f"{', '.join(sweep.needed)} need{'s' * (len(sweep.needed) == 1)}, so that all train on "
                       f"the same data")
            raise OptionError(f"{job.out}: holds a finished run with other settings ({difference}{why}); pass "
                              f"--force to train it again or choose another --out")
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

    from ..train import resume, train

    if SIGNALLED:  # a worker told to stop before this run began: leave it for the next invocation
        return Outcome(job, "interrupted", None, "interrupted before it started", torch.get_num_threads())
    started = time.time()
    try:
        if job.resume:
            run = resume(job.out, render=True)
        else:
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


class Ledger:
    """``DIR/sweep.json``: how each run was trained (parallel jobs, torch threads, CPUs), kept across
    invocations so that the timing note of a resumed sweep describes every run, not the last command."""

    def __init__(self, out: Path):
        self.path = out / "sweep.json"
        try:
            self.runs: dict[str, dict[str, int]] = read_json(self.path)["runs"]
        except (OSError, ValueError, KeyError, TypeError):
            self.runs = {}

    def add(self, outcome: Outcome, jobs: int, cluster: dict[str, int] | None = None) -> None:
        """Record how ``outcome``'s run was trained; ``cluster`` (Ray): the cluster's ``cpus`` and ``gpus``."""
        from ..rundir import write_json

        how = {"jobs": jobs, "threads": outcome.threads, "cpus": available_cpus()}
        if cluster is not None:
            how |= {"executor": "ray", **cluster}
        self.runs[outcome.job.label] = how
        write_json(self.path, {"runs": self.runs})

    def describe(self, jobs: list[Job]) -> str:
        counts: dict[str, int] = {}
        for job in jobs:
            how = self.runs.get(job.label)
            where = f"{how['cpus']} CPUs" if how is not None else ""
            if how is not None and how.get("executor") == "ray":
                where = f"a Ray cluster of {where}" + (f" and {how['gpus']} GPUs" if how.get("gpus") else "")
            key = ("conditions not recorded" if how is None else f"{how['jobs']} parallel job{'s' * (how['jobs'] > 1)}"
                   f" × {how['threads']} torch thread{'s' * (how['threads'] > 1)} on {where}")
            counts[key] = counts.get(key, 0) + 1
        return "; ".join(f"{n} run{'s' * (n > 1)}: {key}" for key, n in counts.items())


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


def compare(problems: Sequence[str | Path], balancers: Iterable[str] = ("fixed", "lra", "relobralo"), *,
            seeds: int | Iterable[int] = 3, out: str | Path | None = None, jobs: int | None = None,
            target: float = 1e-2, force: bool = False, progress: bool = True, executor: str = "local",
            ray_address: str | None = None, **settings: Any) -> Comparison:
    """Train every (problem, balancer, seed) and write the summaries and figures (see the module docstring).

    ``settings`` are :class:`~pinnbal.train.TrainConfig` fields other than
    ``seed``.  ``executor``: ``"local"`` (processes on this machine) or
    ``"ray"`` (one Ray task per run, :mod:`~pinnbal.compare.ray_executor`, on
    the cluster at ``ray_address``: ``None`` starts or attaches a local
    instance, ``"auto"`` joins the running cluster); ``jobs`` then caps the
    runs in flight.  Bad input raises :class:`~pinnbal.errors.PinnbalError`
    before anything is written.
    """
    if executor not in ("local", "ray"):
        raise OptionError(f"--executor {executor}: choose local or ray")
    if ray_address is not None and executor != "ray":
        raise OptionError("--ray-address: only with --executor ray")
    if executor == "ray":
        from .ray_executor import require_ray

        require_ray()  # before anything else: without Ray, one line saying how to install it
    sweep = plan(problems, balancers, seeds, out, target, settings, here=executor == "local")
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise OptionError(f"--jobs {jobs}: need an integer >= 1")
    todo, done = pending(sweep, force)
    if executor == "ray":
        from .ray_executor import run_sweep_on_ray

        return run_sweep_on_ray(sweep, todo, done, jobs, ray_address, progress)
    cpus = available_cpus()
    n_jobs = max(1, min(jobs or cpus, len(todo) or 1))
    threads = max(1, cpus // n_jobs)
    return run_sweep(sweep, todo, done, n_jobs, threads, progress,
                     lambda report: execute(todo, sweep.settings, n_jobs, threads, report))


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
