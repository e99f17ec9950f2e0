"""Time-marching (``--time-windows N``): window problems, the start of each window, routing, resumption, refusals."""

import math

import numpy as np
import pytest
import torch

from pinnbal.cli import main
from pinnbal.loader import load_problem
from pinnbal.nets import routed
from pinnbal.rundir import read_run
from pinnbal.train import TrainConfig, Trainer
from pinnbal.train.windows import WindowStart
from pinnbal.workflow import train

SMALL = {"steps": 6, "lbfgs": 4, "width": 8, "depth": 2, "log_every": 2, "checkpoint_every": 2}


def test_each_window_trains_on_its_slice_of_time_and_its_own_observations():
    trainer = Trainer(load_problem("problems/heat_inverse.py"), "fixed", TrainConfig(**SMALL, time_windows=4))
    full = trainer.full_problem
    k = full.domain.names.index("t")
    seen = 0
    for i in range(4):
        if i:
            trainer.enter_window(i)
        lo, hi = trainer.problem.domain.low[k], trainer.problem.domain.high[k]
        assert (lo, hi) == pytest.approx((i / 4 * full.domain.high[k], (i + 1) / 4 * full.domain.high[k]))
        for term, x, _ in trainer.batches.items:
            if x is not None:
                t = x.detach()[:, k].numpy()
                assert t.min() >= lo - 1e-6 and t.max() <= hi + 1e-6, term.name
        starts = [t for t in trainer.problem.terms if isinstance(t, WindowStart)]
        assert len(starts) == (i > 0) * sum(t.kind == "initial" for t in full.terms)  # none here: data set it
        seen += sum(len(x) for t, x, _ in trainer.batches.items if t.kind == "data")
    assert seen == len(full.terms[[t.kind for t in full.terms].index("data")].x)  # every observation, once


def test_a_window_starts_from_the_previous_windows_prediction_at_the_boundary():
    """Window 2's initial terms target window 1's values of their own residuals (u − g: window 1's prediction;
    u_t: its velocity), so window 2's start residual is u₂ − u₁ there."""
    problem = load_problem("problems/wave1d.py")  # u(x, 0) = g(x) and u_t(x, 0) = 0: value and derivative
    trainer = Trainer(problem, "fixed", TrainConfig(**SMALL, time_windows=2, dtype="float64"))
    run_first_window(trainer)
    trainer.enter_window(1)
    a = 0.5
    network = trainer.model.network
    for term, x, values in trainer.batches.items:
        if not isinstance(term, WindowStart):
            continue
        assert torch.allclose(x.detach()[:, 1], torch.full((len(x),), a, dtype=x.dtype))
        xt = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            network.active = 0
            previous = term.original.residual(trainer.model.points(xt, "test"), None)
            network.active = 1
            p = trainer.model.points(xt, "test")
            start = term.residual(p, values)
        assert torch.allclose(values, previous.detach(), rtol=0, atol=1e-12)
        if term.name == "ic":  # a value condition: the target is window 1's prediction itself
            g = torch.sin(math.pi * xt[:, :1]) + 0.5 * torch.sin(4 * math.pi * xt[:, :1])
            with torch.no_grad():
                network.active = 0
                u1 = trainer.model(xt)
                network.active = 1
                u2 = trainer.model(xt)
            assert torch.allclose(values + g, u1, atol=1e-12)
            assert torch.allclose(start.detach(), u2 - u1, atol=1e-12)


def run_first_window(trainer):
    from pinnbal.train.callbacks import Checkpoints, History, RollBack
    from pinnbal.train.loop import adam_stage, second_stage

    history, checkpoints = History(trainer, False, 0.0), Checkpoints(0.0)
    adam_stage(trainer, history, checkpoints, RollBack())
    second_stage(trainer, history, checkpoints)
    history.close()


def test_predictions_route_each_point_to_its_windows_network():
    run = train("problems/advection.py", "fixed", render=False, **SMALL, time_windows=3)
    network = run.model.network
    x = np.array([[1.0, 0.1], [2.0, 0.5], [3.0, 0.9], [0.5, 1.0]])  # windows 0, 1, 2 and the end of 2
    before = run.predict(x)
    with torch.no_grad():
        for p in network.nets[1].parameters():
            p.add_(0.5)
    after = run.predict(x)
    assert np.array_equal(before[[0, 2, 3]], after[[0, 2, 3]]) and not np.allclose(before[1], after[1])
    with routed(network):
        assert network.active is None
    assert run.metrics["time_windows"] == 3 and run.metrics["steps"] == 3 * (6 + 4)
    steps = [r["step"] for r in run.history]
    assert steps == sorted(steps) and steps[-1] == 3 * (6 + 4) - 1


def test_a_windowed_run_directory_rebuilds_its_model(tmp_path):
    run = train("problems/advection.py", "fixed", out=tmp_path / "run", render=False, **SMALL, time_windows=2)
    _, model = read_run(tmp_path / "run").load_model()
    x = np.random.default_rng(0).uniform([0, 0], [2 * math.pi, 1], size=(50, 2))
    with torch.no_grad():
        rebuilt = model(torch.as_tensor(x)).numpy()
    assert np.allclose(rebuilt, run.predict(x), atol=1e-6)


@pytest.mark.parametrize("stop_after", [4, 12, 17])  # window 1's Adam, window 2's Adam, window 2's second stage
def test_resuming_anywhere_in_the_march_is_bit_exact(stop_after, tmp_path):
    from interruption import strip_wall, whole_and_resumed

    settings = SMALL | {"time_windows": 2}
    whole, resumed = whole_and_resumed("problems/heat_inverse.py", "lra:every=2", settings, stop_after, tmp_path)
    assert strip_wall(resumed.history) == strip_wall(whole.history)
    assert resumed.metrics["rel_l2"] == whole.metrics["rel_l2"]
    assert resumed.metrics["unknowns"] == whole.metrics["unknowns"]


@pytest.mark.parametrize("problem, windows, message", [
    ("problems/advection.py", "0", "--time-windows 0"),
    ("problems/poisson1d.py", "3", "no time coordinate"),
])
def test_bad_windows_are_one_line_exit_2_nothing_written(problem, windows, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", problem, "--time-windows", windows, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not out.exists()


def test_forward_derivatives_of_the_window_in_training_equal_autograd():
    from pinnbal import forward

    trainer = Trainer(load_problem("problems/wave1d.py"), "fixed", TrainConfig(**SMALL, time_windows=3,
                                                                                dtype="float64", arch="modified"))
    trainer.enter_window(1)
    x = torch.as_tensor(np.random.default_rng(1).uniform([0, 1 / 3], [1, 2 / 3], size=(20, 2))).requires_grad_(True)
    keys = {(0, (0,)), (0, (1,)), (0, (0, 0)), (0, (1, 1)), (0, (0, 1))}
    by_autograd = trainer.model.points(x, "test")
    by_forward = forward.forward_points(trainer.model, x, "test", keys, strict=True)
    for name in ("u", "u_x", "u_t", "u_xx", "u_tt", "u_xt"):
        want, got = getattr(by_autograd, name), getattr(by_forward, name)
        assert torch.allclose(got, want, rtol=1e-10, atol=1e-10), name
