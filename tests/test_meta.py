"""Meta-gradient loss tuning (``meta``, seed 003) and the learned-weights MLP (``learned``, seed 000 §6.2).

Known answers: the unrolled meta-gradient equals a central finite difference;
frozen φ is the plain loss (bit for bit the ``fixed`` run); a term made of pure
noise loses weight; an interrupted run resumes exactly.
"""
import json
import math

import numpy as np
import pytest
import torch

import pinnbal as pb
from pinnbal import lookahead as M
from pinnbal.balancers import make_balancer
from pinnbal.cli import main
from pinnbal.errors import OptionError
from pinnbal.train import TrainConfig, Trainer, fit
from pinnbal.workflow import resume
from test_reliability import POISSON, SETTINGS, interrupted_run, strip_wall

F64 = torch.float64
TINY = dict(width=8, depth=1, log_every=1, render=False)


# -- (1) the meta-gradient of the unroll against finite differences ---------------------------------------

def fd_problem():
    xs = np.linspace(0.05, 0.95, 10)[:, None]
    return pb.Problem("fd", pb.Box(x=(0.0, 1.0)), ["u"], [
        pb.Residual("pde", lambda p: p.u_xx + math.pi**2 * torch.sin(math.pi * p.x), points=12),
        pb.Boundary("ends", value=0.0, points=2),
        pb.Data("obs", x=xs, values=np.sin(math.pi * xs)),
    ])


@pytest.fixture(scope="module")
def tiny_context():
    """A float64 trainer after 3 Adam steps (so Adam has moments): its context is the function under test."""
    config = TrainConfig(steps=3, lbfgs=0, width=5, depth=1, dtype="float64", lr=0.05, log_every=1)
    trainer = Trainer(fd_problem(), "meta:meta_lr=0", config)
    fit(trainer, progress_bar=False)
    return trainer


@pytest.mark.parametrize("param, T, inner", [("weights", 1, "sgd"), ("weights", 3, "sgd"), ("poly", 1, "sgd"),
                                             ("poly", 3, "sgd"), ("net", 1, "sgd"), ("net", 3, "sgd"),
                                             ("poly", 3, "adam")])
def test_unrolled_meta_gradient_matches_central_finite_differences(tiny_context, param, T, inner):
    ctx, initial = tiny_context.context, tiny_context.state["initial"]
    balancer = make_balancer(f"meta:param={param},hidden=2")
    g = torch.Generator().manual_seed(1)
    # away from φ₀ (where some gradients vanish) and from the projection boundary
    phi0 = {n: p + 0.1 + 0.3 * torch.rand(p.shape, generator=g, dtype=F64)
            for n, p in balancer.phi_init(3).items()}
    scale = 0.5 + torch.rand(3, generator=g, dtype=F64)  # the running scale of ℓ that poly/net normalise by
    kwargs = dict(T=T, lr=0.01, scale=M.validation_scale(ctx), select=M.selection(ctx), inner=inner,
                  moments=M.optimizer_moments(ctx) if inner == "adam" else None)
    assert inner == "sgd" or kwargs["moments"] is not None

    def train_loss(phi):
        def loss(values):
            return (balancer.term_weights(phi, initial)
                    * torch.stack(balancer.term_losses(values.pointwise, [True] * 3, phi, scale))).sum()
        return loss

    leaves = {n: p.clone().requires_grad_(True) for n, p in phi0.items()}
    _, grads = M.meta_gradient(ctx, train_loss(leaves), list(leaves.values()), **kwargs)
    analytic = torch.cat([gr.reshape(-1) for gr in grads])

    def value(phi):
        return float(M.lookahead_objective(ctx, train_loss(phi), **kwargs).detach())

    h, numeric = 1e-5, []
    for name, p in phi0.items():
        for i in range(p.numel()):
            plus, minus = ({n: q.clone() for n, q in phi0.items()} for _ in range(2))
            plus[name].view(-1)[i] += h
            minus[name].view(-1)[i] -= h
            numeric.append((value(plus) - value(minus)) / (2 * h))
    numeric = torch.tensor(numeric, dtype=F64)
    assert float(numeric.norm()) > 1e-6  # a real signal, not 0 == 0
    assert float((analytic - numeric).norm() / numeric.norm()) < 1e-5


