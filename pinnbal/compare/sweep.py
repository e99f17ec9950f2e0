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

from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import OptionError
from .execute import Comparison, execute, run_sweep
from .plan import pending, plan
from .ray_executor import require_ray, run_sweep_on_ray
from .results import available_cpus


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
        require_ray()  # before anything else: without Ray, one line saying how to install it
    sweep = plan(problems, balancers, seeds, out, target, settings, here=executor == "local")
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise OptionError(f"--jobs {jobs}: need an integer >= 1")
    todo, done = pending(sweep, force)
    if executor == "ray":
        return run_sweep_on_ray(sweep, todo, done, jobs, ray_address, progress)
    cpus = available_cpus()
    n_jobs = max(1, min(jobs or cpus, len(todo) or 1))
    threads = max(1, cpus // n_jobs)
    return run_sweep(sweep, todo, done, n_jobs, threads, progress,
                     lambda report: execute(todo, sweep.settings, n_jobs, threads, report))


