"""The run directory: the public record of one training run, written and read here only.

Files (each written atomically through :mod:`pinnbal.storage`):

- ``config.json``      everything needed to reproduce the run (:data:`CONFIG`);
- ``metrics.json``     final numbers: ``status``, ``rel_l2``, ``final_losses``, ... (:data:`METRICS`);
- ``history.csv``      one row per logged step (:data:`HISTORY`);
- ``model.pt``         ``{"model": state dict, "balancer": state}``, loadable with
  ``torch.load(..., weights_only=True)`` (:data:`MODEL`);
- ``predictions.npz``  prediction and reference on a picture grid, so figures need no
  model rebuild; ``volume_*`` arrays for 3D scenes (:data:`PREDICTIONS`);
- ``checkpoint.pt``    what ``--resume`` continues from (:data:`CHECKPOINT`);
- ``figures/``         the first figures (:data:`FIGURES`).

Everything after training (figures, comparisons, resuming) starts from these
files through :func:`read_run`, never from live objects.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .errors import OptionError, PinnbalError
from .loader import load_problem
from .nets import PINNModel, network_for
from .problem import Problem
from .storage import atomic_write_bytes, load_state, read_csv, read_json, save_state, write_csv, write_json

CONFIG = "config.json"
METRICS = "metrics.json"
HISTORY = "history.csv"
MODEL = "model.pt"
PREDICTIONS = "predictions.npz"
CHECKPOINT = "checkpoint.pt"
FIGURES = "figures"
VOLUME_POINTS = 32  # per axis of the coarse 3D grid stored for pyvista scenes


# -- writing ----------------------------------------------------------------------------------------------
def prepare_out_dir(out: Path, force: bool) -> None:
    """Refuse an existing run directory unless ``force``; never delete user files.

    With ``force`` only the files a run writes are replaced; anything else the
    user put there stays.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out {out}: exists and is not a directory; choose another path")
    if out.exists() and any(out.iterdir()) and not force:
        raise OptionError(f"--out {out}: directory exists and is not empty; pass --force to overwrite its run files "
                          f"or choose another --out")
    out.mkdir(parents=True, exist_ok=True)


def write_run_start(out: Path, config: dict[str, Any]) -> None:
    """``config.json`` of a run about to start; a forced re-run's old metrics and checkpoint go first."""
    for stale in (METRICS, CHECKPOINT):
        (out / stale).unlink(missing_ok=True)
    write_json(out / CONFIG, config)


def forget_start(out: Path) -> None:
    """Undo :func:`write_run_start` for a run that failed before its first checkpoint: nothing half-made stays."""
    if not (out / CHECKPOINT).exists():
        (out / CONFIG).unlink(missing_ok=True)


def has_checkpoint(out: Path) -> bool:
    return (out / CHECKPOINT).is_file()


def write_checkpoint(out: Path, state: dict[str, Any]) -> None:
    save_state(out / CHECKPOINT, state)


def read_checkpoint(out: Path) -> dict[str, Any]:
    return load_state(out / CHECKPOINT)


def write_run(out: Path, history: list[dict[str, Any]], metrics: dict[str, Any], model: PINNModel,
              balancer_state: dict[str, torch.Tensor], predict: Callable[[np.ndarray], np.ndarray]) -> None:
    """The files of a finished (or stopped) run: history, model, predictions, metrics (last: its presence says
    the others are complete)."""
    write_csv(out / HISTORY, history, history_columns(history))
    save_state(out / MODEL, {"model": model.state_dict(), "balancer": {k: v.clone() for k, v in balancer_state.items()}})
    write_predictions(out / PREDICTIONS, model.problem, predict)
    write_json(out / METRICS, metrics)


def history_columns(history: list[dict[str, Any]]) -> list[str]:
    """Every key of the history rows, in the order they first appear (``rel_l2`` last)."""
    columns = list(dict.fromkeys(k for row in history for k in row))
    columns.remove("rel_l2")
    return columns + ["rel_l2"]


