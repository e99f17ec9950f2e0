"""Figures drawn from run directories: every expected PNG exists, is a real image and is not blank.

Each run is a few steps of a tiny network, so the pictures show nonsense, but
every code path of :mod:`pinnbal.render.plots` and :mod:`pinnbal.render.scenes` is drawn.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

import pinnbal as pb
from conftest import PNG_MAGIC, problem_source
from pinnbal.render import plot_comparison, plot_unknowns, render_run
from pinnbal.render.picture import read_picture
from pinnbal.render.plots import training_panels
from pinnbal.rundir import read_run

TINY = dict(steps=6, lbfgs=2, width=8, depth=1, log_every=1, eval_every=2, render=False)

SOURCES = {
    "line": dict(),
    "plane": dict(
        name="plane", domain="pb.Box(x=(-1.0, 1.0), y=(-1.0, 1.0))",
        terms=['pb.Residual("pde", lambda p: p.u_xx + p.u_yy + 2 * math.pi**2 * exact(p), points=64)',
               'pb.Boundary("walls", value=0.0, points=32)'],
        reference="exact", extra="def exact(p):\n    return torch.sin(math.pi * p.x) * torch.sin(math.pi * p.y)\n"),
    "no_reference": dict(
        name="noref", domain="pb.Box(x=(-1.0, 1.0), y=(-1.0, 1.0))", reference="None",
        terms=['pb.Residual("pde", lambda p: p.u_xx + p.u_yy + 1.0, points=64)',
               'pb.Boundary("walls", value=0.0, points=32)']),
    "spacetime": dict(
        name="heat", domain="pb.Box(x=(0.0, 1.0), t=(0.0, 0.5))",
        terms=['pb.Residual("pde", lambda p: p.u_t - 0.1 * p.u_xx, points=64)',
               'pb.Initial("ic", value=lambda p: torch.sin(math.pi * p.x), points=16)',
               'pb.Boundary("ends", on=pb.Face("x"), value=0.0, points=16)'],
        reference="lambda p: torch.exp(-0.1 * math.pi**2 * p.t) * torch.sin(math.pi * p.x)"),
    "two_outputs": dict(
        name="pair", domain="pb.Box(x=(0.0, 1.0), y=(0.0, 1.0))", outputs='["u", "v"]',
        terms=['pb.Residual("pde", lambda p: [p.u_x - p.v, p.v_y + p.u], points=64)',
               'pb.Boundary("walls", value=0.0, outputs=["u"], points=32)'],
        reference="lambda p: torch.cat([torch.sin(p.x + p.y), torch.cos(p.x + p.y)], dim=1)"),
    "inverse": dict(
        name="inverse", unknowns='{"kappa": 0.5}',
        terms=['pb.Residual("pde", lambda p: p.kappa * p.u_xx + math.pi**2 * torch.sin(math.pi * p.x), points=64)',
               'pb.Data("obs", x=X_OBS, values=np.sin(math.pi * X_OBS))'],
        extra="X_OBS = np.linspace(0.05, 0.95, 12)[:, None]\n"),
    "cube": dict(
        name="cube", domain="pb.Box(x=(0.0, 1.0), y=(0.0, 1.0), z=(0.0, 1.0))",
        terms=['pb.Residual("pde", lambda p: p.u_xx + p.u_yy + p.u_zz + 3 * math.pi**2 * exact(p), points=64)',
               'pb.Boundary("walls", value=0.0, points=48)'],
        reference="exact",
        extra="def exact(p):\n    return torch.sin(math.pi * p.x) * torch.sin(math.pi * p.y) * torch.sin(math.pi * p.z)\n"),
}


def assert_image(path: Path, min_side: int = 200) -> np.ndarray:
    """A PNG file of sensible size whose pixels are not all the same; returns the pixels."""
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_MAGIC, f"{path} is not a PNG"
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) >= min_side, f"{path}: image of shape {pixels.shape}"
    assert float(pixels[..., :3].var()) > 1e-4, f"{path} is blank"
    return pixels


def names(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One tiny run directory per kind of problem (``inverse`` under the uncertainty balancer)."""
    root = tmp_path_factory.mktemp("render")
    out = {}
    for kind, kwargs in SOURCES.items():
        source = root / f"{kind}.py"
        source.write_text(problem_source(**kwargs))
        balancer = "uncertainty" if kind == "inverse" else "lra"
        pb.train(source, balancer, out=root / kind, **TINY)
        out[kind] = root / kind
    return out


