"""Domains beyond boxes: shapes, their combinations, boundary selection, normals, scattered references."""
import math

import numpy as np
import pytest
import torch

import pinnbal as pb
from pinnbal.errors import ProblemError

RNG = lambda: np.random.default_rng(0)  # noqa: E731
PLATE = pb.Box(x=(-1.0, 1.0), y=(-1.0, 1.0))
HOLE = pb.Disk(x=0.0, y=0.0, radius=0.4)


def square(p):
    return p.x ** 2 + p.y ** 2


def holey_problem(**terms):
    return pb.Problem("holey", PLATE - HOLE, ["u"], [pb.Residual("pde", lambda p: p.u_xx + p.u_yy - 4.0, points=256),
                                                     *terms.values()], reference=square)


@pytest.mark.parametrize("method", ["uniform", "sobol", "lhs"])
def test_interior_points_avoid_the_hole_and_fill_the_rest_evenly(method):
    x = (PLATE - HOLE).sample(8000, RNG(), method)
    r = np.linalg.norm(x, axis=1)
    assert x.shape == (8000, 2) and r.min() >= 0.4 and np.abs(x).max() <= 1.0
    ring = (r < 0.6).mean()  # area of 0.4 < r < 0.6 over the plate's area minus the hole
    assert ring == pytest.approx(math.pi * (0.36 - 0.16) / (4 - math.pi * 0.16), abs=0.01)


def test_boundary_points_split_by_length_with_outward_normals_into_the_hole():
    domain = PLATE - HOLE
    x = domain.sample_boundary(6000, RNG())
    on_hole = np.isclose(np.linalg.norm(x, axis=1), 0.4)
    on_plate = np.isclose(np.abs(x).max(axis=1), 1.0)
    assert np.all(on_hole | on_plate)
    assert on_hole.mean() == pytest.approx(2 * math.pi * 0.4 / (8 + 2 * math.pi * 0.4), abs=0.015)
    n = domain.normal(x)
    np.testing.assert_allclose(n[on_hole], -x[on_hole] / 0.4, atol=1e-12)  # points into the hole
    plate = x[on_plate]
    expected = np.where(np.abs(plate) == 1.0, np.sign(plate), 0.0)
    np.testing.assert_allclose(n[on_plate], expected, atol=1e-12)


def test_polygon_inside_distance_normals_and_perimeter():
    ell = pb.Polygon(x=[0, 2, 2, 1, 1, 0], y=[0, 0, 1, 1, 2, 2])  # an L of area 3
    inside = ell.inside(np.array([[0.5, 1.5], [1.5, 0.5], [1.5, 1.5], [-0.1, 0.5]]))
    assert inside.tolist() == [True, True, False, False]
    np.testing.assert_allclose(ell.sdf(np.array([[0.5, 0.5], [1.5, 1.5], [3.0, 0.5]])), [-0.5, 0.5, 1.0])
    assert ell.boundary_measure() == pytest.approx(8.0)
    assert ell.volume_fraction() == pytest.approx(0.75, abs=0.01)
    x = ell.sample_boundary(4000, RNG())
    assert np.abs(ell.sdf(x)).max() < 1e-12
    # the inner corner's two edges (x = 1, 1 <= y <= 2 and y = 1, 1 <= x <= 2) face up and right
    wall = np.isclose(x[:, 0], 1.0) & (x[:, 1] > 1.0)
    np.testing.assert_allclose(ell.normal(x[wall]), np.tile([1.0, 0.0], (wall.sum(), 1)))
    assert wall.mean() == pytest.approx(1 / 8, abs=0.02)
    clockwise = pb.Polygon(x=[0, 0, 1, 1, 2, 2], y=[0, 2, 2, 1, 1, 0])  # the same L the other way round
    np.testing.assert_allclose(clockwise.normal(x[wall]), ell.normal(x[wall]))


