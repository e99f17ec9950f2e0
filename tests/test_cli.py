"""The ``pinnbal`` command line: run directories, info, balancers, render, --force, seeds."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re

import numpy as np
import pytest
import torch

from conftest import FAST, PNG_MAGIC, PROBLEMS, CliResult, problem_source

HISTORY_HEAD = ["step", "phase", "wall_s", "loss"]
METRIC_KEYS = {"problem", "balancer", "seed", "steps", "wall_s", "ms_per_step", "rel_l2", "rel_l2_per_output",
               "final_losses", "final_weights", "unknowns"}


def read_history(path):
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = [dict(zip(header, row)) for row in reader]
    return header, rows


def is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


# -- pinnbal run ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One rendered 5-step run of the tiny problem, logging every 2 steps (shared by the module)."""
    from pinnbal.cli import main

    base = tmp_path_factory.mktemp("tiny_run")
    problem = base / "tiny.py"
    problem.write_text(problem_source())
    out = base / "run"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main([str(a) for a in ("run", problem, "--steps", "5", "--lbfgs", "0", "--log-every", "2", "--width", "8",
                                     "--depth", "1", "--balancer", "fixed", "--seed", "7", "--quiet", "--out", out)])
    assert rc == 0, stderr.getvalue()
    return out, CliResult(rc, stdout.getvalue(), stderr.getvalue())


def test_run_writes_config(tiny_run):
    out, _ = tiny_run
    config = json.loads((out / "config.json").read_text())
    assert config["problem_path"] == str(out.parent / "tiny.py")
    assert config["problem"] == "tiny"
    assert config["balancer"] == "fixed"
    train = config["train"]
    assert (train["steps"], train["width"], train["depth"], train["seed"], train["log_every"]) == (5, 8, 1, 7, 2)
    assert train["lbfgs"] == 0
    versions = config["versions"]
    assert versions["pinnbal"] and versions["torch"] == torch.__version__
    assert [t["name"] for t in config["terms"]] == ["pde", "ends"]


def test_run_writes_metrics(tiny_run):
    out, r = tiny_run
    m = json.loads((out / "metrics.json").read_text())
    assert METRIC_KEYS <= set(m)
    assert m["problem"] == "tiny"
    assert m["balancer"] == "fixed"
    assert m["seed"] == 7
    assert m["steps"] == 5
    assert m["wall_s"] > 0 and m["ms_per_step"] > 0
    assert isinstance(m["rel_l2"], float) and 0 < m["rel_l2"] < 10
    assert m["rel_l2_per_output"] == {"u": pytest.approx(m["rel_l2"])}
    assert set(m["final_losses"]) == {"pde", "ends"}
    assert all(isinstance(v, float) and v >= 0 for v in m["final_losses"].values())
    assert m["final_weights"] == {"pde": 1.0, "ends": 1.0}
    assert m["unknowns"] == {}
    # the one-line summary names the result and where it went
    assert "tiny" in r.out and "fixed" in r.out and str(out) in r.out and "rel L2" in r.out


def test_run_writes_history(tiny_run):
    out, _ = tiny_run
    header, rows = read_history(out / "history.csv")
    assert header == HISTORY_HEAD + ["loss/pde", "loss/ends", "weight/pde", "weight/ends", "rel_l2"]
    # --log-every 2 over 5 steps: steps 0, 2 and the last one, 4
    assert [int(r["step"]) for r in rows] == [0, 2, 4]
    assert {r["phase"] for r in rows} == {"adam"}
    walls = [float(r["wall_s"]) for r in rows]
    assert walls == sorted(walls)
    for row in rows:
        # the logged loss is the weighted sum of the term losses
        total = sum(float(row[f"weight/{t}"]) * float(row[f"loss/{t}"]) for t in ("pde", "ends"))
        assert float(row["loss"]) == pytest.approx(total, rel=1e-12)
    m = json.loads((out / "metrics.json").read_text())
    last = rows[-1]
    assert m["final_losses"] == {t: pytest.approx(float(last[f"loss/{t}"])) for t in ("pde", "ends")}
    assert m["final_weights"] == {t: pytest.approx(float(last[f"weight/{t}"])) for t in ("pde", "ends")}
    # rel_l2 is evaluated on step 0 (eval_every divides it) and on the last step
    assert float(last["rel_l2"]) == pytest.approx(m["rel_l2"])
    assert rows[0]["rel_l2"] != "" and rows[1]["rel_l2"] == ""


