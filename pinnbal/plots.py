"""First figures of a run, drawn from its run directory alone (matplotlib, Agg).

- ``figures/losses.png``: per-term losses, the weighted total and the
  weights per term, log scale, against step;
- ``figures/solution.png``: the prediction against the reference (both read
  from ``predictions.npz``, written at the end of training): a line
  plot in 1D; heatmaps of prediction, reference and absolute error in 2D
  (for more coordinates, the slice through the middle of the others), one
  row per output.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .errors import PinnbalError  # noqa: E402
from .runs import SavedRun, read_run  # noqa: E402


def render_run(path: str | Path) -> list[Path]:
    """Draw the run's figures into ``path/figures``; return the files written."""
    run = read_run(path)
    if not (run.path / "predictions.npz").is_file():
        raise PinnbalError(f"{path}: no predictions.npz; this run directory is incomplete")
    figures = Path(path) / "figures"
    figures.mkdir(exist_ok=True)
    return [plot_losses(run, figures / "losses.png"), plot_solution(run, figures / "solution.png")]


def title(run: SavedRun) -> str:
    m = run.metrics
    err = f", rel L2 {m['rel_l2']:.2e}" if m.get("rel_l2") is not None else ""
    return f"{m['problem']} · {m['balancer']} · seed {m['seed']}{err}"


def plot_losses(run: SavedRun, target: Path) -> Path:
    steps = np.array([r["step"] for r in run.history])
    terms = [k[len("loss/"):] for k in run.history[0] if k.startswith("loss/")]
    fig, (ax_l, ax_w) = plt.subplots(1, 2, figsize=(11, 4))
    for name in terms:
        ax_l.semilogy(steps, [r[f"loss/{name}"] for r in run.history], label=name, lw=1)
        ax_w.semilogy(steps, [r[f"weight/{name}"] for r in run.history], label=name, lw=1.2)
    ax_l.semilogy(steps, [r["loss"] for r in run.history], label="weighted total", color="k", lw=1.5)
    lbfgs = [r["step"] for r in run.history if r["phase"] == "lbfgs"]
    for ax, label in ((ax_l, "loss"), (ax_w, "weight")):
        if lbfgs:
            ax.axvline(lbfgs[0], color="grey", ls="--", lw=0.8)
            ax.text(lbfgs[0], 1.0, " L-BFGS", transform=ax.get_xaxis_transform(), va="top", fontsize=8, color="grey")
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    ax_l.set_title("term losses")
    ax_w.set_title("term weights")
    fig.suptitle(title(run))
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def plot_solution(run: SavedRun, target: Path) -> Path:
    saved = np.load(run.path / "predictions.npz")
    names, outputs = list(saved["coord_names"]), list(saved["output_names"])
    axes = [saved[f"axis{i}"] for i in range(int(saved["n_axes"]))]
    pred = saved["prediction"]
    ref = saved["reference"] if "reference" in saved else None
    n_out = len(outputs)
    if len(axes) == 1:
        fig, rows = plt.subplots(n_out, 1, figsize=(6, 3.2 * n_out), squeeze=False)
        for j, out in enumerate(outputs):
            ax = rows[j, 0]
            if ref is not None:
                ax.plot(axes[0], ref[:, j], "k-", lw=2, label="reference")
            ax.plot(axes[0], pred[:, j], "r--", lw=1.5, label="PINN")
            ax.set_xlabel(names[0])
            ax.set_ylabel(out)
            ax.legend()
    else:
        shape = (len(axes[0]), len(axes[1]))
        cols = 3 if ref is not None else 1
        fig, grid = plt.subplots(n_out, cols, figsize=(4.6 * cols, 3.6 * n_out), squeeze=False)
        extent = [axes[0][0], axes[0][-1], axes[1][0], axes[1][-1]]
        for j, out in enumerate(outputs):
            panels = [("PINN " + out, pred[:, j])]
            if ref is not None:
                panels += [("reference " + out, ref[:, j]), ("|error| " + out, np.abs(pred[:, j] - ref[:, j]))]
            lim = max(np.abs(pred[:, j]).max(), np.abs(ref[:, j]).max() if ref is not None else 0)
            for c, (label, values) in enumerate(panels):
                ax = grid[j, c]
                err = label.startswith("|error|")
                im = ax.imshow(values.reshape(shape).T, origin="lower", extent=extent, aspect="auto",
                               cmap="viridis" if err else "RdBu_r", vmin=None if err else -lim,
                               vmax=None if err else lim)
                fig.colorbar(im, ax=ax)
                ax.set_title(label)
                ax.set_xlabel(names[0])
                ax.set_ylabel(names[1])
    fig.suptitle(title(run))
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target
