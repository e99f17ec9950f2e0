"""Every gallery script runs in --quick mode and writes readable, non-blank images."""
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

GALLERY = Path(__file__).resolve().parents[1] / "gallery"
SCRIPTS = sorted(GALLERY.glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_gallery_script_quick(script, tmp_path):
    out = tmp_path / script.stem
    done = subprocess.run([sys.executable, str(script), "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    images = sorted(out.glob("*.png"))
    assert images, "no images written"
    for image in images:
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = matplotlib.image.imread(image)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300
        assert pixels.std() > 0.01, f"{image.name} is blank"


def test_the_gallery_readme_shows_every_committed_image():
    readme = (GALLERY / "README.md").read_text()
    for image in sorted((GALLERY / "images").glob("*/*.png")):
        assert str(image.relative_to(GALLERY)) in readme, image
