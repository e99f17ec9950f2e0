"""Bad input: one ``pinnbal: error:`` line naming the mistake, exit code 2, no traceback, nothing written.

Every case runs ``pinnbal run`` (in-process) from an empty working directory
with ``--out out`` (or the default ``runs/...``) and checks that the working
directory is exactly as it was afterwards.
"""

from __future__ import annotations

import hashlib
import re
import string

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import DEFAULT_TERMS, FAST, problem_source

RESIDUAL = 'pb.Residual("pde", {fn}, points=64{extra})'
ENDS = DEFAULT_TERMS[1]


def snapshot(root):
    """Every file and folder under ``root`` with its content hash and mtime (bytecode caches ignored)."""
    state = {}
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts:
            continue
        rel = str(path.relative_to(root))
        if path.is_dir():
            state[rel] = ("dir",)
        else:
            state[rel] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return state


def assert_one_error_line(result, needles=(), pattern=None):
    assert result.rc == 2, f"exit code {result.rc}\nstdout: {result.out}\nstderr: {result.err}"
    assert "Traceback" not in result.err and "Traceback" not in result.out, result.err
    lines = result.err_lines
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{result.err}"
    line = lines[0]
    assert line.startswith("pinnbal: error:"), line
    for needle in needles:
        assert needle.lower() in line.lower(), f"{needle!r} not in {line!r}"
    if pattern is not None:
        assert re.search(pattern, line, re.I), f"/{pattern}/ does not match {line!r}"
    return line


@pytest.fixture
def reject(cli, work_dir):
    """``reject(*argv, needles=..., pattern=..., out="out")``: run, expect a clean one-line refusal.

    ``out=None`` leaves ``--out`` off so the default ``runs/...`` is checked
    instead.  The working directory (where the out dir would go) must be
    unchanged afterwards.
    """

    def check(*argv, needles=(), pattern=None, out="out"):
        before = snapshot(work_dir)
        args = list(argv) + (["--out", out] if out is not None and argv[0] == "run" else [])
        result = cli(*args)
        line = assert_one_error_line(result, needles, pattern)
        assert snapshot(work_dir) == before, "the working directory was modified"
        assert not (work_dir / "runs").exists()
        if out is not None and out not in before:
            assert not (work_dir / out).exists(), "the --out directory was created"
        return line

    return check


# -- the problem file itself ----------------------------------------------------------------------


def test_missing_problem_file(reject, src_dir):
    missing = src_dir / "nope.py"
    reject("run", missing, *FAST, needles=["nope.py"], pattern="no such|not found|does not exist", out=None)


def test_missing_problem_file_with_out(reject, src_dir):
    reject("run", src_dir / "nope.py", *FAST, needles=["nope.py"])


def test_file_without_problem(reject, write_problem):
    path = write_problem("import pinnbal as pb\n\nanswer = 42\n")
    reject("run", path, *FAST, needles=["problem.py", "problem"], pattern="no `?problem|not define|defines no")


def test_problem_is_not_a_problem(reject, write_problem):
    path = write_problem("problem = {'name': 'tiny'}\n")
    reject("run", path, *FAST, needles=["problem.py", "dict"])


def test_syntax_error_names_line(reject, write_problem):
    path = write_problem("import pinnbal as pb\n\ndef broken(:\n    pass\n")
    reject("run", path, *FAST, needles=["problem.py:3"], pattern="syntax")


def test_exception_at_import_names_file_and_line(reject, write_problem):
    path = write_problem("import pinnbal as pb\n\nraise RuntimeError('boom at import')\n")
    reject("run", path, *FAST, needles=["problem.py:3", "RuntimeError", "boom at import"])


def test_exception_in_helper_names_file_and_line(reject, write_problem):
    source = (
        "import pinnbal as pb\n"       # 1
        "\n"                           # 2
        "def helper():\n"              # 3
        "    return {}['missing']\n"   # 4
        "\n"                           # 5
        "value = helper()\n"           # 6
    )
    path = write_problem(source)
    reject("run", path, *FAST, needles=["KeyError", "missing"], pattern=r"problem\.py:(4|6)\b")


def test_info_on_bad_file(reject, write_problem):
    path = write_problem("import pinnbal as pb\n\nraise ValueError('bad constant')\n")
    reject("info", path, needles=["problem.py:3", "bad constant"])


