"""Every registered balancer runs from the CLI on the shipped Burgers and Helmholtz problems."""
import json

import pytest

from pinnbal.balancers import BALANCERS
from pinnbal.cli import main

#: specs that exercise each method's own options where it has term-named ones, and compositions
SPECS = {name: name for name in BALANCERS} | {
    "schedule": "schedule:pde=0.1>1,shape=cosine",
    "performance": "performance:walls<1e-4",
    "lra": "lra:every=2",
    "rar": "rar:every=2",
    "lra+rba": "lra:every=2,params=last+rba",
    "gradnorm-eq+causal+sa": "gradnorm-eq:every=2+causal+sa",
    "upgrad+rba": "upgrad+rba",
}
#: (balancer, problem) pairs that must refuse with a clear line: Helmholtz has no time coordinate
REFUSED = {("causal", "helmholtz2d"), ("gradnorm-eq+causal+sa", "helmholtz2d")}
#: a rule for --balancer rules, appended to a copy of the shipped problem file
RULE = '\n\ndef weights(state):\n    return {"pde": 1.0 + state["progress"]}\n'


@pytest.mark.parametrize("problem", ["burgers", "helmholtz2d"])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_balancer_runs_end_to_end(name, problem, tmp_path, capsys):
    path = f"problems/{problem}.py"
    if name == "rules":
        copy = tmp_path / f"{problem}.py"
        copy.write_text(open(path).read() + RULE)
        path = str(copy)
    out = tmp_path / "run"
    rc = main(["run", path, "--balancer", SPECS[name], "--steps", "4", "--lbfgs", "2", "--width", "8",
               "--depth", "1", "--log-every", "1", "--quiet", "--no-render", "--out", str(out)])
    err = capsys.readouterr().err
    if (name, problem) in REFUSED:
        assert rc == 2 and "no time coordinate" in err and not out.exists()
        return
    assert rc == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["balancer"] == name and metrics["status"] == "completed"
    weights = metrics["final_weights"].values()
    assert all(w >= 0 for w in weights) and metrics["rel_l2"] is not None
    if name == "rules":
        assert metrics["final_weights"]["pde"] == pytest.approx(1.75)  # the rule at the last Adam step, 3/4
