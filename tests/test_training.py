"""Training end to end on problems with known answers."""
import math

import numpy as np
import pytest
import torch

import pinnbal as pb

POISSON = "problems/poisson1d.py"


@pytest.fixture(scope="module")
def poisson_runs():
    budget = dict(steps=300, lbfgs=300, lr=1e-2, width=32, depth=3, seed=0)
    return {name: pb.train(POISSON, name, **budget) for name in ("lra", "fixed")}


def test_poisson1d_trains_to_one_percent_with_lra(poisson_runs):
    assert poisson_runs["lra"].metrics["rel_l2"] < 1e-2


def test_lra_beats_fixed_weights_on_poisson1d(poisson_runs):
    """sin(4 pi x): the residual's gradients dwarf the boundary's; fixed weights miss the boundary values."""
    lra, fixed = poisson_runs["lra"].metrics, poisson_runs["fixed"].metrics
    assert lra["rel_l2"] * 10 < fixed["rel_l2"]
    assert lra["final_weights"]["ends"] > 10  # LRA raised the boundary weight
    assert fixed["final_weights"] == {"pde": 1.0, "ends": 1.0}


def test_lbfgs_phase_uses_the_balancers_final_weights(poisson_runs):
    history = poisson_runs["lra"].history
    adam_last = [r for r in history if r["phase"] == "adam"][-1]
    lbfgs_rows = [r for r in history if r["phase"] != "adam"]  # the second stage (auto: ssbfgs on this small net)
    assert lbfgs_rows, "the L-BFGS phase logged nothing"
    assert all(r["weight/ends"] == adam_last["weight/ends"] for r in lbfgs_rows)
    assert lbfgs_rows[-1]["loss"] < adam_last["loss"]


def test_predict_matches_the_closed_form(poisson_runs):
    x = np.linspace(0, 1, 101)[:, None]
    u = poisson_runs["lra"].predict(x)
    assert u.shape == (101, 1)
    assert np.max(np.abs(u[:, 0] - np.sin(4 * math.pi * x[:, 0]))) < 5e-2


@pytest.fixture(scope="module")
def short_burgers():
    budget = dict(steps=200, lbfgs=0, eval_every=10**6, log_every=10)
    return {name: pb.train("problems/burgers.py", name, **budget) for name in ("fixed", "lra")}


def test_short_burgers_run_decreases_every_term_loss(short_burgers):
    first, last = short_burgers["fixed"].history[0], short_burgers["fixed"].history[-1]
    for term in ("pde", "ic", "walls"):
        assert last[f"loss/{term}"] < 0.5 * first[f"loss/{term}"], term


def test_lra_on_burgers_fits_the_initial_and_boundary_conditions_first(short_burgers):
    """LRA raises the weights of ic/walls (their gradients are smaller), so they fall much faster."""
    fixed, lra = short_burgers["fixed"].metrics, short_burgers["lra"].metrics
    assert lra["final_weights"]["ic"] > 5 and lra["final_weights"]["walls"] > 5
    assert lra["final_losses"]["ic"] * 10 < fixed["final_losses"]["ic"]
    assert lra["final_losses"]["walls"] * 3 < fixed["final_losses"]["walls"]


def test_same_seed_gives_bit_identical_history():
    a = pb.train(POISSON, "lra", steps=30, lbfgs=5, seed=3, width=16, depth=2)
    b = pb.train(POISSON, "lra", steps=30, lbfgs=5, seed=3, width=16, depth=2)
    strip = lambda h: [{k: v for k, v in r.items() if k != "wall_s"} for r in h]  # noqa: E731
    assert strip(a.history) == strip(b.history)


def hard_constrained_problem():
    """u(0) = u(1) = 0 built into the output: u = x (1 - x) N(x)."""
    return pb.Problem(
        "hard", pb.Box(x=(0.0, 1.0)), ["u"],
        [pb.Residual("pde", lambda p: p.u_xx + math.pi**2 * torch.sin(math.pi * p.x), points=128)],
        reference=lambda p: torch.sin(math.pi * p.x),
        transform=lambda p, u: p.x * (1 - p.x) * u,
    )


