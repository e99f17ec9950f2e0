"""Reading a run directory back: config, metrics, history and the trained model.

Everything after training (figures, comparisons, resuming) starts here, from
files, never from live objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import PinnbalError
from .loader import load_problem
from .nets import PINNModel, build_network
from .problem import Problem
from .rundir import load_state, read_csv, read_json


@dataclass
class SavedRun:
    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]

    def load_model(self) -> tuple[Problem, PINNModel]:
        """Rebuild the problem (from its file) and the trained model (from ``model.pt``)."""
        problem_path = self.config.get("problem_path")
        if not problem_path or not Path(problem_path).is_file():
            raise PinnbalError(f"{self.path}: its problem file {problem_path!r} is gone; the model cannot be rebuilt")
        problem = load_problem(problem_path)
        train = self.config["train"]
        network = build_network(problem.domain.features, len(problem.outputs), train["arch"], train["width"],
                                train["depth"], train["activation"], dropout=train.get("dropout", 0.0))
        model = PINNModel(problem, network)
        state = load_state(self.path / "model.pt")
        model.load_state_dict(state["model"])
        model.to(torch.float64)
        model.eval()
        return problem, model


def read_run(path: str | Path) -> SavedRun:
    path = Path(path)
    missing = [f for f in ("config.json", "metrics.json", "history.csv") if not (path / f).is_file()]
    if missing:
        raise PinnbalError(f"{path}: not a finished run directory (missing {', '.join(missing)})")
    return SavedRun(path, read_json(path / "config.json"), read_json(path / "metrics.json"),
                    read_csv(path / "history.csv"))


def predict(model: PINNModel, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float64)).numpy()