@pytest.mark.parametrize("inner", ["sgd", "adam"])
def test_the_unroll_takes_the_same_steps_as_a_real_optimiser(tiny_context, inner):
    """θ_T of the functional unroll equals T real optimiser steps on a copy of the model; in particular the PDE's
    x-derivatives at θ_t are partial derivatives at fixed θ_t, not through θ_t's dependence on the points."""
    import copy

    from pinnbal.batches import evaluate_terms

    trainer, T, lr = tiny_context, 3, 0.01
    w = torch.tensor([0.7, 1.3, 2.0], dtype=F64)
    theta = M.unroll(trainer.context, lambda values: (w * values.losses).sum(), T=T, lr=lr, inner=inner,
                     moments=M.optimizer_moments(trainer.context) if inner == "adam" else None)
    model = copy.deepcopy(trainer.model)
    params = [p for p in model.parameters() if p.requires_grad]
    if inner == "sgd":
        opt = torch.optim.SGD(params, lr=lr)
    else:
        opt = torch.optim.Adam(params, lr=lr)
        opt.load_state_dict(trainer.adam.state_dict())
        opt.param_groups[0]["lr"] = lr
    for _ in range(T):
        opt.zero_grad()
        (w * evaluate_terms(model, trainer.batches).losses).sum().backward()
        opt.step()
    for name, p in model.named_parameters():
        assert torch.allclose(theta[name], p, rtol=1e-9, atol=1e-12), name


def test_objective_is_the_mean_relative_validation_loss_over_selected_terms():
    losses = torch.tensor([2.0, 3.0, 5.0], dtype=F64)
    scale = torch.tensor([1.0, 6.0, 0.0], dtype=F64)  # a zero scale (a solved term) is left out
    assert float(M.objective(losses, scale, torch.tensor([True, True, True]))) == pytest.approx((2 + 0.5) / 2)
    assert float(M.objective(losses, scale, torch.tensor([False, True, True]))) == pytest.approx(0.5)
    grads, norm = M.clip_grads([torch.tensor([3.0, 4.0])], 1.0)
    assert norm == pytest.approx(5.0) and grads[0].tolist() == pytest.approx([0.6, 0.8])


# -- (2) every variant trains end to end ----------------------------------------------------------------

@pytest.mark.parametrize("spec, logged", [
    ("learned:every=2", "dval_dw"), ("meta:param=weights,k=2,T=2", "logit"),
    ("meta:param=poly,k=2,T=2", "coef1"), ("meta:param=net,k=2,T=2,inner=adam", "beta"),
])
def test_every_variant_trains_and_logs_finite_weights(spec, logged):
    run = pb.train(POISSON, spec, steps=6, lbfgs=2, **TINY)
    assert run.metrics["status"] == "completed" and math.isfinite(run.metrics["rel_l2"])
    for row in run.history:
        values = [v for k, v in row.items() if k.startswith(("weight/", "effective/", "val_rel/", logged))]
        assert values and all(math.isfinite(v) and v >= -1e300 for v in values)
        assert all(row[f"weight/{t}"] > 0 for t in ("pde", "ends"))
    first, last = run.history[0], run.history[5]  # the last Adam row: φ has taken its outer steps
    assert any(first[f"{logged}/{t}"] != last[f"{logged}/{t}"] for t in ("pde", "ends"))