def test_a_step_cut_from_a_channel_drops_the_walls_the_two_boxes_share():
    channel = pb.Box(x=(0.0, 4.0), y=(0.0, 2.0)) - pb.Box(x=(0.0, 2.0), y=(1.0, 2.0))
    x = channel.sample_boundary(6000, RNG())
    assert not np.any(np.isclose(x[:, 0], 0.0) & (x[:, 1] > 1.0 + 1e-9))  # the cut-away inlet part
    assert not np.any(np.isclose(x[:, 1], 2.0) & (x[:, 0] < 2.0 - 1e-9))  # the cut-away top part
    step = np.isclose(x[:, 0], 2.0) & (x[:, 1] > 1.0)
    assert step.mean() == pytest.approx(1 / 12, abs=0.015)  # perimeter of the L: 4 + 2 + 2 + 1 + 2 + 1
    np.testing.assert_allclose(channel.normal(x[step]), np.tile([-1.0, 0.0], (step.sum(), 1)))
    ledge = np.isclose(x[:, 1], 1.0) & (x[:, 0] < 2.0)
    np.testing.assert_allclose(channel.normal(x[ledge]), np.tile([0.0, 1.0], (ledge.sum(), 1)))


def test_union_and_intersection_of_two_disks_have_the_lens_areas():
    a, b = pb.Disk(x=0.0, y=0.0, radius=1.0), pb.Disk(x=1.0, y=0.0, radius=1.0)
    lens = 2 * math.pi / 3 - math.sqrt(3) / 2  # two unit disks one radius apart
    both, either = a & b, a | b
    assert both.volume_fraction() * np.prod(both.high - both.low) == pytest.approx(lens, rel=0.01)
    assert either.volume_fraction() * np.prod(either.high - either.low) == pytest.approx(2 * math.pi - lens, rel=0.01)
    x = either.sample_boundary(2000, RNG())
    assert np.all(np.linalg.norm(x - [0.5, 0.0], axis=1) > 0.5 - 1e-9)  # no boundary point inside the lens


def test_a_ball_in_three_dimensions():
    ball = pb.Ball(x=0.0, y=0.0, z=0.0, radius=2.0)
    assert ball.boundary_measure() == pytest.approx(4 * math.pi * 4)
    assert ball.volume_fraction() == pytest.approx(math.pi / 6, abs=0.01)
    x = ball.sample_boundary(3000, RNG(), "sobol")
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 2.0)
    np.testing.assert_allclose(ball.normal(x), x / 2.0)
    assert np.abs(x.mean(axis=0)).max() < 0.1  # spread over the whole sphere


def test_coordinates_given_in_another_order_are_reordered():
    domain = PLATE - pb.Disk(y=0.5, x=-0.5, radius=0.2)
    assert domain.inside(np.array([[-0.5, 0.5], [0.5, -0.5]])).tolist() == [False, True]


def test_space_time_product_boundary_is_lateral_and_time_faces_are_sections():
    domain = (PLATE - HOLE) * pb.Box(t=(0.0, 1.0))
    problem = pb.Problem("heat", domain, ["u"], [
        pb.Residual("pde", lambda p: p.u_t - p.u_xx - p.u_yy, points=128),
        pb.Initial("ic", value=0.0, points=300),
        pb.Boundary("walls", value=0.0, points=300),
        pb.Boundary("hole", on=HOLE, residual=lambda p: p.u_n, points=100),
    ])
    assert problem.time == "t"
    ic, walls, hole = (term.sample(problem, RNG(), "uniform")[0] for term in problem.terms[1:])
    assert np.all(ic[:, 2] == 0.0) and np.linalg.norm(ic[:, :2], axis=1).min() >= 0.4
    assert np.all((walls[:, 2] > 0) & (walls[:, 2] < 1))
    np.testing.assert_allclose(np.linalg.norm(hole[:, :2], axis=1), 0.4)
    n = domain.normal(hole)
    np.testing.assert_allclose(n[:, 2], 0.0)
    np.testing.assert_allclose(n[:, :2], -hole[:, :2] / 0.4, atol=1e-12)
    np.testing.assert_allclose(domain.normal(ic), np.tile([0.0, 0.0, -1.0], (len(ic), 1)))


