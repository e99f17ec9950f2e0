"""Every registered balancer runs from the CLI on the shipped Burgers and Helmholtz problems."""
import json

import pytest

from pinnbal.balancers import BALANCERS
from pinnbal.cli import main

#: specs that exercise each method's own options where it has term-named ones
SPECS = {name: name for name in BALANCERS} | {
    "schedule": "schedule:pde=0.1>1,shape=cosine",
    "performance": "performance:walls<1e-4",
    "lra": "lra:every=2",
}


@pytest.mark.parametrize("problem", ["problems/burgers.py", "problems/helmholtz2d.py"])
@pytest.mark.parametrize("name", sorted(BALANCERS))
def test_balancer_runs_end_to_end(name, problem, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["run", problem, "--balancer", SPECS[name], "--steps", "4", "--lbfgs", "2", "--width", "8",
               "--depth", "1", "--log-every", "1", "--quiet", "--no-render", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["balancer"] == name and metrics["status"] == "completed"
    weights = metrics["final_weights"].values()
    assert all(w >= 0 for w in weights) and metrics["rel_l2"] is not None
