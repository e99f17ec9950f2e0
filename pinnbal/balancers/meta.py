"""Meta-gradient loss tuning (seed 003, "Dynamic loss function tuning via
meta-gradient search", §3–§4; issue 4).

The training loss is a parameterised L_φ(θ) = Σ_k w_k(φ) mean_i f_{φ,k}(ℓ_i)
over the K terms (ℓ_i: the problem's pointwise loss of point i, mse by default,
averaged over residual columns).  θ takes ordinary Adam steps on L_φ; every
``k`` steps an outer step unrolls ``T`` differentiable inner steps from the
current θ (truncated back-propagation, Andrychowicz et al. 2016; reverse-mode
hyper-gradients, Franceschi et al. 2018), evaluates the held-out validation
objective V(θ_T) = mean_k L_k^val(θ_T) / L_k^val(θ) and moves φ along −∂V/∂φ
(second order: through the inner gradients); :mod:`pinnbal.lookahead` has the
machinery and the reasons for the normalisation.

``param`` picks the parameterisation (seed §3.3):

- ``weights`` (§3.3.1, a blend): φ = per-term logits,
  w = (Σ_k w⁰_k) softmax(log w⁰ + φ), f = ℓ.  φ₀ = 0 gives the initial weights
  w⁰.  Softmax (not softplus) fixes Σ_k w_k: a free overall scale is a free
  learning rate, which a short look-ahead always rewards greedily.
- ``poly`` (§3.3.1, polynomial of a base loss): with u = √(ℓ/s_k) — |r|/√s_k
  for the default mse loss, |r| the root-mean-square over residual columns —
  f_k(ℓ) = c_{k,2} ℓ + s_k Σ_{j≠2} c_{k,j} u^j, j = 1..``degree``, coefficients
  c ≥ 0 (kept by projection after each step), so f is non-negative and
  increasing in |r|.  φ₀: c_2 = 1, the rest 0, which is exactly the plain mse.
  s_k is a running scale, the mean of ℓ over term k's batch at the last outer
  step, so the coefficients are dimensionless (c_1 = 1 means an |r| penalty as
  strong as the mse at the typical residual).  Note poly reshapes ℓ, not r:
  for a non-mse base loss u is √ℓ, still increasing in the residual.
- ``net`` (§3.3.2, a small network): with ρ = ℓ/s_k,
  f_k(ℓ) = β_k ℓ + s_k Σ_h v_h [tanh(a_h ρ + b_{k,h}) − tanh(b_{k,h})], h = 1..``hidden``,
  β, a, v ≥ 0 (projection) and a per-term bias b_k (the term id's embedding):
  monotone in ℓ by construction (positive weights, increasing activation),
  f(0) = 0, and bounded tanh units can express robust, saturating losses.
  φ₀: β = 1, v = 0 (exactly the plain mse), a_h log-spaced in [0.1, 10], b = 0.

Terms without points (regularisation penalties) keep f = ℓ.  poly and net
act through the balancer's ``losses`` hook, so the L-BFGS phase uses the
learned shape too; their ``weights`` column shows w⁰ and ``effective/<term>``
shows the learned multiplier w⁰_k Σ_i f'(ℓ_i) ℓ_i / Σ_i ℓ_i (w_k for weights).

Stability (seed §3.5): meta-gradient clipping to a global norm (``clip``);
Adam on φ with a decoupled pull toward φ₀ (``reg``); early stopping of φ:
every outer step scores E = mean_k L_k^val(θ) / L_k^val(θ at the first outer
step); after ``patience`` outer steps without a new best, φ goes back to the
best-scoring value and is frozen.  ``meta_lr=0`` freezes φ at φ₀ from the start
(the seed's §4.4.1 ablation: identical to ``fixed`` training, with the cost).

Options (defaults): param=weights, k=50 (outer step every k steps), T=3 (inner
steps unrolled), meta_lr=0.05 (Adam on φ), clip=1.0 (0: none), reg=0.1,
holdout=0.2 (fraction of Data observations held out for validation),
patience=20 (outer steps; 0: never stop), inner=sgd (or adam: the look-ahead
repeats the live Adam update with its moments), validate=all (or data: only
the held-out observations score), degree=3 (poly), hidden=8 (net),
min=1e-3, max=1e3.

State (flat tensors, checkpointed): φ and its Adam moments (``m_*``, ``v_*``,
``adam_t``), the best φ (``best_*``), ``best``, ``bad``, ``stopped``, ``outer``,
``val0``, ``scale``; logged per term: ``effective``, ``val_rel`` (validation
loss over its first-outer-step value) and ``logit`` / ``coef<j>`` / ``beta``.

Sources: seed 003 §3.1–§3.5 (bi-level problem, parameterisations, truncated
unroll, stability); Andrychowicz et al. 2016, "Learning to learn by gradient
descent by gradient descent", NeurIPS; Franceschi et al. 2018, "Bilevel
programming for hyperparameter optimization and meta-learning", ICML; Bechtle
et al. 2021, "Meta learning via learned loss", ICPR (seed ref. [3]).
"""

