"""Figures of a run, drawn from its run directory alone (matplotlib, Agg).

:func:`render_run` writes into ``RUN_DIR/figures/``:

- ``losses.png``: the training history, one panel each: term losses and the
  weighted total (log); term weights (log); the balancer's own logged state
  (``log_var/<term>`` for ``uncertainty``, ...); the relative L2 error at the
  steps where it was evaluated; the unknowns of an inverse problem.  A dashed
  line marks the start of L-BFGS.
- ``solution.png``: prediction against reference from ``predictions.npz``.
  One coordinate: a line plot over the absolute error (log).  Two coordinates
  (space-time included, time drawn horizontally): heatmaps of prediction,
  reference and absolute error, one row per output; prediction and reference
  share one colour scale (diverging for signed data, sequential otherwise),
  the error has a sequential one.  More coordinates: the slice through the
  middle of the others.
- ``snapshots.png`` (problems in x and t): the solution at three times,
  PINN against reference.
- ``scene.png`` (three coordinates, pyvista installed): a 3D scene of the
  solution and the error, see :mod:`pinnbal.render.scenes`; ``surface.png`` (two
  coordinates, ``render_run(path, surface=True)``): the solution as a
  warped surface.
- ``solution.gif`` (problems in x and t, ``render_run(path, gif=True)``): the
  solution over time, see :mod:`pinnbal.render.animation`.

:func:`plot_comparison` puts several runs of one problem side by side and
:func:`plot_unknowns` draws the unknowns against their true values.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import PinnbalError
from ..rundir import PREDICTIONS, SavedRun, read_run
from . import animation, plots, scenes
from .picture import Picture, read_picture
from .plots import plot_comparison, plot_unknowns


def render_run(path: str | Path, *, surface: bool = False, gif: bool = False) -> list[Path]:
    """Draw the run's figures into ``path/figures``; return the files written.

    ``gif``: also ``solution.gif``, the solution over time (problems in x and t,
    :mod:`pinnbal.render.animation`).
    """
    run = read_run(path)
    if not (run.path / PREDICTIONS).is_file():
        raise PinnbalError(f"{path}: no {PREDICTIONS}; this run directory is incomplete")
    picture = read_picture(run)
    if gif:
        animation.check_animatable(run, picture)  # before anything is drawn
    figures = run.figures
    figures.mkdir(exist_ok=True)
    written = [plots.plot_training(run, figures / "losses.png"), plots.plot_solution(run, picture, figures / "solution.png")]
    if picture.is_space_time:
        written.append(plots.plot_snapshots(run, picture, figures / "snapshots.png"))
    written += render_scenes(run, picture, figures, surface)
    if gif:
        written.append(animation.render_gif(run, picture, figures / "solution.gif"))
    return written


def render_scenes(run: SavedRun, picture: "Picture", figures: Path, surface: bool) -> list[Path]:
    """The pyvista pictures this run calls for: a 3D scene, or a warped surface if asked."""
    dim = len(picture.all_coords)
    if dim != 3 and not (surface and dim == 2):
        return []
    if not scenes.available():
        warnings.warn("pyvista is not installed: no 3D scene (pip install pyvista)", stacklevel=3)
        return []
    if dim == 2:
        return [scenes.render_surface(run, picture, figures / "surface.png")]
    try:
        return [scenes.render_scene(run, figures / "scene.png")]
    except PinnbalError as exc:  # no stored volume and no model to compute one from
        warnings.warn(f"no 3D scene: {exc}", stacklevel=3)
        return []


__all__ = ["plot_comparison", "plot_unknowns", "render_run"]