def test_meta_runs_from_the_cli_with_its_options(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["run", POISSON, "--balancer", "meta:param=net,k=2,T=2", "--steps", "4", "--lbfgs", "2",
               "--width", "8", "--depth", "1", "--quiet", "--no-render", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["balancer"] == "meta" and "param=net" in metrics["balancer_spec"]
    assert "beta/pde" in (out / "history.csv").read_text().splitlines()[0]


# -- (3) a known answer: a term of pure noise loses weight ---------------------------------------------

def noisy_problem(seed=0):
    """Two observation terms of u = sin(pi x): one exact, one pure noise (sd 3) that validation cannot reward."""
    rng = np.random.default_rng(seed)
    xg, xn = rng.uniform(0, 1, (40, 1)), rng.uniform(0, 1, (40, 1))
    return pb.Problem("noisy", pb.Box(x=(0.0, 1.0)), ["u"], [
        pb.Data("good", x=xg, values=np.sin(math.pi * xg)),
        pb.Data("noise", x=xn, values=3.0 * rng.standard_normal((40, 1))),
    ], reference=lambda p: torch.sin(math.pi * p.x))


@pytest.mark.parametrize("spec, column", [("meta:param=weights,k=2,T=2,meta_lr=0.1", "weight"),
                                          ("meta:param=poly,k=2,T=2,meta_lr=0.1", "effective"),
                                          ("learned:every=2,meta_lr=0.05", "weight")])
def test_weight_moves_away_from_a_pure_noise_term_within_ten_outer_steps(spec, column):
    run = pb.train(noisy_problem(), spec, steps=20, lbfgs=0, width=16, depth=2, log_every=1, render=False)
    last = run.history[-1]
    assert last[f"{column}/noise"] < 0.5 * last[f"{column}/good"]
    assert last[f"{column}/noise"] < 1.0 < last[f"{column}/good"]  # both moved from the initial 1


# -- (4) an interrupted run resumes exactly ----------------------------------------------------------

@pytest.mark.parametrize("spec", ["meta:param=poly,k=3,T=2,patience=3", "learned:every=3"])
@pytest.mark.parametrize("stop_after_step", [17, 49])  # in the Adam phase; in the L-BFGS phase
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(spec, stop_after_step, tmp_path):
    whole = pb.train(POISSON, spec, out=tmp_path / "whole", render=False, **SETTINGS)
    interrupted_run(spec, tmp_path / "cut", stop_after_step)
    resumed = resume(tmp_path / "cut", render=False)
    assert strip_wall(resumed.history) == strip_wall(whole.history)
    assert resumed.metrics["rel_l2"] == whole.metrics["rel_l2"]


# -- (5) frozen φ is the plain loss: the ablation baseline ---------------------------------------------

@pytest.fixture(scope="module")
def fixed_run():
    return pb.train(POISSON, "fixed", steps=8, lbfgs=3, **TINY)


@pytest.mark.parametrize("param", ["weights", "poly", "net"])
def test_frozen_phi_trains_exactly_like_the_initial_loss(fixed_run, param):
    run = pb.train(POISSON, f"meta:param={param},meta_lr=0,k=2,T=2", steps=8, lbfgs=3, **TINY)
    columns = [k for k in fixed_run.history[0] if k.startswith(("loss", "weight/"))] + ["rel_l2"]
    assert [[row[k] for k in columns] for row in run.history] == [[row[k] for k in columns]
                                                                   for row in fixed_run.history]
    own = {"weights": "logit", "poly": "coef2", "net": "beta"}[param]
    expected = 0.0 if param == "weights" else 1.0
    assert all(row[f"{own}/{t}"] == expected for row in run.history for t in ("pde", "ends"))


# -- stability options ----------------------------------------------------------------------------------

def test_early_stopping_restores_the_best_phi_and_freezes_it(monkeypatch):
    """Validation scores 1, 0.5, 0.7, ...: the third outer step is no better; with patience=1 φ goes back to
    its value when 0.5 was measured and never moves again."""
    import pinnbal.balancers.meta as meta_module

    scores = iter([1.0, 0.5] + [0.7] * 100)
    monkeypatch.setattr(meta_module, "validation_scale",
                        lambda ctx: torch.full((2,), next(scores), dtype=F64))
    run = pb.train(POISSON, "meta:param=weights,k=1,T=1,patience=1,meta_lr=0.1", steps=6, lbfgs=0, **TINY)
    logits = [row["logit/pde"] for row in run.history]
    assert logits[0] != logits[1]  # outer steps at 0 and 1 moved φ
    assert logits[2] == logits[0]  # step 2 is no better: back to φ as it was when 0.5 was scored (after step 0)
    assert len(set(logits[2:])) == 1  # and frozen


def test_bad_options_are_option_errors():
    for spec, fragment in [("meta:param=spline", "param"), ("meta:T=0", "T >= 1"), ("meta:inner=rmsprop", "inner"),
                           ("meta:degree=1", "degree"), ("meta:validate=data,holdout=0", "holdout > 0"),
                           ("learned:meta_lr=-1", "meta_lr")]:
        with pytest.raises(OptionError, match=fragment):
            make_balancer(spec)
    with pytest.raises(OptionError, match="no Data"):
        pb.train(POISSON, "meta:validate=data", steps=1, lbfgs=0, **TINY)


# -- the noisy-data problem of gallery/07 (seed 003 §4.6) -------------------------------------------------

def test_the_noisy_inverse_problem_corrupts_30_percent_of_the_clean_observations():
    from conftest import PROBLEMS

    clean = pb.load_problem(PROBLEMS / "heat_inverse.py").terms[2]
    noisy_problem = pb.load_problem(PROBLEMS / "heat_inverse_noisy.py")
    noisy = noisy_problem.terms[2]
    assert noisy.kind == "data" and noisy_problem.unknowns == {"kappa": 0.5}
    x_clean, v_clean = np.asarray(clean.x_raw), np.asarray(clean.values_raw)
    x_noisy, v_noisy = np.asarray(noisy.x_raw), np.asarray(noisy.values_raw)
    assert np.array_equal(x_noisy, x_clean)  # the same observation points
    changed = np.flatnonzero(v_noisy[:, 0] != v_clean[:, 0])
    assert len(changed) == 60 == round(0.3 * len(x_clean))  # 30% of 200, the rest untouched
    assert np.median(np.abs(v_noisy - v_clean)[changed]) > 0.1  # gross outliers (sd 0.5), not the 0.01 noise
