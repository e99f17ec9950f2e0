"""The second optimiser stage: quasi-Newton methods with known minima, the float64 switch, resumption, bad specs."""

import pytest
import torch

from pinnbal.cli import main
from pinnbal.errors import OptionError
from pinnbal.train.quasi_newton import QuasiNewton
from pinnbal.train.stages import Stage, next_chunk, parse_stage, redraw_due
from pinnbal.train import TrainConfig, Trainer, fit
from pinnbal.workflow import train


def minimise(f, x0, update, iterations):
    x = torch.nn.Parameter(torch.tensor(x0, dtype=torch.float64))
    opt = QuasiNewton([x], update=update, max_iter=iterations)

    def closure():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss.detach()

    loss = float(opt.step(closure))
    return x.detach(), loss, opt


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


@pytest.mark.parametrize("update", ["bfgs", "ssbfgs", "ssbroyden"])
def test_rosenbrock_reaches_its_minimum_to_1e_10(update):
    x, loss, _ = minimise(rosenbrock, [-1.2, 1.0], update, 200)
    assert loss < 1e-10
    assert torch.allclose(x, torch.ones(2, dtype=torch.float64), atol=1e-5)


@pytest.mark.parametrize("update", ["bfgs", "ssbfgs", "ssbroyden"])
def test_an_ill_conditioned_quadratic_reaches_its_minimum_to_1e_10(update):
    scales = torch.logspace(0, 6, 20, dtype=torch.float64)  # condition number 1e6
    target = torch.linspace(-1, 1, 20, dtype=torch.float64)
    x, loss, opt = minimise(lambda x: 0.5 * (scales * (x - target) ** 2).sum(), [0.0] * 20, update, 300)
    assert loss < 1e-10
    assert opt.state[opt.params[0]]["iterations"] <= 300