def test_line_problem_draws_history_and_solution(runs):
    written = render_run(runs["line"])
    assert names(written) == ["losses.png", "solution.png"]
    for path in written:
        assert path.parent == runs["line"] / "figures"
        assert_image(path)


def test_plane_problem_draws_heatmaps_and_a_surface_on_request(runs):
    assert names(render_run(runs["plane"])) == ["losses.png", "solution.png"]
    pytest.importorskip("pyvista")
    written = render_run(runs["plane"], surface=True)
    assert names(written) == ["losses.png", "solution.png", "surface.png"]
    for path in written:
        assert_image(path)


def test_without_a_reference_only_the_prediction_is_drawn(runs):
    run = read_run(runs["no_reference"])
    assert run.metrics["rel_l2"] is None
    assert [t for t, _ in training_panels(run.history)] == ["term losses", "term weights"]
    written = render_run(runs["no_reference"])
    assert names(written) == ["losses.png", "solution.png"]
    with_reference = assert_image(render_run(runs["plane"])[1])
    alone = assert_image(written[1])
    assert alone.shape[1] < 0.6 * with_reference.shape[1]  # one heatmap instead of three


def test_spacetime_problem_adds_snapshots(runs):
    written = render_run(runs["spacetime"])
    assert names(written) == ["losses.png", "solution.png", "snapshots.png"]
    for path in written:
        assert_image(path)
    picture = read_picture(read_run(runs["spacetime"]))
    assert picture.coords == ["x", "t"] and picture.prediction.shape == (200, 200, 1)


def test_two_outputs_get_one_row_each(runs):
    written = render_run(runs["two_outputs"])
    single = assert_image(render_run(runs["plane"])[1])
    double = assert_image(written[1])
    assert double.shape[0] > 1.6 * single.shape[0]  # two rows of heatmaps


def test_inverse_problem_shows_unknowns_and_balancer_state(runs):
    run = read_run(runs["inverse"])
    titles = [t for t, _ in training_panels(run.history)]
    assert titles == ["term losses", "term weights", "balancer state: log_var", "relative L2 error", "unknowns"]
    for path in render_run(runs["inverse"]):
        assert_image(path)
    assert_image(plot_unknowns(run, runs["inverse"] / "kappa.png", truth={"kappa": 1.0}), min_side=150)


def test_history_without_evaluations_has_no_error_panel(runs):
    run = read_run(runs["line"])
    for row in run.history:
        row["rel_l2"] = None
    assert [t for t, _ in training_panels(run.history)] == ["term losses", "term weights"]


def test_cube_draws_a_mid_slice_and_a_pyvista_scene(runs):
    pytest.importorskip("pyvista")
    written = render_run(runs["cube"])
    assert names(written) == ["losses.png", "solution.png", "scene.png"]
    for path in written:
        assert_image(path)
    assert read_picture(read_run(runs["cube"])).fixed == {"z": 0.5}