# -- residuals: names, shapes, NaN ----------------------------------------------------------------


def test_derivative_by_unknown_coordinate(reject, write_problem):
    path = write_problem(terms=[RESIDUAL.format(fn="lambda p: p.u_xy", extra=""), ENDS])
    reject("run", path, *FAST, needles=["u_xy", "'y'", "pde"], pattern="not a coordinate")


def test_unknown_name_kappa(reject, write_problem):
    path = write_problem(terms=[RESIDUAL.format(fn="lambda p: p.u_xx - p.kappa", extra=""), ENDS])
    reject("run", path, *FAST, needles=["kappa", "pde"])


def test_d_with_unknown_coordinate(reject, write_problem):
    path = write_problem(terms=[RESIDUAL.format(fn='lambda p: p.d("u", "x", "r")', extra=""), ENDS])
    reject("run", path, *FAST, needles=["'r'", "pde"])


@pytest.mark.parametrize("fn, shape", [
    ("lambda p: p.u_xx.reshape(-1, 1, 1).expand(-1, 2, 3)", ", 2, 3)"),
    ("lambda p: torch.cat([p.u_xx, p.u_xx[:1]])", ", 1)"),
    ("lambda p: p.u_xx[:-1]", ", 1)"),
    ("lambda p: 'not a tensor'", None),
])
def test_residual_wrong_shape(reject, write_problem, fn, shape):
    path = write_problem(terms=[RESIDUAL.format(fn=fn, extra=""), ENDS])
    line = reject("run", path, *FAST, needles=["pde"], pattern="shape|tensor")
    if shape:
        assert shape in line


def test_boundary_value_wrong_width(reject, write_problem):
    path = write_problem(terms=[DEFAULT_TERMS[0],
                                'pb.Boundary("ends", value=lambda p: torch.zeros(len(p), 3), points=2)'])
    reject("run", path, *FAST, needles=["ends", "shape"])


def test_nan_loss_at_initialisation(reject, write_problem):
    path = write_problem(terms=[RESIDUAL.format(fn="lambda p: torch.log(p.x - 10)", extra=""), ENDS])
    reject("run", path, *FAST, needles=["pde", "nan"], out=None)


def test_nan_boundary_value(reject, write_problem):
    path = write_problem(terms=[DEFAULT_TERMS[0], 'pb.Boundary("ends", value=float("nan"), points=2)'])
    reject("run", path, *FAST, needles=["ends"], pattern="finite|nan")


def test_nan_reference(reject, write_problem):
    path = write_problem(reference="lambda p: torch.log(p.x - 10)")
    reject("run", path, *FAST, needles=["reference"], pattern="nan|finite")


def test_unknown_pointwise_loss(reject, write_problem):
    path = write_problem(terms=[RESIDUAL.format(fn="lambda p: p.u_xx", extra=', loss="l3"'), ENDS])
    reject("run", path, *FAST, needles=["'l3'", "pde"], pattern="mse")


# -- domain, faces, term declarations -------------------------------------------------------------


def test_face_not_on_box(reject, write_problem):
    path = write_problem(terms=[DEFAULT_TERMS[0], 'pb.Boundary("ends", on=pb.Face(x=0.5), value=0.0, points=2)'])
    reject("run", path, *FAST, needles=["ends", "x=0.5"], pattern="not a face")


def test_face_names_no_coordinate(reject, write_problem):
    path = write_problem(terms=[DEFAULT_TERMS[0], 'pb.Boundary("ends", on=pb.Face("y"), value=0.0, points=2)'])
    reject("run", path, *FAST, needles=["ends", "'y'"])


def test_empty_domain(reject, write_problem):
    path = write_problem(domain="pb.Box(x=(1, 0))")
    reject("run", path, *FAST, needles=["'x'", "problem.py"], pattern="empty|lo < hi")


def test_initial_without_time(reject, write_problem):
    path = write_problem(terms=[DEFAULT_TERMS[0], 'pb.Initial("ic", value=0.0, points=2)'])
    reject("run", path, *FAST, needles=["ic", "'t'"])


