"""Samplers cover the domain and the faces; faces are validated against the box."""
import numpy as np
import pytest

import pinnbal as pb
from pinnbal.geometry import sample_faces


@pytest.mark.parametrize("method", ["uniform", "sobol", "lhs"])
def test_interior_samples_fill_the_box(method):
    box = pb.Box(x=(-1.0, 1.0), t=(0.0, 2.0))
    pts = box.sample(4096, np.random.default_rng(0), method)
    assert pts.shape == (4096, 2)
    assert pts[:, 0].min() >= -1 and pts[:, 0].max() <= 1 and pts[:, 1].min() >= 0 and pts[:, 1].max() <= 2
    # every cell of a 4 x 4 grid gets close to its share (4096 / 16 = 256)
    counts, _, _ = np.histogram2d(pts[:, 0], pts[:, 1], bins=4, range=[[-1, 1], [0, 2]])
    assert counts.min() > 180 and counts.max() < 340


def test_sobol_is_more_even_than_uniform():
    box = pb.Box(x=(0.0, 1.0), y=(0.0, 1.0))
    spread = {}
    for method in ("uniform", "sobol"):
        pts = box.sample(1024, np.random.default_rng(3), method)
        counts, _, _ = np.histogram2d(pts[:, 0], pts[:, 1], bins=8, range=[[0, 1], [0, 1]])
        spread[method] = counts.std()
    assert spread["sobol"] < spread["uniform"]


def test_faces_by_value_and_by_normal():
    box = pb.Box(x=(-1.0, 1.0), t=(0.0, 1.0))
    assert pb.Face(t=0.0).resolve(box, "ic") == [(1, 0.0)]
    assert pb.Face("x").resolve(box, "walls") == [(0, -1.0), (0, 1.0)]
    pts = sample_faces(box, pb.Face("x").resolve(box, "w"), 1000, np.random.default_rng(0))
    assert pts.shape == (1000, 2)
    assert set(np.unique(pts[:, 0])) == {-1.0, 1.0}
    assert abs((pts[:, 0] == -1).sum() - 500) <= 1  # equal areas, equal shares
    assert pts[:, 1].min() >= 0 and pts[:, 1].max() <= 1


def test_whole_boundary_in_proportion_to_area():
    box = pb.Box(x=(0.0, 3.0), y=(0.0, 1.0))
    pts = sample_faces(box, box.all_faces(), 800, np.random.default_rng(0))
    on_x_faces = np.isin(pts[:, 0], [0.0, 3.0]).sum()  # faces normal to x have length 1, the others 3
    assert on_x_faces == 200  # perimeter 8: the two x-faces are 2 of it


def test_one_dimensional_boundary_is_the_two_end_points():
    box = pb.Box(x=(0.0, 1.0))
    pts = sample_faces(box, box.all_faces(), 2, np.random.default_rng(0))
    assert sorted(pts[:, 0]) == [0.0, 1.0]


def test_face_not_on_box_and_unknown_coordinate():
    box = pb.Box(x=(0.0, 1.0))
    with pytest.raises(pb.ProblemError, match="not a face"):
        pb.Face(x=0.5).resolve(box, "bc")
    with pytest.raises(pb.ProblemError, match="names no coordinate"):
        pb.Face("y").resolve(box, "bc")


@pytest.mark.parametrize("span", [(1.0, 0.0), (0.0, 0.0), (0.0, float("inf")), ("a", 1)])
def test_empty_or_bad_box_is_refused(span):
    with pytest.raises(pb.ProblemError, match="x"):
        pb.Box(x=span)


def test_a_periodic_coordinate_makes_the_model_and_its_derivatives_periodic():
    import math

    import torch

    from pinnbal.nets import PINNModel, build_network

    problem = pb.Problem("ring", pb.Box(x=(0.0, 2 * math.pi), t=(0.0, 1.0), periodic="x"), ["u"],
                         [pb.Residual("pde", lambda p: p.u_t + p.u_x, points=8)])
    assert problem.domain.features == 3
    torch.manual_seed(0)
    model = PINNModel(problem, build_network(problem.domain.features, 1, width=8, depth=2)).double()
    t = torch.rand(5, 1, dtype=torch.float64)
    ends = [torch.cat([torch.full_like(t, x), t], 1).requires_grad_(True) for x in (0.0, 2 * math.pi)]
    values = [model.points(e, where="test") for e in ends]
    for name in ("u", "u_x", "u_xx", "u_t"):
        assert torch.allclose(getattr(values[0], name), getattr(values[1], name), atol=1e-12), name


def test_periodic_names_must_be_coordinates():
    with pytest.raises(pb.ProblemError, match="periodic='y' is not a coordinate"):
        pb.Box(x=(0.0, 1.0), periodic="y")
