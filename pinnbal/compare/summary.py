"""A sweep's runs read back from their directories: statistics, Markdown tables, summary files.

For each problem ``DIR/<problem>/summary.csv`` (one row per balancer,
full-precision numbers) and ``summary.md`` (the same as a Markdown table, with
the budget, and the figures of :mod:`~pinnbal.compare.figures`); with several
problems also ``DIR/summary.md`` (one table each, and a ranking).

What a sweep is lives in :mod:`~pinnbal.compare.plan`, the runs read back in
:mod:`~pinnbal.compare.results`; this module writes what they show.

Statistics:  ``n`` counts completed runs; ``failed`` counts seeds that
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

import math
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..storage import atomic_write_bytes, write_csv
from ..train import TrainConfig
from ..train.stages import parse_stage
from ..version import __version__
from .figures import draw_figures, term_names
from .plan import Sweep
from .results import Group, Ledger, median_of, output_names, read_groups, spread, steps_to


# -- statistics -------------------------------------------------------------------------------------


def group_row(group: Group, outputs: list[str], terms: list[str], target: float) -> dict[str, Any]:
    """One summary.csv row (without the overhead ratio, which needs the fixed row)."""
    done = group.completed
    row: dict[str, Any] = {"balancer": group.label, "n": len(done), "failed": group.seeds - len(done)}
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
    c = TrainConfig(**settings)
    stage = parse_stage(c.then)
    limit = f"; at most {c.budget:g} s of training per run" if c.budget else ""
    method = "ssbfgs/lbfgs (auto)" if stage.method == "auto" else stage.method
    return (f"{c.steps} Adam steps (lr {c.lr:g}{f', warm-up {c.warmup}' if c.warmup else ''}) + {c.lbfgs} "
            f"{method} iterations in {stage.dtype}; {c.arch} {c.depth}×{c.width} {c.activation}; Adam in "
            f"{c.dtype}{limit}")


def budgets_text(sweep: Sweep, problems: list[str]) -> str:
    """The budget of each problem's runs (the sweep's settings over its recipe), once if they are all alike."""
    texts = {p: budget(sweep.run_settings(p)) for p in problems}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"{p}: {text}" for p, text in texts.items())


def recipe_lines(sweep: Sweep) -> list[str]:
    """``- `wave1d`'s recipe: arch=modified, steps=300, ...``: the settings each problem's recipe gave its runs
    (those the sweep's own settings did not override)."""
    lines = []
    for problem, settings in sweep.recipes.items():
        used = {k: v for k, v in settings.items() if k not in sweep.settings}
        chosen = {e.chosen[problem] for e in sweep.entries if problem in e.chosen}
        parts = [f"balancer {b}" for b in chosen] + [f"{k}={v}" for k, v in used.items()]
        if parts:
            lines.append(f"- `{problem}`, by its recipe: {', '.join(parts)}")
    return lines


def training_observations(n: int, holdout: float) -> int:
    """How many of a Data term's ``n`` observations a run with ``holdout`` trains on (the rule of
    :meth:`pinnbal.batches.Batches.split`: at least one held out, at least one kept; a single one is shared)."""
    if n < 2 or not holdout:
        return n
    return n - min(max(int(round(holdout * n)), 1), n - 1)


def points_text(sweep: Sweep, problem: str) -> str:
    """``pde 2048, walls 256, obs 160 of 200``: the points each term of ``problem`` trains on."""
    parts = []
    for term in sweep.terms.get(problem, []):
        kept = training_observations(term.points, sweep.holdout) if term.kind == "data" else term.points
        parts.append(f"{term.name} {kept}" + (f" of {term.points}" if kept != term.points else ""))
    return ", ".join(parts) or "–"


def holdout_source(sweep: Sweep) -> str:
    """Where the sweep's holdout comes from: ``needed by learned``, ``from --holdout; meta needs 0.2``, ...;
    '' when it is 0."""
    h, given = sweep.holdout, sweep.given_holdout
    if not h:
        return ""
    if sweep.needed and h > given:
        by = ", ".join(spec for spec, v in sweep.needed.items() if v == h)
        return f"needed by {by}" + (f", above --holdout {given:g}" if given else "")
    needs = "; ".join(f"{spec} needs {v:g}" for spec, v in sweep.needed.items())
    return "from --holdout" + (f"; {needs}" if needs else "")


def split_text(sweep: Sweep, problems: list[str]) -> str:
    """The data split every run of ``problems`` trains on, in one sentence."""
    named = len(problems) > 1
    data = [(p, t) for p in problems for t in sweep.terms.get(p, []) if t.kind == "data"]
    if not data:
        wanted = f" ({', '.join(sweep.needed)} validate{'s' * (len(sweep.needed) == 1)} on fresh points only)" \
            if sweep.needed else ""
        return f"no pb.Data term: no observations to hold out{wanted}; every balancer trains on the same terms"
    h = sweep.holdout
    pieces = [(f"{training_observations(t.points, h)} of {t.points}" if h else f"all {t.points}") + " observations of "
              + (f"{p}'s " if named else "") + repr(t.name) for p, t in data]
    if not h:
        return (f"every run trained on {' and '.join(pieces)} (holdout 0: no balancer of this sweep needs a "
                f"validation set); the same data for every balancer")
    return (f"every run trained on {' and '.join(pieces)} (holdout {h:g}, {holdout_source(sweep)}); the same split "
            f"for every balancer (it depends only on the seed)")


def shared_lines(sweep: Sweep, problem: str | None = None) -> list[str]:
    """What every run of the sweep shares (of ``problem``, or of all problems): budget, points, data split, seeds."""
    problems = [problem] if problem is not None else list(sweep.problems)
    resample = {TrainConfig(**sweep.run_settings(p)).resample_every for p in problems}
    if len(problems) == 1:
        points = points_text(sweep, problems[0])
    else:
        points = "; ".join(f"{p}: {points_text(sweep, p)}" for p in problems)
    points += f" (redrawn every {resample.pop()} steps)" if len(resample) == 1 and min(resample) else ""
    seeds = sweep.seeds
    return [f"- budget, the same for every run{' of a problem' if len(problems) > 1 else ''}: "
            f"{budgets_text(sweep, problems)}",
            f"- points per term, the same for every run: {points}",
            f"- data split: {split_text(sweep, problems)}",
            f"- {seeds_text(seeds)} ({len(seeds)} per balancer, the same for every balancer); "
            f"target rel L2 ≤ {sweep.target:g}"]


def seeds_text(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 2:
        return f"seeds {seeds[0]}–{seeds[-1]}"
    return "seed" + "s" * (len(seeds) > 1) + " " + ", ".join(map(str, seeds))


def reproduce(sweep: Sweep) -> str:
    """A ``pinnbal compare`` command line that reruns (or resumes) this sweep."""
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

    return [*shared_lines(sweep, problem),
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
    title = f"{problem} · {seeds_text(sweep.seeds)} · {budget(sweep.run_settings(problem))}"
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
    """Per-problem summaries and figures; with several problems also DIR/summary.md. Returns (path, text to
    print: what every run shared, then the tables)."""
    tables, medians = [], {}
    for problem in sweep.problems:
        table, groups = write_problem_summary(sweep, problem, ledger)
        tables.append(f"## {problem}\n\n{table}")
        medians[problem] = [median_of(g.errors()) for g in groups]
    if len(sweep.problems) == 1:
        only = next(iter(sweep.problems))
        return sweep.out / only / "summary.md", "\n".join(shared_lines(sweep, only)) + "\n\n" + table
    ranking = ("## Ranking\n\nMean rank of the median rel L2 (1 = best); per problem: rank (median rel L2).\n\n"
               + ranking_table(sweep, medians))
    tables.append(ranking)
    links = "\n".join(f"- [{p}]({p}/summary.md)" for p in sweep.problems)
    text = "\n\n".join([f"# Balancer comparison: {', '.join(sweep.problems)}", "\n".join(header(sweep, ledger)),
                        links, *tables, LEGEND])
    atomic_write_bytes(sweep.out / "summary.md", (text + "\n").encode())
    return sweep.out / "summary.md", "\n\n".join(["\n".join(shared_lines(sweep)), *tables])