def test_run_model_is_loadable_and_matches_rel_l2(tiny_run):
    out, _ = tiny_run
    state = torch.load(out / "model.pt", weights_only=True)
    weights = state["model"]
    first = [v for k, v in weights.items() if k.endswith("weight")][0]
    assert tuple(first.shape) == (8, 1)  # width 8, one input coordinate

    # Rebuild the model from the run directory and recompute the error against sin(pi x).
    from pinnbal.rundir import predict, read_run

    _, model = read_run(out).load_model()
    x = np.linspace(0.0, 1.0, 20000)[:, None]
    pred = predict(model, x)[:, 0]
    exact = np.sin(np.pi * x[:, 0])
    rel = np.linalg.norm(pred - exact) / np.linalg.norm(exact)
    m = json.loads((out / "metrics.json").read_text())
    assert rel == pytest.approx(m["rel_l2"], rel=1e-4)


def test_run_renders_pngs(tiny_run):
    out, _ = tiny_run
    assert is_png(out / "figures" / "losses.png")
    assert is_png(out / "figures" / "solution.png")


def test_no_render_writes_no_figures(cli, tiny_problem, tmp_path):
    out = tmp_path / "run"
    assert cli("run", tiny_problem, *FAST, "--out", out).rc == 0
    assert (out / "metrics.json").is_file()
    assert not (out / "figures").exists()


def test_run_without_reference_has_null_rel_l2(cli, write_problem, tmp_path):
    path = write_problem(reference="None")
    out = tmp_path / "run"
    r = cli("run", path, *FAST, "--out", out)
    assert r.rc == 0, r.err
    m = json.loads((out / "metrics.json").read_text())
    assert m["rel_l2"] is None
    assert m["rel_l2_per_output"] is None
    _, rows = read_history(out / "history.csv")
    assert rows and all(row["rel_l2"] == "" for row in rows)
    assert "no reference" in r.out


def test_run_with_unknown_records_it(cli, write_problem, tmp_path):
    # u'' = -kappa pi^2 sin(pi x) with a trainable kappa (initial value 2)
    path = write_problem(
        terms=['pb.Residual("pde", lambda p: p.u_xx + p.kappa * math.pi**2 * torch.sin(math.pi * p.x), points=64)',
               'pb.Boundary("ends", value=0.0, points=2)'],
        unknowns='{"kappa": 2.0}',
    )
    out = tmp_path / "run"
    r = cli("run", path, *FAST, "--log-every", "1", "--out", out)
    assert r.rc == 0, r.err
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["unknowns"]) == {"kappa"}
    assert isinstance(m["unknowns"]["kappa"], float)
    assert abs(m["unknowns"]["kappa"] - 2.0) < 0.1  # five small Adam steps from 2.0
    header, rows = read_history(out / "history.csv")
    assert "unknown/kappa" in header and header[-1] == "rel_l2"
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4]
    assert float(rows[-1]["unknown/kappa"]) == pytest.approx(m["unknowns"]["kappa"])


def test_default_out_dir(cli, tiny_problem, work_dir):
    r = cli("run", tiny_problem, *FAST, "--balancer", "fixed", "--seed", "3")
    assert r.rc == 0, r.err
    run_dir = work_dir / "runs" / "tiny-fixed-s3"
    assert (run_dir / "metrics.json").is_file()
    assert json.loads((run_dir / "metrics.json").read_text())["seed"] == 3
    assert sorted(p.name for p in (work_dir / "runs").iterdir()) == ["tiny-fixed-s3"]


def test_default_out_dir_default_balancer(cli, tiny_problem, work_dir):
    r = cli("run", tiny_problem, *FAST)
    assert r.rc == 0, r.err
    assert (work_dir / "runs" / "tiny-lra-s0" / "history.csv").is_file()


def test_fixed_weights_from_cli(cli, tiny_problem, tmp_path):
    out = tmp_path / "run"
    r = cli("run", tiny_problem, *FAST, "--balancer", "fixed", "--weights", "pde=1,ends=100", "--out", out)
    assert r.rc == 0, r.err
    m = json.loads((out / "metrics.json").read_text())
    assert m["final_weights"] == {"pde": 1.0, "ends": 100.0}
    assert m["final_loss"] == pytest.approx(m["final_losses"]["pde"] + 100 * m["final_losses"]["ends"])
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["weights"] == {"pde": 1.0, "ends": 100.0}
    _, rows = read_history(out / "history.csv")
    assert all(float(r["weight/ends"]) == 100.0 and float(r["weight/pde"]) == 1.0 for r in rows)


