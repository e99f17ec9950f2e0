"""Fuzzing option combinations that must train (issue 11).

``test_bad_input.py`` fuzzes balancer specs that must be *refused*; this file
draws random *combinations* of valid options that must *train*: a balancer
spec (plain, per-point scheme, or a composition), ``holdout``,
``resample_every``, ``sampler``, ``then`` (the second stage), ``steps``, ``lbfgs`` and the row after which
the run is interrupted and resumed.  The per-point schemes once crashed with
``--holdout`` because nothing tried them together.

Each example must either

* train: status ``completed``, finite losses and weights in every history row,
  and an interrupted-then-resumed run (checkpoint every 2 steps, stopped as
  SIGINT would stop it, then :func:`pinnbal.workflow.resume`) whose history,
  accuracy, unknowns and parameters equal the uninterrupted run's (CPU, wall
  times aside); or
* be a combination refused by design: one ``pinnbal: error:`` line naming the
  mistake, exit code 2, no traceback, nothing written.

Every spec of the pools runs once as an explicit example (hypothesis's own
draws cluster on a few specs), then hypothesis draws ``max_examples`` more,
derandomized so that CI is deterministic.

The problems are ``problems/heat_inverse.py`` (a ``pb.Data`` term, so the
holdout matters; an unknown) and ``problems/burgers.py`` (time, so causal
weights apply), rewritten with fewer collocation points and a coarse grid of
the same reference so that an example takes a fraction of a second.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import math
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

import pinnbal as pb
from conftest import PROBLEMS
from interruption import interrupted_run, strip_wall
from pinnbal.balancers import BALANCERS
from pinnbal.errors import OptionError, ProblemError
from pinnbal.workflow import resume

#: tiny network, a history row every step (one L-BFGS iteration per chunk), accuracy at the first and last row
SETTINGS = dict(width=8, depth=1, log_every=1, eval_every=1000, checkpoint_every=2, lr=1e-2, seed=3,
                device="cpu")

#: collocation points per term in the shrunk problem files (the 200 observations of heat_inverse stay)
POINTS = {"heat_inverse": {2048: 96, 256: 16}, "burgers": {8192: 128, 512: 16}}

#: the options shorten cadences so that every method acts within a few steps; RAD/RAR draw few candidates
RAR, RAD = "rar:every=2,candidates=4", "rad:every=2,candidates=4"
LEARNED, META, NTK = "learned:every=2", "meta:k=2,T=1", "ntk:every=2,points=16"

#: specs that must train
TRAIN = [
    # term-level balancers
    "fixed", "lra:every=2", "relobralo", "gradnorm-eq:every=2", "upgrad", "rlw", LEARNED, META, NTK, "dwa",
    "softadapt", "uncertainty", "nashmtl", "dualproj",
    # per-point schemes alone
    "rba", "sa", "causal", "causal:slices=4", RAR, RAD, "rba:terms=residual", "sa:terms=residual",
    # compositions
    "lra+rba", "learned+sa", f"{LEARNED}+sa", "meta+rba", f"{META}+rba", "upgrad+rba", f"lra+causal+{RAR}",
    "lra:every=2+sa", f"{NTK}+sa", f"relobralo+{RAD}", "gradnorm-eq:every=2+causal+sa", "rlw+rba+sa",
    "upgrad+causal", f"rba+{RAR}", f"sa+{RAD}", f"{META}+causal+{RAR}", f"{LEARNED}+sa+{RAR}", "pcgrad+rba",
    "mgda+sa", "cagrad+causal", "config+sa", "gradnorm+rba", "resnorm+sa", "bayes+causal", "bayes:warmup=0.5+rba", "schedule+rba",
    "performance+sa", "gradscale:every=2+rba", "graddrop+sa", "imtl+rba", "aligned-mtl+sa",
]

#: specs refused by design, with a phrase the one-line error must contain
REFUSE = [
    ("meta:param=poly+rba", "does not combine with per-point schemes"),
    ("meta:param=net+sa", "does not combine with per-point schemes"),
    (f"{RAD}+{RAR}", "at most one resampling scheme"),
    ("lra+relobralo+rba", "at most one term-level"),
    ("lra+upgrad", "at most one term-level"),
    ("rba+rba", "each per-point scheme at most once"),
]


def names_in(spec: str) -> list[str]:
    return [part.split(":", 1)[0] for part in spec.split("+")]


def registered(spec: str) -> bool:
    """Only draw balancers this checkout has (rad/rar and others may come and go)."""
    return all(name in BALANCERS for name in names_in(spec))


TRAIN_SPECS = [s for s in TRAIN if registered(s)]
REFUSED_SPECS = [(s, needle) for s, needle in REFUSE if registered(s)]

#: appended to the shrunk problem files: accuracy (rel_l2, and the picture grid of the run directory) on a
#: coarse grid of the same reference, about 16 values per coordinate
COARSE_REFERENCE = """