@pytest.mark.parametrize("points", ["0", "-5", "2.5", "True"])
def test_bad_point_count(reject, write_problem, points):
    path = write_problem(terms=[f'pb.Residual("pde", lambda p: p.u_xx, points={points})', ENDS])
    reject("run", path, *FAST, needles=["pde", f"points={points}"])


def test_duplicate_term_names(reject, write_problem):
    path = write_problem(terms=[DEFAULT_TERMS[0], 'pb.Boundary("pde", value=0.0, points=2)'])
    reject("run", path, *FAST, needles=["'pde'"], pattern="unique|twice|duplicate|more than once|two terms")


def test_name_is_coordinate_and_output(reject, write_problem):
    path = write_problem(outputs='["x"]', terms=['pb.Residual("pde", lambda p: p.x_x, points=64)'],
                         reference="None")
    reject("run", path, *FAST, needles=["'x'"], pattern="more than once|both|rename")


def test_unknown_clashes_with_output(reject, write_problem):
    path = write_problem(unknowns='{"u": 1.0}')
    reject("run", path, *FAST, needles=["'u'"], pattern="more than once|both|rename")


def test_bad_term_name(reject, write_problem):
    path = write_problem(terms=['pb.Residual("my pde", lambda p: p.u_xx, points=64)', ENDS])
    reject("run", path, *FAST, needles=["my pde"])


def test_data_with_nan(reject, write_problem):
    data = 'pb.Data("obs", x=[0.25, 0.5, 0.75], values=[0.7, float("nan"), 0.7])'
    path = write_problem(terms=DEFAULT_TERMS + [data])
    reject("run", path, *FAST, needles=["obs", "nan"])


def test_data_length_mismatch(reject, write_problem):
    data = 'pb.Data("obs", x=[0.1, 0.2, 0.3, 0.4, 0.5], values=[0.0, 0.0, 0.0, 0.0])'
    path = write_problem(terms=DEFAULT_TERMS + [data])
    reject("run", path, *FAST, needles=["obs", "5", "4"])


def test_data_wrong_columns(reject, write_problem):
    data = 'pb.Data("obs", x=[0.1, 0.2], values=[[0.0, 1.0], [0.0, 1.0]])'
    path = write_problem(terms=DEFAULT_TERMS + [data])
    reject("run", path, *FAST, needles=["obs", "columns"])


def test_residual_of_a_fixed_row_count_is_caught_before_anything_is_written(reject, write_problem):
    """10 rows for a 64-point term: the check runs on the real batch, not on a few probe points."""
    path = write_problem(terms=[RESIDUAL.format(fn="lambda p: p.u_xx[:10]", extra=""), ENDS])
    line = reject("run", path, *FAST, needles=["pde", "(10, 1)", "(64, 1)"])
    assert "shape" in line


def test_residual_reduced_to_one_number(reject, write_problem):
    path = write_problem(terms=[RESIDUAL.format(fn="lambda p: p.u_xx.square().mean()", extra=""), ENDS])
    reject("run", path, *FAST, needles=["pde", "single number", "(64, 1)"])


def test_transform_that_drops_rows(reject, write_problem):
    source = problem_source().replace("    unknowns=None,\n)", "    unknowns=None,\n    transform=lambda p, u: u[:5],\n)")
    assert "transform=" in source
    path = write_problem(source)
    reject("run", path, *FAST, needles=["transform", "need shape"])


def test_error_inside_a_residual_names_the_users_line(reject, write_problem):
    path = write_problem(terms=[RESIDUAL.format(fn="lambda p: p.u_xx - KAPPA", extra=""), ENDS])
    line = reject("run", path, *FAST, needles=["NameError", "KAPPA"])
    assert re.search(r"problem\.py:\d+: NameError", line), line


@pytest.mark.parametrize("name", ["d", "coords", "outputs"])
def test_names_that_p_already_has(reject, write_problem, name):
    path = write_problem(terms=[RESIDUAL.format(fn=f"lambda p: p.u_xx - p.{name}", extra=""), ENDS],
                         unknowns=f"{{{name!r}: 0.5}}")
    reject("run", path, *FAST, needles=[f"{name!r}", "rename"])


def test_reserved_names_are_the_public_names_of_p():
    from pinnbal.points import Points
    from pinnbal.problem import RESERVED

    assert RESERVED == {n for n in dir(Points) if not n.startswith("_")}


