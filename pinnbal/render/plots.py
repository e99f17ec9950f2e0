"""The matplotlib figures of a run: training history, solution against reference, snapshots in time,
several runs side by side, the unknowns of an inverse problem (see :mod:`pinnbal.render`)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402

from ..errors import PinnbalError  # noqa: E402
from ..rundir import SavedRun, read_run  # noqa: E402
from .picture import ERROR, Picture, read_picture, save, title, value_scale  # noqa: E402

BASE_PREFIXES = ("loss", "weight", "unknown")  # every other "<prefix>/<term>" column is balancer state


# -- training history -----------------------------------------------------------------------------
def columns(history: list[dict], prefix: str) -> dict[str, str]:
    """``{term: "prefix/term"}`` for every such column of the history."""
    return {k[len(prefix) + 1:]: k for k in (history[0] if history else {}) if k.startswith(prefix + "/")}


def state_prefixes(history: list[dict]) -> list[str]:
    """Prefixes of the balancer's logged state columns, e.g. ``["log_var"]``."""
    prefixes = dict.fromkeys(k.split("/", 1)[0] for k in (history[0] if history else {}) if "/" in k)
    return [p for p in prefixes if p not in BASE_PREFIXES]


def series(history: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps and values of one history column, rows where it is empty left out."""
    rows = [(r["step"], r[key]) for r in history if r.get(key) is not None]
    steps, values = zip(*rows) if rows else ((), ())
    return np.asarray(steps, dtype=float), np.asarray(values, dtype=float)


def draw_columns(ax, history: list[dict], keys: dict[str, str], log: bool = True, ylabel: str = "") -> None:
    """One line per ``{label: column}``; the weighted total (column ``loss``) in black."""
    for i, (label, key) in enumerate(keys.items()):
        steps, values = series(history, key)
        total = key == "loss"
        ax.plot(steps, values, label=label, color="k" if total else f"C{i}", lw=1.6 if total else 1.1,
                marker="o" if len(steps) < 30 else None, ms=3)
    if log:
        ax.set_yscale("log")
    mark_second_stage(ax, history)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    if len(keys) > 1 or log is False:
        ax.legend(fontsize=8)


def mark_second_stage(ax, history: list[dict]) -> None:
    """A dashed line where the second stage takes over from Adam, labelled with its method (the phase)."""
    start = next((r for r in history if r["phase"] != "adam"), None)
    if start is not None:
        ax.axvline(start["step"], color="grey", ls="--", lw=0.8)
        ax.text(start["step"], 0.02, f" {start['phase']}", transform=ax.get_xaxis_transform(), va="bottom",
                fontsize=8, color="grey")


def training_panels(history: list[dict]) -> list[tuple[str, Callable]]:
    """(title, draw(ax)) for each panel this history has data for."""
    losses = columns(history, "loss") | {"weighted total": "loss"}
    panels = [("term losses", partial(draw_columns, history=history, keys=losses, ylabel="loss")),
              ("term weights", partial(draw_columns, history=history, keys=columns(history, "weight"),
                                       ylabel="weight"))]
    for prefix in state_prefixes(history):
        panels.append((f"balancer state: {prefix}", partial(draw_columns, history=history,
                                                            keys=columns(history, prefix), log=False,
                                                            ylabel=prefix)))
    if len(series(history, "rel_l2")[0]):
        panels.append(("relative L2 error", partial(draw_columns, history=history, keys={"rel L2": "rel_l2"},
                                                    ylabel="relative L2 error")))
    unknowns = columns(history, "unknown")
    if unknowns:
        panels.append(("unknowns", partial(draw_columns, history=history, keys=unknowns, log=False,
                                           ylabel="value")))
    return panels


def plot_training(run: SavedRun, target: Path) -> Path:
    """``losses.png``: every panel of :func:`training_panels`, up to three to a row."""
    panels = training_panels(run.history)
    ncols = 2 if len(panels) in (2, 4) else 3
    nrows = -(-len(panels) // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.6 * nrows), squeeze=False, layout="constrained")
    for ax, (name, draw) in zip(grid.flat, panels):
        draw(ax)
        ax.set_title(name)
    for ax in grid.flat[len(panels):]:
        ax.set_visible(False)
    return save(fig, target, title(run))


def plot_unknowns(run: SavedRun, target: Path, truth: dict[str, float] | None = None) -> Path:
    """The unknowns against step, with their true values (dashed) where known."""
    keys = columns(run.history, "unknown")
    if not keys:
        raise PinnbalError(f"{run.path}: this run has no unknowns")
    fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
    draw_columns(ax, run.history, keys, log=False, ylabel="value")
    for i, (name, value) in enumerate((truth or {}).items()):
        ax.axhline(value, color=f"C{list(keys).index(name) if name in keys else i}", ls=":", lw=1.5,
                   label=f"true {name} = {value:g}")
    final = ", ".join(f"{k} = {v:.4g}" for k, v in run.metrics.get("unknowns", {}).items())
    ax.set_title(f"unknowns (final {final})")
    ax.legend(fontsize=8)
    return save(fig, target, title(run))


# -- the solution -------------------------------------------------------------------------------------
def plot_solution(run: SavedRun, picture: Picture, target: Path) -> Path:
    draw = solution_lines if len(picture.axes) == 1 else solution_maps
    fig = draw(picture)
    where = picture.where()
    return save(fig, target, title(run) + (f"\nslice at {where}" if where else ""))


def solution_lines(pic: Picture):
    """One column per output: PINN and reference on top, |error| (log) below."""
    rows = 1 if pic.error is None else 2
    fig, grid = plt.subplots(rows, len(pic.outputs), figsize=(6 * len(pic.outputs), 3.2 * rows),
                             squeeze=False, sharex=True, layout="constrained")
    x = pic.axes[0]
    for j, out in enumerate(pic.outputs):
        ax = grid[0, j]
        if pic.reference is not None:
            ax.plot(x, pic.reference[:, j], "k-", lw=2.2, label="reference")
        ax.plot(x, pic.prediction[:, j], "C3--", lw=1.5, label="PINN")
        ax.set_ylabel(out)
        ax.set_title(out)
        ax.legend(fontsize=8)
        if rows == 2:
            grid[1, j].semilogy(x, np.maximum(pic.error[:, j], 1e-16), "C0", lw=1)
            grid[1, j].set_ylabel(f"|error| {out}")
        grid[-1, j].set_xlabel(pic.coords[0])
        for a in grid[:, j]:
            a.grid(alpha=0.3, which="both")
    return fig


def map_axes(pic: Picture) -> tuple[int, int]:
    """(horizontal, vertical) grid axes: time runs horizontally."""
    return (1, 0) if pic.coords[1] == pic.time else (0, 1)


def draw_map(ax, pic: Picture, values: np.ndarray, cmap: str, norm: Normalize):
    """A heatmap of a 2D grid array over the picture's coordinates, axes labelled."""
    h, v = map_axes(pic)
    image = values if h == 1 else values.T  # rows run along the vertical coordinate
    extent = [pic.axes[h][0], pic.axes[h][-1], pic.axes[v][0], pic.axes[v][-1]]
    im = ax.imshow(image, origin="lower", extent=extent, aspect="auto", cmap=cmap, norm=norm,
                   interpolation="nearest")
    ax.set_xlabel(pic.coords[h])
    ax.set_ylabel(pic.coords[v])
    ax.locator_params(nbins=5)
    return im


def solution_maps(pic: Picture):
    """One row per output: prediction | reference | |error| (reference and error if known)."""
    cols = 1 if pic.error is None else 3
    fig, grid = plt.subplots(len(pic.outputs), cols, figsize=(4.4 * cols + 1, 3.6 * len(pic.outputs)),
                             squeeze=False, layout="constrained")
    for j, out in enumerate(pic.outputs):
        pair = [pic.prediction[..., j]] + ([] if pic.reference is None else [pic.reference[..., j]])
        cmap, norm = value_scale(*pair)
        for ax, name, values in zip(grid[j], ("PINN", "reference"), pair):
            im = draw_map(ax, pic, values, cmap, norm)
            ax.set_title(f"{name} {out}")
        fig.colorbar(im, ax=list(grid[j, : len(pair)]), label=out, shrink=0.9)
        if pic.error is not None:
            err = pic.error[..., j]
            im = draw_map(grid[j, 2], pic, err, ERROR, Normalize(0, max(float(np.nanmax(err)), 1e-16)))
            grid[j, 2].set_title(f"|error| {out} (max {np.nanmax(err):.2e})")
            fig.colorbar(im, ax=grid[j, 2], label=f"|error| {out}", shrink=0.9)
    return fig


def plot_snapshots(run: SavedRun, pic: Picture, target: Path, fractions=(0.25, 0.5, 0.75)) -> Path:
    """Problems in (x, t): the solution against x at a few times, one row per output."""
    x_axis, t_axis = pic.space_time_axes
    t = pic.axes[t_axis]
    picks = [int(round(f * (len(t) - 1))) for f in fractions]
    fig, grid = plt.subplots(len(pic.outputs), len(picks), figsize=(4.2 * len(picks), 3.2 * len(pic.outputs)),
                             squeeze=False, sharey="row", layout="constrained")
    for j, out in enumerate(pic.outputs):
        for ax, k in zip(grid[j], picks):
            at = partial(np.take, indices=k, axis=t_axis)
            if pic.reference is not None:
                ax.plot(pic.axes[x_axis], at(pic.reference[..., j]), "k-", lw=2.2, label="reference")
            ax.plot(pic.axes[x_axis], at(pic.prediction[..., j]), "C3--", lw=1.5, label="PINN")
            ax.set_title(f"{pic.time} = {t[k]:.3g}")
            ax.set_xlabel(pic.coords[x_axis])
            ax.set_ylabel(out)
            ax.grid(alpha=0.3)
        grid[j, 0].legend(fontsize=8)
    return save(fig, target, title(run))


# -- several runs ---------------------------------------------------------------------------------------
def plot_comparison(paths: list[str | Path], target: str | Path) -> Path:
    """Runs of one problem side by side, one row each: prediction | |error| | weights.

    Every row shares one colour scale for the prediction and one logarithmic
    scale for the error, so a failure and its fix read at a glance.
    """
    runs = [read_run(p) for p in paths]
    pictures = [read_picture(r) for r in runs]
    if any(len(p.axes) != 2 or p.error is None for p in pictures):
        raise PinnbalError("plot_comparison: needs runs of a problem in two coordinates with a reference")
    cmap, norm = value_scale(*(p.prediction[..., 0] for p in pictures))
    top = max(max(float(np.nanmax(p.error[..., 0])) for p in pictures), 1e-12)
    err_norm = LogNorm(top * 1e-4, top)
    fig, grid = plt.subplots(len(runs), 3, figsize=(15, 3.8 * len(runs)), squeeze=False, layout="constrained")
    for (ax_u, ax_e, ax_w), run, pic in zip(grid, runs, pictures):
        out = pic.outputs[0]
        im_u = draw_map(ax_u, pic, pic.prediction[..., 0], cmap, norm)
        im_e = draw_map(ax_e, pic, np.maximum(pic.error[..., 0], top * 1e-4), ERROR, err_norm)
        ax_u.set_title(f"{run.metrics['balancer']}: PINN {out}")
        ax_e.set_title(f"{run.metrics['balancer']}: |error| {out}, rel L2 {run.metrics['rel_l2']:.2e}")
        draw_columns(ax_w, run.history, columns(run.history, "weight"), ylabel="weight")
        ax_w.set_title(f"{run.metrics['balancer']}: term weights")
    fig.colorbar(im_u, ax=list(grid[:, 0]), label=out, shrink=0.8)
    fig.colorbar(im_e, ax=list(grid[:, 1]), label=f"|error| {out} (log)", shrink=0.8)
    return save(fig, Path(target), f"{runs[0].metrics['problem']}: " + " vs ".join(r.metrics["balancer"] for r in runs))
