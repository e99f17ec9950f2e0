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


def test_jacobian_timings_and_report():
    jac = jacobian_speed("problems/poisson1d.py", repeats=2, settings=TINY)
    assert jac["loop"] > 0 and jac["batched"] > 0
    report = speed_report("problems/poisson1d.py", ["fixed", "ntk"], steps=5, repeats=1, command="pinnbal bench",
                          settings=TINY)
    assert "| fixed |" in report and "| ntk |" in report and "Command: `pinnbal bench`" in report
    assert re.search(r"loop of K backward passes [0-9.]+ ms", report)