def test_scene_uses_a_stored_volume_without_the_model(runs, tmp_path):
    """With ``volume_*`` arrays in predictions.npz the scene needs neither model.pt nor the problem file."""
    pytest.importorskip("pyvista")
    from pinnbal.loader import load_problem
    from pinnbal.render.scenes import read_volume
    from pinnbal.rundir import volume_arrays

    problem = load_problem(runs["cube"].parent / "cube.py")
    arrays = volume_arrays(problem, lambda x: problem.reference_at(x) * 0.9, n=12)
    assert arrays["volume_points"].shape == (12**3, 3) and arrays["volume_reference"].shape == (12**3, 1)
    assert volume_arrays(load_problem(runs["plane"].parent / "plane.py"), lambda x: x) == {}
    copy = tmp_path / "cube"
    copy.mkdir()
    for name in ("config.json", "metrics.json", "history.csv"):
        (copy / name).write_bytes((runs["cube"] / name).read_bytes())
    stored = dict(np.load(runs["cube"] / "predictions.npz"))  # training's own volume (n = 32), replaced by ours
    np.savez(copy / "predictions.npz", **(stored | arrays))
    volume = read_volume(read_run(copy))
    assert volume.prediction.shape == (12, 12, 12, 1)
    np.testing.assert_allclose(volume.prediction, 0.9 * volume.reference)
    assert names(render_run(copy))[-1] == "scene.png"


def test_scene_is_skipped_with_a_warning_when_nothing_gives_a_volume(runs, tmp_path):
    """No ``volume_*`` arrays and a problem file that is gone: the 2D figures still come, with a warning."""
    pytest.importorskip("pyvista")
    import json

    for name in ("metrics.json", "history.csv"):
        (tmp_path / name).write_bytes((runs["cube"] / name).read_bytes())
    stored = np.load(runs["cube"] / "predictions.npz")
    np.savez(tmp_path / "predictions.npz", **{k: stored[k] for k in stored.files if not k.startswith("volume_")})
    config = json.loads((runs["cube"] / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config | {"problem_path": str(tmp_path / "gone.py")}))
    with pytest.warns(UserWarning, match="no 3D scene.*gone.py"):
        assert names(render_run(tmp_path)) == ["losses.png", "solution.png"]


def test_comparison_puts_runs_side_by_side(runs, tmp_path):
    target = plot_comparison([runs["plane"], runs["plane"]], tmp_path / "compare.png")
    assert_image(target)
    with pytest.raises(pb.PinnbalError, match="two coordinates"):
        plot_comparison([runs["line"]], tmp_path / "no.png")


def test_render_refuses_a_run_without_predictions(runs, tmp_path):
    for name in ("config.json", "metrics.json", "history.csv"):
        (tmp_path / name).write_bytes((runs["line"] / name).read_bytes())
    with pytest.raises(pb.PinnbalError, match="predictions.npz"):
        render_run(tmp_path)
    assert not (tmp_path / "figures").exists()


def test_gif_animates_a_spacetime_solution_frame_by_frame(runs):
    from PIL import Image, ImageSequence

    from pinnbal.render.animation import FRAMES

    written = render_run(runs["spacetime"], gif=True)
    assert names(written)[-1] == "solution.gif"
    with Image.open(written[-1]) as gif:
        frames = [np.asarray(f.convert("RGB"), dtype=float) for f in ImageSequence.Iterator(gif)]
    assert len(frames) == FRAMES  # 200 grid times thinned to 40 frames
    assert min(frames[0].shape[:2]) >= 200 and frames[0].var() > 1.0  # a picture, not a blank
    # the solution decays in t (exp(-0.1 pi^2 t)): the first and last frames differ
    assert np.abs(frames[0] - frames[-1]).mean() > 0.1


def test_frame_times_spread_evenly_with_both_ends():
    from pinnbal.render.animation import frame_times

    assert frame_times(200, 5).tolist() == [0, 50, 100, 149, 199]
    assert frame_times(3, 40).tolist() == [0, 1, 2]  # never more frames than times


def test_gif_of_a_problem_without_time_is_one_line_and_draws_nothing(runs, tmp_path):
    for name in ("config.json", "metrics.json", "history.csv", "predictions.npz"):
        (tmp_path / name).write_bytes((runs["plane"] / name).read_bytes())
    with pytest.raises(pb.PinnbalError, match="one space coordinate and time .*; this one has coordinates x, y"):
        render_run(tmp_path, gif=True)
    assert not (tmp_path / "figures").exists()
