"""Checkpoints and exact resume, signals, the run-directory lock, a full disk."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import pinnbal as pb
import interruption
from interruption import strip_wall
from pinnbal.cli import main
from pinnbal.rundir import load_state
from pinnbal.rundir import CHECKPOINT
from pinnbal.workflow import resume

POISSON = "problems/poisson1d.py"
SETTINGS = dict(steps=40, lbfgs=20, width=8, depth=1, log_every=5, eval_every=10, checkpoint_every=10,
                resample_every=7, lr=1e-2, seed=4)


def interrupted_run(balancer, out, stop_after_step):
    """A run of the Poisson problem that receives a stop signal right after ``stop_after_step``."""
    return interruption.interrupted_run(POISSON, balancer, out, stop_after_step, SETTINGS)


@pytest.mark.parametrize("balancer", ["lra:every=3", "uncertainty", "relobralo", "lra:every=3+sa", "rba+rar:every=5"])
@pytest.mark.parametrize("stop_after_step", [17, 49])  # in the Adam phase; in the L-BFGS phase
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(balancer, stop_after_step, tmp_path):
    whole = pb.train(POISSON, balancer, out=tmp_path / "whole", render=False, **SETTINGS)
    interrupted_run(balancer, tmp_path / "cut", stop_after_step)
    metrics = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["steps"] <= stop_after_step + 10
    resumed = resume(tmp_path / "cut", render=False)
    assert strip_wall(resumed.history) == strip_wall(whole.history)
    assert resumed.metrics["rel_l2"] == whole.metrics["rel_l2"]
    assert json.loads((tmp_path / "cut" / "metrics.json").read_text())["status"] == "completed"
    saved = load_state(tmp_path / "cut" / CHECKPOINT)  # weights_only: only tensors, numbers, strings
    assert set(saved["balancer"]) == set(resumed_state_keys(balancer))


def resumed_state_keys(balancer):
    b = pb.balancers.make_balancer(balancer) if hasattr(pb, "balancers") else None
    from pinnbal.balancers import TermInfo, make_balancer

    b = make_balancer(balancer)
    return b.init([TermInfo("pde", "residual", 1.0), TermInfo("ends", "boundary", 1.0)]).keys()


def test_resume_refuses_a_completed_run_and_a_directory_without_checkpoint(tmp_path, capsys):

    pb.train(POISSON, "fixed", out=tmp_path / "done", render=False, **SETTINGS)
    assert main(["run", "--resume", str(tmp_path / "done")]) == 2
    assert "already completed" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["run", "--resume", str(tmp_path / "empty")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def tiny_problem(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text(
        "import math, torch\nimport pinnbal as pb\n"
        "problem = pb.Problem('tiny', pb.Box(x=(0.0, 1.0)), ['u'], [\n"
        "    pb.Residual('pde', lambda p: p.u_xx + math.pi**2 * torch.sin(math.pi * p.x), points=32),\n"
        "    pb.Boundary('ends', value=0.0, points=2)], reference=lambda p: torch.sin(math.pi * p.x))\n")
    return path


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_a_real_process_checkpoints_and_marks_the_run_interrupted(signum, code, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pinnbal.cli", "run", str(tiny_problem(tmp_path)), "--steps", "1000000", "--lbfgs",
         "0", "--width", "8", "--depth", "1", "--checkpoint-every", "1000000", "--quiet", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (out / "config.json").exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # let it train a little
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "--resume" in err and "Traceback" not in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["steps"] > 0
    saved = load_state(out / CHECKPOINT)
    assert saved["counters"]["next_step"] == metrics["adam_steps"]
    assert not (out / ".lock").exists()


def test_a_second_run_on_a_locked_directory_is_refused(tmp_path, capsys):

    out = tmp_path / "run"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (out / ".lock").write_text(str(sleeper.pid))
        args = ["run", POISSON, "--steps", "2", "--lbfgs", "0", "--quiet", "--no-render", "--force", "--out", str(out)]
        assert main(args) == 2
        assert "in use by another pinnbal run" in capsys.readouterr().err
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing written
    finally:
        sleeper.kill()
        sleeper.wait()
    assert main(args) == 0  # the owner is gone: a stale lock is taken over
    assert not (out / ".lock").exists()


def nan_problem(bad_calls):
    """1D Poisson whose residual is NaN on the given calls (counted per evaluation of the residual)."""
    import math

    import torch

    calls = {"n": 0}

    def residual(p):
        calls["n"] += 1
        r = p.u_xx + math.pi**2 * torch.sin(math.pi * p.x)
        return r * float("nan") if bad_calls(calls["n"]) else r

    return pb.Problem("nanny", pb.Box(x=(0.0, 1.0)), ["u"],
                      [pb.Residual("pde", residual, points=32), pb.Boundary("ends", value=0.0, points=2)],
                      reference=lambda p: torch.sin(math.pi * p.x))


def test_a_nan_at_one_step_is_rolled_back_and_training_continues():
    # call 1 is the start-up probe, call 2 finds the derivatives the residual reads; call 3 + s is Adam step s
    run = pb.train(nan_problem(lambda n: n == 3 + 15), "fixed", steps=40, lbfgs=0, width=8, depth=1, lr=1e-2)
    assert run.metrics["status"] == "completed"
    (event,) = run.metrics["events"]
    assert event["step"] == 15 and "pde" in event["event"] and "rolled back to step 0" in event["action"]
    assert "lr -> 0.005" in event["action"]
    import math

    assert all(math.isfinite(r["loss"]) for r in run.history)


def test_persistent_nans_end_the_run_as_diverged_with_finite_metrics(tmp_path, capsys):
    problem_file = tmp_path / "bad.py"
    problem_file.write_text(
        "import math, torch\nimport pinnbal as pb\ncalls = {'n': 0}\n"
        "def residual(p):\n"
        "    calls['n'] += 1\n"
        "    r = p.u_xx + math.pi**2 * torch.sin(math.pi * p.x)\n"
        "    return r * float('nan') if calls['n'] > 12 else r\n"
        "problem = pb.Problem('bad', pb.Box(x=(0.0, 1.0)), ['u'], [pb.Residual('pde', residual, points=32),\n"
        "    pb.Boundary('ends', value=0.0, points=2)], reference=lambda p: torch.sin(math.pi * p.x))\n")
    out = tmp_path / "run"
    rc = main(["run", str(problem_file), "--steps", "50", "--lbfgs", "0", "--width", "8", "--depth", "1",
               "--log-every", "1", "--quiet", "--no-render", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "diverged" in err[0] and "pde" in err[0]
    text = (out / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    metrics = json.loads(text)
    assert metrics["status"] == "diverged" and len(metrics["events"]) == 5
    assert "nan" not in (out / "history.csv").read_text().lower()


@pytest.mark.parametrize("delay", [0.8, 1.6])
def test_kill_9_leaves_only_whole_files_and_the_run_resumes(delay, tmp_path):
    """SIGKILL cannot be caught: what is on disk must still parse, and --resume must continue from it."""
    out = tmp_path / "run"
    problem = tiny_problem(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pinnbal.cli", "run", str(problem), "--steps", "100000", "--lbfgs", "0", "--width",
         "8", "--depth", "1", "--checkpoint-every", "50", "--log-every", "5", "--quiet", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (out / CHECKPOINT).exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(delay)
    proc.kill()
    proc.wait()
    json.loads((out / "config.json").read_text())
    saved = load_state(out / CHECKPOINT)
    assert saved["counters"]["next_step"] % 50 == 0 and saved["counters"]["next_step"] > 0
    # the stale lock of the killed process is taken over; a shorter budget finishes the run quickly
    config = json.loads((out / "config.json").read_text())
    config["train"]["steps"] = saved["counters"]["next_step"] + 20
    (out / "config.json").write_text(json.dumps(config))
    run = resume(out, render=False)
    assert run.metrics["status"] == "completed" and run.metrics["adam_steps"] == config["train"]["steps"]
    steps = [r["step"] for r in run.history]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # no row twice after the resume


def disk_full_for(monkeypatch, names, times=1):
    """Make the next ``times`` atomic writes of files called ``names`` fail with ENOSPC at fsync."""
    import errno

    import pinnbal.storage as storage

    real_fsync, left = os.fsync, {"n": times}

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        if left["n"] > 0 and any(os.path.basename(target).startswith(f".{n}.") for n in names):
            left["n"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(storage.os, "fsync", fsync)


def test_a_full_disk_at_a_checkpoint_is_logged_and_training_goes_on(tmp_path, monkeypatch):
    out = tmp_path / "run"
    disk_full_for(monkeypatch, [CHECKPOINT])  # the first checkpoint (step 10) fails, the next ones succeed
    run = pb.train(POISSON, "lra:every=3", out=out, render=False, **SETTINGS)
    assert run.metrics["status"] == "completed"
    event = run.metrics["events"][0]
    assert event["step"] == 9 and "No space left on device" in event["event"] and "intact" in event["action"]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind
    assert load_state(out / CHECKPOINT)["counters"]["next_step"] == SETTINGS["steps"]


def test_a_full_disk_at_the_end_is_one_line_exit_1_and_the_run_resumes_once_space_is_back(tmp_path, monkeypatch,
                                                                                           capsys):
    out = tmp_path / "run"
    disk_full_for(monkeypatch, ["metrics.json"])
    rc = main(["run", POISSON, "--balancer", "lra:every=3", "--steps", "40", "--lbfgs", "0", "--width", "8",
               "--depth", "1", "--checkpoint-every", "10", "--quiet", "--no-render", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "No space left on device" in err[0] and "metrics.json" in err[0]
    assert not (out / "metrics.json").exists() and not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert load_state(out / CHECKPOINT)["counters"]["next_step"] == 40  # the last checkpoint is whole
    monkeypatch.undo()
    assert main(["run", "--resume", str(out), "--quiet", "--no-render"]) == 0
    assert json.loads((out / "metrics.json").read_text())["status"] == "completed"
