"""An animated GIF of a time-dependent solution, drawn from the run directory.

``pinnbal render RUN_DIR --gif`` (or ``render_run(path, gif=True)``) writes
``figures/solution.gif`` for a problem in one space coordinate and time:
one frame per time of the picture grid (thinned to at most ``frames``),
each showing u(x, t) of the PINN against the reference, with the absolute
error below on a log scale fixed over the whole animation, so that a
growing error reads as a rising curve.  One column per output.

matplotlib's ``FuncAnimation`` with its ``PillowWriter`` (Pillow is a
matplotlib dependency, so nothing new to install) writes the file; frames
redraw two lines per panel instead of building a figure per frame.  The
GIF is written to a temporary name and renamed, so a killed render leaves
no half-written file.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402

from ..errors import PinnbalError  # noqa: E402
from ..rundir import SavedRun  # noqa: E402
from .picture import DPI, Picture, title  # noqa: E402

FRAMES = 40  # at most this many frames
FPS = 10
ERROR_FLOOR = 1e-8  # the log error axis never reaches below this


def frame_times(n_times: int, frames: int = FRAMES) -> np.ndarray:
    """Indices of the picture grid's times that become frames: evenly spread, first and last included."""
    return np.unique(np.round(np.linspace(0, n_times - 1, min(frames, n_times))).astype(int))


def check_animatable(run: SavedRun, pic: Picture) -> None:
    """A one-line error unless the run is in one space coordinate and ``t``."""
    if len(pic.all_coords) != 2 or not pic.is_space_time:
        raise PinnbalError(f"{run.path}: --gif animates problems in one space coordinate and time "
                           f"(a coordinate t, or the one an Initial term starts from); "
                           f"this one has coordinates {', '.join(pic.all_coords)}")


def render_gif(run: SavedRun, pic: Picture, target: Path, frames: int = FRAMES) -> Path:
    """``target``: the solution against x, one frame per time; problems in (x, t) only."""
    check_animatable(run, pic)
    x_axis, t_axis = pic.space_time_axes
    x, t = pic.axes[x_axis], pic.axes[t_axis]
    # (times, x, outputs) whatever the grid's order
    pred = np.moveaxis(pic.prediction, t_axis, 0)
    ref = None if pic.reference is None else np.moveaxis(pic.reference, t_axis, 0)
    err = None if ref is None else np.maximum(np.abs(pred - ref), ERROR_FLOOR)
    picks = frame_times(len(t), frames)

    rows = 1 if err is None else 2
    fig, grid = plt.subplots(rows, len(pic.outputs), figsize=(5.0 * len(pic.outputs), 2.6 * rows + 0.8),
                             squeeze=False, sharex=True, layout="constrained")
    lines = []
    for j, out in enumerate(pic.outputs):
        ax = grid[0, j]
        values = pred[..., j] if ref is None else np.concatenate([pred[..., j], ref[..., j]])
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        pad = 0.05 * (hi - lo or 1.0)
        ax.set(ylim=(lo - pad, hi + pad), ylabel=out)
        ax.grid(alpha=0.3)
        panel = {"pred": ax.plot(x, pred[0, :, j], "C3--", lw=1.6, label="PINN")[0]}
        if ref is not None:
            panel["ref"] = ax.plot(x, ref[0, :, j], "k-", lw=2.2, label="reference", zorder=1)[0]
            e_ax = grid[1, j]
            e_ax.set(yscale="log", ylim=(max(float(np.nanmin(err[..., j])), ERROR_FLOOR), float(np.nanmax(err[..., j])) * 1.5),
                     ylabel=f"|error| of {out}")
            e_ax.grid(alpha=0.3, which="both")
            panel["err"] = e_ax.plot(x, err[0, :, j], "C0-", lw=1.2)[0]
        ax.legend(fontsize=8, loc="upper right")
        grid[-1, j].set_xlabel(pic.coords[x_axis])
        lines.append(panel)
    stamp = fig.suptitle("")

    def draw(k: int):
        for j, panel in enumerate(lines):
            panel["pred"].set_ydata(pred[k, :, j])
            if ref is not None:
                panel["ref"].set_ydata(ref[k, :, j])
                panel["err"].set_ydata(err[k, :, j])
        stamp.set_text(f"{title(run)}\n{pic.time} = {t[k]:.3g}")
        return [line for panel in lines for line in panel.values()] + [stamp]

    animation = FuncAnimation(fig, draw, frames=picks, blit=False)
    partial = target.with_name(f".{target.stem}.partial{target.suffix}")
    try:
        animation.save(partial, writer=PillowWriter(fps=FPS), dpi=DPI * 0.8)
        os.replace(partial, target)
    finally:
        plt.close(fig)
        partial.unlink(missing_ok=True)
    return target
