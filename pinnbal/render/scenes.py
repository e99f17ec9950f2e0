"""3D pictures of a run with pyvista, rendered off-screen to PNG (no display needed).

- :func:`render_scene` (three coordinates): per output, orthogonal slices
  through the middle of the box of the prediction, the reference and the
  absolute error, and iso-surfaces of the prediction coloured by the error.
- :func:`render_surface` (two coordinates): the prediction as a warped
  surface, coloured by its value and by the absolute error.

pyvista draws the panels; matplotlib adds the title (problem, balancer,
seed, error) so every figure of a run reads the same way.  The volume comes
from ``predictions.npz`` when training stored one (``volume_*`` arrays, see
:func:`pinnbal.rundir.volume_arrays`); otherwise the model is rebuilt from ``model.pt`` and
evaluated on a coarse grid.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import PinnbalError
from ..rundir import SavedRun, predict, volume_arrays
from .picture import plt, save, title, value_scale

WINDOW = (420, 380)  # pixels per panel


def available() -> bool:
    return importlib.util.find_spec("pyvista") is not None


# -- the volume ---------------------------------------------------------------------------------------
@dataclass
class Volume:
    coords: list[str]
    outputs: list[str]
    axes: list[np.ndarray]
    prediction: np.ndarray  # (n0, n1, n2, m)
    reference: np.ndarray | None


def read_volume(run: SavedRun) -> Volume:
    """The run's volume: stored in ``predictions.npz`` or computed from ``model.pt``."""
    saved = run.predictions() or {}
    if "volume_prediction" not in saved:
        problem, model = run.load_model()
        saved |= volume_arrays(problem, lambda x: predict(model, x))
    if "volume_prediction" not in saved:
        raise PinnbalError(f"{run.path}: a 3D scene needs three coordinates")
    axes = [saved[f"volume_axis{i}"] for i in range(3)]
    shape = tuple(len(a) for a in axes) + (-1,)
    ref = saved.get("volume_reference")
    return Volume([str(c) for c in saved["coord_names"][:3]], [str(o) for o in saved["output_names"]], axes,
                  saved["volume_prediction"].reshape(shape), None if ref is None else ref.reshape(shape))


# -- drawing ----------------------------------------------------------------------------------------------
def scalars(grid, name: str, values: np.ndarray) -> None:
    """Attach an 'ij'-indexed array to a pyvista grid (whose points run x fastest)."""
    grid.point_data[name] = np.ravel(values, order="F")


def value_range(*arrays: np.ndarray) -> tuple[str, list[float]]:
    """The same colour choice as the heatmaps: diverging around 0 if signed, else sequential."""
    cmap, norm = value_scale(*arrays)
    return cmap, [float(norm.vmin), float(norm.vmax)]


def bar(title: str) -> dict:
    return {"title": title, "vertical": False, "position_x": 0.27, "position_y": 0.04, "width": 0.6,
            "height": 0.1, "title_font_size": 14, "label_font_size": 12, "n_labels": 2, "fmt": "%.2g"}


def panel(plotter, row: int, col: int, caption: str, coords: list[str]) -> None:
    """Select a panel; caption it and label its axes with the coordinate names."""
    plotter.subplot(row, col)
    plotter.add_text(caption, font_size=10, position="upper_edge", color="black")
    plotter.add_axes(xlabel=coords[0], ylabel=coords[1], zlabel=coords[2], line_width=3)


def scene_panels(vol: Volume, j: int) -> list[tuple[str, Callable]]:
    """(caption, add(plotter, grid)) for the panels of output ``j``."""
    out = vol.outputs[j]
    pair = [vol.prediction[..., j]] + ([] if vol.reference is None else [vol.reference[..., j]])
    cmap, clim = value_range(*pair)

    def slices(name: str, label: str, cm: str, lim: list[float]):
        def add(pl, g):
            pl.add_mesh(g.outline(), color="grey")
            pl.add_mesh(g.slice_orthogonal(), scalars=name, cmap=cm, clim=lim, lighting=False, nan_opacity=0.0,
                        scalar_bar_args=bar(label))
        return add

    panels = [(f"PINN {out}: slices", slices("pred", f"{out} PINN", cmap, clim))]
    if vol.reference is None:
        return panels + [(f"PINN {out}: iso-surfaces", iso_surfaces(None, cmap, clim, f"{out} PINN, iso"))]
    err_lim = [0.0, max(float(np.nanmax(np.abs(pair[0] - pair[1]))), 1e-16)]
    return panels + [
        (f"reference {out}: slices", slices("ref", f"{out} reference", cmap, clim)),
        (f"abs. error {out}: slices", slices("err", f"abs. error {out}", "magma", err_lim)),
        # its own colour range, so the error on the inner shells shows
        (f"PINN {out}: iso-surfaces", iso_surfaces("err", "magma", None, f"abs. error {out} on iso-surfaces")),
    ]


