"""``pinnbal bench pinnacle``: the PINNacle problems, our errors beside PINNacle's published ones.

PINNacle (Hao et al., NeurIPS 2024) is the largest published comparison of
PINN methods, loss reweighting among them.  ``problems/pinnacle/`` holds a
subset as problem files; the ones with COMSOL references read them from
``--data DIR`` (a PINNacle checkout's ``ref/``) or ``PINNBAL_PINNACLE_DIR``.
The sweep is an ordinary :func:`pinnbal.compare` (resumable, one run
directory per run); the table gives, per problem and balancer, our median
and worst seed, the seconds per run, PINNacle's mean L2RE for PINN,
PINN-LRA, PINN-NTK, RAR and MultiAdam
(:data:`~pinnbal.bench.pinnacle_published.PUBLISHED`), the best published
method on the problem, and how our median stands against it.  The budgets
differ (theirs: 20000 Adam steps, 5 × 100 network, a GPU; ours: the header
says), and the header says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .accuracy import OVERRIDDEN, PROBLEMS_DIR, suite_paths
from .pinnacle_published import BEST, METHODS, PUBLISHED, SOURCE
from .speed import machine
from ..compare.summary import budget, read_groups, recipe_lines
from ..compare.sweep import compare

FOLDER = PROBLEMS_DIR / "pinnacle"
SUITE = ["burgers1d_c", "poisson2d_c", "poisson2d_cg", "ns2d_c", "ns2d_cg", "wave1d_c", "heat2d_ms", "poisson_nd"]


def pinnacle_report(problems: Sequence[str] | None, balancers: Sequence[str], seeds: int | Iterable[int],
                    out: str | Path, command: str, jobs: int | None = None, progress: bool = True,
                    **settings: Any) -> str:
    """Run (or complete) the sweep and return the Markdown report."""
    paths = suite_paths(problems, SUITE, FOLDER, "bench pinnacle")
    sweep = compare(paths, balancers, seeds=seeds, out=out, jobs=jobs, progress=progress, **settings).sweep
    lines = ["# pinnbal on the PINNacle problems", "", f"Command: `{command}`  ", f"Machine: {machine()}  ",
             f"Our budget per run: {budget(sweep.settings)}{OVERRIDDEN if recipe_lines(sweep) else ''}; seeds "
             f"{', '.join(map(str, sweep.seeds))}; run directories in `{sweep.out}`.  PINNacle's: 20000 Adam "
             f"steps, 5 × 100 network, a GPU.", *recipe_lines(sweep), "",
             "| problem | balancer | rel L2 (median) | worst | runs | s / run | " + " | ".join(METHODS)
             + " | best published | our median against it |", "| --- " * (8 + len(METHODS)) + "|"]
    for name, path in sweep.problems.items():
        stem = Path(path).stem
        for i, group in enumerate(read_groups(sweep, name)):
            lines.append("| " + " | ".join(row(group, stem, first=i == 0)) + " |")
    lines += ["", f"Published: {SOURCE}.  `–`: no number found for that method and problem.", ""]
    return "\n".join(lines)


def row(group, stem: str, first: bool) -> list[str]:
    """One balancer's cells; the published columns on the problem's first row only."""
    errors = group.errors()
    times = [r.metrics["wall_s"] for r in group.completed]
    median = float(np.median(errors)) if errors else None
    cells = [f"`{stem}`" if first else "", f"`{group.label}`", "–" if median is None else f"{median:.2e}",
             f"{max(errors):.2e}" if errors else "–", f"{len(errors)}/{group.seeds}",
             f"{np.median(times):.0f}" if times else "–"]
    published = PUBLISHED.get(stem, {})
    cells += [(f"{published[m]:.2e}" if published.get(m) is not None else "–") if first else "" for m in METHODS]
    best = BEST.get(stem)
    cells.append((f"{best[1]:.2e} ({best[0]})" if best else "–") if first else "")
    cells.append(standing(median, best))
    return cells


def standing(median: float | None, best: tuple[str, float] | None) -> str:
    """``beats it (3.1× lower)`` / ``2.4× higher`` / ``–``."""
    if median is None or best is None:
        return "–"
    ratio = median / best[1]
    return f"beats it ({1 / ratio:.2g}× lower)" if ratio < 1 else f"{ratio:.2g}× higher"