def test_lra_adapts_weights(cli, tiny_problem, tmp_path):
    out = tmp_path / "run"
    r = cli("run", tiny_problem, *FAST, "--balancer", "lra:every=1,alpha=0", "--out", out)
    assert r.rc == 0, r.err
    m = json.loads((out / "metrics.json").read_text())
    assert m["final_weights"]["pde"] == 1.0  # the reference (residual) term keeps its weight
    assert m["final_weights"]["ends"] != 1.0
    assert 1e-3 <= m["final_weights"]["ends"] <= 1e3  # default bounds


def test_run_end_to_end_subprocess(pinnbal_subprocess, tiny_problem, work_dir):
    proc = pinnbal_subprocess("run", tiny_problem, *FAST, "--balancer", "fixed", cwd=work_dir)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    run_dir = work_dir / "runs" / "tiny-fixed-s0"
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["steps"] == 5 and m["balancer"] == "fixed"
    assert str(run_dir.relative_to(work_dir)) in proc.stdout


# -- info, balancers, render ---------------------------------------------------------------------


def test_info_burgers(cli):
    r = cli("info", PROBLEMS / "burgers.py")
    assert r.rc == 0, r.err
    assert "burgers" in r.out
    for name, kind, n in (("pde", "residual", 8192), ("ic", "initial", 512), ("walls", "boundary", 512)):
        assert re.search(rf"^\s*{name}\s+{kind}\s+{n} points", r.out, re.M), r.out
    assert re.search(r"x in \[-1, 1\], t in \[0, 1\]", r.out)
    assert "reference grid" in r.out


def test_info_poisson(cli):
    r = cli("info", PROBLEMS / "poisson1d.py")
    assert r.rc == 0, r.err
    assert re.search(r"^\s*pde\s+residual\s+512 points", r.out, re.M)
    assert re.search(r"^\s*ends\s+boundary\s+2 points.*on 2 face", r.out, re.M)
    assert "reference closed form" in r.out


def test_info_tiny_with_unknowns(cli, write_problem):
    path = write_problem(unknowns='{"kappa": 0.5}', reference="None")
    r = cli("info", path)
    assert r.rc == 0, r.err
    assert "kappa (init 0.5)" in r.out
    assert "reference none" in r.out


def test_info_says_periodic_transform_and_rules(cli, write_problem):
    r = cli("info", PROBLEMS / "allen_cahn.py")
    assert r.rc == 0 and re.search(r"^periodic\s+x\b", r.out, re.M), r.out
    source = write_problem().read_text().replace("    unknowns=None,\n)",
                                                 "    unknowns=None,\n    transform=lambda p, u: p.x * u,\n)")
    path = write_problem(source + "\n\ndef weights(state):\n    return {}\n")
    r = cli("info", path)
    assert r.rc == 0, r.err
    assert re.search(r"^outputs\s+u\s+\(through transform=\)", r.out, re.M) and re.search(r"^rules\s", r.out, re.M)
    assert "periodic" not in r.out


def test_balancers_lists_options(cli):
    r = cli("balancers")
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    names = [line.split()[0] for line in lines if line and not line[0].isspace()]
    assert names[:2] == ["fixed", "lra"] or {"fixed", "lra"} <= set(names)
    fixed_opts = lines[lines.index(next(l for l in lines if l.startswith("fixed"))) + 1]
    assert "options: -" in fixed_opts
    lra_opts = lines[lines.index(next(l for l in lines if l.startswith("lra"))) + 1]
    for opt in ("alpha=0.9", "every=10", "variant=max", "form=weighted", "min=0.001", "max=1000.0"):
        assert opt in lra_opts
    assert "jacobian" in lra_opts  # lra needs per-term gradients


def test_render_redraws_figures(cli, tiny_problem, tmp_path):
    out = tmp_path / "run"
    assert cli("run", tiny_problem, *FAST, "--out", out).rc == 0
    assert not (out / "figures").exists()
    r = cli("render", out)
    assert r.rc == 0, r.err
    losses, solution = out / "figures" / "losses.png", out / "figures" / "solution.png"
    assert is_png(losses) and is_png(solution)
    assert r.out.split() == [str(losses), str(solution)]
    # redrawing again replaces them
    losses.write_bytes(b"stale")
    assert cli("render", out).rc == 0
    assert is_png(losses)