def test_normal_derivative_of_a_known_function_on_the_hole():
    """u = x² + y² through transform=: ∇u · n on the hole (n = −x/r) is −2r exactly."""
    problem = pb.Problem("exact", PLATE - HOLE, ["u"],
                         [pb.Residual("pde", lambda p: p.u_xx + p.u_yy - 4.0, points=64),
                          pb.Boundary("hole", on=HOLE, residual=lambda p: p.u_n + 0.8, points=64)],
                         transform=lambda p, u: square(p) + 0.0 * u)
    from pinnbal.nets import PINNModel, build_network

    model = PINNModel(problem, build_network(2, 1, width=8, depth=1)).double()
    x = torch.as_tensor(problem.terms[1].sample(problem, RNG(), "uniform")[0]).requires_grad_(True)
    p = model.points(x, where="hole", on_boundary=True)
    np.testing.assert_allclose(p.u_n.detach().numpy(), -0.8, atol=1e-12)
    np.testing.assert_allclose((p.nx * p.x + p.ny * p.y).detach().numpy(), -0.4, atol=1e-12)
    with pytest.raises(ProblemError, match="normals exist only on boundary points"):
        model.points(x, where="pde").nx


def test_selection_by_face_shape_and_predicate():
    problem = holey_problem(
        left=pb.Boundary("left", on=pb.Face(x=-1.0), value=square, points=50),
        rim=pb.Boundary("rim", on=HOLE, value=square, points=50),
        upper=pb.Boundary("upper", on=lambda p: (p.y > 0.5) & (p.nx == 0), value=square, points=50),
    )
    left, rim, upper = (t.sample(problem, RNG(), "uniform")[0] for t in problem.terms[1:])
    assert np.all(left[:, 0] == -1.0)
    np.testing.assert_allclose(np.linalg.norm(rim, axis=1), 0.4)
    assert np.all(upper[:, 1] > 0.5) and np.all(np.isclose(upper[:, 1], 1.0))  # the top face: nx = 0, y > 0.5
    assert "on Disk(x=0, y=0, radius=0.4)" in problem.describe()


@pytest.mark.parametrize("build, message", [
    (lambda: pb.Box(x=(0, 1), y=(0, 1)) - pb.Box(x=(0, 1), z=(0, 1)), "coordinates differ"),
    (lambda: holey_problem(b=pb.Boundary("b", on=pb.Disk(x=3.0, y=3.0, radius=0.1), value=0.0)), "selects no"),
    (lambda: holey_problem(b=pb.Boundary("b", on=lambda p: p.x, value=0.0)), "bool tensor"),
    (lambda: holey_problem(b=pb.Boundary("b", on=pb.Face(x=0.5), value=0.0)), "not a face of a box part"),
    (lambda: pb.Problem("p", pb.Disk(x=0, y=0, radius=1) - pb.Disk(x=0, y=0, radius=2), ["u"],
                        [pb.Residual("r", lambda p: p.u)]), "zero volume"),
    (lambda: pb.Disk(x=0, y=0, z=0, radius=1), "use pb.Ball"),
    (lambda: pb.Disk(x=0, y=0, radius=-1), "positive"),
    (lambda: pb.Polygon(x=[0, 1, 2], y=[0, 1, 2]), "no area"),
    (lambda: pb.Polygon(x=[0, 1], y=[0, 1]), "length >= 3"),
    (lambda: pb.Polygon(x=[0, 4, 4, 2, 2, 0], y=[0, 0, 2, 2, -1, 1]), "edges 0 and 3 cross"),
    (lambda: pb.Problem("p", HOLE, ["u"], [pb.Residual("r", lambda p: p.u),
                                           pb.Boundary("b", on=pb.Face("x"), value=0.0)]), "has no box part"),
    (lambda: (PLATE * pb.Box(t=(0, 1))) - HOLE, "coordinates differ"),
    (lambda: (PLATE - HOLE) * pb.Box(t=(0, 1)) - HOLE, "combine the spatial shapes first"),
    (lambda: HOLE * HOLE, "right factor of \\* must be a pb.Box"),
    (lambda: holey_problem(d=pb.Data("d", x=[[0.1, 0.1]], values=[1.0])), "outside the domain"),
])
def test_bad_geometry_is_one_clear_line(build, message):
    with pytest.raises(ProblemError, match=message) as info:
        build()
    assert "\n" not in str(info.value)


