"""``pinnbal compare --executor ray``: the same sweep as the local executor, as Ray tasks.

The Ray tests start a local instance (``ray.init(num_cpus=2)``) once for the
module and train the tiny 1D Poisson problem of conftest.py (64 points, a
width-8 one-layer network, 5 Adam steps); without Ray they are skipped, while
the tests of the missing-Ray message and of the placement rules always run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import sys

import pytest

from conftest import problem_source
from pinnbal.compare import compare
from pinnbal.compare.ray_executor import INSTALL, layout
from pinnbal.errors import OptionError

SETTINGS = {"steps": 5, "lbfgs": 0, "width": 8, "depth": 1, "device": "cpu", "log_every": 1, "eval_every": 2}
TINY = ["--steps", "5", "--lbfgs", "0", "--width", "8", "--depth", "1", "--device", "cpu", "--log-every", "1",
        "--eval-every", "2", "--quiet"]
BALANCERS = ["fixed", "lra"]
#: summary.csv columns that depend on timing, not on what was trained
TIMING = ("wall_s", "ms_per_step", "overhead_vs_fixed")


def run_cli(*args):
    """(exit code, stdout, stderr) of ``pinnbal.cli.main`` in this process."""
    from pinnbal.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as exc:
            rc = exc.code
    return rc, out.getvalue(), err.getvalue()


def metrics_of(folder) -> dict:
    """A run directory's metrics.json."""
    return json.loads((folder / "metrics.json").read_text())


def summary_rows(path) -> list[dict[str, str]]:
    """summary.csv's rows without the timing columns."""
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if not k.startswith(TIMING)} for row in csv.DictReader(fh)]


