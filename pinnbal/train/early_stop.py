"""Early stopping on a validation loss (``--early-stop N``).

Every evaluation (``--eval-every`` steps, in both stages) the model is
scored on a held-out set — fresh collocation, boundary and initial points
from their own random stream, and the ``--holdout`` fraction of each Data
term's observations — never on the reference solution.  The score is the
plain normalised sum  Σ_k L_k^val / L_k^val(first evaluation),  so no term
dominates by its units.  After N evaluations without a new best the run
stops, the best model is restored and the event is logged.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from ..batches import Batches, evaluate_terms


class EarlyStopping:
    """Patience counter over validation scores; keeps the best model's state in memory."""

    def __init__(self, patience: int):
        self.patience = patience
        self.scale: torch.Tensor | None = None
        self.best = math.inf
        self.bad = 0
        self.best_model: dict[str, torch.Tensor] | None = None
        self.latest: tuple[int, float] | None = None
        self.stopped_at: int | None = None

    def measure(self, model, validation: Batches, step: int) -> float:
        """The validation score of ``model`` now (its derivatives need autograd, its parameters do not)."""
        mode = model.training
        model.eval()  # no dropout noise in the score
        losses = evaluate_terms(model, validation).means.double().cpu()
        model.train(mode)
        if self.scale is None:
            self.scale = losses.clamp_min(torch.finfo(torch.float64).tiny)
        score = float((losses / self.scale).sum())
        self.latest = (step, score)
        return score

    def should_stop(self, step: int, model) -> bool:
        """Count the score measured at ``step`` (if any); True once ``patience`` evaluations passed without a best."""
        if not self.patience or self.latest is None or self.latest[0] != step:
            return False
        score = self.latest[1]
        if score < self.best:
            self.best, self.bad = score, 0
            self.best_model = copy.deepcopy(model.state_dict())
            return False
        self.bad += 1
        if self.bad < self.patience:
            return False
        self.stopped_at = step
        model.load_state_dict(self.best_model)
        return True

    def state(self) -> dict[str, Any]:
        return {"scale": self.scale, "best": self.best, "bad": self.bad, "best_model": self.best_model,
                "latest": self.latest, "stopped_at": self.stopped_at}

    def load(self, saved: dict[str, Any]) -> None:
        for key, value in saved.items():
            setattr(self, key, tuple(value) if key == "latest" and value is not None else value)
