"""Gradient aggregators: balancers that choose the update *direction* from the
per-term gradients, not only a weight per loss (``kind = "direction"``).

Each step the engine hands over the K × P Jacobian J (row k = g_k = ∇θ L_k)
and the method returns the direction d that replaces the gradient:

- ``pcgrad``: for each i, g_i ← g_i − (g_i·g_j / ‖g_j‖²) g_j for every j (random
  order) with g_i·g_j < 0; d = Σ_i g_i.  Yu et al. 2020, "Gradient surgery for
  multi-task learning", NeurIPS (Alg. 1).
- ``mgda``: d = min-norm point of conv{g_1..g_K} = Σ α_k g_k, α = argmin_{α∈Δ} ‖Jᵀα‖
  (Frank–Wolfe).  Désidéri 2012, C. R. Math. 350; Sener & Koltun 2018,
  "Multi-task learning as multi-objective optimization", NeurIPS (Alg. 2).
- ``upgrad``: d = (1/K) Σ_k π_J(g_k), π_J = projection onto the dual cone
  {x : Jx ≥ 0}, so Jd ≥ 0.  Quinton & Rey 2024, "Jacobian descent for
  multi-objective optimization", arXiv:2406.16232.
- ``cagrad``: d = g₀ + (c‖g₀‖/‖g_w‖) g_w, g₀ = mean g_k, w = argmin_{w∈Δ}
  g_wᵀg₀ + c‖g₀‖‖g_w‖.  Liu et al. 2021, "Conflict-averse gradient descent for
  multi-task learning", NeurIPS.
- ``imtl`` (IMTL-G): d = Σ α_k g_k, Σ α_k = 1, with equal projections d·g_k/‖g_k‖
  for all k (α ∝ G⁺ √diag G).  Liu et al. 2021, "Towards impartial multi-task
  learning", ICLR.
- ``nashmtl``: d = Σ α_k g_k with α > 0 solving α_k (Gα)_k = 1 (Nash bargaining),
  ‖d‖ clipped to ``max_norm``.  Navon et al. 2022, "Multi-task learning as a
  bargaining game", ICML.
- ``aligned-mtl``: d = √λ_min · Jᵀ V Λ^{-1/2} Vᵀ 1/K with G = VΛVᵀ: the
  gradients' singular values are equalised before averaging.  Senushkin et al.
  2023, "Independent component alignment for multi-task learning", CVPR.
- ``dualproj``: d = π_J(mean g_k), the mean projected onto the dual cone.
  Lopez-Paz & Ranzato 2017, "Gradient episodic memory for continual learning",
  NeurIPS (eq. 11).
- ``graddrop``: per coordinate, purity P = ½(1 + Σ_k g_k / Σ_k |g_k|) and U ~ U(0,1);
  d = Σ_k m_k ⊙ g_k keeping positive entries where P > U and negative ones where
  P < U.  Chen et al. 2020, "Just pick a sign: optimizing deep multitask
  models with gradient sign dropout", NeurIPS (Alg. 1, lines 10–15).
- ``config``: d = (Σ_k g_k·û) û with û = unit(U⁺ 1), U the unit rows g_k/‖g_k‖:
  equal cosine with every g_k.  Liu, Chu & Thuerey 2024, "ConFIG: towards
  conflict-free training of physics informed neural networks",
  arXiv:2408.11104 (ICLR 2025); M-ConFIG momentum with ``momentum=true``.

Which library computes what, and why:

- torchjd (``torchjd.aggregation``, Quinton & Rey's maintained library)
  computes pcgrad, mgda, upgrad, cagrad, imtl, nashmtl, aligned-mtl and dualproj
  through its *Weightings*: functions of the Gramian G = J Jᵀ (K × K).  We
  form G once in float64 (J scaled by its largest entry, so nothing
  overflows), move it to the CPU, and take the weights from torchjd; the
  direction is then the default Σ_k w_k J_k and the weights are logged like any
  balancer's.  For every method but Nash-MTL the weights do not depend on the
  scale of J, so G is first divided by its trace: torchjd's absolute
  thresholds otherwise change the method at extreme scales (with ‖J‖²_F < 1e-4
  UPGrad and DualProj silently become the plain mean and CAGrad returns a
  zero step; with ‖J‖ ≈ 1e30 IMTL-G returns zero weights).  Nash-MTL is not
  scale-free, so it gets the true G (through a K × K square root of it).
- conflictfree (the ConFIG authors' reference implementation) computes
  ``config``, including its momentum variant (``PseudoMomentumOperator``).
  Two workarounds around it, both through its public API: its default
  weight model returns float32 ones, which breaks ``torch.linalg.lstsq`` on
  float64 input with K ≥ 3, so we pass a weight model in J's dtype; and rows
  that are exactly zero are left out (its two-gradient formula divides by
  their norm and returns NaN).  It runs in float64 on J scaled by its largest
  entry (ConFIG is positively homogeneous, so the scale is put back after),
  with its pseudo-inverse option (``use_least_square=False``, torchjd's
  choice too) rather than its ``torch.linalg.lstsq`` default: on the CPU that
  differs run to run in the last bits (1e-15 measured), which breaks
  bit-identical same-seed runs, and CUDA's ``lstsq`` assumes a full-rank,
  overdetermined system, which J is not.
- graddrop is computed here, in the six lines of torchjd's ``GradDrop``:
  torchjd draws U with ``torch.rand`` from the global generator of J's
  device, which cannot be seeded per step without disturbing the training's
  random stream.  Here U comes from a ``torch.Generator`` seeded from
  (``seed``, step), drawn on the CPU (the same mask on any device); the
  tests check equality with torchjd's ``GradDrop`` given the same draws.
- pcgrad's projection order is random in torchjd (``torch.randperm`` on the
  global CPU generator): it runs inside ``torch.random.fork_rng`` with the CPU
  generator seeded from (``seed``, step), so the order is reproducible and
  resumable and the global random state is restored exactly afterwards.

What ``weights`` are (what the history logs and the engine multiplies the
losses by when it needs a scalar) — the combination coefficients where they
are non-negative by construction (pcgrad, mgda, upgrad, cagrad, nashmtl,
dualproj).  IMTL-G and Aligned-MTL coefficients can be negative (K ≥ 3, or
nearly parallel gradients), and ConFIG and GradDrop are not a weighted sum of
the rows at all; for these four the logged weights are the *effective
weights* e_k = max(d·g_k, 0) / ‖g_k‖² (0 for a zero gradient): a plain
gradient step on e_k L_k changes L_k to first order as much as d does.  The
signed IMTL-G / Aligned-MTL coefficients are kept in ``state["coef"]`` (logged
as ``coef/<term>``) and the direction is built from them.

Every method runs every step (no ``every``, EMA or bounds).  State lives in
the state dict: Nash-MTL's warm start and call count, ConFIG's momentum
buffers, and the direction ConFIG and GradDrop compute once per step in
``target`` (``combine`` only hands it over); save, load and resume continue
exactly.

The same objective as every other balancer: the engine hands an aggregator
the rows w_k g_k, each scaled by its term's declared weight (problem file or
``--weights``), and rows of held terms (weight 0, or a regularisation term
not balanced) set to zero; the held terms enter the direction afterwards at
their declared weights, Σ_held w_k g_k.  Zero rows take no part in a method
(MGDA's min-norm point would otherwise be the zero vector).  The logged
weight of term k is its effective weight on L_k, c_k w_k, and the L-BFGS
phase minimises Σ_k w_k L_k with the declared weights.  (Nash-MTL keeps one cvxpy problem per K in the object as a
compile cache; its parameters are all reset before every solve, so results
do not depend on it.)

The libraries are imported lazily; without them ``import pinnbal`` works and
constructing one of these balancers raises :class:`~pinnbal.errors.OptionError`
naming the missing package.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import OptionError
from .base import Balancer, finite

INSTALL = "pip install 'pinnbal[jd]'"
F64 = torch.float64


# -- helpers ------------------------------------------------------------------
def step_seed(seed: int, step: int) -> int:
    """A well-mixed 64-bit seed from (seed, step), the same on every machine."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1, np.uint64)[0])