def test_bad_geometry_from_the_command_line_is_exit_2_and_writes_nothing(tmp_path):
    from pinnbal.cli import main

    path = tmp_path / "bad.py"
    path.write_text("import pinnbal as pb\n"
                    "problem = pb.Problem('bad', pb.Box(x=(0, 1), y=(0, 1)) - pb.Disk(x=0.5, z=0.5, radius=0.1),\n"
                    "                     ['u'], [pb.Residual('pde', lambda p: p.u_xx)])\n")
    assert main(["run", str(path), "--steps", "1", "--out", str(tmp_path / "run")]) == 2
    assert not (tmp_path / "run").exists()


def test_scattered_interpolation_of_a_smooth_function_is_exact_at_nodes_and_close_between():
    nodes = (PLATE - HOLE).sample(20000, RNG(), "sobol")
    smooth = lambda x: np.sin(2 * x[:, :1]) * np.cos(x[:, 1:])  # noqa: E731
    ref = pb.ScatteredReference(points=nodes, values=smooth(nodes))
    np.testing.assert_allclose(ref.at(nodes[:500], ["u"]), smooth(nodes[:500]), atol=1e-12)
    between = (PLATE - HOLE).sample(2000, np.random.default_rng(7))
    got = ref.at(between, ["u"])
    inside_hull = ~np.isnan(got[:, 0])
    assert inside_hull.mean() > 0.95
    assert np.abs(got[inside_hull] - smooth(between[inside_hull])).max() < 5e-3  # linear on a ~0.02 mesh


def test_scattered_reference_measures_at_its_nodes_and_interpolates_pictures():
    nodes = (PLATE - HOLE).sample(3000, RNG())
    linear = lambda x: (2 * x[:, 0] - x[:, 1] + 1)[:, None]  # noqa: E731
    ref = pb.ScatteredReference(points=nodes, values=linear(nodes))
    problem = pb.Problem("scattered", PLATE - HOLE, ["u"], [pb.Residual("pde", lambda p: p.u_xx, points=16)],
                         reference=ref)
    x, v = problem.evaluation_set()
    assert x is nodes or np.array_equal(x, nodes)
    axes, grid, pictured = problem.solution_grid(50)
    inner = ~np.isnan(pictured[:, 0])
    np.testing.assert_allclose(pictured[inner], linear(grid[inner]), atol=1e-9)  # linear interpolation is exact
    assert np.all(np.isnan(pictured[np.linalg.norm(grid, axis=1) < 0.4]))  # the hole stays empty
    nearest = pb.ScatteredReference(points=nodes, values=linear(nodes), interpolation="nearest")
    assert nearest.at(np.array([[5.0, 5.0]]), ["u"]).shape == (1, 1)
    with pytest.raises(ProblemError, match="same N"):
        pb.ScatteredReference(points=nodes, values=np.zeros(5))


