"""Learned weighting by an auxiliary network (seed 000 §6.2, "Neural Network
Approach"), trained by a one-step look-ahead meta-gradient.

A small MLP g_φ reads the main model's state — each term's log loss relative
to its first value, and the training progress — and outputs the weights:

    x = (clamp(log(L_1/L_1⁰), ±30)/10, …, clamp(log(L_K/L_K⁰), ±30)/10, progress)
    z = W₂ tanh(W₁ x + b₁) + b₂,     w = (Σ_k w⁰_k) softmax(log w⁰ + z)

(softmax × K for unit initial weights).  W₂ and b₂ start at zero, so the
first weights are exactly the initial ones; W₁ starts small and random from a
fixed generator (the global random stream is not touched).  Because W₁ is
drawn per input position, permuting the terms permutes the weights only
until the first meta-update; after it the method depends on the order in
which the problem declares its terms (like ``rlw``'s draws and ``pcgrad``'s
projection order for K ≥ 3).

Training (§6.2 item 4, "a meta-loss function that reflects the performance of
the main model"): every ``every`` steps, with the current x, one differentiable
look-ahead step θ' = θ − η ∇_θ Σ_k w_k(φ) L_k(θ) (η the optimiser's learning
rate, T = 1) is scored on held-out points by the validation objective of
:mod:`pinnbal.lookahead`, V = mean_k L_k^val(θ') / L_k^val(θ), and φ takes one Adam
step on the clipped meta-gradient ∂V/∂φ (which passes through the inner
gradient: second order), with a decoupled pull of strength ``reg`` toward its
initial value.  The weights are then recomputed with the new φ and held until
the next update.

Options (defaults): every=10, hidden=16 (MLP width), meta_lr=0.01 (Adam on φ),
clip=1.0 (global-norm clip of the meta-gradient; 0: none), reg=0.0,
holdout=0.2 (fraction of Data observations held out for validation),
alpha=0.0 (EMA of the weights), min=1e-3, max=1e3.

State (flat tensors, checkpointed): the MLP's ``mlp_w1`` (H, K+1), ``mlp_b1``,
``mlp_w2`` (K, H), ``mlp_b2``, their Adam moments (``m_*``, ``v_*``, ``adam_t``),
``loss0`` (L_k⁰), ``val0``; logged per term: ``dval_dw`` (the last meta-gradient
∂V/∂w_k: negative means more weight on term k would have lowered the
validation loss) and ``val_rel`` (validation loss over its value at the first
update).  The weights themselves are the ``weight/<term>`` columns.

Sources: seed 000 §6.2; the look-ahead meta-gradient follows Andrychowicz et
al. 2016 ("Learning to learn by gradient descent by gradient descent") and
Franceschi et al. 2018 ("Bilevel programming for hyperparameter optimization
and meta-learning"); see :mod:`pinnbal.lookahead`.
"""

from __future__ import annotations

import math

import torch

from ..errors import OptionError
from ..lookahead import (TINY, adam_update, all_finite, clip_grads, meta_gradient, selection, skip,
                         validation_scale)
from .base import Balancer

F64 = torch.float64
NAMES = ("mlp_w1", "mlp_b1", "mlp_w2", "mlp_b2")


