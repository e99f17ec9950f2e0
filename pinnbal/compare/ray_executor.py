"""A comparison sweep on a Ray cluster: ``pinnbal compare ... --executor ray``.

Every (problem, balancer, seed) run is one Ray task whose body is
:func:`~pinnbal.compare.execute.train_job`, the per-run code of the local
executor; the tasks are handed out by the same :func:`~pinnbal.compare.execute.drive`
loop, with the same progress bar, ledger (``sweep.json``), summaries and
figures, and the same resuming: finished runs found on disk are skipped before
Ray is even started.

Why Ray: the process pool of the local executor covers one machine.  Ray
schedules tasks over many, places each where its resources are free (a task
asking for ``num_gpus=1`` gets a GPU of its own, made its ``cuda`` device by
``CUDA_VISIBLE_DEVICES``), and the same code runs on a laptop (``ray.init()``
starts a local instance) and on a cluster (``ray.init("auto")``).  Only Ray's
public API is used: ``ray.init``, ``ray.remote``, ``ray.wait`` (which run
finished next: the progress bar), ``ray.get``, ``ray.cancel``.  It is an
optional extra (``pip install 'pinnbal[ray]'``): nothing else needs it.

Assumptions and choices:

- **A shared filesystem.**  Each task writes its own run directory, and this
  process (the driver) reads them back to resume and to summarise, so every
  node must see the problem files and the sweep directory at the same absolute
  paths (NFS or similar); relative paths are resolved here before the runs are
  sent.  pinnbal, with the same version, must be installed on every node.
- **Resources.**  With ``device`` ``cuda`` (or ``auto`` on a cluster that has
  GPUs) each task asks for one GPU and one CPU and trains with one torch
  thread; otherwise for ``threads`` CPUs, which become its torch threads.
  ``jobs`` caps the runs in flight (default: as many as the cluster's GPUs, or
  its CPUs shared out as the local executor shares one machine's).  A
  ``cuda:N`` device is refused: each task sees only its own GPU, as ``cuda``.
- **No retries** (``max_retries=0``): a run whose worker dies is reported as
  failed, as with processes, and the same command trains it again.
- **Ctrl-C** cancels the runs in flight with ``ray.cancel`` (not forced: the
  run gets the interrupt, finishes its step and writes a checkpoint), waits up
  to :data:`GRACE_S` seconds for them, and stops; queued runs never start.
- **The connection.**  If this process has already called ``ray.init`` that
  session is used as it is; otherwise ``ray.init(address)`` connects (or starts
  a local instance) and is shut down at the end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from ..errors import OptionError
from .execute import Comparison, drive, run_sweep, train_job
from .plan import Job, Sweep
from .results import Outcome

INSTALL = "--executor ray needs Ray: pip install 'pinnbal[ray]'"
#: Seconds to wait, after Ctrl-C, for cancelled runs to write their checkpoints.
GRACE_S = 60.0


def require_ray():
    """The ``ray`` module, or an :class:`OptionError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise OptionError(INSTALL) from None
    return ray


@dataclass(frozen=True)
class Layout:
    """How a sweep's runs are placed on a cluster: runs in flight, torch threads and Ray resources per run."""

    jobs: int
    threads: int
    options: dict[str, Any]  # ray.remote options of every task
    cpus: int  # the cluster's CPUs and GPUs, for the ledger
    gpus: int


def layout(device: str, jobs: int | None, runs: int, resources: dict[str, float], node_cpus: int) -> Layout:
    """Place ``runs`` runs on a cluster with ``resources`` (``ray.cluster_resources()``) whose largest
    node has ``node_cpus`` CPUs: one GPU per run for a CUDA device, else a share of the CPUs."""
    cpus, gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
    if device.startswith("cuda:"):
        raise OptionError(f"--device {device}: with --executor ray each run gets one GPU of its own; "
                          f"use --device cuda")
    if device == "cuda" and gpus == 0:
        raise OptionError("--device cuda: the Ray cluster has no GPUs; use --device cpu (or auto)")
    if device == "cuda" or (device == "auto" and gpus > 0):
        n_jobs = max(1, min(jobs or gpus, runs or 1))
        return Layout(n_jobs, 1, {"num_gpus": 1, "num_cpus": 1}, cpus, gpus)
    if cpus < 1:
        raise OptionError("--executor ray: the Ray cluster has no CPUs")
    n_jobs = max(1, min(jobs or cpus, runs or 1))
    threads = max(1, min(node_cpus, cpus // n_jobs))
    return Layout(n_jobs, threads, {"num_cpus": threads, "num_gpus": 0}, cpus, gpus)


def train_on_worker(job: Job, settings: dict[str, Any], threads: int) -> Outcome:
    """The body of one Ray task: torch gets the task's CPUs as threads, then :func:`train_job` trains the run."""
    import torch

    torch.set_num_threads(threads)
    return train_job(job, settings)


class RaySession:
    """``ray.init(address)`` on entry unless Ray is already initialised here; ``ray.shutdown()`` on exit
    only if this session started it, so a caller's own Ray session is left as it was."""

    def __init__(self, address: str | None):
        self.ray, self.address, self.started = require_ray(), address, False

    def __enter__(self):
        """Connect (or start a local instance) unless this process already has a Ray session."""
        ray = self.ray
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING)
            except Exception as exc:  # no cluster at that address, a version mismatch, ...
                where = f"--ray-address {self.address}" if self.address else "--executor ray"
                raise OptionError(f"{where}: cannot start or join Ray: {type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
            self.started = True
        return self

    def __exit__(self, *exc_info) -> None:
        """Shut down the Ray session if this object started it."""
        if self.started:
            self.ray.shutdown()

    def layout(self, device: str, jobs: int | None, runs: int) -> Layout:
        """:func:`layout` on this cluster's resources."""
        nodes = [n for n in self.ray.nodes() if n.get("Alive", True)]
        node_cpus = max((int(n.get("Resources", {}).get("CPU", 0)) for n in nodes), default=0)
        return layout(device, jobs, runs, self.ray.cluster_resources(), node_cpus)

    def execute(self, todo: list[Job], settings: dict[str, Any], plan: Layout, report) -> list[Outcome]:
        """Train ``todo`` as Ray tasks, at most ``plan.jobs`` in flight, reporting each as it ends."""
        ray = self.ray
        task = ray.remote(train_on_worker).options(max_retries=0, **plan.options)

        def submit(job: Job):
            """Start one run as a task; nodes other than this one have other working directories, so
            the run gets absolute paths."""
            return task.remote(replace(job, out=job.out.resolve()), settings, plan.threads)

        def wait_any(refs):
            """The runs that have finished, at least one (blocks until then)."""
            return ray.wait(refs, num_returns=1)[0]

        def cancel(refs) -> None:
            """Ctrl-C: interrupt the runs in flight (each checkpoints and stops) and give them time to."""
            for ref in refs:
                ray.cancel(ref, force=False)
            ray.wait(refs, num_returns=len(refs), timeout=GRACE_S)

        return drive(todo, plan.jobs, submit, wait_any, ray.get, report, stop_on_crash=False, cancel=cancel)


def run_sweep_on_ray(sweep: Sweep, todo: list[Job], done: list[Job], jobs: int | None, address: str | None,
                     progress: bool) -> Comparison:
    """Train the sweep's pending runs on Ray (not even started when none is pending), then summarise."""
    device = str(sweep.settings.get("device", "auto"))
    if not todo:  # everything is on disk already
        return run_sweep(sweep, todo, done, 1, 1, progress, lambda report: [], " on Ray")
    with RaySession(address) as session:
        plan = session.layout(device, jobs, len(todo))
        return run_sweep(sweep, todo, done, plan.jobs, plan.threads, progress,
                         lambda report: session.execute(todo, sweep.settings, plan, report), " on Ray",
                         {"cpus": plan.cpus, "gpus": plan.gpus})