def test_fewer_boundary_points_than_faces(reject, write_problem):
    path = write_problem(terms=[DEFAULT_TERMS[0], 'pb.Boundary("ends", value=0.0, points=1)'])
    reject("run", path, *FAST, needles=["ends", "points=1 on 2 faces"])


def test_data_outside_the_box(reject, write_problem):
    path = write_problem(terms=[DEFAULT_TERMS[0], ENDS,
                                'pb.Data("obs", x=np.array([[0.5], [2.0]]), values=np.zeros(2))'])
    reject("run", path, *FAST, needles=["obs", "outside the box", "x = 2", "[0, 1]"])


# -- balancer specs --------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, needles, pattern", [
    ("lrx", ["'lrx'", "'lra'"], "unknown balancer"),
    ("lra:alpah=0.9", ["alpah"], "unknown option"),
    ("lra:alpha", ["alpha"], "key=value"),
    ("lra:every=zero", ["every", "zero"], "int"),
    ("lra:alpha=1.5", ["alpha"], None),
    ("lra:every=0", ["every"], None),
    ("lra:variant=median", ["median"], "max|mean"),
    ("lra:ref=nope", ["nope"], "not a term"),
    ("lra:min=10,max=1", ["min", "max"], None),
    ("lra:every=2,every=3", ["every"], "twice"),
    ("", [], "empty"),
    ("fixed:alpha=0.5", ["alpha"], "unknown option"),
])
def test_bad_balancer_spec(reject, tiny_problem, spec, needles, pattern):
    reject("run", tiny_problem, *FAST, "--balancer", spec, needles=needles, pattern=pattern)


# -- other options -----------------------------------------------------------------------------------


def test_weights_unknown_term(reject, tiny_problem):
    reject("run", tiny_problem, *FAST, "--balancer", "fixed", "--weights", "pde=1,bogus=3",
           needles=["bogus"], pattern="not a term")


@pytest.mark.parametrize("weights, needle", [("pde:1", "pde:1"), ("pde=abc", "pde=abc"), ("pde=1,ends", "ends")])
def test_weights_malformed(reject, tiny_problem, weights, needle):
    reject("run", tiny_problem, *FAST, "--weights", weights, needles=["--weights", needle])


def test_weights_negative(reject, tiny_problem):
    reject("run", tiny_problem, *FAST, "--weights", "ends=-1", needles=["--weights", "ends"])


def test_out_dir_not_empty_without_force(reject, tiny_problem, work_dir):
    out = work_dir / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious\n")
    (out / "metrics.json").write_text('{"old": true}\n')
    reject("run", tiny_problem, *FAST, needles=["out", "--force"])
    assert (out / "keep.txt").read_text() == "precious\n"
    assert (out / "metrics.json").read_text() == '{"old": true}\n'
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "metrics.json"]


def test_out_is_a_file(reject, tiny_problem, work_dir):
    (work_dir / "out").write_text("a file\n")
    reject("run", tiny_problem, *FAST, needles=["out"], pattern="not a directory")
    assert (work_dir / "out").read_text() == "a file\n"