def test_render_from_another_directory(cli, work_dir, tmp_path, monkeypatch):
    """A run started with a relative problem path can still be rendered from elsewhere."""
    (work_dir / "tiny.py").write_text(problem_source())
    assert cli("run", "tiny.py", *FAST, "--out", "run").rc == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    r = cli("render", work_dir / "run")
    assert r.rc == 0, r.err
    assert is_png(work_dir / "run" / "figures" / "solution.png")


def test_render_not_a_run_dir(cli, tmp_path):
    r = cli("render", tmp_path)
    assert r.rc == 2
    assert len(r.err_lines) == 1 and r.err_lines[0].startswith("pinnbal: error:")
    assert "config.json" in r.err
    assert not (tmp_path / "figures").exists()


# -- --force -----------------------------------------------------------------------------------


def test_force_overwrites_run_files_keeps_user_files(cli, tiny_problem, tmp_path):
    out = tmp_path / "run"
    assert cli("run", tiny_problem, *FAST, "--seed", "1", "--out", out).rc == 0
    notes = out / "notes.txt"
    notes.write_text("my notes\n")
    old_history = (out / "history.csv").read_text()

    r = cli("run", tiny_problem, *FAST, "--seed", "2", "--force", "--out", out)
    assert r.rc == 0, r.err
    assert notes.read_text() == "my notes\n"
    assert json.loads((out / "metrics.json").read_text())["seed"] == 2
    assert json.loads((out / "config.json").read_text())["train"]["seed"] == 2
    assert (out / "history.csv").read_text() != old_history
    torch.load(out / "model.pt", weights_only=True)
    # no temporary files from the atomic writes are left behind
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "history.csv", "metrics.json", "model.pt",
                                                    "notes.txt", "predictions.npz"]


def test_force_into_existing_empty_dir(cli, tiny_problem, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    r = cli("run", tiny_problem, *FAST, "--out", out)  # empty: no --force needed
    assert r.rc == 0, r.err
    assert (out / "metrics.json").is_file()


# -- reproducibility -----------------------------------------------------------------------------


def history_without_wall(path):
    header, rows = read_history(path)
    return header, [{k: v for k, v in row.items() if k != "wall_s"} for row in rows]


@pytest.mark.parametrize("balancer", ["fixed", "lra:every=3"])
def test_same_seed_same_history(cli, tiny_problem, tmp_path, balancer):
    runs = []
    for i, seed in enumerate((5, 5, 6)):
        out = tmp_path / f"run{i}"
        r = cli("run", tiny_problem, "--steps", "12", "--lbfgs", "0", "--width", "8", "--depth", "1", "--log-every", "1",
                "--quiet", "--no-render", "--balancer", balancer, "--seed", seed, "--device", "cpu", "--out", out)
        assert r.rc == 0, r.err
        runs.append(history_without_wall(out / "history.csv"))
    (h0, rows0), (h1, rows1), (_, rows2) = runs
    assert h0 == h1 and len(rows0) == 12
    assert rows0 == rows1
    assert rows0 != rows2  # a different seed gives a different run: the check has teeth


def test_debug_reraises(cli, tmp_path):
    from pinnbal.errors import PinnbalError

    with pytest.raises(PinnbalError, match="no such problem file"):
        cli("--debug", "run", tmp_path / "missing.py", *FAST)


def test_help_exits_zero(cli):
    r = cli("--help")
    assert r.rc == 0
    assert "run" in r.out and "balancers" in r.out and "render" in r.out


@pytest.mark.parametrize("spec", ["fixed", "lra", "lra:alpha=0.5,every=3,variant=mean,ref=pde"])
def test_config_balancer_spec_reproduces_balancer(tiny_run, spec):
    """config.json records the canonical balancer spec; feeding it back must give the same balancer."""
    from pinnbal.balancers import make_balancer

    original = make_balancer(spec)
    again = make_balancer(original.spec)
    assert type(again) is type(original)
    assert again.opts == original.opts
    out, _ = tiny_run
    recorded = json.loads((out / "config.json").read_text())["balancer"]
    assert make_balancer(recorded).spec == recorded