@pytest.mark.parametrize("arch", ["mlp", "fourier", "modified"])
def test_every_architecture_trains_a_hard_constrained_problem(arch):
    run = pb.train(hard_constrained_problem(), "fixed", steps=200, lbfgs=100, arch=arch, width=20, depth=2,
                   lr=1e-2, seed=0)
    assert run.predict(np.array([[0.0], [1.0]])) == pytest.approx(np.zeros((2, 1)), abs=1e-6)
    assert run.metrics["rel_l2"] < 2e-2, arch


def test_inverse_problem_recovers_a_coefficient():
    """u'' = -kappa pi^2 sin(pi x) with data from kappa = 2: the unknown is learned from observations."""
    x = np.linspace(0.05, 0.95, 19)[:, None]
    problem = pb.Problem(
        "inverse", pb.Box(x=(0.0, 1.0)), ["u"],
        [pb.Residual("pde", lambda p: p.u_xx + p.kappa * math.pi**2 * torch.sin(math.pi * p.x), points=128),
         pb.Boundary("ends", value=0.0, points=2),
         pb.Data("obs", x=x, values=2 * np.sin(math.pi * x))],
        unknowns={"kappa": 0.5},
    )
    run = pb.train(problem, "fixed", steps=300, lbfgs=200, width=20, depth=2, lr=1e-2, seed=0)
    assert run.metrics["unknowns"]["kappa"] == pytest.approx(2.0, rel=2e-2)
    assert run.history[0]["unknown/kappa"] == pytest.approx(0.5, abs=0.02)


def test_multi_output_problem_reports_error_per_output():
    """u' = v, v' = -u with u = sin, v = cos on [0, pi]: one residual returning two columns."""
    problem = pb.Problem(
        "osc", pb.Box(x=(0.0, math.pi)), ["u", "v"],
        [pb.Residual("pde", lambda p: [p.u_x - p.v, p.v_x + p.u], points=128),
         pb.Boundary("start", on=pb.Face(x=0.0), value=lambda p: torch.cat([0 * p.x, 1 + 0 * p.x], 1), points=1)],
        reference=lambda p: torch.cat([torch.sin(p.x), torch.cos(p.x)], 1),
    )
    run = pb.train(problem, "lra", steps=300, lbfgs=200, width=20, depth=2, lr=1e-2, seed=0)
    assert set(run.metrics["rel_l2_per_output"]) == {"u", "v"}
    assert max(run.metrics["rel_l2_per_output"].values()) < 1e-2


def test_resampling_draws_new_points():
    problem = pb.load_problem(POISSON)
    from pinnbal.batches import Batches
    from pinnbal.train import TrainConfig

    batches = Batches(problem, TrainConfig(seed=0), torch.device("cpu"), torch.float32)
    before = batches.items[0][1].detach().clone()
    batches.draw()
    assert not torch.equal(before, batches.items[0][1].detach())


def test_balancer_state_worth_seeing_is_logged_per_term(tmp_path):
    run = pb.train(POISSON, "uncertainty", steps=20, lbfgs=0, width=8, depth=1, out=tmp_path / "u", render=False)
    header = (tmp_path / "u" / "history.csv").read_text().splitlines()[0].split(",")
    assert {"log_var/pde", "log_var/ends"} <= set(header) and header[-1] == "rel_l2"
    assert run.history[-1]["weight/pde"] == pytest.approx(math.exp(-run.history[-1]["log_var/pde"]))


@pytest.mark.parametrize("settings", [{"dtype": "float64"}, {"sampler": "sobol"}, {"sampler": "lhs"},
                                      {"resample_every": 5}, {"jacobian": "batched"},
                                      {"then": "lbfgs:dtype=float32"}, {"then": "ssbfgs"}])
def test_engine_options_train(settings):
    run = pb.train(POISSON, "lra:every=2", steps=20, lbfgs=3, width=8, depth=1, seed=0, **settings)
    assert run.metrics["status"] == "completed" and math.isfinite(run.metrics["rel_l2"])
    dtype = next(run.model.parameters()).dtype
    # the second stage (3 iterations here) runs in float64 unless its spec keeps float32
    assert dtype == (torch.float32 if settings.get("then", "").endswith("float32") else torch.float64)
    if "jacobian" in settings:
        assert run.metrics["jacobian_strategy"] == "batched"
