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

from .anchors import ANCHORS, SUITE
from .speed import machine
from ..compare.summary import budget, read_groups
from ..compare.sweep import compare
from ..errors import OptionError

PROBLEMS_DIR = Path(__file__).resolve().parents[2] / "problems"


def suite_paths(names: Sequence[str] | None) -> list[str]:
    """Problem files: given paths as they are, suite names (``wave1d``) from ``problems/``."""
    chosen = list(names) if names else SUITE
    paths = []
    for name in chosen:
        path = Path(name) if name.endswith(".py") else PROBLEMS_DIR / f"{name}.py"
        if not path.is_file():
            raise OptionError(f"bench accuracy: no problem file {path}; the suite is {', '.join(SUITE)}")
        paths.append(str(path))
    return paths


def accuracy_report(problems: Sequence[str] | None, balancers: Sequence[str], seeds: int | Iterable[int],
                    out: str | Path, command: str, jobs: int | None = None, progress: bool = True, **settings: Any) -> str:
    """Run (or complete) the sweep and return the Markdown report."""
    result = compare(suite_paths(problems), balancers, seeds=seeds, out=out, jobs=jobs, progress=progress,
                     **settings)
    sweep = result.sweep
    lines = ["# Accuracy on the benchmark problems", "", f"Command: `{command}`  ", f"Machine: {machine()}  ",
             f"Budget per run: {budget(sweep.settings)}; seeds {', '.join(map(str, sweep.seeds))}; run directories "
             f"in `{sweep.out}`.", "",
             "| problem | balancer | rel L2 (median) | min – max | runs | s / run | published: plain PINN | "
             "balanced | best |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, path in sweep.problems.items():
        anchor = ANCHORS.get(Path(path).stem)
        for i, group in enumerate(read_groups(sweep, name)):
            errors = group.errors()
            times = [r.metrics["wall_s"] for r in group.completed]
            cells = [f"`{Path(path).stem}`" if i == 0 else "", f"`{group.entry.spec}`",
                     f"{np.median(errors):.2e}" if errors else "–",
                     f"{min(errors):.2e} – {max(errors):.2e}" if errors else "–",
                     f"{len(errors)}/{group.seeds}", f"{np.median(times):.0f}" if times else "–"]
            cells += ([anchor.plain, anchor.balanced, anchor.best] if anchor and i == 0 else ["", "", ""])
            lines.append("| " + " | ".join(cells) + " |")
    sources = [f"`{Path(p).stem}`: {ANCHORS[Path(p).stem].source}" for p in sweep.problems.values()
               if Path(p).stem in ANCHORS]
    lines += ["", "Published numbers: " + "; ".join(sources) + ".", ""]
    return "\n".join(lines)