def is_number(text: str) -> bool:
    """Whether a CSV cell is a number."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def stamps(root) -> dict[str, int]:
    """metrics.json modification times of every run under a sweep directory."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.glob("*/*/metrics.json"))}


# -- without Ray, and the placement rules (no Ray needed) ------------------------------------------


def test_without_ray_one_line_and_exit_2(tiny_problem, work_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    rc, out, err = run_cli("compare", tiny_problem, "--executor", "ray", *TINY)
    assert rc == 2 and out == ""
    assert err.strip().splitlines() == [f"pinnbal: error: {INSTALL}"]
    assert list(work_dir.iterdir()) == []  # nothing written


def test_ray_address_needs_the_ray_executor(tiny_problem, work_dir):
    rc, _, err = run_cli("compare", tiny_problem, "--ray-address", "auto", *TINY)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--executor ray" in err
    rc, _, err = run_cli("compare", tiny_problem, "--executor", "dask", *TINY)
    assert rc == 2 and "invalid choice" in err
    assert list(work_dir.iterdir()) == []


def test_layout_gives_each_gpu_run_a_gpu_and_cpu_runs_a_share_of_the_cpus():
    gpus = {"CPU": 16.0, "GPU": 4.0}
    plan = layout("cuda", None, 10, gpus, node_cpus=8)
    assert (plan.jobs, plan.threads, plan.options) == (4, 1, {"num_gpus": 1, "num_cpus": 1})
    assert layout("auto", None, 10, gpus, 8).options["num_gpus"] == 1  # auto: the cluster's GPUs
    assert layout("auto", 2, 10, gpus, 8).jobs == 2  # --jobs caps the runs in flight
    cpu = layout("cpu", None, 3, gpus, node_cpus=8)  # 3 runs on 16 CPUs: 5 threads each
    assert (cpu.jobs, cpu.threads, cpu.options) == (3, 5, {"num_cpus": 5, "num_gpus": 0})
    assert layout("cpu", None, 1, {"CPU": 16.0}, node_cpus=8).threads == 8  # no more than one node has
    assert layout("auto", None, 40, {"CPU": 16.0}, 8).threads == 1
    with pytest.raises(OptionError, match="has no GPUs"):
        layout("cuda", None, 2, {"CPU": 4.0}, 4)
    with pytest.raises(OptionError, match="use --device cuda"):
        layout("cuda:1", None, 2, gpus, 8)


# -- on a local Ray instance ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance with 2 CPUs for the whole module (compare() uses it as it is)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def sweeps(ray_instance, tmp_path_factory):
    """fixed and lra, seed 0, on the tiny problem: once with the local executor, once on Ray."""
    base = tmp_path_factory.mktemp("ray")
    (base / "tiny.py").write_text(problem_source())
    local = compare([base / "tiny.py"], BALANCERS, seeds=1, jobs=1, out=base / "local", progress=False, **SETTINGS)
    remote = compare([base / "tiny.py"], BALANCERS, seeds=1, out=base / "ray", progress=False, executor="ray",
                     **SETTINGS)
    return base, local, remote


def test_ray_sweep_writes_what_the_local_executor_writes(sweeps):
    base, local, remote = sweeps
    assert (len(remote.outcomes), remote.failed, remote.skipped) == (2, [], [])
    assert (remote.jobs, remote.threads) == (2, 1)  # 2 runs on 2 CPUs: one thread each
    assert {o.threads for o in remote.outcomes} == {1}  # the task set torch's threads
    names = sorted(p.name for p in (base / "local" / "tiny").iterdir())
    assert names == sorted(["figures", "summary.csv", "summary.md", "fixed-s0", "lra-s0"])
    assert sorted(p.name for p in (base / "ray" / "tiny").iterdir()) == names
    for run in ("fixed-s0", "lra-s0"):
        mine, theirs = base / "ray" / "tiny" / run, base / "local" / "tiny" / run
        assert sorted(p.name for p in mine.iterdir()) == sorted(p.name for p in theirs.iterdir())
        m, ref = metrics_of(mine), metrics_of(theirs)
        assert m["status"] == ref["status"] == "completed"
        # the same run on CPU with the same seed: the same numbers (the error on the evaluation grid, a large
        # matrix product, may differ in the last bit: the local run had 2 torch threads, each Ray task 1)
        assert m["final_losses"] == ref["final_losses"] and m["final_weights"] == ref["final_weights"]
        assert m["rel_l2"] == pytest.approx(ref["rel_l2"], rel=1e-12)
        config, ref_config = (json.loads((d / "config.json").read_text()) for d in (mine, theirs))
        assert config["train"] == ref_config["train"] and config["balancer"] == ref_config["balancer"]
    # the summary, timings aside, is the same; the ledger says where the runs trained
    mine, theirs = (summary_rows(base / where / "tiny" / "summary.csv") for where in ("ray", "local"))
    assert [list(row) for row in mine] == [list(row) for row in theirs]
    for row, ref in zip(mine, theirs):
        for key, value in row.items():
            if is_number(value):
                assert float(value) == pytest.approx(float(ref[key]), rel=1e-12), key
            else:
                assert value == ref[key], key
    assert sorted(p.name for p in (base / "ray" / "tiny" / "figures").iterdir()) == sorted(
        p.name for p in (base / "local" / "tiny" / "figures").iterdir())
    assert "2 runs: 2 parallel jobs × 1 torch thread on a Ray cluster of 2 CPUs" in remote.summary.read_text()
    ledger = json.loads((base / "ray" / "sweep.json").read_text())["runs"]
    assert {how["executor"] for how in ledger.values()} == {"ray"}


def test_ray_sweep_resumes_like_the_local_one(ray_instance, tmp_path):
    (tmp_path / "tiny.py").write_text(problem_source())
    args = ["compare", tmp_path / "tiny.py", "--balancers", ",".join(BALANCERS), "--seeds", "2", "--executor", "ray",
            *TINY, "--out", tmp_path / "sweep"]
    rc, out, err = run_cli(*args)
    assert rc == 0, err
    assert "| `fixed` |" in out and out.strip().splitlines()[-1].startswith("summary: ")
    before = stamps(tmp_path / "sweep")
    assert len(before) == 4

    rc, _, err = run_cli(*args)  # everything finished: nothing trains
    assert rc == 0, err
    assert stamps(tmp_path / "sweep") == before

    killed = tmp_path / "sweep" / "tiny" / "lra-s1"
    (killed / "metrics.json").unlink()  # killed mid-run: config.json without metrics.json
    interrupted = tmp_path / "sweep" / "tiny" / "fixed-s0" / "metrics.json"
    interrupted.write_text(json.dumps(dict(metrics_of(interrupted.parent), status="interrupted")))
    before = stamps(tmp_path / "sweep")
    rc, _, err = run_cli(*args)
    assert rc == 0, err
    after = stamps(tmp_path / "sweep")
    again = {"tiny/lra-s1/metrics.json", "tiny/fixed-s0/metrics.json"}
    assert {k: v for k, v in after.items() if k not in again} == {k: v for k, v in before.items() if k not in again}
    assert set(after) == set(before) | again and after["tiny/fixed-s0/metrics.json"] != before[
        "tiny/fixed-s0/metrics.json"]
    assert all(metrics_of(tmp_path / "sweep" / "tiny" / run)["status"] == "completed" for run in ("lra-s1", "fixed-s0"))
