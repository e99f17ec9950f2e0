"""``pinnbal compare``: sweeps of balancers x seeds x problems, summaries, figures, resuming, bad input.

Every sweep here trains the tiny 1D Poisson problem of conftest.py (64 points, a width-8 one-layer network)
for 5 Adam steps, so a run takes a fraction of a second.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import statistics

import numpy as np
import pytest

from conftest import PNG_MAGIC, CliResult, problem_source
from pinnbal.compare import (FIGURES, compare, folder_name, on_grid, ranks, split_balancers, steps_to)
from pinnbal.errors import OptionError
from pinnbal.rundir import load_state, read_csv, save_state
from pinnbal.rundir import CHECKPOINT

TINY = ["--steps", "5", "--lbfgs", "0", "--width", "8", "--depth", "1", "--quiet"]
SETTINGS = {"steps": 5, "lbfgs": 0, "width": 8, "depth": 1}
BALANCERS = ["fixed", "lra", "relobralo"]
TARGET = 1.02  # between the errors of the first and the last step, so some seeds may reach it

#: Two outputs, u = sin(pi x) and v = sin(2 pi x): exercises the per-output columns.
PAIR = {
    "name": "pair",
    "outputs": '["u", "v"]',
    "terms": ['pb.Residual("pde", lambda p: [p.u_xx + math.pi**2 * torch.sin(math.pi * p.x), '
              'p.v_xx + 4 * math.pi**2 * torch.sin(2 * math.pi * p.x)], points=64)',
              'pb.Boundary("ends", value=0.0, points=2)'],
    "reference": "lambda p: torch.cat([torch.sin(math.pi * p.x), torch.sin(2 * math.pi * p.x)], 1)",
}


def run_cli(*args) -> CliResult:
    """``pinnbal.cli.main`` in this process (usable from fixtures of any scope)."""
    from pinnbal.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            rc = exc.code
    return CliResult(rc, out.getvalue(), err.getvalue())


def summary_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def metrics_of(folder) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def is_png(path) -> bool:
    data = path.read_bytes() if path.is_file() else b""
    return data[:8] == PNG_MAGIC and data[-8:-4] == b"IEND"


def mtimes(root) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.glob("*/*/metrics.json"))}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """fixed, lra, relobralo x 2 seeds on the tiny problem, in this process (--jobs 1)."""
    base = tmp_path_factory.mktemp("compare")
    (base / "tiny.py").write_text(problem_source())
    r = run_cli("compare", base / "tiny.py", "--balancers", ",".join(BALANCERS), "--seeds", "2", "--jobs", "1", *TINY,
                "--log-every", "1", "--eval-every", "2", "--target", TARGET, "--out", base / "sweep")
    assert r.rc == 0, r.err
    return base / "sweep", r


# -- one sweep, read back --------------------------------------------------------------------------


def test_layout_is_ordinary_run_directories(sweep):
    out, _ = sweep
    assert sorted(p.name for p in (out / "tiny").iterdir() if p.is_dir()) == sorted(
        ["figures"] + [f"{b}-s{s}" for b in BALANCERS for s in (0, 1)])
    for b in BALANCERS:
        for s in (0, 1):
            run = out / "tiny" / f"{b}-s{s}"
            m, config = metrics_of(run), json.loads((run / "config.json").read_text())
            assert (m["status"], m["balancer"], m["seed"], m["steps"]) == ("completed", b, s, 5)
            assert config["train"]["width"] == 8 and config["train"]["seed"] == s
            assert is_png(run / "figures" / "losses.png")  # each run is rendered
    assert not (out / "summary.md").exists()  # one problem: its own summary is the summary


def test_table_has_one_row_per_balancer(sweep):
    out, r = sweep
    rows = summary_csv(out / "tiny" / "summary.csv")
    assert [row["balancer"] for row in rows] == BALANCERS
    assert all(row["n"] == "2" and row["failed"] == "0" for row in rows)
    md = (out / "tiny" / "summary.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| `")]
    assert [line.split("|")[1].strip() for line in table] == [f"`{b}`" for b in BALANCERS]
    assert all(line.split("|")[2].strip() == "2" for line in table)
    assert "seeds 0, 1" in md and "5 Adam steps" in md and "pinnbal compare" in md
    # the CLI prints the table and where the summary is
    assert all(f"| `{b}` |" in r.out for b in BALANCERS)
    assert r.out.strip().splitlines()[-1] == f"summary: {out / 'tiny' / 'summary.md'}"


def test_summary_numbers_are_recomputed_from_the_runs(sweep):
    out, _ = sweep
    for row in summary_csv(out / "tiny" / "summary.csv"):
        runs = [out / "tiny" / f"{row['balancer']}-s{s}" for s in (0, 1)]
        metrics = [metrics_of(run) for run in runs]
        errors = [m["rel_l2"] for m in metrics]
        expected = {
            "rel_l2_mean": statistics.mean(errors), "rel_l2_std": statistics.stdev(errors),
            "rel_l2_median": statistics.median(errors), "rel_l2_min": min(errors), "rel_l2_max": max(errors),
            "final_loss_median": statistics.median(sum(m["final_losses"].values()) for m in metrics),
            "final_loss/pde_median": statistics.median(m["final_losses"]["pde"] for m in metrics),
            "wall_s_median": statistics.median(m["wall_s"] for m in metrics),
            "ms_per_step_median": statistics.median(m["ms_per_step"] for m in metrics),
        }
        for key, value in expected.items():
            assert float(row[key]) == pytest.approx(value, rel=1e-12), key
        # steps to target: first history row at or below it, +1 (steps taken); median over seeds
        reached = []
        for run in runs:
            hits = [r["step"] + 1 for r in read_csv(run / "history.csv") if r["rel_l2"] is not None
                    and r["rel_l2"] <= TARGET]
            reached.append(hits[0] if hits else math.inf)
        middle = float(np.median(reached))
        if math.isinf(middle):
            assert row["steps_to_target"] == "not reached"
        else:
            assert float(row["steps_to_target"]) == middle
        assert row["target_reached"] == f"{sum(map(math.isfinite, reached))}/2"


def test_overhead_is_relative_to_fixed(sweep):
    out, _ = sweep
    rows = {row["balancer"]: row for row in summary_csv(out / "tiny" / "summary.csv")}
    assert float(rows["fixed"]["overhead_vs_fixed"]) == 1.0
    base = float(rows["fixed"]["ms_per_step_median"])
    for row in rows.values():
        assert float(row["overhead_vs_fixed"]) == pytest.approx(float(row["ms_per_step_median"]) / base)
    assert "| 1.00× |" in (out / "tiny" / "summary.md").read_text()


def test_figures_are_pngs(sweep):
    out, _ = sweep
    figures = out / "tiny" / "figures"
    assert sorted(p.name for p in figures.iterdir()) == sorted(FIGURES)
    for name in FIGURES:
        assert is_png(figures / name), name
        assert f"(figures/{name})" in (out / "tiny" / "summary.md").read_text()


# -- resuming --------------------------------------------------------------------------------------


def test_rerun_skips_finished_runs_and_trains_unfinished_ones(cli, tiny_problem, tmp_path):
    out = tmp_path / "sweep"
    args = ["compare", tiny_problem, "--balancers", "fixed,lra", "--seeds", "2", "--jobs", "1", *TINY, "--out", out,
            "--checkpoint-every", "1", "--log-every", "1"]
    assert cli(*args).rc == 0
    before = mtimes(out)
    assert len(before) == 4
    (out / "tiny" / "lra-s1" / "metrics.json").unlink()  # killed mid-run: config.json without metrics.json
    interrupted = out / "tiny" / "fixed-s1" / "metrics.json"
    interrupted.write_text(json.dumps(dict(metrics_of(interrupted.parent), status="interrupted")))
    before[str(interrupted.relative_to(out))] = interrupted.stat().st_mtime_ns

    r = cli(*args)
    assert r.rc == 0, r.err
    assert "2 of 4 runs were already finished with these settings and were not trained again" in r.out
    after = mtimes(out)
    rerun = {"tiny/lra-s1/metrics.json", "tiny/fixed-s1/metrics.json"}
    assert {k: v for k, v in after.items() if k not in rerun} == {k: v for k, v in before.items() if k not in rerun}
    assert after["tiny/fixed-s1/metrics.json"] != before["tiny/fixed-s1/metrics.json"]
    assert all(metrics_of(out / "tiny" / run)["status"] == "completed" for run in ("lra-s1", "fixed-s1"))
    assert "4 runs: 1 parallel job" in (out / "tiny" / "summary.md").read_text()

    # an interrupted run that left a checkpoint is continued from it, not trained again from step 0
    cut = out / "tiny" / "lra-s0"
    first_rows = read_csv(cut / "history.csv")[:3]
    (cut / "metrics.json").write_text(json.dumps(dict(metrics_of(cut), status="interrupted")))
    saved = load_state(cut / CHECKPOINT)
    saved["history"], saved["counters"]["next_step"] = saved["history"][:3], 3  # as if stopped after step 2
    save_state(cut / CHECKPOINT, saved)
    assert cli(*args).rc == 0
    resumed = read_csv(cut / "history.csv")
    assert resumed[:3] == first_rows and [r["step"] for r in resumed] == [0, 1, 2, 3, 4]  # kept rows: not retrained
    assert metrics_of(cut)["status"] == "completed" and metrics_of(cut)["steps"] == 5

    # a diverged run is a result: kept, and counted as failed
    diverged = out / "tiny" / "lra-s0" / "metrics.json"
    diverged.write_text(json.dumps(dict(metrics_of(diverged.parent), status="diverged", rel_l2=None)))
    stamp = mtimes(out)
    r = cli(*args)
    assert r.rc == 0, r.err
    assert mtimes(out) == stamp
    rows = {row["balancer"]: row for row in summary_csv(out / "tiny" / "summary.csv")}
    assert (rows["lra"]["n"], rows["lra"]["failed"], rows["fixed"]["n"]) == ("1", "1", "2")
    assert float(rows["lra"]["rel_l2_median"]) == metrics_of(out / "tiny" / "lra-s1")["rel_l2"]

    # other settings on top of finished runs: refused before anything runs, unless --force
    r = cli(*[a if a != "5" else "6" for a in args])
    assert r.rc == 2 and len(r.err_lines) == 1 and "--force" in r.err and "steps" in r.err
    assert mtimes(out) == stamp


# -- bad input -------------------------------------------------------------------------------------


#: options | the message; no options: the problem file is missing
BAD_INPUT = """
--balancers fixed,nope      | unknown balancer 'nope'
--balancers lra:bogus=1     | unknown option 'bogus'
--balancers every=3,fixed   | no balancer before it
--balancers fixed,lra,fixed | repeats
--balancers performance:zz<1e-3 | no term named 'zz'
--steps -1                  | --steps -1
--weights zz=1              | 'zz' is not a term
--seeds 0                   | --seeds 0
--jobs 0                    | --jobs 0
--target 0                  | --target 0
--dtype float16             | --dtype float16
--seeds two                 | invalid int value
                            | no such problem file
