"""Levenberg–Marquardt (``--then lm``): known minima, hand-computed steps, the residual Jacobian against
autograd on real problems, training and resumption, refusals."""


import numpy as np
import pytest
import torch

import pinnbal as pb
from pinnbal.batches import evaluate_terms
from pinnbal.cli import main
from pinnbal.loader import load_problem
from pinnbal.train import TrainConfig, Trainer, fit, least_squares
from pinnbal.train.levenberg import LevenbergMarquardt
from pinnbal.train.least_squares import SumOfSquares
from pinnbal.train.loop import FrozenPoints
from pinnbal.workflow import train


def solve(residuals, x0, iterations, damping=1e-3):
    """Run LM on ``residuals(x)`` (a function of a float64 vector) from ``x0``; J by autograd."""
    x = torch.nn.Parameter(torch.tensor(x0, dtype=torch.float64))
    opt = LevenbergMarquardt([x], max_iter=iterations, damping=damping)

    def closure(jacobian):
        at = x.detach()
        return residuals(at), (torch.autograd.functional.jacobian(residuals, at) if jacobian else None)

    loss = float(opt.step(closure))
    return x.detach(), loss, opt


def test_rosenbrock_as_residuals_reaches_its_minimum_to_1e_10():
    x, loss, _ = solve(lambda x: torch.stack([1 - x[0], 10 * (x[1] - x[0] ** 2)]), [-1.2, 1.0], 100)
    assert loss < 1e-10
    assert torch.allclose(x, torch.ones(2, dtype=torch.float64), atol=1e-5)


def test_an_ill_conditioned_quadratic_reaches_its_minimum_to_1e_10():
    scales = torch.logspace(0, 6, 20, dtype=torch.float64)  # condition number 1e6 of the Hessian
    target = torch.linspace(-1, 1, 20, dtype=torch.float64)
    _, loss, opt = solve(lambda x: scales.sqrt() * (x - target), [0.0] * 20, 100)
    assert loss < 1e-10 and opt.state[opt.params[0]]["iterations"] <= 100


def linear(m, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, n, generator=g, dtype=torch.float64), torch.randn(m, generator=g, dtype=torch.float64)


def test_without_damping_one_step_is_the_gauss_newton_step_of_a_linear_least_squares_problem():
    A, b = linear(30, 5)
    x0 = torch.full((5,), 0.3, dtype=torch.float64)
    x, _, _ = solve(lambda x: A @ x - b, x0.tolist(), 1, damping=0.0)
    # by hand: the normal equations AᵀA h = −Aᵀ(A x0 − b), so x0 + h is the least-squares solution
    h = torch.linalg.solve(A.T @ A, -A.T @ (A @ x0 - b))
    assert torch.allclose(x, x0 + h, rtol=0, atol=1e-12)
    assert torch.allclose(x, torch.linalg.lstsq(A, b[:, None]).solution[:, 0], atol=1e-12)


@pytest.mark.parametrize("shape", [(30, 5), (5, 30)])  # the primal (M > P) and the dual (M < P) systems
def test_a_damped_step_solves_the_damped_normal_equations(shape):
    A, b = linear(*shape)
    x0 = torch.zeros(shape[1], dtype=torch.float64)
    x, _, opt = solve(lambda x: A @ x - b, x0.tolist(), 1, damping=0.5)
    lam0 = 0.5 * float((A.T @ A).diagonal().max() if shape[0] >= shape[1] else (A @ A.T).diagonal().max())
    h = torch.linalg.solve(A.T @ A + lam0 * torch.eye(shape[1], dtype=torch.float64), A.T @ b)
    assert torch.allclose(x, x0 + h, atol=1e-12)  # accepted: a damped step on a linear problem always lowers F
    assert opt.state[opt.params[0]]["lam"] < lam0  # and the damping went down (gain ratio > 0)


def test_a_rejected_step_raises_the_damping_and_keeps_the_point():
    x = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    opt = LevenbergMarquardt([x], max_iter=1, damping=0.0)
    # the Gauss–Newton model of r = x³ overshoots from x = 2 only if the true F rises: make it rise
    calls = {"n": 0}

    def closure(jacobian):
        calls["n"] += 1
        at = x.detach()
        r = at**3 if calls["n"] == 1 else at**3 + 100.0  # the trial point evaluates worse than predicted
        return r, (3 * at[None] ** 2 if jacobian else None)

    opt.step(closure)
    state = opt.state[x]
    assert float(x.detach()) == 2.0 and state["iterations"] == 1 and state["nu"] == 4.0


def problem_with_everything():
    """A transform, an unknown, observations, a Neumann condition on a curved boundary, an L2 penalty."""
    hole = pb.Disk(x=0.0, y=0.0, radius=0.4)
    data_x = np.array([[0.6, 0.1], [-0.7, 0.5], [0.2, -0.8]])
    return pb.Problem(
        name="mixed", domain=pb.Box(x=(-1.0, 1.0), y=(-1.0, 1.0)) - hole, outputs=["u", "v"],
        unknowns={"k": 0.7},
        terms=[pb.Residual("pde", lambda p: [p.u_xx + p.k * p.v_yy - 1.0, p.u * p.v_x], points=64),
               pb.Boundary("hole", on=hole, residual=lambda p: p.u_n + p.nx * p.v, outputs=["u"], points=16,
                           weight=3.0),
               pb.Boundary("outer", on=pb.Face("x", "y"), value=0.0, points=16),
               pb.Data("obs", x=data_x, values=np.ones((3, 1)), outputs=["v"]),
               pb.L2(weight=1e-3)],
        transform=lambda p, u: torch.cat([u[:, :1] * (1 + p.y), u[:, 1:] + p.k * p.x], dim=1))


