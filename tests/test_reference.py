"""Grid references: column order, caching to disk, shape checks; the Burgers reference's known values."""
import numpy as np
import pytest

import pinnbal as pb


def test_grid_arrays_follow_the_domain_order():
    x, t = np.array([0.0, 1.0, 2.0]), np.array([10.0, 20.0])
    ref = pb.GridReference(axes={"x": x, "t": t}, values={"u": np.add.outer(x, t)})
    pts, vals = ref.arrays(["t", "x"], ["u"])  # domain lists t first
    assert pts.shape == (6, 2) and vals.shape == (6, 1)
    assert np.allclose(vals[:, 0], pts[:, 0] + pts[:, 1])


def test_cached_reference_builds_once_and_reloads(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return pb.GridReference(axes={"x": np.linspace(0, 1, 5)}, values={"u": np.arange(5.0)})

    path = tmp_path / "ref.npz"
    first = pb.GridReference.cached(path, build)
    assert not path.exists()  # lazy: nothing is computed at definition
    pts, vals = first.arrays(["x"], ["u"])
    again = pb.GridReference.cached(path, build).arrays(["x"], ["u"])
    assert len(calls) == 1 and path.exists()
    assert np.array_equal(again[0], pts) and np.array_equal(again[1], vals)


def test_shape_and_name_mismatches_are_problem_errors():
    with pytest.raises(pb.ProblemError, match="shape"):
        pb.GridReference(axes={"x": np.arange(3.0)}, values={"u": np.zeros(4)})
    ref = pb.GridReference(axes={"x": np.arange(3.0)}, values={"u": np.zeros(3)})
    with pytest.raises(pb.ProblemError, match="coordinates"):
        ref.arrays(["x", "t"], ["u"])
    with pytest.raises(pb.ProblemError, match="NaN"):
        pb.GridReference(points={"x": np.arange(2.0)}, values={"u": np.array([0.0, np.nan])})


def test_burgers_problem_reference_has_the_published_properties():
    problem = pb.load_problem("problems/burgers.py")
    x, u = problem.evaluation_set()
    assert x.shape == (25600, 2) and u.shape == (25600, 1)
    grid = u[:, 0].reshape(256, 100)
    xs = x[:, 0].reshape(256, 100)[:, 0]
    assert np.allclose(grid[:, 0], -np.sin(np.pi * xs), atol=1e-12)
    assert np.allclose(grid, -grid[::-1], atol=1e-12)  # odd in x
    assert np.abs(grid[:, -1]).max() == pytest.approx(0.7178391304, abs=1e-9)  # t = 0.99
