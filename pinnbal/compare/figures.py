"""The comparison figures of one problem, drawn with matplotlib from its run directories alone::

    DIR/<problem>/
        figures/error_vs_step.png      median and min-max band of rel L2 per balancer
        figures/weights.png            median term weights over seeds, one panel per balancer
        figures/final_error.png        box plot of the final rel L2 per balancer
        figures/error_maps.png         |prediction - reference| of each balancer's median seed

:func:`term_names` lives here because the weights figure needs it; the
summary rows of :mod:`~pinnbal.compare.summary` import it from here.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..storage import atomic_write_bytes
from .results import Group

FIGURES = ("error_vs_step.png", "weights.png", "final_error.png", "error_maps.png")


def term_names(groups: list[Group]) -> list[str]:
    for group in groups:
        for run in group.runs:
            return list(run.metrics.get("final_losses") or {})
    return []


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


def mark_second_stage(ax, runs: list[Any]) -> None:
    """A dashed line where the second stage takes over from Adam (after the last Adam step), labelled with the
    second stages' methods (the history's phase)."""
    methods = sorted({row["phase"] for r in runs for row in r.history if row.get("phase") not in (None, "adam")})
    if not methods:
        return
    start = 1 + max((row["step"] for r in runs for row in r.history if row.get("phase") == "adam"), default=-1)
    ax.axvline(start, color="grey", ls="--", lw=0.8)
    ax.text(start, 0.98, f" {'/'.join(methods)}", transform=ax.get_xaxis_transform(), va="top", fontsize=8,
            color="grey")


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
    mark_second_stage(ax, [r for g in groups for r in g.runs])
    label_axes(ax, "step", "relative L2 error")
    ax.legend(fontsize=8)
    fig.suptitle(f"rel L2 error: median and min–max over seeds\n{title}", fontsize=10, wrap=True)
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
        mark_second_stage(ax, group.runs)
        label_axes(ax, "step", "weight (median over seeds)" if ax is axes[0][0] else "")
        ax.set_title(group.entry.spec, fontsize=9)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"term weights: median over seeds\n{title}", fontsize=10, wrap=True)
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
    fig.suptitle(f"final rel L2 error, one dot per seed\n{title}", fontsize=10, wrap=True)
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
        arrays = None if run is None else run.predictions()
        if arrays is not None and "reference" in arrays:
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
        top = max(float(np.nanmax(e)) for e in errors) or 1.0  # NaN: outside a curved domain
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
    fig.suptitle(f"|prediction − reference| of each balancer's median seed\n{title}", fontsize=10, wrap=True)
    return save(fig, path)


def draw_figures(folder: Path, groups: list[Group], title: str, target: float) -> list[Path]:
    """The four comparison figures, from the run directories; returns those drawn."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn = [plot_error_vs_step(groups, title, target, folder / FIGURES[0]),
             plot_weights(groups, title, folder / FIGURES[1]),
             plot_final_error(groups, title, folder / FIGURES[2]),
             plot_error_maps(groups, title, folder / FIGURES[3])]
    return [p for p in drawn if p is not None]
