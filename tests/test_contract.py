"""Problem files as users write them: forms the contract admits must just work.

Found by writing problem files nobody had shown the code: flipped data
arrays, helper modules next to the problem file, boundaries with few points
on many faces, constant boundary values in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pinnbal as pb
from pinnbal.geometry import sample_faces
from pinnbal.problem import as_columns



def decay_problem(x_obs, u_obs):
    """u' = -u on [0, 1], observed at x_obs."""
    return pb.Problem("decay", pb.Box(x=(0.0, 1.0)), ["u"], [
        pb.Residual("ode", lambda p: p.u_x + p.u, points=32),
        pb.Data("obs", x=x_obs, values=u_obs),
    ], reference=lambda p: torch.exp(-p.x))


def test_flipped_data_arrays_train_like_their_copies():
    """``x[::-1]`` (negative strides, which torch cannot wrap) is the same data as its copy."""
    x = np.linspace(0.0, 1.0, 20)[:, None]
    u = np.exp(-x)
    flipped = pb.train(decay_problem(x[::-1], u[::-1]), "fixed", steps=5, lbfgs=0, width=8, depth=1)
    copied = pb.train(decay_problem(x[::-1].copy(), u[::-1].copy()), "fixed", steps=5, lbfgs=0, width=8, depth=1)
    assert flipped.metrics["status"] == "completed"
    assert [r["loss"] for r in flipped.history] == [r["loss"] for r in copied.history]


def test_a_problem_file_imports_a_module_beside_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the folder of the files: the import must not depend on the cwd
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "decay_helpers.py").write_text("import torch\n\ndef exact(p):\n    return torch.exp(-p.x)\n")
    (folder / "decay.py").write_text(
        "import pinnbal as pb\nfrom decay_helpers import exact\n\n"
        "problem = pb.Problem('decay', pb.Box(x=(0.0, 1.0)), ['u'], [\n"
        "    pb.Residual('ode', lambda p: p.u_x + p.u, points=32),\n"
        "    pb.Initial('start', on=pb.Face(x=0.0), value=1.0, points=1),\n"
        "], reference=exact)\n")
    problem = pb.load_problem(folder / "decay.py")
    assert problem.reference_at(np.array([[0.0], [1.0]]))[:, 0] == pytest.approx([1.0, np.exp(-1.0)])


@pytest.mark.parametrize("n", [4, 5, 8])
def test_every_face_gets_a_point_on_a_thin_box(n):
    """x in [0, 10], y in [0, 0.1]: by area the two x faces (length 0.1) would get nothing out of 8.
    (Fewer points than faces is refused by the term's check, tests/test_bad_input.py.)"""
    box = pb.Box(x=(0.0, 10.0), y=(0.0, 0.1))
    faces = box.all_faces()
    x = sample_faces(box, faces, n, np.random.default_rng(0))
    assert len(x) == n
    for axis, value in faces:
        assert np.any(np.isclose(x[:, axis], value)), f"face {box.names[axis]} = {value} got no point"


def test_two_faces_sharing_two_points_constrain_both_ends():
    box = pb.Box(x=(0.0, 1.0))
    x = sample_faces(box, box.all_faces(), 2, np.random.default_rng(0))
    assert sorted(x[:, 0]) == [0.0, 1.0]


def test_constant_values_follow_the_points_dtype():
    """``value=lambda p: 1.0`` becomes a column on the points' own dtype and device (float64 here, CUDA there)."""
    problem = pb.Problem("const", pb.Box(x=(0.0, 1.0)), ["u"], [
        pb.Residual("pde", lambda p: p.u_xx, points=16),
        pb.Boundary("ends", value=lambda p: 1.0, points=2),
    ], reference=lambda p: 1.0)
    run = pb.train(problem, "fixed", steps=3, lbfgs=0, width=8, depth=1, dtype="float64")
    assert run.metrics["status"] == "completed"
    assert problem.reference_at(np.array([[0.3]])).tolist() == [[1.0]]
    coords = torch.zeros(3, 1, dtype=torch.float64)
    column = as_columns(1.0, coords, "ends value", 1)
    assert column.dtype == torch.float64 and column.device == coords.device and column.tolist() == [[1.0]] * 3