from __future__ import annotations

import math

import torch

from ..errors import OptionError
from ..lookahead import (TINY, adam_update, all_finite, clip_grads, meta_gradient, optimizer_moments, selection,
                         skip, validation_scale)
from .base import Balancer

F64 = torch.float64


class Meta(Balancer):
    name = "meta"
    summary = ("meta-gradient loss tuning (seed 003): phi of L_phi (weights|poly|net) learned through a T-step "
               "unroll on held-out points")
    weight_sum = "initial"
    needs = frozenset({"losses", "context"})
    options = {"param": "weights", "k": 50, "T": 3, "meta_lr": 0.05, "clip": 1.0, "reg": 0.1, "holdout": 0.2,
               "patience": 20, "inner": "sgd", "validate": "all", "degree": 3, "hidden": 8,
               "min": 1e-3, "max": 1e3}

    def __init__(self, **opts):
        super().__init__(**opts)
        param = self.opts["param"]
        own = {"weights": ("logit",), "poly": tuple(f"coef{j}" for j in range(1, self.opts["degree"] + 1)),
               "net": ("beta",)}[param]
        self.logged_state = ("effective", "val_rel") + own

    def check_options(self) -> None:
        super().check_options()
        o = self.opts
        choices = {"param": ("weights", "poly", "net"), "inner": ("sgd", "adam"), "validate": ("all", "data")}
        for key, allowed in choices.items():
            if o[key] not in allowed:
                raise OptionError(f"balancer {self.name!r}: {key}={o[key]!r}; choose one of {', '.join(allowed)}")
        if o["k"] < 1 or o["T"] < 1:
            raise OptionError(f"balancer {self.name!r}: need k >= 1 and T >= 1, got k={o['k']}, T={o['T']}")
        if o["meta_lr"] < 0 or o["clip"] < 0 or o["reg"] < 0 or o["patience"] < 0:
            raise OptionError(f"balancer {self.name!r}: meta_lr, clip, reg and patience must be >= 0")
        if not 0.0 <= o["holdout"] < 1.0:
            raise OptionError(f"balancer {self.name!r}: holdout={o['holdout']}; need 0 <= holdout < 1")
        if o["validate"] == "data" and not o["holdout"] > 0:
            raise OptionError(f"balancer {self.name!r}: validate=data needs holdout > 0 (otherwise the validation "
                              f"observations are the training ones)")
        if not 2 <= o["degree"] <= 8:
            raise OptionError(f"balancer {self.name!r}: degree={o['degree']}; need 2..8 (u^2 is the plain loss)")
        if not 1 <= o["hidden"] <= 256:
            raise OptionError(f"balancer {self.name!r}: hidden={o['hidden']}; need 1..256")

    def attach(self, problem) -> None:
        if self.opts["validate"] == "data" and not any(t.kind == "data" for t in problem.terms):
            raise OptionError(f"balancer {self.name!r}: validate=data but problem {problem.name!r} has no Data "
                              f"terms; use validate=all")

    def due(self, step: int) -> bool:
        return step % self.opts["k"] == 0

    # -- φ ---------------------------------------------------------------------
    def phi_names(self) -> list[str]:
        return {"weights": ["logit"], "poly": [f"coef{j}" for j in range(1, self.opts["degree"] + 1)],
                "net": ["beta", "net_a", "net_b", "net_v"]}[self.opts["param"]]

    def phi_init(self, K: int) -> dict[str, torch.Tensor]:
        """φ₀: the parameters that give the plain loss (the initial weights, f = ℓ)."""
        param = self.opts["param"]
        if param == "weights":
            return {"logit": torch.zeros(K, dtype=F64)}
        if param == "poly":
            return {f"coef{j}": torch.full((K,), 1.0 if j == 2 else 0.0, dtype=F64)
                    for j in range(1, self.opts["degree"] + 1)}
        H = self.opts["hidden"]
        return {"beta": torch.ones(K, dtype=F64), "net_a": torch.logspace(-1, 1, H, dtype=F64),
                "net_b": torch.zeros(K, H, dtype=F64), "net_v": torch.zeros(H, dtype=F64)}

    def project(self, phi: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Keep f non-negative and increasing: poly coefficients and net's β, a, v stay >= 0."""
        if self.opts["param"] == "weights":
            return phi
        return {n: p if n == "net_b" else p.clamp_min(0.0) for n, p in phi.items()}

    def phi_of(self, state: dict) -> dict[str, torch.Tensor]:
        return {n: state[n] for n in self.phi_names()}

    def term_weights(self, phi: dict, initial: torch.Tensor) -> torch.Tensor:
        """w(φ): (Σ w⁰) softmax(log w⁰ + φ) for ``weights``; w⁰ otherwise."""
        if self.opts["param"] != "weights":
            return initial
        total = initial.sum()
        if not bool(total > 0):
            return initial
        return total * torch.softmax(initial.clamp_min(TINY).log() + phi["logit"].to(initial), dim=0)

    def shaped(self, k: int, ell: torch.Tensor, phi: dict, scale: torch.Tensor) -> torch.Tensor:
        """f_{φ,k}(ℓ) per point (N_k,) for poly and net; ℓ itself for weights."""
        param = self.opts["param"]
        if param == "weights":
            return ell
        s = scale[k].to(ell)
        rho = ell / s
        if param == "poly":
            out = phi["coef2"][k].to(ell) * ell
            extra = 0.0
            root = None
            for j in range(1, self.opts["degree"] + 1):
                c = phi[f"coef{j}"][k]
                if j == 2 or (not c.requires_grad and not bool(c)):  # a zero constant adds nothing: skip it
                    continue
                if j % 2:
                    root = rho.clamp_min(TINY).sqrt() if root is None else root
                    power = root * rho ** ((j - 1) // 2) if j > 1 else root
                else:
                    power = rho ** (j // 2)
                extra = extra + c.to(ell) * power
            return out if isinstance(extra, float) else out + s * extra
        if not phi["net_v"].requires_grad and not bool(phi["net_v"].any()):  # no hidden unit in use: f = β ℓ
            return phi["beta"][k].to(ell) * ell
        a, b, v = phi["net_a"].to(ell), phi["net_b"][k].to(ell), phi["net_v"].to(ell)
        hidden = torch.tanh(rho[:, None] * a + b) - torch.tanh(b)
        return phi["beta"][k].to(ell) * ell + s * (hidden @ v)

    def term_losses(self, pointwise, has_points, phi, scale) -> list[torch.Tensor]:
        """L_{φ,k} = mean_i f_{φ,k}(ℓ_i); terms without points keep their plain mean."""
        return [self.shaped(k, ell, phi, scale).mean() if has_points[k] else ell.mean()
                for k, ell in enumerate(pointwise)]

    @property
    def shapes_loss(self) -> bool:
        return self.opts["param"] != "weights"

    def losses(self, pointwise, points, state):
        if self.opts["param"] == "weights":
            return super().losses(pointwise, points, state)
        return self.term_losses(pointwise, [x is not None for x in points], self.phi_of(state), state["scale"])

    def effective(self, pointwise, has_points, phi, scale, initial) -> torch.Tensor:
        """w⁰_k Σ_i f'(ℓ_i) ℓ_i / Σ_i ℓ_i: the learned multiplier on the plain gradient, ℓ-weighted."""
        weights = self.term_weights(phi, initial).clamp(self.opts["min"], self.opts["max"])  # as the engine uses them
        if self.opts["param"] == "weights":
            return weights.detach().clone()
        out = []
        for k, ell in enumerate(pointwise):
            if not has_points[k]:
                out.append(weights[k])
                continue
            x = ell.detach().double().clone().requires_grad_(True)
            with torch.enable_grad():
                slope, = torch.autograd.grad(self.shaped(k, x, phi, scale).sum(), x)
            denom = x.detach().sum()
            ratio = (slope * x.detach()).sum() / denom if denom > TINY else slope.mean()
            out.append(weights[k] * ratio)
        return torch.stack([x.detach().double().cpu() for x in out])

    # -- state -----------------------------------------------------------------
    def init(self, terms):
        state = super().init(terms)
        K = len(terms)
        phi = self.phi_init(K)
        for n, p in phi.items():
            state[n] = p.clone()
            state[f"m_{n}"] = torch.zeros_like(p)
            state[f"v_{n}"] = torch.zeros_like(p)
            state[f"best_{n}"] = p.clone()
        state["weights"] = self.term_weights(phi, state["initial"]).clone()
        state |= {"adam_t": torch.zeros((), dtype=torch.int64), "outer": torch.zeros((), dtype=torch.int64),
                  "best": torch.tensor(torch.finfo(F64).max, dtype=F64), "bad": torch.zeros((), dtype=torch.int64),
                  "stopped": torch.zeros((), dtype=torch.int64), "val0": torch.zeros(K, dtype=F64),
                  "val_rel": torch.ones(K, dtype=F64), "scale": torch.ones(K, dtype=F64),
                  "effective": state["initial"].clone()}
        return state

    # -- the outer step ----------------------------------------------------------
    def target(self, stats, state, *, step, progress):
        ctx = stats.context
        if ctx is None or int(state["stopped"]):
            return state["weights"]
        o = self.opts
        has_points = [bool(getattr(t, "has_points", True)) for t in ctx.terms]
        select = selection(ctx, o["validate"])
        val = validation_scale(ctx)
        if not all_finite(val):
            return skip(state)
        if self.no_better(state, val, select):  # early stopping of φ: back to its best, frozen from here on
            return self.finish(stats, state, has_points)
        if o["param"] != "weights":  # the running scale of the pointwise loss that poly/net normalise by
            if stats.pointwise is None or not all_finite(*stats.pointwise):
                return skip(state)
            means = torch.stack([ell.detach().double().mean() for ell in stats.pointwise]).cpu()
            state["scale"] = means.clamp(TINY, 1e300)
        names = self.phi_names()
        phi = {n: state[n].detach().clone().requires_grad_(True) for n in names}
        scale, initial = state["scale"], state["initial"]

        def train_loss(values):
            w = self.term_weights(phi, initial)
            losses = torch.stack(self.term_losses(values.pointwise, has_points, phi, scale))
            return (w.to(losses) * losses).sum()

        moments = optimizer_moments(ctx) if o["inner"] == "adam" else None
        value, grads = meta_gradient(ctx, train_loss, list(phi.values()), T=o["T"], lr=ctx.lr, scale=val,
                                     select=select, inner=o["inner"], moments=moments)
        if not (math.isfinite(value) and all_finite(*grads)):
            return skip(state)
        grads, _ = clip_grads(grads, o["clip"])
        if not adam_update(state, names, grads, lr=o["meta_lr"], reg=o["reg"], phi0=self.phi_init(len(initial)),
                           project=self.project):
            return skip(state)
        state["outer"] = state["outer"] + 1
        return self.finish(stats, state, has_points)

    def no_better(self, state: dict, val: torch.Tensor, select: torch.Tensor) -> bool:
        """Early stopping of φ on E = mean_k L_k^val / L_k^val(first outer step): keep the best φ; True (φ put
        back to its best and stopped) after ``patience`` outer steps without a better E."""
        val0 = state["val0"] if int(state["outer"]) else val.clone()
        state["val0"] = val0
        known = val0 > TINY
        state["val_rel"] = torch.where(known, val / val0.clamp_min(TINY), torch.ones_like(val))
        keep = select & known
        score = float((val[keep] / val0[keep]).mean()) if bool(keep.any()) else 0.0
        names = self.phi_names()
        if score < float(state["best"]):
            state["best"], state["bad"] = torch.tensor(score, dtype=F64), torch.zeros((), dtype=torch.int64)
            for n in names:
                state[f"best_{n}"] = state[n].clone()
            return False
        state["bad"] = state["bad"] + 1
        if not (self.opts["patience"] and int(state["bad"]) >= self.opts["patience"]):
            return False
        for n in names:
            state[n] = state[f"best_{n}"].clone()
        state["stopped"] = torch.ones((), dtype=torch.int64)
        return True

    def finish(self, stats, state, has_points) -> torch.Tensor:
        """The weights of the current φ; records the effective multipliers."""
        phi, initial = self.phi_of(state), state["initial"]
        if stats.pointwise is not None and all_finite(*stats.pointwise):
            state["effective"] = self.effective(stats.pointwise, has_points, phi, state["scale"], initial)
        return self.term_weights(phi, initial)
