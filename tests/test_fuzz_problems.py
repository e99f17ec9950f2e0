"""Fuzzing the problem contract: any input builds a Problem or fails with one ProblemError, nothing else."""
import math

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pinnbal as pb
from pinnbal.train import TrainConfig, Trainer

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.just("a"), st.none())
# each strategy mostly draws valid values, so that the checks deeper in (faces, data, the probe) are reached
names = st.one_of(st.sampled_from(["pde", "bc", "obs", "k"]), st.sampled_from(["x", "t", "u"]), st.text(max_size=4))
spans = st.one_of(st.just((0.0, 1.0)), st.just((0.0, 1.0)), st.just((-1.0, 2.0)), st.tuples(numbers, numbers))
counts = st.one_of(st.integers(1, 40), st.integers(-3, 0), st.booleans(), st.floats(0, 5), st.just("10"))
weights = st.one_of(st.just(1.0), st.just(10.0), numbers)


@st.composite
def problems(draw):
    """A function that builds a random, often invalid, problem (built lazily: Box() may already refuse)."""
    coords = ["x"] + draw(st.lists(st.sampled_from(["t", "y", "r"]), max_size=2, unique=True))
    box = {c: draw(spans) for c in coords}
    outputs = draw(st.one_of(st.just(["u"]), st.just(["u"]), st.lists(names, max_size=2)))
    face_kind = draw(st.sampled_from(["none", "normal", "value"]))
    face_name = draw(st.one_of(st.sampled_from(coords), names))
    face_value = draw(st.one_of(st.sampled_from([0.0, 1.0, -1.0, 2.0]), numbers))
    value = draw(st.one_of(st.just(0.0), st.just(lambda p: p.x), st.just(lambda p: p.u_xy), numbers))
    data_rows = draw(st.integers(0, 4))
    x = draw(st.sampled_from([np.zeros((data_rows, len(coords))), np.full((data_rows, 1), np.nan),
                              np.zeros((data_rows + 1, 2))]))
    residual_term = (draw(names), draw(counts), draw(weights),
                     draw(st.one_of(st.sampled_from(["mse", "mae", "huber", "logcosh"]), st.text(max_size=3))))
    boundary_term = (draw(names), draw(counts))
    # a second residual on the points of another term (points="name"): often the first residual, sometimes
    # the boundary term, itself, a later or an unknown name
    sharing_term = draw(st.one_of(st.none(), st.tuples(names, st.one_of(st.just(residual_term[0]), names))))
    data_term = draw(st.one_of(st.none(), names))
    unknowns = draw(st.one_of(st.none(), st.dictionaries(names, numbers, max_size=2)))
    problem_name = draw(st.one_of(st.just("fuzz"), names))

    def build():
        face = {"none": None, "normal": lambda: pb.Face(face_name),
                "value": lambda: pb.Face(**{face_name: face_value})}[face_kind]
        name, points, weight, loss = residual_term
        terms = [pb.Residual(name, lambda p: p.u, points=points, weight=weight, loss=loss),
                 pb.Boundary(boundary_term[0], on=face and face(), value=value, points=boundary_term[1])]
        if sharing_term is not None:
            terms.insert(1, pb.Residual(sharing_term[0], lambda p: p.u_x, points=sharing_term[1]))
        if data_term is not None:
            terms.append(pb.Data(data_term, x=x, values=np.zeros((data_rows, 1))))
        return pb.Problem(problem_name, pb.Box(**box), outputs, terms, unknowns=unknowns)

    return build


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_problem_construction_either_succeeds_or_raises_one_problem_error(build):
    try:
        problem = build()
    except pb.ProblemError as exc:
        message = str(exc)
        assert message and "\n" not in message
        return
    # a problem that validates must also survive the start-up probe or fail it cleanly
    try:
        Trainer(problem, "fixed", TrainConfig(steps=1, lbfgs=0, width=4, depth=1))
    except pb.PinnbalError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.sampled_from([1, 2, 3]))
def test_residual_shapes_are_checked(rows_delta, cols, ndim):
    def residual(p):
        n = p.x.shape[0]
        shape = {1: (n + rows_delta,), 2: (n, cols), 3: (n, cols, 2)}[ndim]
        return torch.zeros(shape) + 0 * p.u.sum()

    problem = pb.Problem("s", pb.Box(x=(0.0, 1.0)), ["u"], [pb.Residual("pde", residual, points=16)])
    ok = ndim == 2
    try:
        Trainer(problem, "fixed", TrainConfig(steps=1, lbfgs=0, width=4, depth=1))
        assert ok
    except pb.ProblemError as exc:
        assert not ok and "returned shape" in str(exc)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(0.1, 5)), min_size=1, max_size=3),
       st.integers(1, 30), st.integers(1, 10), st.data())
def test_random_valid_problems_train_a_step(spans, n_pde, n_bc, data):
    """Boxes of 1-3 coordinates, faces picked from the box: every such problem trains (with at least a point
    per face: the whole boundary of a d-box has 2d faces)."""
    coords = ["x", "y", "z"][: len(spans)]
    box = pb.Box(**{c: (lo, lo + width) for c, (lo, width) in zip(coords, spans)})
    axis = data.draw(st.integers(0, len(coords) - 1))
    side = data.draw(st.sampled_from([box.low[axis], box.high[axis]]))
    problem = pb.Problem("ok", box, ["u"], [
        pb.Residual("pde", lambda p: p.d("u", coords[0], coords[0]) - 1.0, points=n_pde),
        pb.Boundary("bc", on=pb.Face(**{coords[axis]: float(side)}), value=lambda p: p.u * 0 + 1, points=n_bc),
        pb.Boundary("rest", value=0.0, points=2 * len(coords) + n_bc - 1),
    ])
    run = pb.train(problem, "lra:every=1", steps=2, lbfgs=1, width=4, depth=1)
    assert run.metrics["status"] == "completed"
    assert all(math.isfinite(v) for v in run.metrics["final_losses"].values())