def scaled(jacobian: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(J / s in float64, s) with s = max |J_ij| (1 for an all-zero J): no overflow downstream."""
    J = jacobian.detach().to(F64)
    s = float(J.abs().amax()) if J.numel() else 0.0
    return (J / s, s) if s > 0 else (J, 1.0)


def gramian(jacobian: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(Ĝ, s²) with Ĝ = (J/s)(J/s)ᵀ in float64 on the CPU: the true Gramian is s² Ĝ."""
    J, s = scaled(jacobian)
    return (J @ J.T).cpu(), s * s


def effective_weights(jacobian: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """e_k = max(d·g_k, 0) / ‖g_k‖² (0 where g_k = 0), float64 on the CPU."""
    J, s = scaled(jacobian)
    d = direction.detach().to(device=J.device, dtype=F64) / s
    return from_gramian_terms(J @ d, (J * J).sum(dim=1)).cpu()


def from_gramian_terms(inner: torch.Tensor, norms2: torch.Tensor) -> torch.Tensor:
    ok = norms2 > 0
    return torch.where(ok, inner.clamp_min(0) / torch.where(ok, norms2, 1.0), 0.0)


def sqrt_gramian(G: torch.Tensor) -> torch.Tensor:
    """A K × K matrix R with R Rᵀ = G (G symmetric PSD)."""
    lam, V = torch.linalg.eigh(G)
    return V * lam.clamp_min(0).sqrt()


# -- the shared base ------------------------------------------------------------
class DirectionBalancer(Balancer):
    """Base of the gradient aggregators: every step, needs J, no EMA or bounds."""

    kind: ClassVar[str] = "direction"
    needs = frozenset({"losses", "jacobian"})
    options: ClassVar[dict[str, Any]] = {}
    #: top-level modules that must be importable; the first missing one is named in the error
    requires: ClassVar[tuple[str, ...]] = ("torchjd",)

    def __init__(self, **opts: Any):
        missing = next((m for m in self.requires if importlib.util.find_spec(m) is None), None)
        if missing is not None:
            raise OptionError(f"balancer {self.name!r} needs {missing}: {INSTALL}")
        super().__init__(**opts)

    def fixed_weights(self, state: dict) -> torch.Tensor:
        """A direction's per-step coefficients mean nothing as a fixed blend: L-BFGS takes the declared weights."""
        return state["initial"]

    def need(self, ok: bool, key: str, what: str) -> None:
        """Raise the one-line OptionError ``balancer 'x': key=value; need what`` unless ``ok``."""
        if not ok:
            raise OptionError(f"balancer {self.name!r}: {key}={self.opts[key]!r}; need {what}")


class GramianBalancer(DirectionBalancer):
    """Weights = a torchjd Weighting of the Gramian J Jᵀ; direction Σ_k w_k J_k.

    Subclasses write :meth:`weigh` (Gramian → coefficients).  ``signed``
    methods (coefficients can be negative) keep the coefficients in
    ``state["coef"]``, build the direction from them and return the effective
    weights instead (see the module docstring).
    """

    scale_free: ClassVar[bool] = True  # the coefficients do not change when J is scaled: normalise G by its trace
    signed: ClassVar[bool] = False

    def init(self, terms):
        state = super().init(terms)
        if self.signed:
            state["coef"] = state["initial"].clone()
        return state

    def target(self, stats, state, *, step, progress):
        G, s2 = gramian(stats.jacobian)
        trace = float(G.diagonal().sum())
        if not trace > 0:  # every gradient is zero: any weights give the zero step; keep the previous ones
            return state["weights"]
        G = G / trace if self.scale_free else G * s2
        # a zero row (a switched-off term: weight 0) takes no part: MGDA's min-norm point would be 0 with it
        rows = G.diagonal() > 0
        if bool(rows.all()):
            coef = self.weigh(G, state, step, rows).detach().to(device="cpu", dtype=F64)
        else:
            coef = torch.zeros(len(rows), dtype=F64)
            coef[rows] = self.weigh(G[rows][:, rows], state, step, rows).detach().to(device="cpu", dtype=F64)
        if not self.signed:
            return coef
        state["coef"] = coef
        return from_gramian_terms(G @ coef, G.diagonal())

    def combine(self, jacobian, weights, state):
        if self.signed:
            weights = state["coef"]
        return weights.to(jacobian) @ jacobian

    def weigh(self, G: torch.Tensor, state: dict, step: int, rows: torch.Tensor) -> torch.Tensor:
        """Coefficients (k,) for the Gramian ``G`` (k × k) of the non-zero rows; ``rows`` (K,) marks which rows
        of J those are (only Nash-MTL, whose warm start is per term, reads it)."""
        raise NotImplementedError


# -- torchjd Weightings -------------------------------------------------------------
class PCGrad(GramianBalancer):
    """PCGrad (Yu et al. 2020) by torchjd's ``PCGradWeighting``; the random projection order is seeded by
    (``seed``, step) and leaves the global random state untouched.  For K ≥ 3 the result depends on that
    order (as in the paper), so permuting the terms changes it; for K = 2 it does not."""

    name = "pcgrad"
    summary = "PCGrad (Yu et al. 2020): project away conflicting components pairwise; torchjd"
    options = {"seed": 0}

    def check_options(self) -> None:
        super().check_options()
        self.need(self.opts["seed"] >= 0, "seed", "an integer >= 0")

    def weigh(self, G, state, step, rows):
        from torchjd.aggregation import PCGradWeighting

        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(step_seed(self.opts["seed"], step))
            return PCGradWeighting()(G)


class MGDA(GramianBalancer):
    """MGDA (Désidéri 2012; Sener & Koltun 2018): min-norm point of the convex hull of the gradients, by
    torchjd's Frank–Wolfe ``MGDAWeighting`` (stops when the step size falls below ``epsilon``)."""

    name = "mgda"
    summary = "MGDA (Desideri 2012; Sener & Koltun 2018): min-norm point of the gradients' convex hull; torchjd"
    options = {"epsilon": 0.001, "max_iters": 100}

    def check_options(self) -> None:
        super().check_options()
        self.need(self.opts["epsilon"] > 0, "epsilon", "epsilon > 0")
        self.need(self.opts["max_iters"] >= 1, "max_iters", "an integer >= 1")

    def weigh(self, G, state, step, rows):
        from torchjd.aggregation import MGDAWeighting

        return MGDAWeighting(epsilon=self.opts["epsilon"], max_iters=self.opts["max_iters"])(G)


class ProjectionBalancer(GramianBalancer):
    """Shared by upgrad and dualproj: a torchjd weighting that projects onto the dual cone of the
    gradients with a quadprog solve; ``reg_eps`` is the ridge added to the trace-normalised Gramian
    (torchjd's default)."""

    options = {"reg_eps": 1e-4}
    requires = ("torchjd", "numpy", "qpsolvers", "quadprog")
    weighting = ""  # the torchjd.aggregation class name

    def check_options(self) -> None:
        super().check_options()
        self.need(self.opts["reg_eps"] >= 0, "reg_eps", "reg_eps >= 0")

    def weigh(self, G, state, step, rows):
        import torchjd.aggregation
        from torchjd.linalg import QuadprogProjector

        weighting = getattr(torchjd.aggregation, self.weighting)
        return weighting(projector=QuadprogProjector(reg_eps=self.opts["reg_eps"]))(G)


class UPGrad(ProjectionBalancer):
    """UPGrad (Quinton & Rey 2024) by torchjd's ``UPGradWeighting``: every gradient projected onto the
    dual cone of all of them, averaged.  ``reg_eps`` lets Jd dip to about −reg_eps·‖J‖²_F where
    gradients conflict; 1e-12 makes the direction non-conflicting to rounding on full-rank J."""

    name = "upgrad"
    summary = "UPGrad (Quinton & Rey 2024): mean of the gradients projected onto their dual cone; torchjd"
    weighting = "UPGradWeighting"


class CAGrad(GramianBalancer):
    """CAGrad (Liu et al. 2021) by torchjd's ``CAGradWeighting`` (cvxpy + Clarabel).  ``c`` is the radius
    of the ball around the mean gradient (torchjd has no default; 0.5 as in LibMTL); ``norm_eps``: where
    the best combination has norm below it (trace-normalised), torchjd returns the zero step."""

    name = "cagrad"
    summary = "CAGrad (Liu et al. 2021): best worst-case improvement within c*|g0| of the mean gradient; torchjd"
    options = {"c": 0.5, "norm_eps": 1e-4}
    requires = ("torchjd", "numpy", "cvxpy", "clarabel")

    def check_options(self) -> None:
        super().check_options()
        self.need(self.opts["c"] >= 0, "c", "c >= 0")
        self.need(self.opts["norm_eps"] >= 0, "norm_eps", "norm_eps >= 0")

    def weigh(self, G, state, step, rows):
        from torchjd.aggregation import CAGradWeighting

        return CAGradWeighting(c=self.opts["c"], norm_eps=self.opts["norm_eps"])(G)


class IMTLG(GramianBalancer):
    """IMTL-G (Liu et al. 2021) by torchjd's ``IMTLGWeighting`` (generalised with a pseudo-inverse).
    Signed coefficients: the direction uses ``state["coef"]``; the logged weights are the effective
    weights, c/‖g_k‖ for IMTL-G since d makes the same projection on every unit gradient."""

    name = "imtl"
    summary = "IMTL-G (Liu et al. 2021): direction with equal projections on every unit gradient; torchjd"
    signed = True
    logged_state = ("coef",)

    def weigh(self, G, state, step, rows):
        from torchjd.aggregation import IMTLGWeighting

        return IMTLGWeighting()(G)


class AlignedMTL(GramianBalancer):
    """Aligned-MTL (Senushkin et al. 2023) by torchjd's ``AlignedMTLWeighting``; ``scale_mode`` picks the
    eigenvalue the aligned gradients are scaled to (min, median, or rmse = mean as in the authors' code).
    Signed coefficients: the direction uses ``state["coef"]``; the logged weights are the effective weights."""

    name = "aligned-mtl"
    summary = "Aligned-MTL (Senushkin et al. 2023): equalise the gradients' singular values, then average; torchjd"
    options = {"scale_mode": "min"}
    signed = True
    logged_state = ("coef",)

    def check_options(self) -> None:
        super().check_options()
        self.need(self.opts["scale_mode"] in ("min", "median", "rmse"), "scale_mode", "min, median or rmse")

    def weigh(self, G, state, step, rows):
        from torchjd.aggregation import AlignedMTLWeighting

        return AlignedMTLWeighting(scale_mode=self.opts["scale_mode"])(G)


class DualProj(ProjectionBalancer):
    """DualProj (GEM, Lopez-Paz & Ranzato 2017, eq. 11) by torchjd's ``DualProjWeighting``: the mean
    gradient projected onto the dual cone of the gradients; ``reg_eps`` as for upgrad."""

    name = "dualproj"
    summary = "DualProj (Lopez-Paz & Ranzato 2017): mean gradient projected onto the gradients' dual cone; torchjd"
    weighting = "DualProjWeighting"


class NashMTL(GramianBalancer):
    """Nash-MTL (Navon et al. 2022) by torchjd's ``NashMTL`` weighting (cvxpy + ECOS), on a K × K square
    root of the true-scale Gramian.  Options as torchjd: ``max_norm`` (clip ‖d‖; 0 disables),
    ``update_weights_every``, ``optim_niter``.  Its state — the last solution (the solver's warm start)
    and the call count — lives in ``state["prev_alpha"]`` and ``state["calls"]``."""

    name = "nashmtl"
    summary = "Nash-MTL (Navon et al. 2022): Nash bargaining solution alpha_k (G alpha)_k = 1; torchjd"
    options = {"max_norm": 1.0, "update_weights_every": 1, "optim_niter": 20}
    requires = ("torchjd", "numpy", "cvxpy", "ecos")
    scale_free = False

    def check_options(self) -> None:
        super().check_options()
        self.need(self.opts["max_norm"] >= 0, "max_norm", "max_norm >= 0 (0 disables clipping)")
        self.need(self.opts["update_weights_every"] >= 1, "update_weights_every", "an integer >= 1")
        self.need(self.opts["optim_niter"] >= 1, "optim_niter", "an integer >= 1")

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        self._solvers: dict[int, tuple[Any, bool]] = {}  # K -> (torchjd NashMTL, its cvxpy problem is built)

    def init(self, terms):
        state = super().init(terms)
        state["prev_alpha"] = torch.ones(len(terms), dtype=F64)
        state["calls"] = torch.zeros((), dtype=torch.int64)
        return state

    def weigh(self, G, state, step, rows):
        from torchjd.aggregation import NashMTL as TorchjdNashMTL

        K = G.shape[0]  # the number of non-zero rows
        if K not in self._solvers:
            self._solvers[K] = (TorchjdNashMTL(n_tasks=K, max_norm=self.opts["max_norm"],
                                               update_weights_every=self.opts["update_weights_every"],
                                               optim_niter=self.opts["optim_niter"]), False)
        solver, built = self._solvers[K]
        weighting = solver.weighting
        calls = int(state["calls"])
        due = calls % self.opts["update_weights_every"] == 0
        weighting.prvs_alpha = state["prev_alpha"][rows].numpy().copy()
        # torchjd builds its cvxpy problem on the call with step 0; a fresh solver on a due call gets step 0
        weighting.step = float(calls) if built or not due else 0.0
        with warnings.catch_warnings():
            # cvxpy says, at every build, that torchjd's problem is not DPP (re-solves are not faster): a note
            # to torchjd's authors, not to our user, and it broke --quiet
            warnings.filterwarnings("ignore", message="You are solving a parameterized problem that is not DPP")
            alpha = weighting(sqrt_gramian(G))
        self._solvers[K] = (solver, built or due)
        prev_alpha = state["prev_alpha"].clone()
        prev_alpha[rows] = torch.as_tensor(np.asarray(weighting.prvs_alpha, dtype=np.float64))
        state["prev_alpha"] = prev_alpha
        state["calls"] = torch.tensor(calls + 1)
        return alpha


# -- methods that are not a weighted sum of the rows -----------------------------------
class GradDrop(DirectionBalancer):
    """GradDrop (Chen et al. 2020), lines 10–15 of Alg. 1 as in torchjd's ``GradDrop``, with U drawn from a
    ``torch.Generator`` seeded by (``seed``, step) (see the module docstring).  ``leak`` ∈ [0, 1]: the
    share of every gradient that passes regardless of the mask (torchjd's leak, the same for all terms).
    Logged weights: the effective weights max(d·g_k, 0)/‖g_k‖²."""

    name = "graddrop"
    summary = "GradDrop (Chen et al. 2020): keep one sign per coordinate at random, by sign purity"
    options = {"seed": 0, "leak": 0.0}
    requires = ()

    def check_options(self) -> None:
        super().check_options()
        self.need(self.opts["seed"] >= 0, "seed", "an integer >= 0")
        self.need(0.0 <= self.opts["leak"] <= 1.0, "leak", "0 <= leak <= 1")

    def init(self, terms):
        state = super().init(terms)
        state["direction"] = torch.zeros(0)  # this step's direction, computed once in target
        return state

    def target(self, stats, state, *, step, progress):
        state["direction"] = self.direction(stats.jacobian, step)
        return effective_weights(stats.jacobian, state["direction"])

    def combine(self, jacobian, weights, state):
        if not finite(jacobian):  # target was skipped: a non-finite step, which the engine rolls back
            return super().combine(jacobian, weights, state)
        return state["direction"].to(jacobian)

    def direction(self, jacobian: torch.Tensor, step: int) -> torch.Tensor:
        J = jacobian.detach()
        generator = torch.Generator().manual_seed(step_seed(self.opts["seed"], step))
        U = torch.rand(J.shape[1], generator=generator, dtype=J.dtype).to(J.device)
        purity = 0.5 * (1.0 + J.sum(dim=0) / J.abs().sum(dim=0))  # 0/0 = NaN where every entry is 0: no mask
        leak = self.opts["leak"]
        d = torch.zeros_like(J[0])
        for row in J:
            kept = (purity > U) * (row > 0) + (purity < U) * (row < 0)
            d += (leak + (1.0 - leak) * kept) * row
        return d


class ConFIG(DirectionBalancer):
    """ConFIG (Liu, Chu & Thuerey 2024) by conflictfree's ``ConFIGOperator``; with ``momentum=true``
    M-ConFIG by its ``PseudoMomentumOperator`` (``beta1``, ``beta2``; all K gradients update their
    momentum every step).  The momentum operator divides by its own second-moment estimate, like Adam;
    the authors advise SGD with it, and pinnbal's Adam runs on top.  Its buffers live in the state
    (``m`` K × P, ``s``, ``fake_m``, ``t``, and the step's ``direction``, all float64 on J's device).
    Logged weights: the effective weights max(d·g_k, 0)/‖g_k‖² (c/‖g_k‖ without momentum)."""

    name = "config"
    summary = "ConFIG (Liu, Chu & Thuerey 2024): direction with equal cosine to every gradient; conflictfree"
    options = {"momentum": False, "beta1": 0.9, "beta2": 0.999}
    requires = ("conflictfree",)

    def check_options(self) -> None:
        super().check_options()
        self.need(0.0 <= self.opts["beta1"] < 1.0, "beta1", "0 <= beta1 < 1")
        self.need(0.0 <= self.opts["beta2"] < 1.0, "beta2", "0 <= beta2 < 1")

    def init(self, terms):
        state = super().init(terms)
        state["direction"] = torch.zeros(0, dtype=F64)  # this step's direction, computed once in target
        if self.opts["momentum"]:
            K = len(terms)
            state |= {"t": torch.zeros((), dtype=torch.int64), "m": torch.zeros((K, 0), dtype=F64),
                      "s": torch.zeros(0, dtype=F64), "fake_m": torch.zeros(0, dtype=F64)}
        return state

    def target(self, stats, state, *, step, progress):
        J = stats.jacobian.detach().to(F64)
        if self.opts["momentum"]:
            d = self._momentum_step(J, state)
        else:
            d = state["direction"] = _config_operator()(J)
        return effective_weights(J, d)

    def combine(self, jacobian, weights, state):
        if not finite(jacobian) or state["direction"].numel() == 0:  # target was skipped (non-finite J)
            return super().combine(jacobian, weights, state)
        return state["direction"].to(jacobian.dtype)

    def _momentum_step(self, J: torch.Tensor, state: dict) -> torch.Tensor:
        from conflictfree.momentum_operator import PseudoMomentumOperator

        K = J.shape[0]
        op = PseudoMomentumOperator(num_vectors=K, beta_1=self.opts["beta1"], beta_2=self.opts["beta2"],
                                    gradient_operator=_config_operator())
        t = int(state["t"])
        if t > 0:  # restore the operator's buffers (its attributes) from the state
            op.m = list(state["m"].to(J).unbind(0))
            op.s, op.fake_m = state["s"].to(J), state["fake_m"].to(J)
            op.t, op.t_grads, op.all_initialized = t, [t] * K, True
        d = op.calculate_gradient(list(range(K)), list(J.unbind(0)))
        state |= {"t": torch.tensor(op.t), "m": torch.stack(op.m).to(F64), "s": op.s.to(F64),
                  "fake_m": op.fake_m.to(F64), "direction": d.to(F64)}
        return d


_CONFIG_OPERATOR: dict[str, Any] = {}


def _config_operator():
    """A conflictfree ``GradientOperator`` (callable on a (K, P) float64 tensor) computing ConFIG safely."""
    if "class" not in _CONFIG_OPERATOR:
        from conflictfree.grad_operator import ConFIGOperator, GradientOperator
        from conflictfree.weight_model import WeightModel

        class Ones(WeightModel):
            """conflictfree's EqualWeight in the gradients' dtype (its own is float32)."""

            def get_weights(self, gradients, losses=None, device=None):
                return torch.ones(gradients.shape[0], dtype=gradients.dtype, device=gradients.device)

        class SafeConFIG(GradientOperator):
            """ConFIG on J / max|J| without its zero rows; the scale is put back (ConFIG is homogeneous)."""

            def __init__(self):
                super().__init__()
                self.inner = ConFIGOperator(weight_model=Ones(), use_least_square=False)

            def calculate_gradient(self, grads, losses=None):
                grads = grads if isinstance(grads, torch.Tensor) else torch.stack(list(grads))
                J, s = scaled(grads)
                keep = J.abs().amax(dim=1) > 0
                if not bool(keep.any()):
                    return torch.zeros(J.shape[1], dtype=J.dtype, device=J.device)
                return self.inner.calculate_gradient(J[keep]) * s

            __call__ = calculate_gradient

        _CONFIG_OPERATOR["class"] = SafeConFIG
    return _CONFIG_OPERATOR["class"]()


#: the classes to register, in listing order
AGGREGATORS: tuple[type[DirectionBalancer], ...] = (
    PCGrad, MGDA, UPGrad, CAGrad, IMTLG, NashMTL, AlignedMTL, DualProj, GradDrop, ConFIG,
)