class Learned(Balancer):
    name = "learned"
    summary = ("auxiliary MLP (seed 000 6.2): weights = softmax x K of g_phi(log losses, progress), phi trained "
               "on held-out loss after a look-ahead step")
    weight_sum = "initial"
    needs = frozenset({"losses", "context"})
    options = {"every": 10, "hidden": 16, "meta_lr": 0.01, "clip": 1.0, "reg": 0.0, "holdout": 0.2,
               "alpha": 0.0, "min": 1e-3, "max": 1e3}
    logged_state = ("dval_dw", "val_rel")

    def check_options(self) -> None:
        super().check_options()
        o = self.opts
        if not 1 <= o["hidden"] <= 1024:
            raise OptionError(f"balancer {self.name!r}: hidden={o['hidden']}; need 1..1024")
        if o["meta_lr"] < 0 or o["clip"] < 0 or o["reg"] < 0:
            raise OptionError(f"balancer {self.name!r}: meta_lr, clip and reg must be >= 0")
        if not 0.0 <= o["holdout"] < 1.0:
            raise OptionError(f"balancer {self.name!r}: holdout={o['holdout']}; need 0 <= holdout < 1")

    def phi_init(self, K: int) -> dict[str, torch.Tensor]:
        H = self.opts["hidden"]
        g = torch.Generator().manual_seed(0)
        return {"mlp_w1": torch.randn(H, K + 1, generator=g, dtype=F64) / math.sqrt(K + 1),
                "mlp_b1": torch.zeros(H, dtype=F64), "mlp_w2": torch.zeros(K, H, dtype=F64),
                "mlp_b2": torch.zeros(K, dtype=F64)}

    def init(self, terms):
        state = super().init(terms)
        K = len(terms)
        for n, p in self.phi_init(K).items():
            state[n], state[f"m_{n}"], state[f"v_{n}"] = p, torch.zeros_like(p), torch.zeros_like(p)
        state |= {"adam_t": torch.zeros((), dtype=torch.int64), "loss0": torch.zeros(K, dtype=F64),
                  "val0": torch.zeros(K, dtype=F64), "dval_dw": torch.zeros(K, dtype=F64),
                  "val_rel": torch.ones(K, dtype=F64)}
        return state

    @staticmethod
    def inputs(losses: torch.Tensor, loss0: torch.Tensor, progress: float) -> torch.Tensor:
        """x: each term's log loss relative to its first value (0 until known), scaled; then progress."""
        known = loss0 > 0
        rel = torch.where(known, losses.clamp_min(TINY).log() - loss0.clamp_min(TINY).log(), torch.zeros_like(losses))
        return torch.cat([rel.clamp(-30.0, 30.0) / 10.0, torch.tensor([float(progress)], dtype=F64)])

    @staticmethod
    def weights_of(phi: dict, x: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
        z = phi["mlp_w2"] @ torch.tanh(phi["mlp_w1"] @ x + phi["mlp_b1"]) + phi["mlp_b2"]
        total = initial.sum()
        if not bool(total > 0):
            return initial
        return total * torch.softmax(initial.clamp_min(TINY).log() + z, dim=0)

    def target(self, stats, state, *, step, progress):
        ctx = stats.context
        if ctx is None:
            return state["weights"]
        o = self.opts
        K = len(state["weights"])
        initial = state["initial"]
        losses = stats.losses.detach().double().cpu()
        fresh = (state["loss0"] == 0) & (losses > 0)
        state["loss0"] = torch.where(fresh, losses, state["loss0"])
        x = self.inputs(losses, state["loss0"], progress)

        select = selection(ctx)
        val = validation_scale(ctx)
        if not all_finite(val):
            return skip(state)
        val0 = state["val0"] if bool((state["val0"] > 0).any()) else val.clone()
        state["val0"] = val0
        state["val_rel"] = torch.where(val0 > TINY, val / val0.clamp_min(TINY), torch.ones_like(val))

        phi = {n: state[n].detach().clone().requires_grad_(True) for n in NAMES}
        w = self.weights_of(phi, x, initial)  # an intermediate: its gradient is logged

        def train_loss(values):
            return (w.to(values.losses) * values.losses).sum()

        value, grads = meta_gradient(ctx, train_loss, [*phi.values(), w], T=1, lr=ctx.lr, scale=val, select=select)
        grads, dval_dw = grads[:-1], grads[-1]
        if not (math.isfinite(value) and all_finite(*grads, dval_dw)):
            return skip(state)
        state["dval_dw"] = dval_dw.double().cpu()
        grads, _ = clip_grads(grads, o["clip"])
        if not adam_update(state, NAMES, grads, lr=o["meta_lr"], reg=o["reg"], phi0=self.phi_init(K)):
            return skip(state)
        return self.weights_of({n: state[n] for n in NAMES}, x, initial)