@pytest.mark.parametrize("update", ["bfgs", "ssbfgs", "ssbroyden"])
def test_the_carried_product_h_g_equals_the_inverse_hessian_times_the_gradient(update):
    """Each iteration carries H₊ g₊ from the low-rank update instead of a pass over H₊ (the next direction):
    it must equal the product taken afresh, and the secant equation H₊ y = s must hold with H y = H g₊ − H g."""
    scales = torch.logspace(0, 3, 12, dtype=torch.float64)
    x = torch.nn.Parameter(torch.linspace(-2, 2, 12, dtype=torch.float64))
    opt = QuasiNewton([x], update=update, max_iter=1)

    def closure():
        opt.zero_grad()
        loss = 0.25 * (scales * x ** 4).sum() + 0.5 * (scales * x ** 2).sum()
        loss.backward()
        return loss.detach()

    state = opt.state[x]
    for _ in range(8):
        x0, g0 = (state["x"].clone(), state["g"].clone()) if state else (None, None)
        opt.step(closure)
        H, Hg = state["H"], state["Hg"]
        assert torch.allclose(Hg, H @ state["g"], rtol=1e-10, atol=1e-14)
        if x0 is not None:
            s, y = state["x"] - x0, state["g"] - g0
            assert torch.allclose(H @ y, s, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("update", ["bfgs", "ssbfgs", "ssbroyden"])
def test_a_changed_objective_is_measured_afresh_and_keeps_the_inverse_hessian(update):
    """resample=: the same quadratic form with a moved minimum (what new points do to a converged fit)."""
    scales = torch.logspace(0, 3, 10, dtype=torch.float64)
    target = [torch.zeros(10, dtype=torch.float64)]
    x = torch.nn.Parameter(torch.ones(10, dtype=torch.float64))
    opt = QuasiNewton([x], update=update, max_iter=60)

    def closure():
        opt.zero_grad()
        loss = 0.5 * (scales * (x - target[0]) ** 2).sum()
        loss.backward()
        return loss.detach()

    assert float(opt.step(closure)) < 1e-12
    H = opt.state[x]["H"].clone()
    target[0] = torch.linspace(-1, 1, 10, dtype=torch.float64)
    opt.objective_changed()
    assert "f" not in opt.state[x] and torch.equal(opt.state[x]["H"], H)
    opt.param_groups[0]["max_iter"] = 1
    opt.step(closure)  # the first iteration after the change starts from the new f and g at the same x
    assert float(opt.state[x]["f"]) < 0.5 * float((scales * target[0] ** 2).sum())
    opt.param_groups[0]["max_iter"] = 60
    assert float(opt.step(closure)) < 1e-12
    assert torch.allclose(x.detach(), target[0], atol=1e-6)


@pytest.mark.parametrize("first_step", ["adaptive", "unit"])
@pytest.mark.parametrize("update", ["bfgs", "ssbfgs", "ssbroyden"])
def test_the_first_trial_step_is_one_after_a_unit_step_and_from_the_last_decrease_after_a_shorter_one(update,
                                                                                                   first_step):
    """The first point the line search evaluates is x + α₀ d: α₀ = 1 on the first iteration, after a redraw and
    after a unit step; α₀ = min(1, 1.01 · 2 (f − f₋₁) / (g·d)) (Nocedal & Wright eq. 3.60) after a shorter step
    (``first_step=unit``: α₀ = 1 throughout).  Every evaluation is counted."""
    x = torch.nn.Parameter(torch.tensor([-1.2, 1.0], dtype=torch.float64))
    opt = QuasiNewton([x], update=update, max_iter=1, first_step=first_step)
    visited = []

    def closure():
        opt.zero_grad()
        visited.append(x.detach().clone())
        loss = rosenbrock(x)
        loss.backward()
        return loss.detach()

    opt.step(closure)
    state, seen = opt.state[x], set()
    for _ in range(40):
        if float(state["f"]) < 1e-20:
            break
        x0, f, g, H = state["x"].clone(), float(state["f"]), state["g"].clone(), state["H"].clone()
        shortened = float(state["alpha"]) < 1.0 and first_step == "adaptive"
        d = -(H @ g)
        alpha0 = min(1.0, 1.01 * 2 * (f - float(state["f_previous"])) / float(g @ d)) if shortened else 1.0
        visited.clear()
        opt.step(closure)
        assert torch.allclose(visited[0], x0 + alpha0 * d, rtol=0, atol=1e-12)
        seen.add((shortened, alpha0 < 1.0))
    # unit steps and shortened ones, each followed by its rule
    assert {(False, False), (True, True)} <= seen if first_step == "adaptive" else seen == {(False, False)}
    evaluations = state["evaluations"]
    opt.objective_changed()
    assert "f_previous" not in state and "alpha" not in state
    x0, H, visited[:] = state["x"].clone(), state["H"].clone(), []
    opt.step(closure)  # f and g afresh at x, then the first trial at α = 1 along −H g
    assert torch.equal(visited[0], x0)
    assert torch.allclose(visited[1], x0 - H @ rosenbrock_gradient(x0), rtol=0, atol=1e-12)
    assert state["evaluations"] == evaluations + len(visited)


def rosenbrock_gradient(x):
    """∇ of the Rosenbrock function at x."""
    return torch.stack([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])


def test_the_chunks_stop_at_each_redraw_and_redraws_come_every_n_iterations():
    stage = Stage("ssbfgs", resample=5)
    assert [next_chunk(stage, done, 12, 4) for done in (0, 4, 5, 9, 10)] == [4, 1, 4, 1, 2]
    assert [redraw_due(stage, done) for done in (0, 4, 5, 10)] == [False, False, True, True]
    assert next_chunk(Stage("ssbfgs"), 9, 12, 4) == 3 and not redraw_due(Stage("ssbfgs"), 10)


@pytest.mark.parametrize("then", ["ssbroyden:resample=4", "lm:resample=4", "lbfgs:resample=4"])
def test_resample_in_the_second_stage_draws_new_points_and_keeps_training(then):
    from pinnbal.loader import load_problem

    trainer = Trainer(load_problem("problems/poisson1d.py"), "fixed", TrainConfig(**small(then=then, lbfgs=0)))
    fit(trainer, progress_bar=False)
    before = [None if x is None else x.detach().clone() for _, x, _ in trainer.batches.items]
    trainer.config.lbfgs = 8
    run = fit(trainer, progress_bar=False)
    after = [x for _, x, _ in trainer.batches.items]
    residual = next(k for k, (t, _, _) in enumerate(trainer.batches.items) if t.kind == "residual")
    assert after[residual].dtype == torch.float64 and after[residual].shape == before[residual].shape
    assert not torch.equal(after[residual], before[residual].double())
    assert run.metrics["status"] == "completed" and trainer.lbfgs_done == 8


@pytest.mark.parametrize("update", ["bfgs", "ssbfgs", "ssbroyden"])
def test_each_update_satisfies_the_secant_equation_and_stays_positive_definite(update):
    g = torch.Generator().manual_seed(0)
    opt = QuasiNewton([torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))], update=update)
    H = torch.zeros(0, dtype=torch.float64)
    for _ in range(4):
        grad = torch.randn(5, generator=g, dtype=torch.float64)
        d = -(H @ grad) if H.numel() else -grad
        alpha = 0.5
        s = alpha * d
        A = torch.diag(torch.tensor([1.0, 2.0, 5.0, 10.0, 50.0], dtype=torch.float64))
        y = A @ s  # the curvature of a quadratic along s
        H, _ = opt.updated(H, s, y, alpha, grad)
        assert torch.allclose(H @ y, s, atol=1e-12)  # H₊ y = s
        assert torch.allclose(H, H.T) and float(torch.linalg.eigvalsh(H).min()) > 0