def held_problem(balanced: bool = False):
    """Poisson 1D with a switched-off Neumann term (weight 0) and weight decay."""
    import math

    return pb.Problem("held", pb.Box(x=(0.0, 1.0)), ["u"], [
        pb.Residual("pde", lambda p: p.u_xx + math.pi**2 * torch.sin(math.pi * p.x), points=64),
        pb.Boundary("ends", value=0.0, points=2),
        pb.Boundary("off", on=pb.Face(x=0.0), residual=lambda p: p.u_x, weight=0.0, points=1),
        pb.L2(weight=1e-4, balanced=balanced),
    ])


@pytest.mark.parametrize("balancer", ["lra:every=1", "dwa", "relobralo", "uncertainty", "gradnorm-eq:every=1",
                                      "lra:every=1+rba"])
def test_weight_balancers_keep_switched_off_terms_and_weight_decay_as_declared(balancer):
    """weight=0 stays 0 and pb.L2(weight=1e-4) stays 1e-4 (below the default bound 1e-3, which would
    otherwise lift it; lra used to take it to 900), while the other terms still move."""
    run = pb.train(held_problem(), balancer, steps=12, lbfgs=3, width=8, depth=1, log_every=1)
    assert all(row["weight/off"] == 0.0 and row["weight/l2"] == 1e-4 for row in run.history)
    assert run.metrics["final_weights"]["off"] == 0.0 and run.metrics["final_weights"]["l2"] == 1e-4
    moved = {row["weight/ends"] for row in run.history} | {row["weight/pde"] for row in run.history}
    assert len(moved) > 1, "the balancer stopped adapting the other terms"


def test_balanced_weight_decay_is_weighed_like_any_term():
    run = pb.train(held_problem(balanced=True), "lra:every=1", steps=5, lbfgs=0, width=8, depth=1, log_every=1)
    assert run.history[-1]["weight/l2"] != 1e-4 and run.history[-1]["weight/off"] == 0.0


def test_a_time_axis_named_tau_is_time_for_causal_weights_snapshots_and_gifs(tmp_path):
    """``pb.Initial(on=pb.Face(tau=0))`` makes tau the time: causal slices it, render draws x–tau snapshots."""
    import math

    from pinnbal.render import render_run
    from pinnbal.render.picture import read_picture
    from pinnbal.rundir import read_run

    problem = pb.Problem("heat_tau", pb.Box(x=(0.0, 1.0), tau=(0.0, 0.5)), ["u"], [
        pb.Residual("pde", lambda p: p.u_tau - 0.1 * p.u_xx, points=64),
        pb.Initial("start", on=pb.Face(tau=0.0), value=lambda p: torch.sin(math.pi * p.x), points=16),
        pb.Boundary("ends", on=pb.Face("x"), value=0.0, points=16),
    ], reference=lambda p: torch.exp(-0.1 * math.pi**2 * p.tau) * torch.sin(math.pi * p.x))
    assert problem.time == "tau"
    run = pb.train(problem, "fixed+causal", steps=3, lbfgs=0, width=8, depth=1, out=tmp_path / "run", render=False)
    assert run.metrics["status"] == "completed" and "causal_min/pde" in run.history[0]
    assert read_picture(read_run(tmp_path / "run")).time == "tau"
    names = [p.name for p in render_run(tmp_path / "run", gif=True)]
    assert names == ["losses.png", "solution.png", "snapshots.png", "solution.gif"]