def write_predictions(path: Path, problem: Problem, predict: Callable[[np.ndarray], np.ndarray]) -> None:
    """The prediction (and reference) on a picture grid, so figures need no model rebuild."""
    axes, x, ref = problem.solution_grid(400 if problem.domain.dim == 1 else 200)
    arrays = {f"axis{i}": a for i, a in enumerate(axes)}
    arrays |= {"n_axes": np.array(len(axes)), "points": x, "prediction": masked(problem, x, predict(x)),
               "coord_names": np.array(problem.domain.names), "output_names": np.array(problem.outputs),
               "time_name": np.array(problem.time or "")}
    if ref is not None:
        arrays["reference"] = ref
    arrays |= volume_arrays(problem, predict)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def volume_arrays(problem: Problem, predict: Callable[[np.ndarray], np.ndarray], n: int = VOLUME_POINTS) -> dict:
    """A coarse grid over the first three coordinates (others at mid-box), for ``predictions.npz``.

    Returns ``{}`` for boxes of fewer than three coordinates, else
    ``volume_axis0..2`` (n each), ``volume_points`` (n³, d),
    ``volume_prediction`` (n³, m) and, for a closed-form reference,
    ``volume_reference`` (n³, m), points in 'ij' order of the axes.
    """
    dom = problem.domain
    if dom.dim < 3:
        return {}
    axes = [np.linspace(dom.low[i], dom.high[i], n) for i in range(3)]
    mesh = np.meshgrid(*axes, indexing="ij")
    x = np.tile((dom.low + dom.high) / 2, (mesh[0].size, 1))
    for i, m in enumerate(mesh):
        x[:, i] = m.ravel()
    arrays = {f"volume_axis{i}": a for i, a in enumerate(axes)}
    arrays |= {"volume_points": x, "volume_prediction": masked(problem, x, predict(x))}
    if callable(problem.reference):
        arrays["volume_reference"] = problem.reference_on(x)
    return arrays


def masked(problem: Problem, x: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` at picture points ``x`` with NaN where ``x`` lies outside the domain (a hole is drawn empty)."""
    if problem.domain.is_box():
        return values
    values = np.array(values, dtype=float)
    values[problem.outside(x)] = np.nan
    return values


# -- reading ----------------------------------------------------------------------------------------------
@dataclass
class SavedRun:
    """A run directory read back: its config, metrics and history; the model on request."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]

    def load_model(self) -> tuple[Problem, PINNModel]:
        """Rebuild the problem (from its file) and the trained model (from ``model.pt``), in float64."""
        problem_path = self.config.get("problem_path")
        if not problem_path or not Path(problem_path).is_file():
            raise PinnbalError(f"{self.path}: its problem file {problem_path!r} is gone; the model cannot be rebuilt")
        problem = load_problem(problem_path)
        model = PINNModel(problem, network_for(problem, self.config["train"]))
        model.load_state_dict(load_state(self.path / MODEL)["model"])
        model.to(torch.float64)
        model.eval()
        return problem, model

    def predictions(self) -> dict[str, np.ndarray] | None:
        """The arrays of ``predictions.npz`` (None when the run wrote none)."""
        if not (self.path / PREDICTIONS).is_file():
            return None
        with np.load(self.path / PREDICTIONS) as saved:
            return dict(saved)

    @property
    def figures(self) -> Path:
        return self.path / FIGURES


def read_run(path: str | Path) -> SavedRun:
    """The finished (or stopped) run in ``path``; one clear error when it is not a run directory."""
    path = Path(path)
    missing = [f for f in (CONFIG, METRICS, HISTORY) if not (path / f).is_file()]
    if missing:
        raise PinnbalError(f"{path}: not a finished run directory (missing {', '.join(missing)})")
    return SavedRun(path, read_json(path / CONFIG), read_json(path / METRICS), read_csv(path / HISTORY))


def read_config(path: Path) -> dict[str, Any] | None:
    """``config.json`` of a run directory (None when there is none yet)."""
    return read_json(path / CONFIG) if (path / CONFIG).is_file() else None


def read_metrics(path: Path) -> dict[str, Any] | None:
    """``metrics.json`` of a run directory (None while the run has not finished)."""
    return read_json(path / METRICS) if (path / METRICS).is_file() else None


def predict(model: PINNModel, x: np.ndarray) -> np.ndarray:
    """A rebuilt (float64) model's outputs at ``x``."""
    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float64)).numpy()
