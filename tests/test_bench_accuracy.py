"""``pinnbal bench accuracy``: a sweep over suite problems, our numbers beside the published ones."""
import pytest

from pinnbal.bench.anchors import ANCHORS, SUITE
from pinnbal.bench.accuracy import accuracy_report, suite_paths
from pinnbal.cli import main
from pinnbal.errors import OptionError

TINY = dict(steps=3, lbfgs=0, width=8, depth=1, eval_every=10)


def test_every_suite_problem_has_an_anchor_and_unknown_names_are_refused():
    assert set(SUITE) == set(ANCHORS)
    with pytest.raises(OptionError, match="no problem file .*nosuch.py"):
        suite_paths(["nosuch"])


def test_report_has_a_row_per_problem_and_balancer_with_the_published_numbers(tmp_path):
    report = accuracy_report(["poisson1d", "helmholtz2d"], ["fixed", "lra"], 1, tmp_path / "sweep",
                             "pinnbal bench accuracy (test)", jobs=1, progress=False, **TINY)
    rows = [line for line in report.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == 4
    assert rows[0].startswith("| `poisson1d` | `fixed` |") and ANCHORS["poisson1d"].plain in rows[0]
    assert rows[2].startswith("| `helmholtz2d` | `fixed` |") and ANCHORS["helmholtz2d"].best in rows[2]
    assert all("1/1" in row for row in rows)  # every run finished
    assert "Budget per run: 3 Adam steps" in report and "Wang, Teng & Perdikaris 2021" in report
    # a tiny budget misses every goal, and each row says by how much and what stopped the median seed
    for row, goal in zip(rows, [ANCHORS["poisson1d"].goal] * 2 + [ANCHORS["helmholtz2d"].goal] * 2):
        cells = [c.strip() for c in row.split("|")]
        median, ratio = float(cells[3]), float(cells[7].removeprefix(f"{goal:.1e}: ").removesuffix("× over"))
        assert ratio == pytest.approx(median / goal, rel=1e-2) and float(cells[4]) >= median
        assert cells[8].startswith(("iteration budget used up (loss ", "second stage converged after "))
    # the sweep is resumable: the same command finds every run finished and trains nothing
    again = accuracy_report(["poisson1d", "helmholtz2d"], ["fixed", "lra"], 1, tmp_path / "sweep",
                            "pinnbal bench accuracy (test)", jobs=1, progress=False, **TINY)
    assert [r.split("|")[3] for r in rows] == [r.split("|")[3] for r in again.splitlines()
                                               if r.startswith("| ") and "`" in r]


def test_the_cli_writes_the_report_and_refuses_bad_input(tmp_path, capsys):
    out = tmp_path / "accuracy.md"
    assert main(["bench", "accuracy", "--problems", "poisson1d", "--balancers", "fixed", "--seeds", "1", "--steps",
                 "2", "--lbfgs", "0", "--width", "8", "--depth", "1", "--jobs", "1", "--quiet",
                 "--runs", str(tmp_path / "sweep"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| `poisson1d` | `fixed` |" in text and "Command: `pinnbal bench accuracy" in text
    capsys.readouterr()
    assert main(["bench", "accuracy", "--problems", "nosuch", "--quiet"]) == 2
    assert "no problem file" in capsys.readouterr().err
    assert main(["bench", "accuracy", "--problems", "helmholtz2d", "--balancers", "causal", "--quiet",
                 "--runs", str(tmp_path / "refused")]) == 2
    assert "no time coordinate" in capsys.readouterr().err and not (tmp_path / "refused").exists()
