"""``pinnbal bench accuracy``: the benchmark problems, our errors beside the published ones.

The sweep is an ordinary :func:`pinnbal.compare` (every run a run directory,
resumable: re-running the command skips finished runs), over the problem
files of the suite (:data:`pinnbal.bench.anchors.SUITE`, shipped in ``problems/``)
and the balancers asked for.  The report gives, per problem and balancer,
the median final relative L2 error over the seeds with its range, the
median wall time per run, and the literature's numbers for the same
problem (:data:`pinnbal.bench.anchors.ANCHORS`), with our budget, the machine and
the exact command in the header: the literature trained far longer, on
bigger networks and GPUs, so the table says where a small CPU budget lands,
not who wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .anchors import ANCHORS, SUITE, Anchor
from .speed import machine
from ..compare.summary import budget, read_groups, recipe_lines
from ..compare.sweep import compare
from ..errors import OptionError

PROBLEMS_DIR = Path(__file__).resolve().parents[2] / "problems"

#: After the budget line of a sweep whose problems carry recipes.
OVERRIDDEN = ", where a problem's recipe (`pinnbal info PROBLEM`) does not say otherwise"


def suite_paths(names: Sequence[str] | None, suite: Sequence[str] = SUITE, folder: Path = PROBLEMS_DIR,
                command: str = "bench accuracy") -> list[str]:
    """Problem files: given paths as they are, suite names (``wave1d``) from ``folder``."""
    chosen = list(names) if names else list(suite)
    paths = []
    for name in chosen:
        path = Path(name) if name.endswith(".py") else folder / f"{name}.py"
        if not path.is_file():
            raise OptionError(f"{command}: no problem file {path}; the suite is {', '.join(suite)}")
        paths.append(str(path))
    return paths


def accuracy_report(problems: Sequence[str] | None, balancers: Sequence[str], seeds: int | Iterable[int],
                    out: str | Path, command: str, jobs: int | None = None, progress: bool = True, **settings: Any) -> str:
    """Run (or complete) the sweep and return the Markdown report."""
    result = compare(suite_paths(problems), balancers, seeds=seeds, out=out, jobs=jobs, progress=progress,
                     **settings)
    sweep = result.sweep
    lines = ["# Accuracy on the benchmark problems", "", f"Command: `{command}`  ", f"Machine: {machine()}  ",
             f"Budget per run: {budget(sweep.settings)}{OVERRIDDEN if recipe_lines(sweep) else ''}; seeds "
             f"{', '.join(map(str, sweep.seeds))}; run directories in `{sweep.out}`.", *recipe_lines(sweep), "",
             "| problem | balancer | rel L2 (median) | worst | runs | s / run | our goal | what limits it | "
             "published: plain PINN | balanced | best |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, path in sweep.problems.items():
        anchor = ANCHORS.get(Path(path).stem)
        for i, group in enumerate(read_groups(sweep, name)):
            lines.append("| " + " | ".join(report_row(group, anchor, Path(path).stem, first=i == 0)) + " |")
    sources = [f"`{Path(p).stem}`: {ANCHORS[Path(p).stem].source}" for p in sweep.problems.values()
               if Path(p).stem in ANCHORS]
    lines += ["", "Published numbers: " + "; ".join(sources) + ".", "",
              "Our goal: the rel L2 the median seed should reach in 10 minutes on the development CPU. "
              "\"What limits it\" is read from the training, never from the reference: a run whose second stage "
              "stopped because the loss no longer changed had reached the minimum of its objective (the weights, "
              "points and network set the error, not the optimiser); a run that used its whole budget was still "
              "improving (more iterations or time would help).", ""]
    return "\n".join(lines)


def report_row(group, anchor: Anchor | None, stem: str, first: bool) -> list[str]:
    """One balancer's cells: median and worst rel L2, runs, time, the goal and what stands between."""
    errors = group.errors()
    times = [r.metrics["wall_s"] for r in group.completed]
    median = float(np.median(errors)) if errors else None
    goal = anchor.goal if anchor else None
    cells = [f"`{stem}`" if first else "", f"`{group.label}`", f"{median:.2e}" if errors else "–",
             f"{max(errors):.2e}" if errors else "–", f"{len(errors)}/{group.seeds}",
             f"{np.median(times):.0f}" if times else "–"]
    if goal is None or median is None:
        cells += ["–" if goal is None else f"{goal:.1e}", "" if median is not None else "no completed run"]
    elif median <= goal:
        cells += [f"{goal:.1e}: met", ""]
    else:
        cells += [f"{goal:.1e}: {median / goal:.3g}× over", limit(group)]
    return cells + ([anchor.plain, anchor.balanced, anchor.best] if anchor and first else ["", "", ""])


def limit(group) -> str:
    """What stopped the median seed, from its own training record."""
    runs = sorted(group.completed, key=lambda r: r.metrics.get("rel_l2") or 0.0)
    run = runs[len(runs) // 2]
    m, budget_iters = run.metrics, run.config["train"]["lbfgs"]
    failed = group.seeds - len(group.completed)
    note = f"; {failed} seed(s) diverged or failed" if failed else ""
    loss = "?" if m.get("final_loss") is None else f"{m['final_loss']:.1e}"
    if any("time budget" in e.get("event", "") for e in m.get("events", [])):
        return f"time budget (loss {loss} when stopped){note}"
    if m.get("lbfgs_iterations", 0) < budget_iters:
        return (f"second stage converged after {m['lbfgs_iterations']} of {budget_iters} iterations at loss "
                f"{loss}: the objective, not the optimiser{note}")
    return f"iteration budget used up (loss {loss} at the end){note}"
