"""``--compile``: the loss under torch.compile (Adam's, then the second stage's in float64) matches the eager one;
runs it cannot serve say why."""
import math

import pytest

import pinnbal as pb
from pinnbal.errors import OptionError

TINY = dict(steps=6, lbfgs=3, width=8, depth=1, eval_every=3, log_every=1)


def test_a_compiled_run_follows_the_eager_one_and_reports_its_compile_time(tmp_path):
    eager = pb.train("problems/poisson1d.py", "lra", compile="off", out=tmp_path / "eager", **TINY)
    compiled = pb.train("problems/poisson1d.py", "lra", compile="on", out=tmp_path / "compiled", **TINY)
    assert eager.metrics["compile_s"] is None and eager.metrics["stage_compile_s"] is None
    assert compiled.metrics["compile_s"] > 0 and compiled.metrics["ms_per_step"] > 0
    assert compiled.metrics["stage_compile_s"] > 0  # the float64 second stage compiled anew
    assert not compiled.metrics["events"]  # compiled, no fallback
    assert len(eager.history) == len(compiled.history) >= 9
    for a, b in zip(eager.history, compiled.history):  # the same training, to rounding
        for key in ("loss", "loss/pde", "loss/ends", "weight/ends"):
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-7), (a["step"], key)
    assert compiled.metrics["lbfgs_iterations"] == 3
    assert compiled.metrics["train_s"] > compiled.metrics["compile_s"] + compiled.metrics["stage_compile_s"]


def test_levenberg_marquardt_runs_eagerly_under_compile():
    """lm's per-point Jacobian takes backwards a compiled graph cannot: its stage is not compiled, and trains."""
    run = pb.train("problems/poisson1d.py", "fixed", compile="on", then="lm", **dict(TINY, steps=2))
    assert run.metrics["compile_s"] > 0 and run.metrics["stage_compile_s"] is None
    assert run.metrics["lbfgs_iterations"] == 3 and math.isfinite(run.metrics["final_loss"])


@pytest.mark.parametrize("settings, why", [
    (dict(balancer="meta"), "differentiates through a training step"),
    (dict(balancer="ntk"), "NTK traces"),
    (dict(balancer="fixed", derivatives="autograd"), "--derivatives autograd"),
    (dict(balancer="pcgrad", jacobian="batched"), "--jacobian loop compiles"),
])
def test_runs_a_compiled_loss_cannot_serve_train_uncompiled_with_one_line(settings, why, capsys):
    balancer = settings.pop("balancer")
    run = pb.train("problems/poisson1d.py", balancer, compile="on", **dict(TINY, steps=2, lbfgs=0), **settings)
    err = capsys.readouterr().err
    assert run.metrics["compile_s"] is None and math.isfinite(run.metrics["final_loss"])
    assert why in err and err.count("\n") == 1
    assert any(why in e["event"] for e in run.metrics["events"])


def test_a_bad_compile_setting_is_refused():
    with pytest.raises(OptionError, match="--compile sometimes: choose one of auto, on, off"):
        pb.train("problems/poisson1d.py", "fixed", compile="sometimes", **TINY)


@pytest.mark.parametrize("balancer, graphs", [("fixed", 1), ("lra", 2), ("relobralo", 1)])
def test_a_neumann_problem_compiles_once_per_graph_and_follows_the_eager_run(balancer, graphs):
    """p.u_n on the hole: the normals come from the domain's numpy code, outside the compiled graph, so each
    graph compiles once, with no break (inside, the numpy code broke the graph and recompiled on later steps:
    31 graphs in 6 steps).  ``fixed`` takes every step's gradient from the one-graph gradient (one graph);
    ``lra`` (every=10) updates at step 0 from the per-term gradients of one graph, then takes steps 1-5 from
    the one-graph gradient (two graphs); ``relobralo`` reads every step's losses and, each term on a batch of
    its own, takes Σ_k w_k J_k from the rows' graph (one)."""
    import torch._dynamo

    settings = dict(TINY, steps=6, lbfgs=0, eval_every=3)
    eager = pb.train("problems/plate_with_hole.py", balancer, compile="off", **settings)
    torch._dynamo.utils.counters.clear()
    compiled = pb.train("problems/plate_with_hole.py", balancer, compile="on", **settings)
    counters = torch._dynamo.utils.counters
    assert counters["stats"]["unique_graphs"] == graphs and not counters["graph_break"]
    assert compiled.metrics["compile_s"] > 0 and not compiled.metrics["events"]
    for a, b in zip(eager.history, compiled.history):
        for key in ("loss/pde", "loss/sides", "loss/hole"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-8), (a["step"], key)


