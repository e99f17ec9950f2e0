"""The forward derivative engine against nested autograd on every shipped problem, and through training."""
from pathlib import Path

import pytest
import torch

import pinnbal as pb
from pinnbal.batches import Batches, evaluate_terms
from pinnbal.errors import OptionError
from pinnbal.jacobian import jacobian_loop
from pinnbal.nets import PINNModel
from pinnbal.train import TrainConfig, Trainer

PROBLEMS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "problems").glob("*.py"))


def trainer(path, arch="mlp", derivatives="forward", dtype="float64", **extra):
    config = TrainConfig(steps=1, lbfgs=0, width=8, depth=2, arch=arch, dtype=dtype, derivatives=derivatives,
                         seed=3, **extra)
    return Trainer(pb.load_problem(path), "fixed", config)


@pytest.mark.parametrize("name", PROBLEMS)
def test_every_shipped_problem_gets_autograds_residuals_and_jacobian(name):
    path = Path("problems") / f"{name}.py"
    for arch in (("mlp", "modified", "fourier") if name in ("burgers", "plate_with_hole") else ("mlp",)):
        ours, theirs = trainer(path, arch), trainer(path, arch, derivatives="autograd")
        assert any(k is not None for k in [ours.batches.derivative_keys(ours.model, t.shares or t.name)
                                          for t in ours.problem.terms if t.has_points])
        a, b = evaluate_terms(ours.model, ours.batches), evaluate_terms(theirs.model, theirs.batches)
        for term, ra, rb in zip(ours.problem.terms, a.residuals, b.residuals):
            if ra is not None:
                torch.testing.assert_close(ra, rb, rtol=1e-10, atol=1e-10 * (1 + float(rb.detach().abs().max())),
                                           msg=f"{name} {arch} {term.name}")
        ja, jb = jacobian_loop(a.terms, ours.params), jacobian_loop(b.terms, theirs.params)
        torch.testing.assert_close(ja, jb, rtol=1e-9, atol=1e-10 * (1 + float(jb.abs().max())))


def test_float32_agrees_to_single_precision():
    ours, theirs = (trainer("problems/burgers.py", dtype="float32", derivatives=d) for d in ("forward", "autograd"))
    a, b = evaluate_terms(ours.model, ours.batches), evaluate_terms(theirs.model, theirs.batches)
    torch.testing.assert_close(a.residuals[0], b.residuals[0], rtol=1e-5, atol=1e-5)


def test_training_forward_and_autograd_give_the_same_history_to_rounding():
    runs = [pb.train("problems/poisson1d.py", "lra", steps=50, lbfgs=0, width=16, depth=2, dtype="float64",
                     derivatives=d, log_every=5, seed=1) for d in ("forward", "autograd")]
    assert len(runs[0].history) == len(runs[1].history) > 5
    for a, b in zip(*(r.history for r in runs)):
        for key in ("loss", "weight/ends"):
            assert b[key] == pytest.approx(a[key], rel=1e-8), (a["step"], key)


def test_same_seed_forward_runs_are_bit_identical():
    runs = [pb.train("problems/burgers.py", "lra", steps=15, lbfgs=5, width=8, depth=2, log_every=5)
            for _ in range(2)]
    rows = [[{k: v for k, v in row.items() if k != "wall_s"} for row in r.history] for r in runs]
    assert rows[0] == rows[1] and len(rows[0]) >= 4
    assert runs[0].metrics["rel_l2"] == runs[1].metrics["rel_l2"]


class OwnForward(PINNModel):
    """A user's model with a forward of its own: the engine has no rule for it."""

    def forward(self, x):
        return super().forward(x)


def test_a_network_without_rules_falls_back_to_autograd_with_one_line(capsys):
    problem = pb.load_problem("problems/poisson1d.py")
    base = trainer("problems/poisson1d.py")
    model = OwnForward(problem, base.model.network)
    auto = Batches(problem, TrainConfig(derivatives="auto"), torch.device("cpu"), torch.float64)
    assert auto.derivative_keys(model, "pde") is None
    err = capsys.readouterr().err
    assert "derivatives by autograd" in err and "OwnForward" in err and err.count("\n") == 1
    strict = Batches(problem, TrainConfig(derivatives="forward"), torch.device("cpu"), torch.float64)
    with pytest.raises(OptionError, match="--derivatives forward: .*use --derivatives autograd"):
        strict.derivative_keys(model, "pde")


@pytest.mark.parametrize("flag, value", [("--derivatives", "sideways"), ("--compile", "maybe")])
def test_bad_engine_flags_are_one_line_and_exit_2(flag, value, tmp_path, capsys):
    from pinnbal.cli import main

    assert main(["run", "problems/poisson1d.py", flag, value, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"{flag} {value}: choose one of" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()
