"""The training context a validation-driven balancer evaluates on.

Learned weighting (``learned``, seed 000 §6.2) and meta-gradient loss tuning
(``meta``, seed 003) ask how the validation loss would change if the model
took a step under given weights: with θ' = θ − η ∇_θ Σ_k w_k L_k(θ), the
meta-gradient ∂L_val(θ')/∂w passes through the inner gradient.  That needs
the model as a pure function of its parameters, so the look-ahead stays
differentiable in w; :func:`torch.func.functional_call` gives exactly that
on the live module without copying it.

A balancer asks for the context by putting ``"context"`` in ``needs``; the
trainer then builds a held-out validation set (fresh collocation, boundary
and initial points from their own random stream, and for ``Data`` terms the
fraction ``holdout`` of the observations, which training never sees) and
passes the context in :class:`~pinnbal.balancers.base.Stats` on the steps
the balancer is due.  The reference solution is never part of it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from .batches import Batches, TermValues, evaluate_terms


class _Evaluate(nn.Module):
    """``evaluate_terms`` as a module's forward, so ``functional_call`` can swap the model's parameters."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batches: Batches) -> TermValues:
        return evaluate_terms(self.model, batches)


class TrainingContext:
    """The model as a function of its parameters, on the training batch and on a validation set."""

    def __init__(self, trainer):
        self.model = trainer.model
        self.terms = trainer.problem.terms
        self.train = trainer.batches
        self.validation = trainer.validation
        self.optimizer = trainer.adam  # the live Adam optimiser (its moments seed an Adam-like unroll)
        self._module = _Evaluate(trainer.model)

    @property
    def lr(self) -> float:
        """The optimiser's current learning rate (the natural inner step size of a look-ahead)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def parameters(self) -> dict[str, torch.Tensor]:
        """The model's trainable parameters by name: the live tensors."""
        return {name: p for name, p in self.model.named_parameters() if p.requires_grad}

    def evaluate(self, params: dict[str, torch.Tensor] | None = None, part: str = "train") -> TermValues:
        """Residuals, pointwise losses and plain term losses on ``part`` ("train" or "validation").

        With ``params`` (name → tensor, e.g. a look-ahead θ'), the model runs
        with those in place of its own, differentiably, on fresh coordinate
        leaves (θ' may itself depend on the training points through its inner
        gradients; derivatives in x must be partial at fixed θ') and without
        dropout (a meta-gradient should not be noisy).
        """
        if part not in ("train", "validation"):
            raise ValueError(f"part={part!r}; choose train or validation")
        batches = self.train if part == "train" else self.validation
        if params is None:
            return evaluate_terms(self.model, batches)
        mode = self.model.training
        self.model.eval()
        try:
            return functional_call(self._module, {f"model.{k}": v for k, v in params.items()}, (batches.leaves(),))
        finally:
            self.model.train(mode)