"""


@pytest.mark.parametrize("extra, message", [tuple(part.strip() for part in line.split("|"))
                                            for line in BAD_INPUT.strip("\n").splitlines()])
def test_bad_input_fails_before_anything_runs(cli, tiny_problem, work_dir, extra, message):
    problem = tiny_problem if extra else tiny_problem.parent / "missing.py"
    r = cli("compare", problem, *TINY, *extra.split())  # default balancers: fixed,lra,relobralo
    assert r.rc == 2, r.out
    assert len(r.err_lines) == 1 and message in r.err, r.err
    assert list(work_dir.iterdir()) == []  # no runs/compare-... directory


def test_two_problems_with_the_same_name_are_refused(cli, write_problem, work_dir):
    first, second = write_problem(filename="a.py"), write_problem(filename="b.py")
    r = cli("compare", first, second, "--balancers", "fixed", *TINY)
    assert r.rc == 2 and len(r.err_lines) == 1 and "named 'tiny'" in r.err
    assert list(work_dir.iterdir()) == []


# -- several problems, in parallel ------------------------------------------------------------------


def test_two_problems_in_two_processes(write_problem, work_dir):
    tiny, pair = write_problem(filename="tiny.py"), write_problem(filename="pair.py", **PAIR)
    result = compare([tiny, pair], ["fixed,lra"], seeds=1, jobs=2, progress=False, **SETTINGS)
    out = work_dir / "runs" / "compare-tiny+pair"
    assert result.summary.resolve() == out / "summary.md"
    assert (result.jobs, len(result.outcomes), result.failed) == (2, 4, [])
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert {o.threads for o in result.outcomes} == {max(1, cpus // 2)}  # each worker took its share of the cores
    for problem in ("tiny", "pair"):
        assert all(metrics_of(out / problem / f"{b}-s0")["status"] == "completed" for b in ("fixed", "lra"))
        assert all(is_png(out / problem / "figures" / name) for name in FIGURES)
    pair_rows = summary_csv(out / "pair" / "summary.csv")
    assert {"rel_l2/u_median", "rel_l2/v_mean", "rel_l2/v_std"} <= set(pair_rows[0])
    assert "u: median" in (out / "pair" / "summary.md").read_text()
    assert "rel_l2/u_median" not in summary_csv(out / "tiny" / "summary.csv")[0]

    # the cross-problem summary: a table per problem and the mean rank of the median error
    text = result.summary.read_text()
    assert "## tiny" in text and "## pair" in text and "## Ranking" in text
    medians = {p: {row["balancer"]: float(row["rel_l2_median"]) for row in summary_csv(out / p / "summary.csv")}
               for p in ("tiny", "pair")}
    ranking = [line.split("|") for line in text.split("## Ranking")[1].splitlines() if line.startswith("| `")]
    for cells in ranking:
        name = cells[1].strip().strip("`")
        mine = [sorted(m.values()).index(m[name]) + 1 for m in medians.values()]
        assert float(cells[2]) == pytest.approx(sum(mine) / 2)
    assert [float(c[2]) for c in ranking] == sorted(float(c[2]) for c in ranking)
    assert "Ranking" in result.tables


def test_problem_without_reference(write_problem, tmp_path):
    path = write_problem(reference="None")
    result = compare([path], ["fixed"], seeds=1, jobs=1, out=tmp_path / "sweep", progress=False, **SETTINGS)
    row = summary_csv(tmp_path / "sweep" / "tiny" / "summary.csv")[0]
    assert (row["n"], row["rel_l2_median"], row["steps_to_target"]) == ("1", "", "")
    assert float(row["final_loss_median"]) > 0
    figures = tmp_path / "sweep" / "tiny" / "figures"
    assert [p.name for p in figures.iterdir()] == ["weights.png"]  # nothing to draw errors from
    assert result.summary.is_file()


# -- pieces ----------------------------------------------------------------------------------------


def test_split_balancers():
    assert split_balancers(["fixed,lra:alpha=0.9,every=10,relobralo"]) == ["fixed", "lra:alpha=0.9,every=10",
                                                                          "relobralo"]
    assert split_balancers(["performance:ic<1e-4,pde<1e-3", "mybal.py:Mine:alpha=0.5"]) == [
        "performance:ic<1e-4,pde<1e-3", "mybal.py:Mine:alpha=0.5"]
    assert split_balancers([" fixed , ,lra "]) == ["fixed", "lra"]
    with pytest.raises(OptionError, match="no balancer before"):
        split_balancers(["alpha=0.5"])
    with pytest.raises(OptionError, match="no balancer given"):
        split_balancers([","])


def test_folder_names_are_safe():
    assert folder_name("lra:every=5") == "lra_every=5"
    assert folder_name("performance:ic<1e-4") == "performance_ic_1e-4"
    assert folder_name("../bal/mine.py:Mine") == "bal_mine.py_Mine"


def test_ranks_share_ties_and_put_missing_last():
    assert ranks([0.3, 0.1, 0.3, None]) == [2.5, 1, 2.5, 4]


def test_curves_hold_their_last_value_on_a_common_grid():
    grid, values = on_grid([(np.array([0.0, 10.0]), np.array([1.0, 0.5])),
                            (np.array([5.0, 15.0]), np.array([2.0, 0.1]))])
    assert grid.tolist() == [0, 5, 10, 15]
    assert np.allclose(values[0], [1.0, 1.0, 0.5, 0.5])
    assert np.isnan(values[1][0]) and np.allclose(values[1][1:], [2.0, 2.0, 0.1])


def test_steps_to_target():
    history = [{"step": 0, "rel_l2": 0.5}, {"step": 9, "rel_l2": None}, {"step": 19, "rel_l2": 0.01}]
    assert steps_to(history, 0.02) == 20
    assert steps_to(history, 0.001) == math.inf


# -- one data split for every balancer ---------------------------------------------------------------

#: The tiny Poisson problem with 200 observations of u: learned and meta hold out 20 % of them (40).
DATA = {"name": "data", "extra": "X_OBS = np.linspace(0.0, 1.0, 200)[:, None]",
        "terms": ['pb.Residual("pde", lambda p: p.u_xx + math.pi**2 * torch.sin(math.pi * p.x), points=64)',
                  'pb.Boundary("ends", value=0.0, points=2)',
                  'pb.Data("obs", x=X_OBS, values=np.sin(math.pi * X_OBS))']}
FAST_DATA = ["--steps", "3", "--lbfgs", "0", "--width", "8", "--depth", "1", "--quiet", "--jobs", "1"]
SPLIT = ("- data split: every run trained on 160 of 200 observations of 'obs' (holdout 0.2, needed by learned); "
         "the same split for every balancer (it depends only on the seed)")


def trained_on(run) -> tuple[float, dict[str, int]]:
    """(config.json's holdout, the points each term trained on) of a run directory."""
    config = json.loads((run / "config.json").read_text())
    return config["train"]["holdout"], {t["name"]: t["points"] for t in config["terms"]}


def test_every_balancer_trains_on_the_split_a_validation_balancer_needs(cli, write_problem, tmp_path, monkeypatch):
    # figures are tested above; drawing them would take most of this test's time
    monkeypatch.setattr("pinnbal.render.render_run", lambda out, *args, **kwargs: None)
    monkeypatch.setattr("pinnbal.compare.summary.draw_figures", lambda *args: [])
    problem, out = write_problem(filename="data.py", **DATA), tmp_path / "sweep"
    runs = out / "data"

    # no balancer needs a validation set: all 200 observations, holdout 0
    r = cli("compare", problem, "--balancers", "fixed,lra", "--seeds", "1", *FAST_DATA, "--out", out)
    assert r.rc == 0, r.err
    for b in ("fixed", "lra"):
        assert trained_on(runs / f"{b}-s0") == (0.0, {"pde": 64, "ends": 2, "obs": 200})
    md = (runs / "summary.md").read_text()
    assert ("- data split: every run trained on all 200 observations of 'obs' (holdout 0: no balancer of this sweep "
            "needs a validation set); the same data for every balancer") in md
    assert "- points per term, the same for every run: pde 64, ends 2, obs 200\n" in md

    # adding learned changes the split: the fixed run on all the data is refused, not reused, and kept
    before = mtimes(out)
    r = cli("compare", problem, "--balancers", "fixed,learned", "--seeds", "1", *FAST_DATA, "--out", out)
    assert r.rc == 2 and len(r.err_lines) == 1, r.err
    assert "fixed-s0: holds a finished run with other settings (holdout 0.0 (sweep: 0.2)" in r.err
    assert "as learned needs" in r.err and "--force" in r.err
    assert mtimes(out) == before and not (runs / "learned-s0").exists()

    # --force trains fixed again: fixed and learned on the same 160 observations, config.json saying so
    r = cli("compare", problem, "--balancers", "fixed,learned", "--seeds", "1", *FAST_DATA, "--out", out, "--force")
    assert r.rc == 0, r.err
    for b in ("fixed", "learned"):
        assert trained_on(runs / f"{b}-s0") == (0.2, {"pde": 64, "ends": 2, "obs": 160})
    md = (runs / "summary.md").read_text()
    assert SPLIT in md.splitlines()
    assert "- budget, the same for every run: 3 Adam steps (lr 0.005) + 0 ssbfgs/lbfgs (auto) iterations in float64; mlp 1×8 tanh" in md
    assert "- points per term, the same for every run: pde 64, ends 2, obs 160 of 200\n" in md
    assert "- seed 0 (1 per balancer, the same for every balancer)" in md
    assert SPLIT in r.out.splitlines()  # printed with the table
    assert "--holdout 0.2" in md  # the command that reproduces it
    assert trained_on(runs / "lra-s0")[0] == 0.0  # another balancer's directory: left as it was

    # the same sweep again: both runs match (the holdout included) and are reused
    stamp = mtimes(out)
    r = cli("compare", problem, "--balancers", "fixed,learned", "--seeds", "1", *FAST_DATA, "--out", out)
    assert r.rc == 0, r.err
    assert "2 of 2 runs were already finished with these settings" in r.out
    assert mtimes(out) == stamp


def test_the_sweep_holdout_is_the_largest_any_balancer_uses(write_problem):
    from pinnbal.compare.summary import holdout_source, shared_lines, training_observations
    from pinnbal.compare.sweep import plan

    data, tiny = write_problem(filename="data.py", **DATA), write_problem(filename="tiny.py")

    def planned(balancers, problems=(data,), **settings):
        return plan(list(problems), balancers, 1, None, 0.01, dict(SETTINGS, **settings))

    assert planned(["fixed,lra,relobralo"]).holdout == 0.0
    sweep = planned(["fixed,lra+rba,learned+rba"])  # a composition: the option of its term-level part
    assert (sweep.holdout, sweep.needed) == (0.2, {"learned+rba": 0.2})
    sweep = planned(["fixed,learned:holdout=0.3,meta"])
    assert (sweep.holdout, sweep.needed) == (0.3, {"learned:holdout=0.3": 0.3, "meta": 0.2})
    assert holdout_source(sweep) == "needed by learned:holdout=0.3"
    assert planned(["fixed,learned"], holdout=0.1).holdout == 0.2
    assert holdout_source(planned(["fixed,learned"], holdout=0.1)) == "needed by learned, above --holdout 0.1"
    sweep = planned(["fixed,learned"], holdout=0.5)  # a larger --holdout stays
    assert (sweep.holdout, holdout_source(sweep)) == (0.5, "from --holdout; learned needs 0.2")
    assert "every run trained on 100 of 200 observations of 'obs' (holdout 0.5, from --holdout; learned needs " \
           "0.2)" in "\n".join(shared_lines(sweep))
    # no observations to split: the holdout stays as given
    sweep = planned(["fixed,learned"], problems=(tiny,))
    assert sweep.holdout == 0.0
    assert "- data split: no pb.Data term: no observations to hold out (learned validates on fresh points only)" \
           in "\n".join(shared_lines(sweep))
    # several problems: one holdout for all, each problem's data named
    sweep = planned(["fixed,meta"], problems=(tiny, data))
    assert sweep.holdout == 0.2
    lines = shared_lines(sweep)
    assert "points per term, the same for every run: tiny: pde 64, ends 2; data: pde 64, ends 2, obs 160 of 200" \
           in lines[1]
    assert "160 of 200 observations of data's 'obs' (holdout 0.2, needed by meta)" in lines[2]

    # Batches.split's rule: at least one observation held out and one kept; a single one is shared
    assert [training_observations(n, h) for n, h in ((200, 0.2), (200, 0.0), (10, 0.01), (2, 0.9), (1, 0.2))] == [
        160, 200, 9, 1, 1]


def test_a_run_another_sweep_finished_after_planning_is_kept_not_trained_again(tmp_path):
    """Two sweeps on one directory: the second planned a run, the first finished it meanwhile; the second keeps
    that result instead of training over it."""
    import pinnbal as pb
    from pinnbal.compare.execute import train_job
    from pinnbal.compare.plan import pending, plan

    settings = {"steps": 3, "lbfgs": 0, "width": 8, "depth": 1}
    sweep = plan(["problems/poisson1d.py"], ["fixed"], 1, tmp_path / "sweep", 1e-2, settings)
    todo, done = pending(sweep, force=False)
    assert len(todo) == 1 and not done and todo[0].planned > 0
    job = todo[0]
    other = pb.train(job.problem_path, "fixed", out=job.out, force=True, seed=job.seed, render=False, **settings)
    written = (job.out / "metrics.json").stat().st_mtime_ns
    outcome = train_job(job, sweep.settings)
    assert outcome.status == "completed" and outcome.rel_l2 == other.metrics["rel_l2"]
    assert (job.out / "metrics.json").stat().st_mtime_ns == written  # not trained again