def test_a_compiled_run_with_time_windows_and_held_out_data_resumes_as_it_ran(tmp_path):
    """--compile on with --time-windows (one compiled loss per window's network) and --holdout/--early-stop,
    stopped in the second window and resumed: the same history as the run that went straight through, to
    rounding (at 2 threads the first compiled run in a process rounds differently (float32, ~1e-7) from
    later ones in the same process; separate processes agree bit for bit)."""
    from interruption import strip_wall, whole_and_resumed

    settings = dict(TINY, steps=3, lbfgs=1, compile="on", time_windows=2)
    whole, resumed = whole_and_resumed("problems/advection.py", "fixed", settings, 5, tmp_path)
    assert whole.metrics["compile_s"] > 0 and not whole.metrics["events"] and not resumed.metrics["events"]
    assert [r["step"] for r in whole.history][-1] == 7  # 2 windows × (3 Adam steps + 1 iteration)
    assert len(resumed.history) == len(whole.history)
    for a, b in zip(strip_wall(whole.history), strip_wall(resumed.history)):
        assert a.keys() == b.keys() and a["phase"] == b["phase"]
        numbers = [k for k, v in a.items() if isinstance(v, float)]
        assert [b[k] for k in numbers] == pytest.approx([a[k] for k in numbers], rel=1e-5)
        assert {k: v for k, v in a.items() if k not in numbers} == {k: v for k, v in b.items() if k not in numbers}
    held = pb.train("problems/heat_inverse.py", "lra", compile="on", holdout=0.2, early_stop=5,
                    out=tmp_path / "held", **TINY)
    assert held.metrics["compile_s"] > 0 and not held.metrics["events"]
    assert held.metrics["status"] == "completed"


def test_a_compiled_second_stage_with_redraws_and_per_point_weights_follows_the_eager_one():
    """--compile on with rba (multipliers frozen at the switch) and points redrawn in the float64 stage: the same
    history as the eager run, to rounding."""
    settings = dict(TINY, steps=4, lbfgs=4, then="ssbfgs:resample=2")
    eager = pb.train("problems/poisson1d.py", "rba", compile="off", **settings)
    compiled = pb.train("problems/poisson1d.py", "rba", compile="on", **settings)
    assert compiled.metrics["stage_compile_s"] > 0 and not compiled.metrics["events"]
    assert compiled.metrics["lbfgs_iterations"] == 4
    for a, b in zip(eager.history, compiled.history):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3, abs=1e-7), a["step"]


AFTER_A_COLD_COMPILE = """
import math, torch
import pinnbal as pb
from pinnbal import forward as fw
from pinnbal.nets import PINNModel, build_network
pb.train("problems/poisson1d.py", "lra", compile="on", out="first", steps=6, lbfgs=3, width=8, depth=1)
problem = pb.Problem("p", pb.Box(x=(-1.0, 1.0), t=(0.0, 1.0)), ["u"],
                     [pb.Residual("pde", lambda p: p.u_t + p.u * p.u_x - 0.01 * p.u_xx, points=8)],
                     transform=lambda p, u: p.t * u - torch.sin(math.pi * p.x))
torch.manual_seed(0)
model = PINNModel(problem, build_network(2, 1, width=8, depth=2)).double()
x = (torch.rand(12, 2, dtype=torch.float64) * 2 - 1).requires_grad_(True)
run = fw.compiled_batch_losses(model, problem.terms, fw.term_keys(model, problem.terms, x), fullgraph=True,
                               backend="aot_eager")
run(x, [None])
print("reason:", run.reason)
"""


def test_a_second_graph_compiles_after_a_cold_inductor_compile_in_the_same_process(tmp_path):
    """On an empty compile cache, inductor's lowering of a first run's graphs left fake-tensor dispatch cache
    entries that made the next trace of a transform's nested jvp fail (``forward.compile_own``): a process
    of its own with a cache directory of its own reproduces it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[1]
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "cache"), PYTHONWARNINGS="ignore")
    (tmp_path / "problems").symlink_to(root / "problems")
    done = subprocess.run([sys.executable, "-c", AFTER_A_COLD_COMPILE], cwd=tmp_path, env=env, text=True,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "reason: None", done.stdout[-2000:]