# -- appended by tests/test_fuzz_combinations.py: the reference on a coarse grid, for cheap evaluations --
import numpy as np


def _coarse(reference, domain, n=16):
    if callable(reference):
        axes = {c: np.linspace(lo, hi, n) for c, lo, hi in zip(domain.names, domain.low, domain.high)}
        x = np.stack([m.ravel() for m in np.meshgrid(*axes.values(), indexing="ij")], axis=1)
        u = problem.reference_at(x)[:, 0].reshape([n] * len(axes))
        return pb.GridReference(axes=axes, values={"u": u})
    grid = reference.resolve()
    cut = tuple(slice(None, None, max(1, len(a) // n)) for a in grid.axes.values())
    return pb.GridReference(axes={c: a[s] for (c, a), s in zip(grid.axes.items(), cut)},
                            values={"u": grid.values["u"][cut]})


problem.reference = _coarse(problem.reference, problem.domain)
"""

_problem_dir = Path(tempfile.mkdtemp(prefix="pinnbal-fuzz-problems-"))
atexit.register(shutil.rmtree, _problem_dir, ignore_errors=True)


def small_problem(name: str) -> Path:
    """``problems/<name>.py`` with fewer collocation points, written once to a temporary folder."""
    path = _problem_dir / f"{name}.py"
    if not path.exists():
        source = (PROBLEMS / f"{name}.py").read_text()
        for declared, small in POINTS[name].items():
            assert f"points={declared})" in source, f"problems/{name}.py no longer declares points={declared}"
            source = source.replace(f"points={declared})", f"points={small})")
        # keep reading (not rewriting) the cached reference next to the original file
        source = source.replace('Path(__file__).with_name("burgers_reference.npz")',
                                repr(str(PROBLEMS / "burgers_reference.npz")))
        path.write_text(source + COARSE_REFERENCE)
    return path


def check_trained(run, spec):
    assert run.metrics["status"] == "completed", (spec, run.metrics["status"], run.metrics["events"])
    assert run.history, spec
    for row in run.history:
        for key, value in row.items():
            if key.startswith(("weight/", "loss")):
                assert math.isfinite(value), f"{spec}: {key} = {value} at step {row['step']}"
    weights = run.metrics["final_weights"]
    assert weights and all(w is not None and math.isfinite(w) for w in weights.values()), (spec, weights)


#: second stages: the default (auto: ssbfgs on these small networks), L-BFGS in float64 and in float32,
#: self-scaled Broyden, with points redrawn after its first iteration and L-BFGS with them redrawn (Levenberg–
#: Marquardt refuses loss-reshaping balancers: its cases are listed below)
THENS = ["auto", "lbfgs", "ssbfgs", "lbfgs:dtype=float32", "ssbroyden", "ssbroyden:resample=1", "lbfgs:resample=1",
         "ssbfgs:first_step=unit,resample=1"]


@st.composite
def combinations(draw):
    refused = bool(REFUSED_SPECS) and draw(st.integers(0, 9)) == 0  # about one example in ten
    spec, needle = draw(st.sampled_from(REFUSED_SPECS)) if refused else (draw(st.sampled_from(TRAIN_SPECS)), None)
    steps = draw(st.integers(3, 6))
    lbfgs = draw(st.integers(0, 2))
    return {
        "problem": draw(st.sampled_from(["heat_inverse", "burgers"])),
        "spec": spec,
        "refusal": needle,
        "holdout": draw(st.sampled_from([0.0, 0.2])),
        "resample_every": draw(st.sampled_from([0, 2])),
        "sampler": draw(st.sampled_from(["uniform", "sobol", "lhs"])),
        "then": draw(st.sampled_from(THENS)),
        "rwf": draw(st.sampled_from(["", "on"])),
        "time_windows": draw(st.sampled_from([1, 1, 2])),
        "steps": steps,
        "lbfgs": lbfgs,
        # a row with a step or an L-BFGS chunk after it, so that the stop takes effect before the end
        "stop_after": draw(st.integers(0, steps + lbfgs - 2)),
    }


def coverage_cases() -> list[dict]:
    """One explicit example per spec of the pools, options cycling; issue 11's combinations (every per-point
    scheme with a holdout of the observations, its points redrawn in the second stage too); a quasi-random sampler with redrawn batches."""
    specs = [(s, None) for s in TRAIN_SPECS] + REFUSED_SPECS
    cases = []
    for i, (spec, needle) in enumerate(specs):
        steps, lbfgs = 3 + i % 4, i % 3
        cases.append({"problem": ("heat_inverse", "burgers")[i % 2], "spec": spec, "refusal": needle,
                      "holdout": (0.2, 0.0, 0.2)[i % 3], "resample_every": (0, 2)[i // 2 % 2], "sampler": "uniform",
                      "then": THENS[i % len(THENS)], "rwf": ("", "on")[i % 2], "time_windows": (1, 1, 2)[i % 3],
                      "steps": steps, "lbfgs": lbfgs, "stop_after": (i * 7) % (steps + lbfgs - 1)})
    for scheme in ("rba", "sa", "causal", RAR, RAD, f"{LEARNED}+sa", f"{META}+rba"):
        if registered(scheme):
            cases.append({"problem": "heat_inverse", "spec": scheme, "refusal": None, "holdout": 0.2,
                          "resample_every": 2, "sampler": "uniform", "then": "auto:resample=1", "steps": 5, "lbfgs": 2,
                          "stop_after": 2})
    for sampler, resample_every, spec in (("sobol", 2, "fixed"), ("lhs", 2, "fixed"), ("sobol", 0, RAR)):
        if registered(spec):
            cases.append({"problem": "heat_inverse", "spec": spec, "refusal": None, "holdout": 0.0,
                          "resample_every": resample_every, "sampler": sampler, "then": "auto", "steps": 5, "lbfgs": 1,
                          "stop_after": 1})  # stopped after step 2: a redraw before the stop and one after
    for i, spec in enumerate(("fixed", "lra", "rba", "sa", "causal", RAR)):  # --then lm with point schemes too
        if registered(spec):
            cases.append({"problem": ("heat_inverse", "burgers")[i % 2], "spec": spec, "refusal": None,
                          "holdout": (0.2, 0.0)[i % 2], "resample_every": 2, "sampler": "uniform", "then": "lm",
                          "steps": 4, "lbfgs": 2, "stop_after": 4})
    # --compile on: the one-graph gradient (fixed, lra between updates, the second stage), its rows (lra's
    # updates, aggregators, losses-driven weights), with a holdout,
    # redraws, time windows and a second stage that redraws
    for i, spec in enumerate(("fixed", "lra:every=2", "relobralo", "bayes", "upgrad")):
        if registered(spec):
            cases.append({"problem": ("heat_inverse", "burgers")[i % 2], "spec": spec, "refusal": None,
                          "holdout": (0.2, 0.0)[i % 2], "resample_every": (2, 0)[i // 2 % 2], "sampler": "uniform",
                          "then": ("ssbfgs:resample=1", "auto")[i % 2], "time_windows": (1, 2)[i // 3],
                          "steps": 4, "lbfgs": 2, "stop_after": 3, "compile": "on"})
    return cases


def with_examples(cases):
    def wrap(test):
        for case in reversed(cases):
            test = example(case)(test)
        return test

    return wrap


def command_line(case: dict) -> str:
    return (f"pinnbal run problems/{case['problem']}.py --balancer '{case['spec']}' --holdout {case['holdout']} "
            f"--resample-every {case['resample_every']} --sampler {case['sampler']} --steps {case['steps']} "
            f"--lbfgs {case['lbfgs']} --then {case['then']} --rwf '{case.get('rwf', '')}' "
            f"--time-windows {case.get('time_windows', 1)} --compile {case.get('compile', 'off')} --width 8 --depth 1 --seed 3 --lr 0.01 --log-every 1 --checkpoint-every 2 "
            f"--device cpu (collocation points {POINTS[case['problem']]})")


def run_cli(argv):
    from pinnbal.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:
            rc = exc.code
    return rc, err.getvalue()


def check_refused(problem_path: Path, case: dict, settings: dict, tmp: Path):
    out = tmp / "refused"
    argv = ["run", problem_path, "--balancer", case["spec"], "--steps", case["steps"], "--lbfgs", case["lbfgs"],
            "--holdout", case["holdout"], "--resample-every", case["resample_every"], "--sampler",
            case["sampler"], "--then", case["then"], "--width", "8", "--depth", "1", "--quiet", "--no-render",
            "--out", out]
    rc, err = run_cli(argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, f"exit code {rc}: {err}"
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("pinnbal: error:"), err
    assert case["refusal"] in lines[0], lines[0]
    assert not out.exists(), "a refused run wrote its --out directory"
    with pytest.raises((OptionError, ProblemError), match=re.escape(case["refusal"])):
        pb.train(str(problem_path), case["spec"], out=out, render=False, **settings)
    assert not out.exists(), "a refused run wrote its out directory"


@settings(max_examples=20, deadline=None, derandomize=True, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(combinations())
@with_examples(coverage_cases())
def test_fuzz_combinations_train_or_are_refused_by_design(case):
    note(command_line(case) + f"; interrupted after row {case['stop_after']} and resumed")
    problem_path = small_problem(case["problem"])
    settings_ = dict(SETTINGS, steps=case["steps"], lbfgs=case["lbfgs"], holdout=case["holdout"],
                     resample_every=case["resample_every"], sampler=case["sampler"], then=case["then"],
                     rwf=case.get("rwf", ""), time_windows=case.get("time_windows", 1),
                     compile=case.get("compile", "off"))
    with tempfile.TemporaryDirectory(prefix="pinnbal-fuzz-") as tmp:
        tmp = Path(tmp)
        if case["refusal"] is not None:
            check_refused(problem_path, case, settings_, tmp)
            return
        whole = pb.train(str(problem_path), case["spec"], out=tmp / "whole", render=False, **settings_)
        check_trained(whole, case["spec"])

        interrupted_run(problem_path, case["spec"], tmp / "cut", case["stop_after"], settings_)
        metrics = json.loads((tmp / "cut" / "metrics.json").read_text())
        assert metrics["status"] == "interrupted", metrics["status"]
        resumed = resume(tmp / "cut", render=False)
        check_trained(resumed, case["spec"])
        assert strip_wall(resumed.history) == strip_wall(whole.history), "the resumed run's history differs"
        assert resumed.metrics["rel_l2"] == whole.metrics["rel_l2"]
        assert resumed.metrics["unknowns"] == whole.metrics["unknowns"]
        for a, b in zip(resumed.model.parameters(), whole.model.parameters()):
            assert torch.equal(a, b)


def test_the_pools_only_hold_registered_balancers_and_cover_the_per_point_schemes():
    assert TRAIN_SPECS and all(registered(s) for s in TRAIN_SPECS)
    drawn = {name for spec in TRAIN_SPECS for name in names_in(spec)}
    for name in ("rba", "sa", "causal", "rad", "rar"):
        assert name in drawn or name not in BALANCERS, f"{name} is registered but never drawn"
