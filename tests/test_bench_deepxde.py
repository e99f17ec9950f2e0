"""``pinnbal bench deepxde``: pinnbal and DeepXDE on the same Burgers setup, and the message without DeepXDE.

The comparison runs on problems/burgers.py with its point counts cut down
(256 residual, 32 initial, 32 boundary points) and a few steps; the tests
that need DeepXDE are skipped without it, the missing-DeepXDE test always runs.
"""

from __future__ import annotations

import math
import re
import sys

import pytest

from conftest import PROBLEMS
from pinnbal.bench.deepxde import INSTALL
from pinnbal.errors import OptionError

ROW = re.compile(r"^\| (pinnbal(?:, autograd derivatives|, --compile on)?|DeepXDE \(PyTorch backend\)) \| ([^|]+) \|(.*)\|$")


def table(report: str) -> dict[str, list[float]]:
    """code -> the numbers of its row (ms / step, loss, rel L2 after Adam[, after L-BFGS]); a compiled row's
    "(compile N s)" beside its ms / step is left out."""
    rows = {}
    for line in report.splitlines():
        match = ROW.match(line)
        if match:
            code = "DeepXDE" if match[1].startswith("DeepXDE") else match[1]
            rows[code] = [float(cell.split()[0]) if cell.strip() != "–" else None for cell in match[3].split("|")]
    return rows


@pytest.fixture(scope="module")
def deepxde():
    """DeepXDE on its PyTorch backend, imported the way the benchmark does; skip without it."""
    from pinnbal.bench.deepxde import import_deepxde

    try:
        return import_deepxde()
    except OptionError:
        pytest.skip("DeepXDE is not installed (pip install 'pinnbal[bench]')")


@pytest.fixture
def small_burgers(src_dir):
    """problems/burgers.py with fewer points (same equation, same reference file)."""
    source = (PROBLEMS / "burgers.py").read_text()
    cuts = {"points=8192": "points=256", "points=512": "points=32",
            'Path(__file__).with_name("burgers_reference.npz")': repr(str(PROBLEMS / "burgers_reference.npz"))}
    for old, new in cuts.items():
        assert old in source, old
        source = source.replace(old, new)
    path = src_dir / "burgers_small.py"
    path.write_text(source)
    return path


def test_without_deepxde_one_line_and_exit_2(cli, monkeypatch, work_dir):
    monkeypatch.setitem(sys.modules, "deepxde", None)  # `import deepxde` now raises ImportError
    r = cli("bench", "deepxde", "--steps", "2")
    assert r.rc == 2 and r.out == ""
    assert r.err_lines == [f"pinnbal: error: {INSTALL}"]
    assert list(work_dir.iterdir()) == []


def test_report_has_both_codes_with_times_and_errors(deepxde, cli, small_burgers, tmp_path):
    out = tmp_path / "report.md"
    r = cli("bench", "deepxde", "--problem", small_burgers, "--steps", "4", "--lbfgs", "3", "--rounds", "2",
            "--threads", "1", "--out", out)
    assert r.rc == 0, r.err
    rows = table(r.out)
    assert set(rows) == {"pinnbal", "pinnbal, autograd derivatives", "DeepXDE"}
    for code, (ms, loss, adam, lbfgs) in rows.items():
        assert math.isfinite(ms) and ms > 0, code
        assert all(math.isfinite(v) and v > 0 for v in (loss, adam)), code
        assert (lbfgs is None) == (code == "pinnbal, autograd derivatives"), code  # L-BFGS continues the default
    # the same points, weights, loss and optimiser: the same training, to float32 rounding, by either engine
    for code in ("pinnbal", "pinnbal, autograd derivatives"):
        assert rows["DeepXDE"][1] == pytest.approx(rows[code][1], rel=1e-3)
        assert rows["DeepXDE"][2] == pytest.approx(rows[code][2], rel=1e-3)
    text = out.read_text()
    assert text.strip() == r.out.strip()
    assert f"DeepXDE (PyTorch backend) | {deepxde.__version__} |" in text
    assert "Command: `pinnbal bench deepxde" in text and "CPU (1 threads)" in text  # the machine as measured
    assert "256 residual, 32 initial (ic), 32 boundary (walls)" in text and "1 torch thread " in text
    assert "rel L2 after 3 L-BFGS" in text and "Machine: " in text


def test_without_lbfgs_there_is_no_lbfgs_column(deepxde, small_burgers):
    from pinnbal.bench.deepxde import deepxde_report

    report = deepxde_report(str(small_burgers), steps=2, lbfgs=0, threads=1, command="pinnbal bench deepxde",
                            settings={"width": 8, "depth": 2})
    rows = table(report)
    assert set(rows) == {"pinnbal", "pinnbal, autograd derivatives", "DeepXDE"}
    assert all(len(v) == 3 for v in rows.values())
    assert "L-BFGS" not in report and "MLP 2 x 8 tanh" in report


def test_compiled_row_trains_the_same_and_reports_its_compile_apart(deepxde, small_burgers):
    from pinnbal.bench.deepxde import deepxde_report

    report = deepxde_report(str(small_burgers), steps=3, lbfgs=0, threads=1, command="pinnbal bench deepxde",
                            settings={"width": 8, "depth": 2}, compiled=True)
    rows = table(report)
    assert set(rows) == {"pinnbal", "pinnbal, autograd derivatives", "pinnbal, --compile on", "DeepXDE"}
    assert rows["pinnbal, --compile on"][1] == pytest.approx(rows["pinnbal"][1], rel=1e-4)  # same training
    assert re.search(r"\| pinnbal, --compile on \| [^|]+ \| [0-9.]+ \(compile [0-9.]+ s\) \|", report)
    assert "× with the forward derivatives and the loss under torch.compile" in report


def test_other_problems_are_refused(deepxde, cli, tiny_problem, small_burgers, work_dir):
    r = cli("bench", "deepxde", "--problem", tiny_problem, "--steps", "2")
    assert r.rc == 2 and len(r.err_lines) == 1 and "Burgers setup" in r.err
    other = small_burgers.with_name("burgers_nu.py")
    other.write_text(small_burgers.read_text().replace("NU = 0.01 / math.pi", "NU = 0.1"))
    r = cli("bench", "deepxde", "--problem", other, "--steps", "2")
    assert r.rc == 2 and len(r.err_lines) == 1 and "nu = 0.01/pi" in r.err
    assert list(work_dir.iterdir()) == []
