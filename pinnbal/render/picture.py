"""What every figure of a run shares: the picture grid read from ``predictions.npz``, the title line,
colour scales and saving (matplotlib, Agg: no display needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402

from ..rundir import SavedRun  # noqa: E402

DPI = 110
SIGNED, POSITIVE, ERROR = "RdBu_r", "viridis", "magma"


@dataclass
class Picture:
    """``predictions.npz`` as arrays on its grid: values have shape grid + (outputs,)."""

    all_coords: list[str]
    outputs: list[str]
    axes: list[np.ndarray]
    prediction: np.ndarray
    reference: np.ndarray | None
    fixed: dict[str, float]  # coordinates held at one value (mid-box)
    time: str | None = None  # the time coordinate (drawn horizontally, sliced in snapshots and GIFs)

    @property
    def is_space_time(self) -> bool:
        """A grid over one space coordinate and time."""
        return len(self.axes) == 2 and self.time in self.coords

    @property
    def space_time_axes(self) -> tuple[int, int]:
        """(space, time) grid axes of a space-time picture."""
        t_axis = self.coords.index(self.time)
        return 1 - t_axis, t_axis

    @property
    def coords(self) -> list[str]:
        return self.all_coords[: len(self.axes)]

    @property
    def error(self) -> np.ndarray | None:
        return None if self.reference is None else np.abs(self.prediction - self.reference)

    def where(self) -> str:
        """``"z = 0.5"`` for a slice, else empty."""
        return ", ".join(f"{k} = {v:.3g}" for k, v in self.fixed.items())


def read_picture(run: SavedRun) -> Picture:
    saved = run.predictions()
    names, outputs = [str(n) for n in saved["coord_names"]], [str(o) for o in saved["output_names"]]
    axes = [saved[f"axis{i}"] for i in range(int(saved["n_axes"]))]
    shape = tuple(len(a) for a in axes) + (len(outputs),)
    reference = saved["reference"].reshape(shape) if "reference" in saved else None
    fixed = {n: float(saved["points"][0, i]) for i, n in enumerate(names) if i >= len(axes)}
    # run directories written before time_name existed: time is the coordinate called t
    time = str(saved["time_name"]) if "time_name" in saved else ("t" if "t" in names else "")
    return Picture(names, outputs, axes, saved["prediction"].reshape(shape), reference, fixed, time or None)


def title(run: SavedRun) -> str:
    """``problem · balancer · seed · rel L2`` (and the status when it is not ``completed``)."""
    m = run.metrics
    parts = [m["problem"], m["balancer"], f"seed {m['seed']}"]
    if m.get("rel_l2") is not None:
        parts.append(f"rel L2 {m['rel_l2']:.2e}")
    if m.get("status", "completed") != "completed":
        parts.append(m["status"])
    return " · ".join(parts)


def save(fig, target: Path, suptitle: str) -> Path:
    fig.suptitle(suptitle)
    fig.savefig(target, dpi=DPI)
    plt.close(fig)
    return target



def value_scale(*arrays: np.ndarray) -> tuple[str, Normalize]:
    """A colour map and norm shared by ``arrays``: diverging around 0 if signed, else sequential.

    Data count as signed when both signs reach 10 % of the largest magnitude (a
    positive solution with a slight undershoot stays sequential).
    """
    lo, hi = min(float(np.nanmin(a)) for a in arrays), max(float(np.nanmax(a)) for a in arrays)
    if min(-lo, hi) > 0.1 * max(-lo, hi):
        lim = max(-lo, hi)
        return SIGNED, Normalize(-lim, lim)
    return POSITIVE, Normalize(lo, hi if hi > lo else lo + 1e-12)
