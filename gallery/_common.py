"""Plumbing shared by the gallery scripts: options, where files go, keeping figures.

Every script takes ``--quick`` (a tiny budget, seconds: what the tests run),
``--out DIR`` (where its images go; default ``gallery/images/<script>/``) and
``--runs DIR`` (where its run directories go; default ``runs/gallery/<script>/``).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def options(script: str, doc: str, *, full: dict, quick: dict) -> argparse.Namespace:
    """Parse the command line of the gallery script ``script`` (pass ``__file__``).

    ``args.budget`` is the training budget: ``quick`` with ``--quick``, else ``full``.
    """
    name = Path(script).stem
    first_line = next(line for line in doc.strip().splitlines() if line.strip())
    parser = argparse.ArgumentParser(prog=f"gallery/{name}.py", description=first_line)
    parser.add_argument("--quick", action="store_true", help="a tiny budget (seconds), for tests")
    parser.add_argument("--out", type=Path, default=REPO / "gallery" / "images" / name,
                        help="folder for the images (default: %(default)s)")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "gallery" / name,
                        help="folder for the run directories (default: %(default)s)")
    args = parser.parse_args()
    args.budget = quick if args.quick else full
    args.out.mkdir(parents=True, exist_ok=True)
    args.started = time.perf_counter()
    return args


def problem_file(name: str) -> Path:
    """A problem file shipped in ``problems/``."""
    return REPO / "problems" / f"{name}.py"


def keep(figures: list[Path], out: Path, prefix: str = "") -> list[Path]:
    """Copy a run's figures into the gallery folder ``out`` (as ``<prefix><name>``)."""
    kept = []
    for figure in figures:
        target = out / f"{prefix}{Path(figure).name}"
        shutil.copyfile(figure, target)
        kept.append(target)
    return kept


def report(args: argparse.Namespace, runs: list, images: list[Path]) -> None:
    """One line per run (error, time) and the images written."""
    for run in runs:
        m = run.metrics
        unknowns = "".join(f", {k} = {v:.5g}" for k, v in m["unknowns"].items())
        print(f"{m['problem']} [{m['balancer']}]: rel L2 {m['rel_l2']:.3e}{unknowns}, "
              f"{m['steps']} steps in {m['wall_s']:.1f} s")
    for image in images:
        print(f"wrote {image}")
    print(f"total {time.perf_counter() - args.started:.1f} s")