def test_training_on_a_plate_with_a_hole_reaches_the_exact_solution(tmp_path):
    problem = holey_problem(
        outer=pb.Boundary("outer", on=pb.Face("x", "y"), value=square, points=128),
        hole=pb.Boundary("hole", on=HOLE, residual=lambda p: p.u_n + 0.8, points=64),
    )
    run = pb.train(problem, "fixed", steps=150, lbfgs=60, width=16, depth=2, out=tmp_path / "run", progress=False,
                   render=False)
    assert run.metrics["rel_l2"] < 1e-2
    saved = np.load(tmp_path / "run" / "predictions.npz")
    r = np.linalg.norm(saved["points"][:, :2], axis=1)
    assert np.all(np.isnan(saved["prediction"][r < 0.399])) and not np.any(np.isnan(saved["prediction"][r > 0.401]))


def test_data_files_are_found_by_flag_or_environment_and_missing_ones_say_where(tmp_path, monkeypatch):
    monkeypatch.delenv("PINNBAL_DATA_DIR", raising=False)
    monkeypatch.delenv("MY_DATA", raising=False)
    with pytest.raises(ProblemError, match="get it from the moon.*--data DIR or set MY_DATA"):
        pb.find_data("u.dat", env="MY_DATA", source="the moon")
    (tmp_path / "u.dat").write_text("% x y u\n% more header\n0 0 1.5\n1 0 2.5\n")
    monkeypatch.setenv("MY_DATA", str(tmp_path))
    path = pb.find_data("u.dat", env="MY_DATA")
    np.testing.assert_array_equal(pb.read_comsol(path), [[0, 0, 1.5], [1, 0, 2.5]])


@pytest.mark.parametrize("balancer", ["lra+rar:every=5", "rad:every=5", "causal", "sa"])
def test_point_schemes_train_on_a_holed_space_time_domain(balancer, tmp_path):
    """Residual-based sampling redraws inside the holed domain; causal slices its time; sa keeps point weights."""
    problem = pb.Problem("holed_heat", (PLATE - HOLE) * pb.Box(t=(0.0, 1.0)), ["u"], [
        pb.Residual("pde", lambda p: p.u_t - 0.1 * (p.u_xx + p.u_yy), points=128),
        pb.Initial("ic", value=lambda p: torch.sin(p.x) * torch.cos(p.y), points=64),
        pb.Boundary("walls", on=pb.Face("x", "y"), value=0.0, points=64),
        pb.Boundary("hole", on=HOLE, residual=lambda p: p.u_n, points=32),
    ])
    run = pb.train(problem, balancer, steps=12, lbfgs=0, width=8, depth=1, out=tmp_path / "run", progress=False,
                   render=False, eval_every=6)
    assert run.metrics["status"] == "completed" and math.isfinite(run.metrics["final_loss"])


def test_residual_based_redraws_stay_in_the_domain_and_on_the_selected_boundary():
    from pinnbal.batches import Batches
    from pinnbal.nets import PINNModel, build_network

    problem = holey_problem(hole=pb.Boundary("hole", on=HOLE, residual=lambda p: p.u_n, points=32))
    model = PINNModel(problem, build_network(2, 1, width=8, depth=1)).double()
    batches = Batches(problem, pb.TrainConfig(), torch.device("cpu"), torch.float64)
    largest = lambda ell, n, rng: np.argsort(-ell)[:n]  # noqa: E731
    for k in (0, 1):
        batches.redraw_by_residual(model, k, 4, largest)
    pde, hole = (x.detach().numpy() for _, x, _ in batches.items)
    assert pde.shape == (256, 2) and np.linalg.norm(pde, axis=1).min() >= 0.4
    np.testing.assert_allclose(np.linalg.norm(hole, axis=1), 0.4)


def test_compare_draws_its_error_maps_on_a_domain_with_a_hole(tmp_path):
    from pinnbal.compare import compare

    result = compare(["problems/plate_with_hole.py"], ["fixed"], seeds=1, out=tmp_path / "sweep", jobs=1,
                     progress=False, steps=4, lbfgs=0, width=8, depth=1)
    figures = tmp_path / "sweep" / "plate_with_hole" / "figures"
    assert (figures / "error_maps.png").is_file() and result.sweep is not None
