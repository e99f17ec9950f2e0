"""Levenberg–Marquardt: a damped Gauss–Newton second stage on the per-point residuals.

The second stage's objective is a sum of squares, F(θ) = Σ_k w_k mean_i m_i
mean_c r_kic² = ‖ρ(θ)‖² with ρ_kic = √(w_k m_i / (N_k C_k)) r_kic (every
term's loss ``mse``; :mod:`pinnbal.train.least_squares` forms ρ and its
Jacobian J = ∂ρ/∂θ, M × P).  One iteration, with g = Jᵀρ and A = JᵀJ::

    (A + λ I) h = −g                      (the damped Gauss–Newton step)
    gain ratio  q = (F(θ) − F(θ + h)) / (L(0) − L(h)),   L(0) − L(h) = hᵀ(λ h − g)
    q > 0: accept θ + h,  λ ← λ max(1/3, 1 − (2q − 1)³),  ν ← 2
    else:  reject,        λ ← λ ν,  ν ← 2ν

with λ₀ = τ max diag(A) (τ = ``damping``, 1e-3 by default; τ = 0 makes
the first step the plain Gauss–Newton step).  This is Nielsen's damping
rule (Madsen, Nielsen & Tingleff 2004, "Methods for non-linear least
squares problems", Alg. 3.16), the λ update that avoids Marquardt's
oscillation between accepted and rejected steps.  When M < P the same step
is solved in the dual form h = −Jᵀ (J Jᵀ + λ I)⁻¹ ρ (an M × M system).  Each
iteration is one residual evaluation (J only after an accepted step) and one
Cholesky factorisation; a factorisation that fails raises λ.

Why LM for PINNs: on small networks Gauss–Newton type methods reach errors
orders of magnitude below first-order and quasi-Newton methods (Müller &
Zeinhofer 2023, "Achieving high accuracy with PINNs via energy natural
gradient descent"; Jnini et al. 2026, "Curvature-aware optimization for
high-accuracy PINNs").  The cost is the dense M × P Jacobian and an
min(M, P)³ factorisation per iteration, so it is for small networks and
point sets (:func:`pinnbal.train.least_squares.check` refuses what would not
fit in memory).

What was checked first: ``scipy.optimize.least_squares(method="lm")`` wraps
MINPACK, which owns the loop (no checkpoint or history between iterations)
and asks for the Jacobian as a callable on a NumPy vector; ``torchmin``
(pytorch-minimize 0.1) has no Levenberg–Marquardt.  The iteration above is
a few lines of torch, so it is written here as a ``torch.optim.Optimizer``
(``step(closure)`` runs ``max_iter`` iterations; the state is in
``state_dict``), which the trainer's chunked loop, checkpoints and resumption
already drive.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

#: λ beyond this multiple of max diag(A) means no step lowers F any more: the stage has converged
MAX_DAMPING = 1e16

Residuals = Callable[[bool], tuple[torch.Tensor, torch.Tensor | None]]


class LevenbergMarquardt(torch.optim.Optimizer):
    """Levenberg–Marquardt with Nielsen's damping update, dense and in float64.

    ``step(closure)``: ``closure(jacobian)`` sets the parameters' current values into the residuals and returns
    (ρ (M,), J (M, P) when ``jacobian`` else None), both float64."""

    def __init__(self, params, max_iter: int = 10, damping: float = 1e-3):
        if damping < 0:
            raise ValueError(f"damping={damping}; need >= 0")
        super().__init__(params, {"max_iter": max_iter})
        self.damping = damping
        self.params = [p for group in self.param_groups for p in group["params"]]
        self.current: tuple[torch.Tensor, torch.Tensor] | None = None  # (ρ, J) at the state's x
        self.normal: torch.Tensor | None = None  # JᵀJ (or JJᵀ) of ``current``: a rejected step reuses it
        #: True once no damping gives a step (F unchanged by a chunk is not enough: its steps may all be rejected)
        self.converged = False

    def flat(self) -> torch.Tensor:
        return torch.nn.utils.parameters_to_vector(self.params).detach().to(torch.float64)

    def assign(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(x.to(self.params[0].dtype), self.params)

    @torch.no_grad()
    def step(self, closure: Residuals):  # noqa: D401 - torch.optim API
        """Run up to ``max_iter`` iterations; return F = ‖ρ‖² at the final point."""
        state = self.state[self.params[0]]
        if "x" not in state:
            state.update(x=self.flat(), lam=-1.0, nu=2.0, iterations=0)
        if self.current is None:  # ρ and J at x: kept between calls, not in the state (J is M × P), recomputed on resume
            self.assign(state["x"])
            self.current, self.normal = closure(True), None
        for _ in range(self.param_groups[0]["max_iter"]):
            if not self.iterate(closure, state):
                self.converged = True
                break
        self.assign(state["x"])
        rho = self.current[0]
        return torch.tensor(float(rho @ rho), dtype=torch.float64)

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        self.objective_changed()

    def objective_changed(self) -> None:
        """New points (``resample=``), or a restored state: ρ and J are recomputed at x on the next call."""
        self.current, self.normal, self.converged = None, None, False

    def iterate(self, closure: Residuals, state: dict) -> bool:
        """One damped step from the state; False when the stage has converged (nothing left to gain)."""
        x, (rho, J) = state["x"], self.current
        g = J.T @ rho
        if not bool(torch.isfinite(g).all()) or float(g.abs().max()) == 0.0:
            return False
        dual = J.shape[0] < J.shape[1]
        if self.normal is None:
            self.normal = J @ J.T if dual else J.T @ J
        A = self.normal
        scale = float(A.diagonal().max())
        if state["lam"] < 0:  # the first iteration: λ₀ = τ max diag(A)
            state["lam"] = self.damping * scale
        if state["lam"] > MAX_DAMPING * max(scale, 1e-300):
            return False
        state["iterations"] += 1
        h = self.solve(A, J, rho, g, state["lam"], dual)
        if h is None:  # A + λI not positive definite in floating point: damp more
            self.damp_more(state, scale)
            return True
        predicted = float(h @ (state["lam"] * h - g))
        self.assign(x + h)
        rho_new, _ = closure(False)
        actual = float(rho @ rho) - float(rho_new @ rho_new)
        q = actual / predicted if predicted > 0 else -1.0
        if math.isfinite(actual) and q > 0:
            self.current, self.normal = closure(True), None
            state.update(x=x + h, nu=2.0, lam=state["lam"] * max(1.0 / 3.0, 1.0 - (2.0 * q - 1.0) ** 3))
        else:
            self.damp_more(state, scale)
            self.assign(x)
        return True

    @staticmethod
    def damp_more(state: dict, scale: float) -> None:
        """λ ← λ ν, ν ← 2ν after a rejected step (from 1e-12 max diag(A) when λ is 0: an undamped start)."""
        state["lam"], state["nu"] = max(state["lam"], 1e-12 * scale) * state["nu"], 2 * state["nu"]

    @staticmethod
    def solve(A: torch.Tensor, J: torch.Tensor, rho: torch.Tensor, g: torch.Tensor, lam: float,
              dual: bool) -> torch.Tensor | None:
        """h from (JᵀJ + λI) h = −g, or h = −Jᵀ(JJᵀ + λI)⁻¹ρ when ``dual``; None when the factorisation fails."""
        damped = A + lam * torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
        L, info = torch.linalg.cholesky_ex(damped)
        if int(info) != 0:
            return None
        if dual:
            return -(J.T @ torch.cholesky_solve(rho[:, None], L)[:, 0])
        return -torch.cholesky_solve(g[:, None], L)[:, 0]
