"""Every gallery script runs with ``--quick`` and writes its images; the README lists them.

The scripts run as the user runs them (``python gallery/<script>.py``), in
subprocesses, all at once (one torch thread each) to keep the suite short;
``--out`` and ``--runs`` point under ``tmp_path`` so the committed images are
never touched.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from test_render import assert_image

GALLERY = REPO / "gallery"
HAS_PYVISTA = importlib.util.find_spec("pyvista") is not None

#: the images each script writes
IMAGES = {
    "01_burgers_lra": ["losses.png", "solution.png", "snapshots.png", "solution.gif"],
    "02_helmholtz_fixed_vs_lra": ["fixed-losses.png", "fixed-solution.png", "lra-losses.png", "lra-solution.png",
                                  "fixed_vs_lra.png"],
    "03_poisson3d_pyvista": ["losses.png", "solution.png", "scene.png"],
    "04_inverse_coefficient": ["losses.png", "solution.png", "snapshots.png", "kappa.png"],
    "05_causal_time_dependent": ["gradnorm-eq-losses.png", "gradnorm-eq-snapshots.png", "causal-losses.png",
                                 "causal-snapshots.png", "comparison.png", "error_vs_time.png", "causal_weights.png"],
    "06_compare_balancers": ["error_vs_step.png", "weights.png", "final_error.png", "error_maps.png"],
    "07_meta_loss_tuning": ["noisy.png", "phi.png", "helmholtz-error_vs_step.png"],  # results.md: under --runs
    "08_plate_with_hole": ["fixed-losses.png", "fixed-solution.png", "lra-losses.png", "lra-solution.png",
                           "fixed_vs_lra.png"],
}


def assert_picture(path: Path) -> None:
    """A non-blank PNG, or an animated GIF whose frames are not all the same."""
    if path.suffix != ".gif":
        assert_image(path)
        return
    from PIL import Image, ImageSequence

    assert path.read_bytes()[:6] in (b"GIF87a", b"GIF89a"), f"{path} is not a GIF"
    with Image.open(path) as gif:
        frames = [np.asarray(f.convert("RGB"), dtype=float) for f in ImageSequence.Iterator(gif)]
    assert len(frames) > 1 and min(frames[0].shape[:2]) >= 200, f"{path}: {len(frames)} frames"
    assert np.abs(frames[0] - frames[-1]).mean() > 0.1, f"{path}: the first and last frames are the same"


def test_every_script_is_covered():
    assert sorted(p.stem for p in GALLERY.glob("[0-9][0-9]_*.py")) == sorted(IMAGES)


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    root = tmp_path_factory.mktemp("gallery")
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    started = {}
    for name in IMAGES:
        out = root / name
        cmd = [sys.executable, str(GALLERY / f"{name}.py"), "--quick", "--out", str(out), "--runs", str(root / "runs")]
        started[name] = (subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True), out)
    results = {}
    try:
        for name, (proc, out) in started.items():
            stdout, stderr = proc.communicate(timeout=300)
            results[name] = (subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), out)
    finally:  # a timeout must not leave the other scripts training in the background
        for proc, _ in started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_script_quick_run_writes_its_images(quick_runs, name):
    result, out = quick_runs[name]
    assert result.returncode == 0, result.stderr[-3000:]
    expected = [i for i in IMAGES[name] if HAS_PYVISTA or i != "scene.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    for image in expected:
        assert_picture(out / image)
        assert f"wrote {out / image}" in result.stdout
    assert "rel L2" in result.stdout


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_script_reads_as_a_tutorial(name):
    """sphinx-gallery style: a docstring with an underlined title, then ``# %%`` cells."""
    source = (GALLERY / f"{name}.py").read_text()
    doc = ast.get_docstring(ast.parse(source))
    title, underline = doc.splitlines()[:2]
    assert title and set(underline) == {"="} and len(underline) == len(title)
    assert source.count("# %%") >= 3
    # both budgets in sight, the full one used unless --quick
    assert re.search(r"^FULL = dict\(", source, re.M) and re.search(r"^QUICK = dict\(", source, re.M)
    assert "options(__file__, __doc__, full=FULL, quick=QUICK)" in source and "**args.budget" in source


def test_readme_shows_every_committed_image_with_its_command():
    readme = (GALLERY / "README.md").read_text()
    shown = re.findall(r"!\[[^\]]*\]\((images/[^)]+)\)", readme)
    for name, images in IMAGES.items():
        assert f"python gallery/{name}.py" in readme, name
        for image in images:
            assert f"images/{name}/{image}" in shown, f"README does not show {name}/{image}"
    for path in shown:
        assert_picture(GALLERY / path)
    committed = sorted(str(p.relative_to(GALLERY)) for p in (GALLERY / "images").glob("*/*.*")
                       if p.suffix in (".png", ".gif"))
    assert sorted(set(shown)) == committed  # no image left out, none missing


def test_meta_script_prints_its_tables_and_writes_results_md(quick_runs):
    """07 measures rather than draws: every balancer of its tables appears, and results.md (under --runs with
    --quick, so the images folder holds images only) has all three tables."""
    result, out = quick_runs["07_meta_loss_tuning"]
    assert result.returncode == 0, result.stderr[-3000:]
    for row in ("`meta:param=poly,meta_lr=0`", "`schedule:walls=1>100`", "`meta:param=weights,k=50,T=5`"):
        assert f"| {row} |" in result.stdout, row
    written = Path(re.search(r"^wrote (\S*results\.md)$", result.stdout, re.M).group(1))
    assert written.parent != out and written.is_file()
    assert [line for line in written.read_text().splitlines() if line.startswith("Part ")][:3] == [
        line for line in result.stdout.splitlines() if line.startswith("Part ")][:3]