@pytest.mark.parametrize("source, balancer", [("problems/heat_inverse.py", "fixed"), ("problems/burgers.py", "fixed"),
                                              ("mixed", "lra"), ("mixed", "rba"), ("problems/plate_with_hole.py", "fixed")])
def test_the_sum_of_squares_is_the_second_stage_objective_and_its_jacobian_its_gradient(source, balancer):
    """‖ρ‖² = Σ_k w_k L_k (with frozen per-point multipliers) and 2 Jᵀρ = ∇(Σ_k w_k L_k) by autograd."""
    problem = problem_with_everything() if source == "mixed" else load_problem(source)
    cfg = TrainConfig(steps=3, lbfgs=0, width=8, depth=2, dtype="float64", then="lm")
    trainer = Trainer(problem, balancer, cfg)
    fit(trainer, progress_bar=False)
    trainer.frozen = trainer.freeze_points()
    weights = trainer.held_weights(trainer.balancer.fixed_weights(trainer.state)).to(torch.float64)
    objective = trainer.balancer if trainer.frozen is None else FrozenPoints(trainer.frozen)
    values = evaluate_terms(trainer.model, trainer.batches, objective, trainer.state)
    total = (weights * values.losses).sum()
    gradient = torch.cat([g.reshape(-1) for g in torch.autograd.grad(total, trainer.params)])
    rho, J = SumOfSquares(trainer, weights)(True)
    assert J.shape == (len(rho), sum(p.numel() for p in trainer.params)) == (least_squares.rows(trainer), J.shape[1])
    assert float(rho @ rho) == pytest.approx(float(total), rel=1e-12)
    assert torch.allclose(2 * J.T @ rho, gradient, rtol=1e-9, atol=1e-12 * float(gradient.abs().max()))


def test_lm_trains_a_problem_below_its_loss_at_the_switch_and_logs_as_lm():
    run = train("problems/poisson1d.py", "fixed", render=False, steps=200, lbfgs=40, then="lm", log_every=5)
    adam = [r for r in run.history if r["phase"] == "adam"][-1]
    second = [r for r in run.history if r["phase"] == "lm"]
    assert second and second[-1]["loss"] < 1e-3 * adam["loss"]
    assert run.metrics["rel_l2"] < 1e-3


@pytest.mark.parametrize("stop_after", [3, 9])
def test_resuming_before_or_inside_the_lm_stage_is_bit_exact(stop_after, tmp_path):
    from interruption import strip_wall, whole_and_resumed

    settings = {"steps": 6, "lbfgs": 8, "width": 8, "depth": 1, "log_every": 2, "checkpoint_every": 2, "then": "lm"}
    whole, resumed = whole_and_resumed("problems/poisson1d.py", "lra:every=2", settings, stop_after, tmp_path)
    assert strip_wall(resumed.history) == strip_wall(whole.history)
    assert resumed.metrics["rel_l2"] == whole.metrics["rel_l2"]


def test_lm_specs_parse_and_refuse_in_one_line():
    from pinnbal.errors import OptionError
    from pinnbal.train.stages import parse_stage

    assert parse_stage("lm:damping=0").damping == 0.0 and parse_stage("lm").damping == 1e-3
    for bad in ("lm:damping=-1", "lm:damping=x", "lm:history=5", "ssbfgs:damping=1"):
        with pytest.raises(OptionError, match="--then"):
            parse_stage(bad)


@pytest.mark.parametrize("args, message", [
    (["--then", "lm:damping=-1"], "damping=-1"),
    (["--then", "lm", "--derivatives", "autograd"], "needs forward derivatives"),
    (["--then", "lm", "--balancer", "meta:param=poly"], "reshapes the term losses"),
    (["--then", "ssbroyden", "--width", "1000", "--depth", "2"], "dense inverse Hessian"),
])
def test_refusals_are_one_line_exit_2_nothing_written(args, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "problems/poisson1d.py", *args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not out.exists()


def test_lm_refuses_a_loss_that_is_not_squares_and_a_jacobian_that_would_not_fit(tmp_path, capsys, monkeypatch):
    problem = tmp_path / "mae.py"
    problem.write_text("import pinnbal as pb\nproblem = pb.Problem(name='mae', domain=pb.Box(x=(0.0, 1.0)), "
                       "outputs=['u'], terms=[pb.Residual('pde', lambda p: p.u_xx + 1.0, points=32, loss='mae'), "
                       "pb.Boundary('ends', value=0.0, points=2)])\n")
    out = tmp_path / "run"
    assert main(["run", str(problem), "--then", "lm", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "loss='mae'" in err and not out.exists()
    monkeypatch.setattr(least_squares, "memory_limit", lambda: 10**6)
    assert main(["run", "problems/burgers.py", "--then", "lm", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "9216 residuals × 3297 parameters" in err and not out.exists()
