"""First figures of a run, drawn from its run directory alone (matplotlib, Agg).

- ``figures/losses.png``: per-term losses, the weighted total and the
  weights per term, log scale, against step;
- ``figures/solution.png``: the prediction against the reference: a line
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
import torch  # noqa: E402

from .points import Points  # noqa: E402
from .problem import as_columns  # noqa: E402
from .runs import SavedRun, predict, read_run  # noqa: E402


def render_run(path: str | Path) -> list[Path]:
    """Draw the run's figures into ``path/figures``; return the files written."""
    run = read_run(path)
    figures = Path(path) / "figures"
    figures.mkdir(exist_ok=True)
    written = [plot_losses(run, figures / "losses.png")]
    written.append(plot_solution(run, figures / "solution.png"))
    return written


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
    for ax, label in ((ax_l, "loss"), (ax_w, "weight")):
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


def solution_grid(problem, n_per_axis: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray | None]:
    """Axes of the first one or two coordinates, the points (others at mid-box) and the reference there."""
    dom = problem.domain
    ref = problem.reference
    shown = min(dom.dim, 2)
    grid_ref = None if ref is None or callable(ref) else ref.resolve()
    if grid_ref is not None and grid_ref.axes and dom.dim <= 2 and set(grid_ref.axes) == set(dom.names):
        axes = [grid_ref.axes[n] for n in dom.names]
        x, v = grid_ref.arrays(dom.names, problem.outputs)
        return axes, x, v
    axes = [np.linspace(dom.low[i], dom.high[i], n_per_axis) for i in range(shown)]
    mesh = np.meshgrid(*axes, indexing="ij")
    x = np.tile((dom.low + dom.high) / 2, (mesh[0].size, 1))
    for i, m in enumerate(mesh):
        x[:, i] = m.ravel()
    values = None
    if callable(ref):
        p = Points(torch.as_tensor(x, dtype=torch.float64), dom.names, [], None, {}, where="reference")
        with torch.no_grad():
            values = as_columns(ref(p), len(x), "reference", len(problem.outputs))
        values = values.expand(len(x), len(problem.outputs)).numpy()
    return axes, x, values


def plot_solution(run: SavedRun, target: Path) -> Path:
    problem, model = run.load_model()
    axes, x, ref = solution_grid(problem, 400 if problem.domain.dim == 1 else 200)
    pred = predict(model, x)
    names = problem.domain.names
    n_out = len(problem.outputs)
    if len(axes) == 1:
        fig, rows = plt.subplots(n_out, 1, figsize=(6, 3.2 * n_out), squeeze=False)
        for j, out in enumerate(problem.outputs):
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
        for j, out in enumerate(problem.outputs):
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
