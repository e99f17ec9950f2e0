"""Dense quasi-Newton second stages: BFGS and self-scaled BFGS in float64.

One iteration, with g the gradient, H ≈ (∇²f)⁻¹ (P × P, dense) and d = −H g::

    α      from a line search satisfying the strong Wolfe conditions
    s = α d,   y = g₊ − g,   ρ = 1 / (y·s)
    H₊ = (1/τ) [ H − (H y)(H y)ᵀ / (y·H y) + v vᵀ ] + ρ s sᵀ,
    v  = √(y·H y) (ρ s − H y / (y·H y))

τ = 1 is BFGS (the update above equals (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ;
Nocedal & Wright 2006, eq. 6.17).  ``ssbfgs`` scales the old curvature
information first, with the Oren–Luenberger factor capped at 1 as Al-Baali
does (Oren & Luenberger 1974, Management Sci. 20(5); Al-Baali 1998, Comput.
Optim. Appl. 9), the self-scaled BFGS that Urbán, Stefanou & Pons 2024
("Unveiling the optimization process of PINNs", arXiv:2405.04230) and
Kiyani et al. 2025 report orders of magnitude below Adam + L-BFGS::

    τ = min(1, (y·s) / (s·B s)),    s·B s = −α s·g   (B = H⁻¹, since B d = −g)

so a loss that is flatter along s than H predicted enlarges H instead of
leaving small steps in it.  Before the first update H₀ = (y·s)/(y·y) I
(Nocedal & Wright eq. 6.20); the first direction is the normalised −g.

``ssbroyden`` is the whole self-scaled Broyden family: the update above with
v vᵀ weighted by φ (φ = 1 BFGS, φ = 0 DFP), φ and τ chosen per iteration
from b = s·B s / y·s and h = y·H y / y·s (Al-Baali 2014, "Broyden's class
of methods revisited", with the choice Urbán et al. 2024 and Kiyani et al.
2025, arXiv:2501.16371, use for PINNs; written from our reading of their
appendices)::

    a = b h − 1 ≥ 0,   c = √(a / (1 + a)),   ρ⁻ = min(1, h (1 − c))
    θ⁻ = (ρ⁻ − 1) / a,   θ⁺ = 1 / ρ⁻,   θ = max(θ⁻, min(θ⁺, (1 − b) / b))
    σ = 1 + a θ,   τ* = min(1, 1 / b)
    τ = τ* min(σ^(−1/(n−1)), 1/θ) if θ > 0,  else min(τ* σ^(−1/(n−1)), σ)
    φ = (1 − θ) / (1 + a θ)

θ is the family's parameter in the Hessian form (θ = 0 BFGS, θ = 1 DFP);
θ > −1/a keeps H positive definite, and θ⁻ > −1/a, so every update does
(``tests/test_stages.py`` checks the secant equation H₊ y = s and positive
definiteness for each rule).  When a = 0 (H already maps y to s's
curvature) every member coincides and the BFGS update is used.

What was checked before writing this (issue 13 asked for it):

- ``pytorch-minimize`` 0.1.0 (``torchmin``) has dense BFGS and L-BFGS with a
  strong-Wolfe line search, but no self-scaled update, and its
  ``minimize(fun, x0)`` owns the loop, so a run could not be checkpointed
  and resumed between iterations or recorded every ``log_every`` iterations.
- ``scipy.optimize.minimize(method="BFGS")`` is float64 and dense but owns the
  loop as well, and has no self-scaling.
- So this module writes the update (the part neither has) and takes the line
  search from SciPy's public ``scipy.optimize.line_search`` (the strong Wolfe
  conditions with c1 = 1e-4, c2 = 0.9, Nocedal & Wright Alg. 3.5/3.6), run in
  float64 on the flat parameter vector.  Its first trial step
  (``first_step=adaptive``, the default) is α₀ = 1 after a unit step, and
  after a shorter one α₀ = min(1, 1.01 · 2 (f − f₋₁) / (g·d)), from the last
  iteration's decrease f₋₁ → f (Nocedal & Wright eq. 3.60; what SciPy's own
  BFGS passes as ``old_old_fval``); α₀ = 1 on the first iteration and after
  a redraw.  Why: Nocedal & Wright advise α₀ = 1 for quasi-Newton methods,
  so that unit steps are taken whenever they pass and convergence stays
  superlinear (we tried α₀ from the decrease at every iteration, as SciPy's
  BFGS does: on a 10-dimensional quadratic BFGS then took steps shorter than
  1 and missed 1e-12 after 60 iterations), but on Burgers a self-scaled
  Broyden stage that tries α = 1 first made 1.65–1.73 loss-and-gradient
  evaluations per iteration, against 1.08–1.09 with the adaptive first step
  at a final loss no higher (three seeds, README "Measured").
  ``first_step=unit`` keeps α₀ = 1 throughout.
  When it finds no step, Armijo
  backtracking is tried along the same direction (a step that lowers f but
  fails the curvature condition leaves H as it was); when neither finds one
  along the quasi-Newton direction, H is reset and the normalised steepest
  descent is tried; when that fails too the stage has converged and stops.
  (Without the backtracking, a Burgers run stopped after 10 iterations at a
  loss of 0.22.)

The optimiser is a :class:`torch.optim.Optimizer` (``step(closure)`` runs
``max_iter`` iterations), so the trainer's chunked loop, checkpoints and
resumption work as for ``torch.optim.LBFGS``; its whole state (H, x, f, g)
is in ``state_dict``.  H costs 8 P² bytes: :data:`MAX_PARAMETERS` keeps it
under about 3.2 GB.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from scipy.optimize import line_search

#: the largest network a dense inverse Hessian is built for (8 P² bytes: 3.2 GB at 20 000)
MAX_PARAMETERS = 20_000
UPDATES = ("bfgs", "ssbfgs", "ssbroyden")
FIRST_STEPS = ("adaptive", "unit")  # the line search's first trial step (module docstring)
MAX_HALVINGS = 40  # Armijo backtracking gives up below α = 2^-40


class QuasiNewton(torch.optim.Optimizer):
    """BFGS (``update="bfgs"``), self-scaled BFGS (``"ssbfgs"``) or self-scaled Broyden (``"ssbroyden"``) with
    a dense float64 inverse Hessian."""

    def __init__(self, params, update: str = "ssbfgs", max_iter: int = 10, c1: float = 1e-4, c2: float = 0.9,
                 first_step: str = "adaptive"):
        if update not in UPDATES:
            raise ValueError(f"update={update!r}; choose one of {', '.join(UPDATES)}")
        if first_step not in FIRST_STEPS:
            raise ValueError(f"first_step={first_step!r}; choose one of {', '.join(FIRST_STEPS)}")
        super().__init__(params, {"max_iter": max_iter})
        self.update_rule, self.c1, self.c2, self.first_step = update, c1, c2, first_step
        self.params = [p for group in self.param_groups for p in group["params"]]

    # -- the flat vector view of the parameters --------------------------------------------------
    def flat(self) -> torch.Tensor:
        return torch.nn.utils.parameters_to_vector(self.params).detach().to(torch.float64)

    def assign(self, x: torch.Tensor) -> None:
        offset = 0
        with torch.no_grad():
            for p in self.params:
                p.copy_(x[offset: offset + p.numel()].view_as(p))
                offset += p.numel()

    def evaluate(self, closure, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        """f(x) and ∇f(x) (float64) from the closure, which zeroes the gradients and runs a backward."""
        self.assign(x)
        state = self.state[self.params[0]]
        state["evaluations"] = state.get("evaluations", 0) + 1
        with torch.enable_grad():
            f = float(closure())
        g = torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1) for p in self.params])
        return f, g.to(torch.float64)

    # -- one chunk of iterations -----------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure):  # noqa: D401 - torch.optim API
        """Run up to ``max_iter`` iterations; return the loss at the final point."""
        state = self.state[self.params[0]]
        if "x" not in state:
            state.update(x=self.flat(), H=torch.zeros(0, dtype=torch.float64), iterations=0)
        if "f" not in state:  # the first call, or the points were redrawn (objective_changed)
            f, g = self.evaluate(closure, state["x"])
            state.update(f=torch.tensor(f, dtype=torch.float64), g=g)
        for _ in range(self.param_groups[0]["max_iter"]):
            if not self.iterate(closure, state):
                break
        self.assign(state["x"])
        return state["f"].clone()

    def objective_changed(self) -> None:
        """New points (``resample=``): f and ∇f are evaluated afresh at the same x on the next call; H is kept,
        the last decrease (of another objective) is not."""
        state = self.state[self.params[0]]
        for key in ("f", "g", "Hg", "f_previous", "alpha"):
            state.pop(key, None)

    def iterate(self, closure, state: dict) -> bool:
        """One iteration from the state; False when no step lowers f (the stage has converged)."""
        x, f, g, H = state["x"], float(state["f"]), state["g"], state["H"]
        if not math.isfinite(f) or float(g.norm()) == 0.0:
            return False
        # the unit step first while unit steps are taken (quasi-Newton's fast convergence), else from the decrease
        shortened = self.first_step == "adaptive" and "f_previous" in state and float(state["alpha"]) < 1.0
        previous = float(state["f_previous"]) if shortened else None
        for fresh in ((False, True) if H.numel() else (True,)):
            d = -g / g.norm() if fresh else -(state["Hg"] if "Hg" in state else H @ g)
            found = self.search(closure, x, f, g, d, previous)
            if found is not None:
                break
            H = torch.zeros(0, dtype=torch.float64)  # no step along H's direction: restart from the gradient
        else:
            return False
        alpha, f_new, g_new = found
        s, y = alpha * d, g_new - g
        H, Hg_new = self.updated(H, s, y, alpha, g, Hg=-d if H.numel() else None)
        state.update(x=x + s, f=torch.tensor(f_new, dtype=torch.float64), g=g_new, f_previous=state["f"],
                     alpha=torch.tensor(alpha, dtype=torch.float64), H=H, iterations=state["iterations"] + 1)
        state.pop("Hg", None)  # H g for the next direction, when H has been made
        if Hg_new is not None:
            state["Hg"] = Hg_new
        return True

    def search(self, closure, x, f, g, d, previous: float | None) -> tuple[float, float, torch.Tensor] | None:
        """A step α along d satisfying the strong Wolfe conditions (SciPy), with f and ∇f at x + α d; the first
        trial step from the decrease ``previous`` → f (module docstring), 1 when ``previous`` is None."""
        memo: dict[bytes, tuple[float, torch.Tensor]] = {}

        def at(a: np.ndarray) -> tuple[float, torch.Tensor]:
            key = a.tobytes()
            if key not in memo:
                memo[key] = self.evaluate(closure, torch.as_tensor(a, dtype=torch.float64))
            return memo[key]

        x0, d0 = x.cpu().numpy(), d.cpu().numpy()
        with warnings.catch_warnings():  # a failed search is handled (backtracking, restart): no warning
            warnings.filterwarnings("ignore", message="The line search algorithm", category=RuntimeWarning)
            alpha, *_ = line_search(lambda a: at(a)[0], lambda a: at(a)[1].cpu().numpy(), x0, d0,
                                    gfk=g.cpu().numpy(), old_fval=f, old_old_fval=previous, c1=self.c1, c2=self.c2,
                                    maxiter=30)
        if alpha is not None and alpha > 0:
            f_new, g_new = at(x0 + alpha * d0)
            if math.isfinite(f_new) and f_new <= f:
                return float(alpha), f_new, g_new.to(x)
        return self.backtrack(at, x0, d0, f, float(g @ d))

    def backtrack(self, at, x0, d0, f: float, slope: float) -> tuple[float, float, torch.Tensor] | None:
        """Armijo backtracking, α = 1, 1/2, 1/4, ... (Nocedal & Wright Alg. 3.1) where the strong-Wolfe search
        found no step (a kink or a noisy stretch of the loss): the stage goes on as long as any step along a
        descent direction lowers f by the sufficient-decrease margin."""
        if not slope < 0:
            return None
        alpha = 1.0
        for _ in range(MAX_HALVINGS):
            f_new, g_new = at(x0 + alpha * d0)
            if math.isfinite(f_new) and f_new <= f + self.c1 * alpha * slope:
                return alpha, f_new, g_new.to(torch.float64)
            alpha /= 2
        return None

    def updated(self, H: torch.Tensor, s, y, alpha: float, g, Hg=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(H₊, H₊ g₊) by the module docstring's formula, H₊ written into H (H empty: H₀ = (y·s)/(y·y) I
        first); g₊ = g + y, ``Hg`` = H g when known (the last direction), else computed.

        H is read once for H g₊, whence H y = H g₊ − H g, and once more (one BLAS gemm) for the update
        H₊ = H/τ + U C Uᵀ, U = [s, H y]; H₊ g₊ = H g₊/τ + U C Uᵀ g₊ then costs no pass.  Six passes before
        (H g, H y, the scaling, three rank-one updates): at P = 3297, one thread of the development CPU,
        2026-12-03, an iteration's linear algebra took 33-36 ms that way and 16-25 ms this way; a Burgers
        self-scaled Broyden stage (300 iterations after 50 Adam steps, three alternating rounds in one
        process) trained in 39.7-42.8 s against 41.9-49.0 s, the loss-and-gradient evaluations being most
        of an iteration there.  H₊ g₊ is None when H stays empty (no positive curvature before H₀ was
        made)."""
        g_next = g + y
        ys = float(y @ s)
        if not ys > 0:  # no positive curvature along s (cannot happen after a strong-Wolfe step): keep H
            return H, (H @ g_next if H.numel() else None)
        if not H.numel():
            gamma = ys / float(y @ y)
            H = torch.eye(len(s), dtype=torch.float64, device=s.device) * gamma
            Hg_next, Hy = gamma * g_next, gamma * y
        else:
            Hg_next = H @ g_next
            Hy = Hg_next - (H @ g if Hg is None else Hg)
        yHy = float(y @ Hy)
        rho = 1.0 / ys
        sBs = -alpha * float(s @ g)  # s·B s with B d = −g
        tau, phi = self.scaling(ys, sBs, yHy, len(s))
        # with v = √(yHy)(ρ s − Hy/yHy), −(Hy)(Hy)ᵀ/yHy + φ v vᵀ = φ yHy ρ² s sᵀ − φ ρ (s Hyᵀ + Hy sᵀ)
        # + (φ − 1)(Hy)(Hy)ᵀ/yHy
        coupling = -phi * rho / tau
        C = torch.tensor([[phi * yHy * rho * rho / tau + rho, coupling],
                          [coupling, (phi - 1.0) / (tau * yHy)]], dtype=torch.float64, device=s.device)
        U = torch.stack([s, Hy], dim=1)
        CU = C @ U.T
        H.addmm_(U, CU, beta=1.0 / tau)
        return H, Hg_next / tau + U @ (CU @ g_next)

    def scaling(self, ys: float, sBs: float, yHy: float, n: int) -> tuple[float, float]:
        """(τ, φ) of the update rule from y·s, s·B s and y·H y (module docstring)."""
        if self.update_rule == "bfgs" or not sBs > 0:
            return 1.0, 1.0
        tau_star = min(1.0, ys / sBs)  # the Oren–Luenberger factor, capped: 1 / b
        b, h = sBs / ys, yHy / ys
        a = max(b * h - 1.0, 0.0)
        if self.update_rule == "ssbfgs" or a < 1e-12:  # a = 0: every member of the family is the same update
            return tau_star, 1.0
        c = math.sqrt(a / (1.0 + a))
        rho_minus = min(1.0, h * (1.0 - c))
        theta = max((rho_minus - 1.0) / a, min(1.0 / rho_minus, (1.0 - b) / b))
        sigma = 1.0 + a * theta
        shrink = sigma ** (-1.0 / (n - 1)) if n > 1 else 1.0
        tau = tau_star * min(shrink, 1.0 / theta) if theta > 0 else min(tau_star * shrink, sigma)
        return tau, (1.0 - theta) / (1.0 + a * theta)
