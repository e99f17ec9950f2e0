"""Terms that share points (points="other"): one batch, one forward pass, separate terms for the balancers."""
from __future__ import annotations

import math

import pytest
import torch

import pinnbal as pb
from pinnbal.batches import Batches, evaluate_terms
from pinnbal.cli import main
from pinnbal.train import TrainConfig, Trainer
from pinnbal.workflow import resume

STOKES = '''
import math
import torch
import pinnbal as pb

# steady Stokes-like system with the closed form u = sin(pi x) cos(pi y), v = -cos(pi x) sin(pi y), q = 0
def momentum_x(p):
    return -(p.u_xx + p.u_yy) - 2 * math.pi**2 * p.u

def momentum_y(p):
    return -(p.v_xx + p.v_yy) - 2 * math.pi**2 * p.v

def continuity(p):
    return p.u_x + p.v_y

exact = lambda p: torch.cat([torch.sin(math.pi * p.x) * torch.cos(math.pi * p.y),
                             -torch.cos(math.pi * p.x) * torch.sin(math.pi * p.y)], dim=1)

problem = pb.Problem(
    name="stokes_shared",
    domain=pb.Box(x=(0.0, 1.0), y=(0.0, 1.0)),
    outputs=["u", "v"],
    terms=[
        pb.Residual("momentum_x", momentum_x, points=256),
        pb.Residual("momentum_y", momentum_y, points="momentum_x"),
        pb.Residual("continuity", continuity, points=SHARED),
        pb.Boundary("walls", value=exact, points=128),
        pb.Boundary("flux", residual=lambda p: p.u_x + p.v_y, points="walls"),
    ],
    reference=exact,
)
'''
SMALL = dict(steps=6, lbfgs=3, width=8, depth=2, log_every=1, eval_every=3, checkpoint_every=3, seed=4)


@pytest.fixture
def stokes(tmp_path):
    def write(shared='"momentum_y"', name="stokes.py"):
        path = tmp_path / name
        path.write_text(STOKES.replace("SHARED", shared))
        return path
    return write


def test_shared_terms_hold_one_tensor_and_get_one_forward_pass(stokes):
    problem = pb.load_problem(stokes())
    assert [t.shares for t in problem.terms] == [None, "momentum_x", "momentum_x", None, "walls"]
    assert [t.points for t in problem.terms] == [256, 256, 256, 128, 128]
    trainer = Trainer(problem, "fixed", TrainConfig(**SMALL, derivatives="autograd"))
    x = [x for _, x, _ in trainer.batches.items]
    assert x[1] is x[0] and x[2] is x[0] and x[4] is x[3] and x[0].requires_grad and x[3].requires_grad
    calls = []
    trainer.model.network.register_forward_hook(lambda *args: calls.append(1))
    values = evaluate_terms(trainer.model, trainer.batches)
    assert len(calls) == 2  # one forward per distinct batch: the interior and the walls
    # carried forward, one propagation per distinct batch too: the derivatives are found per owner
    forward = Trainer(problem, "fixed", TrainConfig(**SMALL, derivatives="forward"))
    assert set(forward.batches.keys) == {"momentum_x", "walls"}
    # each term's loss is its own residual on the shared points
    p = pb.Points(x[0], ["x", "y"], ["u", "v"], trainer.model, {}, "check")
    torch.testing.assert_close(values.terms[2], (p.u_x + p.v_y).square().mean())
    assert len({round(float(v.detach()), 12) for v in values.terms[:3]}) == 3


def test_shared_points_stay_shared_through_redraws_casts_and_resume(stokes, tmp_path):
    from interruption import interrupted_run, strip_wall

    path = stokes()
    settings = dict(SMALL, resample_every=2)
    spec = "lra+rar:every=2,add=5,candidates=3"
    whole = pb.train(path, spec, out=tmp_path / "whole", render=False, **settings)
    assert whole.metrics["status"] == "completed" and all(math.isfinite(r["loss"]) for r in whole.history)
    trainer = interrupted_run(path, spec, tmp_path / "cut", stop_after=3, settings=settings)
    x = [x for _, x, _ in trainer.batches.items]
    assert x[1] is x[0] and x[4] is x[3]
    resumed = resume(tmp_path / "cut", render=False)
    assert strip_wall(resumed.history) == strip_wall(whole.history)


def test_validation_batches_share_too(stokes):
    problem = pb.load_problem(stokes())
    batches = Batches(problem, TrainConfig(**SMALL), torch.device("cpu"), torch.float64, part="validation")
    assert batches.items[2][1] is batches.items[0][1] and len(batches.leaves(10).items[1][1]) == 10
    view = batches.leaves(10)
    assert view.items[1][1] is view.items[0][1]


@pytest.mark.parametrize("shared, fragment", [
    ('"nope"', "points='nope' names no earlier term"),
    ('"continuity"', "names no earlier term"),  # itself / a later term
])
def test_a_bad_share_is_one_line_exit_2(stokes, shared, fragment, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(stokes(shared)), "--out", str(out), "--steps", "1", "--lbfgs", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1 and not out.exists()


def test_a_term_shares_only_the_points_of_its_own_kind(tmp_path, capsys):
    text = STOKES.replace("SHARED", '"momentum_x"').replace('points="walls")', 'points="momentum_x")')
    (tmp_path / "kinds.py").write_text(text)
    assert main(["info", str(tmp_path / "kinds.py")]) == 2
    err = capsys.readouterr().err.strip()
    assert "a Boundary can share only the points of an earlier Boundary, and 'momentum_x' is a Residual" in err


def test_boundary_terms_share_only_on_the_same_faces(tmp_path, capsys):
    text = STOKES.replace("SHARED", '"momentum_x"').replace(
        'pb.Boundary("flux", residual=lambda p: p.u_x + p.v_y, points="walls")',
        'pb.Boundary("flux", on=pb.Face("x"), residual=lambda p: p.u_x + p.v_y, points="walls")')
    (tmp_path / "faces.py").write_text(text)
    assert main(["info", str(tmp_path / "faces.py")]) == 2
    assert "shares points on other faces" in capsys.readouterr().err


def test_info_says_which_points_a_term_shares(stokes, capsys):
    assert main(["info", str(stokes())]) == 0
    assert "the points of momentum_x" in capsys.readouterr().out
