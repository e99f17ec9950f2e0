"""What became of a sweep's runs: each run's :class:`Outcome`, the :class:`Ledger` of how it was trained,
and the finished runs read back into one :class:`Group` per balancer with their statistics."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..rundir import read_run
from ..storage import read_json, write_json
from .plan import FINAL, Entry, Job, Sweep, saved_state

@dataclass
class Outcome:
    """What became of one run: ``completed``, ``diverged``, ``interrupted`` or ``failed``."""

    job: Job
    status: str
    rel_l2: float | None = None
    error: str | None = None
    threads: int = 0  # torch threads the run trained with


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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


@dataclass
class Group:
    """The runs of one balancer on one problem, read back from their directories."""

    entry: Entry
    runs: list[Any]  # SavedRun, completed or diverged, config matching the sweep
    seeds: int  # seeds in the sweep
    label: str = ""  # the row label: the spec as written, "recipe (lra)" where the problem's recipe chose

    @property
    def completed(self) -> list[Any]:
        return [r for r in self.runs if r.metrics.get("status") == "completed"]

    def errors(self, output: str | None = None) -> list[float]:
        """Final rel L2 of the completed runs (of one output if given)."""
        values = (r.metrics.get("rel_l2") if output is None else (r.metrics.get("rel_l2_per_output") or {}).get(output)
                  for r in self.completed)
        return [float(v) for v in values if v is not None]


def read_groups(sweep: Sweep, problem: str) -> list[Group]:
    groups = {entry.spec: Group(entry, [], len(sweep.seeds), entry.label_for(problem)) for entry in sweep.entries}
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