def test_ssbfgs_scales_by_the_capped_oren_luenberger_factor():
    opt = QuasiNewton([torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))], update="ssbfgs")
    plain = QuasiNewton([torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))], update="bfgs")
    H = torch.eye(2, dtype=torch.float64)
    grad = torch.tensor([-1.0, 0.0], dtype=torch.float64)  # d = -H g = (1, 0)
    s, y, alpha = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.25, 0.0], dtype=torch.float64), 1.0
    # s·B s = -alpha s·g = 1, y·s = 0.25: tau = 0.25; the old part of H is divided by tau, the new term is not
    scaled, unscaled = opt.updated(H.clone(), s, y, alpha, grad)[0], plain.updated(H.clone(), s, y, alpha, grad)[0]
    assert scaled[1, 1] == pytest.approx(4.0) and unscaled[1, 1] == pytest.approx(1.0)
    assert scaled[0, 0] == pytest.approx(4.0) and unscaled[0, 0] == pytest.approx(4.0)  # 1/(y·s) s sᵀ along s


def test_ssbroyden_picks_a_member_between_its_bounds_and_reduces_to_ssbfgs_when_they_meet():
    """θ is clamped to [θ⁻, θ⁺]; φ = (1 − θ)/(1 + aθ) follows; a = 0 (b h = 1) leaves only the BFGS member."""
    opt = QuasiNewton([torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))], update="ssbroyden")
    for ys, sBs, yHy in [(1.0, 2.0, 3.0), (1.0, 0.5, 4.0), (2.0, 8.0, 1.0), (1.0, 1.0, 50.0)]:
        b, h = sBs / ys, yHy / ys
        a = b * h - 1
        c = (a / (1 + a)) ** 0.5
        rho_minus = min(1.0, h * (1 - c))
        theta_low, theta_high = (rho_minus - 1) / a, 1 / rho_minus
        tau, phi = opt.scaling(ys, sBs, yHy, 3)
        theta = (1 - phi) / (1 + a * phi)  # φ = (1 − θ)/(1 + aθ) solved for θ
        assert theta_low - 1e-12 <= theta <= theta_high + 1e-12
        assert 0 < tau and phi > -1 / a  # positive definite
    assert opt.scaling(1.0, 2.0, 0.5, 3) == (0.5, 1.0)  # b h = 1: the self-scaled BFGS update


def test_stage_specs_parse_and_refuse_in_one_line():
    assert parse_stage("lbfgs") == Stage("lbfgs", "float64", 50)
    assert parse_stage("ssbfgs:dtype=float32") == Stage("ssbfgs", "float32")
    assert parse_stage("lbfgs:history=100").history == 100
    assert parse_stage("ssbroyden:resample=500,iters=3000") == Stage("ssbroyden", iters=3000, resample=500)
    assert parse_stage("bfgs:first_step=unit").first_step == "unit"
    for bad in ("nope", "bfgs:history=3", "lbfgs:dtype=float16", "lbfgs:history=0", "ssbfgs:iters",
                "ssbfgs:resample=often", "lm:resample=-5", "ssbfgs:first_step=small", "lbfgs:first_step=unit"):
        with pytest.raises(OptionError, match="--then"):
            parse_stage(bad)