def test_a_term_is_never_changed_by_the_problems_that_use_it():
    """Term.check returns the resolved term; the user's term object stays as written, so one term can serve
    two problems with different outputs."""
    wall = pb.Boundary("wall", on=pb.Face("x"), value=0.0, points=16)
    one = pb.Problem(name="one", domain=pb.Box(x=(0.0, 1.0)), outputs=["u"],
                     terms=[pb.Residual("pde", lambda p: p.u_xx, points=32), wall])
    two = pb.Problem(name="two", domain=pb.Box(x=(0.0, 2.0)), outputs=["v", "w"],
                     terms=[pb.Residual("pde", lambda p: p.v_xx + p.w, points=32), wall])
    assert wall.outputs is None and not hasattr(wall, "loss_fn")
    assert one.terms[1] is not wall and one.terms[1].outputs == ["u"] and two.terms[1].outputs == ["v", "w"]


def two_field_problem(**options):
    """u' = 1, v' = 0 on [0, 1]: u = x, v = 5 (a large, easily matched second field)."""
    return pb.Problem("two_fields", pb.Box(x=(0.0, 1.0)), ["u", "v"], [
        pb.Residual("ode", lambda p: [p.u_x - 1.0, p.v_x], points=32),
        pb.Boundary("left", on=pb.Face(x=0.0), value=lambda p: torch.cat([p.x, p.x + 5.0], dim=1)),
    ], reference=lambda p: torch.cat([p.x, torch.full_like(p.x, 5.0)], dim=1), **options)


def test_error_outputs_measure_the_overall_error_on_those_outputs_only(tmp_path):
    run = pb.train(two_field_problem(error_outputs=["u"]), "fixed", steps=20, lbfgs=0, seed=0, width=8, depth=1,
                   out=tmp_path / "run")
    assert run.metrics["rel_l2"] == pytest.approx(run.metrics["rel_l2_per_output"]["u"], rel=1e-12)
    both = pb.train(two_field_problem(), "fixed", steps=20, lbfgs=0, seed=0, width=8, depth=1, out=tmp_path / "both")
    assert both.metrics["rel_l2_per_output"] == pytest.approx(run.metrics["rel_l2_per_output"], rel=1e-12)
    assert both.metrics["rel_l2"] != pytest.approx(run.metrics["rel_l2"], rel=1e-3)  # v weighs in by default


def test_error_outputs_must_name_outputs():
    with pytest.raises(pb.ProblemError, match=r"error_outputs=\['w'\]; name one or more of the outputs u, v"):
        two_field_problem(error_outputs=["w"])
    for wrong in ([], 5):
        with pytest.raises(pb.ProblemError, match="error_outputs"):
            two_field_problem(error_outputs=wrong)
    assert "rel L2 measured on u" in two_field_problem(error_outputs="u").describe()
    assert "measured on" not in two_field_problem().describe()


def test_error_outputs_hold_in_every_time_window(tmp_path):
    """u_t = 0, v_t = 0 from u(x, 0) = x, v(x, 0) = 5, trained in two time windows: the overall error is u's."""
    problem = pb.Problem("two_fields_in_time", pb.Box(x=(0.0, 1.0), t=(0.0, 1.0)), ["u", "v"], [
        pb.Residual("pde", lambda p: [p.u_t, p.v_t], points=64),
        pb.Initial("ic", value=lambda p: torch.cat([p.x, p.x * 0 + 5.0], dim=1), points=16),
    ], reference=lambda p: torch.cat([p.x, torch.full_like(p.x, 5.0)], dim=1), error_outputs=["u"])
    run = pb.train(problem, "fixed", steps=10, lbfgs=0, seed=0, width=8, depth=1, time_windows=2,
                   out=tmp_path / "run")
    assert run.metrics["time_windows"] == 2
    assert run.metrics["rel_l2"] == pytest.approx(run.metrics["rel_l2_per_output"]["u"], rel=1e-12)
    assert run.metrics["rel_l2"] != pytest.approx(run.metrics["rel_l2_per_output"]["v"], rel=1e-3)
