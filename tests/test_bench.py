"""`pinnbal bench speed` measures every balancer it is given and the two Jacobian strategies."""
import re

from pinnbal.bench.speed import balancer_speed, jacobian_speed, speed_report

TINY = {"width": 8, "depth": 1}


def test_speed_rows_have_a_measured_time_and_a_ratio_to_fixed():
    rows = balancer_speed("problems/poisson1d.py", ["fixed", "lra:every=1", "dwa"], steps=10, settings=TINY, rounds=2)
    assert [r["balancer"] for r in rows] == ["fixed", "lra:every=1", "dwa"]
    assert all(r["ms_per_step"] > 0 for r in rows)
    assert rows[0]["ratio"] == 1.0
    assert rows[1]["ratio"] == rows[1]["ms_per_step"] / rows[0]["ms_per_step"]


def test_compiled_balancer_rows_time_each_balancer_compiled_and_leave_out_the_uncompilable():
    """--compiled: every balancer again under --compile on; ntk (a vmapped backward) trains uncompiled: –."""
    rows = balancer_speed("problems/poisson1d.py", ["fixed", "lra:every=2", "ntk"], steps=4, settings=TINY,
                          compiled=True)
    fixed, lra, ntk = rows
    assert fixed["compiled_ratio"] == 1.0 and lra["compiled_ms"] > 0
    assert lra["compiled_ratio"] == lra["compiled_ms"] / fixed["compiled_ms"]
    assert ntk["ms_per_step"] > 0 and ntk["compiled_ms"] is None and ntk["compiled_ratio"] is None


def test_jacobian_timings_and_report():
    jac = jacobian_speed("problems/poisson1d.py", repeats=2, settings=TINY)
    assert jac["loop"] > 0 and jac["batched"] > 0
    report = speed_report("problems/poisson1d.py", ["fixed", "ntk"], steps=5, repeats=1, command="pinnbal bench",
                          settings=TINY)
    assert "| fixed |" in report and "| ntk |" in report and "Command: `pinnbal bench`" in report
    assert re.search(r"loop of K backward passes [0-9.]+ ms", report)
    assert "Terms sharing points" not in report  # poisson1d has no shared batches
    assert re.search(r"\| poisson1d \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| – \| – \| – \|", report)  # both engines


def test_derivative_engines_are_timed_per_problem_from_the_command_line(tmp_path):
    from pinnbal.cli import main

    out = tmp_path / "speed.md"
    assert main(["bench", "speed", "--problem", "problems/poisson1d.py", "--balancers", "fixed", "--steps", "3",
                 "--rounds", "1", "--repeats", "1", "--width", "8", "--depth", "1", "--compiled",
                 "--derivative-problems", "poisson1d,heat_inverse", "--out", str(out)]) == 0
    report = out.read_text()
    assert re.search(r"\| poisson1d \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|", report)
    assert report.count("| poisson1d |") == 1  # --problem is not timed twice
    # every problem gets the compiled column: its time and compile seconds (the unknown κ compiles too)
    assert re.search(r"\| heat_inverse \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|", report)
    assert main(["bench", "speed", "--derivative-problems", "nonesuch", "--steps", "1"]) == 2


def test_a_problem_with_shared_points_is_also_timed_on_separate_points():
    import torch

    import pinnbal as pb
    from pinnbal.bench.speed import separate_points, sharing_speed
    from pinnbal.train import TrainConfig, Trainer

    problem = pb.load_problem("problems/kovasznay.py")
    separate = separate_points(problem)
    assert [t.shares for t in problem.terms][1:3] == ["momentum_x", "momentum_x"]  # the original is unchanged
    config = TrainConfig(steps=1, lbfgs=0, **TINY)
    shared_x = [x for _, x, _ in Trainer(problem, "fixed", config).batches.items]
    own_x = [x for _, x, _ in Trainer(separate, "fixed", config).batches.items]
    assert shared_x[1] is shared_x[0] and own_x[1] is not own_x[0] and len(own_x[1]) == len(shared_x[1])
    assert not torch.equal(own_x[1], own_x[0])
    timings = sharing_speed("problems/kovasznay.py", steps=3, settings=TINY, rounds=2)
    assert timings["shared"] > 0 and timings["separate"] > 0 and "shared compiled" not in timings
    compiled = sharing_speed("problems/kovasznay.py", steps=3, settings=TINY, rounds=1, compiled=True)
    assert set(compiled) == {"shared", "separate", "shared compiled", "separate compiled"}
    assert all(v > 0 for v in compiled.values())  # every variant timed; none fell back to eager
    report = speed_report("problems/kovasznay.py", ["fixed"], steps=3, repeats=1, command="pinnbal bench",
                          settings=TINY)
    assert re.search(r"Terms sharing points .*: [0-9.]+ ms/step as written, [0-9.]+ ms/step with every term on "
                     r"points of its own \([0-9.]+×\)", report)


def test_a_compiled_run_that_fell_back_to_eager_shows_no_compiled_time(monkeypatch):
    """A run under --compile on whose loss could not compile trained eagerly: its time is not a compiled one."""
    import pinnbal.bench.speed as speed

    real = speed.train

    def train(problem, balancer, **settings):
        return real(problem, balancer, **{**settings, "compile": "off"})  # as a fallen-back compiled run ends

    monkeypatch.setattr(speed, "train", train)
    (row,) = speed.derivative_speed(["problems/poisson1d.py"], steps=3, settings=TINY, rounds=2, compiled=True)
    assert row["compiled"] is None and row["compile_s"] is None
    assert row["autograd"] > 0 and row["forward"] > 0


def test_the_sharing_sentence_gives_the_compiled_ratios_or_says_it_fell_back():
    from pinnbal.bench.speed import compiled_sharing

    timed = {"shared": 2.0, "separate": 4.0, "shared compiled": 1.0, "separate compiled": 3.0}
    assert compiled_sharing(timed) == ("; under `--compile on` 1.00 and 3.00 ms/step (3.00×; 4.00× against eager "
                                       "separate points)")
    assert "fell back" in compiled_sharing(dict(timed, **{"shared compiled": None}))
    assert compiled_sharing({"shared": 2.0, "separate": 4.0}) == ""