def test_bad_then_and_a_network_too_large_for_a_dense_hessian_are_one_line_exit_2_nothing_written(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "problems/poisson1d.py", "--then", "nope", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown optimiser 'nope'" in err and not out.exists()
    assert main(["run", "problems/poisson1d.py", "--then", "ssbfgs", "--width", "1000", "--depth", "2",
                 "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dense inverse Hessian" in err and "use --then lbfgs" in err
    assert not out.exists()


def small(**settings):
    return {"steps": 6, "lbfgs": 8, "width": 8, "depth": 1, "log_every": 2, "checkpoint_every": 4} | settings


@pytest.mark.parametrize("then", ["lbfgs", "ssbfgs"])
def test_the_second_stage_runs_in_float64_and_keeps_balancer_state_and_unknowns(then):
    from pinnbal.loader import load_problem

    trainer = Trainer(load_problem("problems/heat_inverse.py"), "lra:every=2", TrainConfig(**small(then=then, lbfgs=0)))
    fit(trainer, progress_bar=False)
    at_switch = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    state = {k: v.clone() for k, v in trainer.state.items()}
    trainer.switch_precision()  # the cast is exact: every float32 value is a float64 value
    assert all(torch.equal(v.double(), at_switch[k].double()) for k, v in trainer.model.state_dict().items())
    trainer.config.lbfgs = 8
    run = fit(trainer, progress_bar=False)
    assert all(torch.equal(v, state[k]) for k, v in trainer.state.items() if k != "skipped")
    assert all(p.dtype == torch.float64 for p in trainer.model.parameters())
    assert all(x.dtype == torch.float64 for _, x, _ in trainer.batches.items if x is not None)
    phases = [row["phase"] for row in run.history]
    assert phases[0] == "adam" and phases[-1] == then
    adam_last = [r for r in run.history if r["phase"] == "adam"][-1]
    second = [r for r in run.history if r["phase"] == then]
    # the balancer's final weights carry over unchanged
    assert all(r["weight/obs"] == adam_last["weight/obs"] for r in second)
    assert second[-1]["loss"] < adam_last["loss"]
    # the line searches' loss-and-gradient evaluations: the first one at the switch, at least one per iteration
    assert run.metrics["second_stage_evaluations"] > run.metrics["lbfgs_iterations"] == 8


@pytest.mark.parametrize("then, stop_after", [("ssbfgs", 3), ("ssbfgs", 9), ("lbfgs", 9),
                                             ("ssbroyden:resample=4", 9), ("ssbroyden:resample=4", 11),
                                             ("lm:resample=4", 11)])
def test_resuming_on_either_side_of_the_float64_switch_is_bit_exact(then, stop_after, tmp_path):
    """Stopped (as by SIGINT) in the float32 Adam stage or inside the float64 second stage, then resumed."""
    from interruption import interrupted_run, strip_wall
    from pinnbal.workflow import resume

    settings = small(then=then, checkpoint_every=2)
    whole = train("problems/poisson1d.py", "lra:every=2", out=tmp_path / "whole", render=False, **settings)
    out = tmp_path / "cut"
    trainer = interrupted_run("problems/poisson1d.py", "lra:every=2", out, stop_after, settings)
    assert trainer.dtype == (torch.float64 if stop_after >= 6 else torch.float32)
    resumed = resume(out, render=False)
    assert strip_wall(resumed.history) == strip_wall(whole.history)
    assert resumed.metrics["rel_l2"] == whole.metrics["rel_l2"]


def test_a_time_budget_ends_adam_at_half_and_the_second_stage_at_the_whole(monkeypatch):
    """A fake clock: every Adam step and every second-stage chunk takes one 'second'."""
    import time

    clock = iter(range(10**6))
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(clock)))
    run = train("problems/poisson1d.py", "fixed", render=False, **small(steps=100, lbfgs=100, budget=20.0))
    phases = [row["phase"] for row in run.history]
    adam_steps, second = run.metrics["adam_steps"], run.metrics["lbfgs_iterations"]
    assert 0 < adam_steps < 100 and 0 < second < 100  # both stages stopped by the clock, not their counts
    assert run.metrics["train_s"] >= 20.0 and run.metrics["status"] == "completed"
    events = [e["event"] for e in run.metrics["events"]]
    assert sum("time budget" in e for e in events) == 2
    assert phases[-1] == "ssbfgs" and run.history[-1]["rel_l2"] is not None  # auto: a small net; evaluated last
    steps = [row["step"] for row in run.history]
    assert steps == sorted(steps) and steps[-1] == adam_steps + second - 1  # no gap after a short Adam stage


def test_a_negative_budget_is_one_line_exit_2(tmp_path, capsys):
    assert main(["run", "problems/poisson1d.py", "--budget", "-1", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "--budget -1.0" in capsys.readouterr().err and not (tmp_path / "r").exists()