def test_bad_input_with_force_leaves_existing_run_untouched(cli, reject, tiny_problem, write_problem, work_dir):
    assert cli("run", tiny_problem, *FAST, "--out", "out").rc == 0
    (work_dir / "out" / "notes.txt").write_text("mine\n")
    bad = write_problem(terms=[RESIDUAL.format(fn="lambda p: torch.log(p.x - 10)", extra=""), ENDS],
                        filename="bad.py")
    reject("run", bad, *FAST, "--force", needles=["pde", "nan"])  # snapshot covers every file in out/
    reject("run", tiny_problem, *FAST, "--force", "--balancer", "lrx", needles=["lrx"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda(reject, tiny_problem):
    reject("run", tiny_problem, *FAST, "--device", "cuda", needles=["cuda"], pattern="not available")


@pytest.mark.parametrize("argv, needles", [
    (["--steps", "-1"], ["--steps", "-1"]),
    (["--lbfgs", "-3"], ["--lbfgs", "-3"]),
    (["--steps", "0"], ["--steps"]),
    (["--lr", "0"], ["--lr"]),
    (["--lr", "nan"], ["--lr"]),
    (["--lr-decay", "2"], ["--lr-decay"]),
    (["--log-every", "0"], ["--log-every"]),
    (["--eval-every", "0"], ["--eval-every"]),
    (["--device", "tpu"], ["tpu"]),
    (["--dtype", "float16"], ["float16"]),
    (["--arch", "cnn"], ["cnn"]),
    (["--activation", "swish"], ["swish"]),
    (["--sampler", "halton"], ["halton"]),
    (["--jacobian", "fast"], ["fast"]),
    (["--width", "0"], ["width"]),
    (["--steps", "ten"], ["--steps", "ten"]),
    (["--bogus-flag"], ["--bogus-flag"]),
])
def test_bad_option(reject, tiny_problem, argv, needles):
    # FAST first so that a repeated option (e.g. --steps) takes the bad value
    reject("run", tiny_problem, *FAST, *argv, needles=needles)


def test_unknown_command(reject):
    reject("train", "problem.py", needles=["train"])


def test_render_missing_dir(reject, work_dir):
    reject("render", work_dir / "no-such-run", needles=["no-such-run"])


# -- end to end, and --debug -------------------------------------------------------------------------


def test_subprocess_bad_input_and_debug(pinnbal_subprocess, src_dir, work_dir):
    missing = src_dir / "nope.py"
    proc = pinnbal_subprocess("run", missing, *FAST, cwd=work_dir)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("pinnbal: error:") and "nope.py" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert list(work_dir.iterdir()) == []

    proc = pinnbal_subprocess("--debug", "run", missing, *FAST, cwd=work_dir)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "nope.py" in proc.stderr
    assert list(work_dir.iterdir()) == []


def test_debug_shows_traceback_for_problem_errors(cli, write_problem):
    from pinnbal.errors import PinnbalError

    path = write_problem(terms=[RESIDUAL.format(fn="lambda p: p.u_xy", extra=""), ENDS])
    with pytest.raises(PinnbalError, match="u_xy"):
        cli("--debug", "run", path, *FAST)


# -- fuzzing the balancer spec parser ------------------------------------------------------------------
# (specs that must be refused; option combinations that must train, and resume exactly, are fuzzed in
# tests/test_fuzz_combinations.py)

SPEC_PIECES = st.sampled_from([
    "lra", "fixed", "lrx", "LRA", ":", ",", "=", " ", "alpha", "every", "min", "max", "variant", "form", "ref",
    "0", "1", "-1", "0.5", "0.9", "10", "1e3", "1e400", "-1e400", "nan", "inf", "-inf", "1.5", "true", "max",
    "mean", "paper", "weighted", "pde", "", "==", "::", "\x00", "é", "1_000", "0x10", "+2",
])

SPECS = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=string.printable, max_size=40),
    st.lists(SPEC_PIECES, max_size=12).map("".join),
    st.builds(lambda name, kv: name + ":" + ",".join(f"{k}={v}" for k, v in kv),
              st.sampled_from(["lra", "fixed"]),
              st.lists(st.tuples(st.sampled_from(["alpha", "every", "min", "max", "variant", "form", "ref"]),
                                 SPEC_PIECES), max_size=4)),
)


@settings(max_examples=200, deadline=None)
@given(SPECS)
@example("lra:every=1e400")
@example("lra:every=-1e400")
@example("lra:alpha=1e400")
@example("lra:every=nan")
@example("lra:min=0,max=inf")
@example("lra:ref=\x00")
def test_fuzz_balancer_spec(spec):
    from pinnbal.balancers import BALANCERS, Balancer, make_balancer, parse_spec
    from pinnbal.errors import PinnbalError

    try:
        name, opts = parse_spec(spec)
    except PinnbalError:
        pass
    else:
        assert isinstance(name, str) and isinstance(opts, dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in opts.items())
    try:
        balancer = make_balancer(spec)
    except PinnbalError as exc:
        assert str(exc) and "\n" not in str(exc)  # one line for the CLI
    else:
        assert isinstance(balancer, Balancer)
        assert balancer.name in BALANCERS
        assert set(type(balancer).options) <= set(balancer.opts)  # schedule/performance add term options