def iso_surfaces(colour: str | None, cmap: str, clim: list[float] | None, label: str) -> Callable:
    """Iso-surfaces of the prediction at 20/50/80 % of its range with the octant towards the
    camera cut away so the inner ones show, coloured by ``colour`` (default: the value)."""
    def add(pl, g):
        lo, hi = g.get_data_range("pred")
        surfaces = g.contour([lo + f * (hi - lo) for f in (0.2, 0.5, 0.8)], scalars="pred")
        pl.add_mesh(g.outline(), color="grey")
        if surfaces.n_points:
            high, mid = g.bounds[1::2], g.center  # the isometric camera looks from the high corner
            surfaces = surfaces.clip_box([mid[0], high[0], mid[1], high[1], mid[2], high[2]], invert=True)
        if surfaces.n_points:
            pl.add_mesh(surfaces, scalars=colour or "pred", cmap=cmap, clim=clim, scalar_bar_args=bar(label))
    return add


def screenshot(shape: tuple[int, int], draw: Callable) -> np.ndarray:
    """Render ``draw(plotter)`` off-screen on a grid of panels; return the image."""
    import pyvista as pv

    with pv.vtk_verbosity("off"):
        plotter = pv.Plotter(off_screen=True, shape=shape, border=False,
                             window_size=(WINDOW[0] * shape[1], WINDOW[1] * shape[0]))
        plotter.set_background("white")
        try:
            draw(plotter)
            plotter.link_views()
            return plotter.screenshot(None, return_img=True)
        finally:
            plotter.close()


def save_image(image: np.ndarray, run: SavedRun, target: Path, note: str = "") -> Path:
    """The pyvista image under the run's title, as a PNG."""
    h, w = image.shape[:2]
    fig = plt.figure(figsize=(w / 100, h / 100 + 0.6), dpi=100)
    ax = fig.add_axes([0, 0, 1, h / (h + 60)])
    ax.imshow(image)
    ax.axis("off")
    return save(fig, target, title(run) + note)


def render_scene(run: SavedRun, target: Path) -> Path:
    """``scene.png``: slices and iso-surfaces of the solution and the error (one row per output)."""
    import pyvista as pv

    vol = read_volume(run)
    grid = pv.RectilinearGrid(*vol.axes)
    rows = [scene_panels(vol, j) for j in range(len(vol.outputs))]

    def draw(plotter):
        for j, panels in enumerate(rows):
            g = grid.copy()
            scalars(g, "pred", vol.prediction[..., j])
            if vol.reference is not None:
                scalars(g, "ref", vol.reference[..., j])
                scalars(g, "err", np.abs(vol.prediction[..., j] - vol.reference[..., j]))
            for c, (caption, add) in enumerate(panels):
                panel(plotter, j, c, caption, vol.coords)
                add(plotter, g)
                plotter.view_isometric()

    image = screenshot((len(rows), max(len(p) for p in rows)), draw)
    return save_image(image, run, target)


def render_surface(run: SavedRun, picture, target: Path) -> Path:
    """``surface.png``: the 2D prediction as a warped surface, coloured by value and by |error|."""
    import pyvista as pv

    mesh = np.meshgrid(*picture.axes, indexing="ij")
    span = max(float(a[-1] - a[0]) for a in picture.axes)
    coords = picture.coords + [" ".join(picture.outputs) if len(picture.outputs) == 1 else "output"]

    def draw(plotter):
        for j, out in enumerate(picture.outputs):
            u = picture.prediction[..., j]
            height = u * (0.4 * span / max(float(np.nanmax(np.abs(u))), 1e-12))
            surface = pv.StructuredGrid(mesh[0], mesh[1], height)
            scalars(surface, "pred", u)
            cmap, clim = value_range(u, *([] if picture.reference is None else [picture.reference[..., j]]))
            panel(plotter, j, 0, f"PINN {out}", coords)
            plotter.add_mesh(surface, scalars="pred", cmap=cmap, clim=clim, scalar_bar_args=bar(f"{out} PINN"))
            plotter.view_isometric()
            if picture.error is not None:
                scalars(surface, "err", picture.error[..., j])
                panel(plotter, j, 1, f"PINN {out}, coloured by abs. error", coords)
                plotter.add_mesh(surface.copy(), scalars="err", cmap="magma", scalar_bar_args=bar(f"abs. error {out}"))
                plotter.view_isometric()

    image = screenshot((len(picture.outputs), 1 if picture.error is None else 2), draw)
    return save_image(image, run, target, "\nheight: prediction (scaled)")
