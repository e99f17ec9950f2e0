"""Per-problem recipes under the command line, and the learning-rate warm-up."""
import json

import pytest
import torch

import pinnbal as pb
from pinnbal.cli import main

RECIPE = '''
recipe = pb.Recipe(balancer="fixed", steps=3, lbfgs=2, then="lbfgs:dtype=float32", width=8, depth=1,
                   source="a test recipe")
'''


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "poisson_recipe.py"
    path.write_text(open("problems/poisson1d.py").read() + RECIPE)
    return path


def config_of(out):
    return json.loads((out / "config.json").read_text())


def test_a_run_takes_the_recipe_where_the_command_line_is_silent(recipe_file, tmp_path):
    out = tmp_path / "run"
    assert main(["run", str(recipe_file), "--steps", "2", "--out", str(out), "--quiet", "--no-render"]) == 0
    config = config_of(out)
    assert config["balancer"].startswith("fixed")  # the recipe's balancer
    assert config["train"]["steps"] == 2  # the command line wins
    assert config["train"]["lbfgs"] == 2 and config["train"]["width"] == 8  # the recipe
    assert config["train"]["lr"] == pb.TrainConfig().lr  # neither: the library default
    out2 = tmp_path / "run2"
    assert main(["run", str(recipe_file), "--balancer", "lra", "--width", "4", "--out", str(out2), "--quiet",
                 "--no-render"]) == 0
    assert config_of(out2)["balancer"].startswith("lra") and config_of(out2)["train"]["width"] == 4


def test_pb_train_applies_the_recipe_under_its_keywords(recipe_file):
    run = pb.train(str(recipe_file), render=False, steps=1)
    assert run.balancer.startswith("fixed") and run.config.steps == 1 and run.config.depth == 1


def test_info_prints_the_recipe_and_its_source(recipe_file, capsys):
    assert main(["info", str(recipe_file)]) == 0
    out = capsys.readouterr().out
    assert "recipe    balancer=fixed, steps=3" in out and "(a test recipe)" in out


@pytest.mark.parametrize("text, fragment", [
    ('recipe = pb.Recipe(widht=8)\n', "unknown setting 'widht'"),
    ('recipe = pb.Recipe(seed=3)\n', "seed is chosen per run"),
    ('recipe = {"steps": 3}\n', "not a pb.Recipe"),
])
def test_a_bad_recipe_is_one_line_exit_2_nothing_written(text, fragment, tmp_path, capsys):
    path = tmp_path / "bad.py"
    path.write_text(open("problems/poisson1d.py").read() + "\n" + text)
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and not out.exists()


def test_warmup_ramps_the_learning_rate_linearly_then_decays():
    from pinnbal.train import TrainConfig, lr_schedule

    param = torch.nn.Parameter(torch.zeros(1))
    adam = torch.optim.Adam([param], lr=1e-2)
    schedule = lr_schedule(adam, TrainConfig(lr=1e-2, warmup=4, lr_decay=0.5, lr_decay_every=8))
    rates = []
    for _ in range(8):
        rates.append(adam.param_groups[0]["lr"])
        adam.step()
        schedule.step()
    gamma = 0.5 ** (1 / 8)
    expected = [1e-2 * min(1.0, (s + 1) / 4) * gamma**s for s in range(8)]
    assert rates == pytest.approx(expected, rel=1e-12)
    assert rates[0] == pytest.approx(2.5e-3) and rates[3] == pytest.approx(1e-2 * gamma**3)


def test_the_optimizer_spec_writes_out_the_adam_fields():
    from pinnbal.train.config import expand_settings

    got = expand_settings({"optimizer": "adam:steps=30,lr=1e-3,warmup=5,decay=0.5/10", "width": 8})
    assert got == {"steps": 30, "lr": 1e-3, "warmup": 5, "lr_decay": 0.5, "lr_decay_every": 10, "width": 8}
    assert expand_settings({"optimizer": "adam:decay=0.9"}) == {"lr_decay": 0.9}
    assert expand_settings({"then": "ssbfgs:iters=7,dtype=float64"}) == {"then": "ssbfgs:dtype=float64", "lbfgs": 7}
    assert expand_settings({"then": "lbfgs:iters=3"}) == {"then": "lbfgs", "lbfgs": 3}
    assert expand_settings({"optimizer": "adam:steps=30", "steps": 30})["steps"] == 30  # the same value twice


@pytest.mark.parametrize("settings, fragment", [
    ({"optimizer": "adam:steps=30", "steps": 20}, "--optimizer sets steps=30 but --steps says 20"),
    ({"then": "lbfgs:iters=7", "lbfgs": 5}, "--then sets lbfgs=7 but --lbfgs says 5"),
    ({"optimizer": "sgd:steps=3"}, "the first stage is adam"),
    ({"optimizer": "adam:steps=x"}, "'steps=x' is not a number"),
    ({"optimizer": "adam:momentum=0.9"}, "keys are steps, lr, warmup, decay"),
    ({"then": "ssbfgs:iters=-1"}, "iters=-1"),
])
def test_bad_stage_specs_are_one_line(settings, fragment):
    from pinnbal.errors import OptionError
    from pinnbal.train.config import expand_settings

    with pytest.raises(OptionError) as caught:
        expand_settings(settings)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_run_with_stage_specs_and_a_recipe_under_them(recipe_file, tmp_path):
    """--optimizer and --then ...:iters=N set the fields; the recipe fills the rest; a typed flag beats a recipe's
    optimizer spec."""
    out = tmp_path / "run"
    assert main(["run", str(recipe_file), "--optimizer", "adam:steps=4,lr=1e-3,warmup=2,decay=0.5/10", "--then",
                 "lbfgs:iters=3,dtype=float32", "--out", str(out), "--quiet", "--no-render"]) == 0
    train = config_of(out)["train"]
    assert (train["steps"], train["lr"], train["warmup"], train["lr_decay"], train["lr_decay_every"]) == (4, 1e-3, 2, 0.5, 10)
    assert train["lbfgs"] == 3 and train["width"] == 8  # iters from --then; width from the recipe
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["adam_steps"] == 4 and metrics["lbfgs_iterations"] == 3
    spec_recipe = recipe_file.parent / "spec_recipe.py"
    spec_recipe.write_text(open("problems/poisson1d.py").read() + "\nrecipe = pb.Recipe(optimizer='adam:steps=5,lr=2e-3',"
                           " lbfgs=0, width=8, depth=1)\n")
    out2 = tmp_path / "run2"
    assert main(["run", str(spec_recipe), "--steps", "2", "--out", str(out2), "--quiet", "--no-render"]) == 0
    assert config_of(out2)["train"]["steps"] == 2 and config_of(out2)["train"]["lr"] == 2e-3


def test_a_conflicting_stage_spec_on_the_command_line_is_exit_2_nothing_written(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "problems/poisson1d.py", "--optimizer", "adam:steps=4", "--steps", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--optimizer sets steps=4 but --steps says 3" in err and len(err.splitlines()) == 1 and not out.exists()


def test_a_sweep_trains_each_problem_with_its_recipe_and_resumes_without_retraining(recipe_file, tmp_path):
    from pinnbal.bench.accuracy import accuracy_report
    from pinnbal.compare import compare

    out = tmp_path / "sweep"
    first = compare([str(recipe_file)], ["recipe", "lra"], seeds=1, out=out, jobs=1, progress=False, steps=2)
    assert len(first.outcomes) == 2 and not first.failed
    chosen, given = config_of(out / "poisson1d" / "recipe-s0"), config_of(out / "poisson1d" / "lra-s0")
    assert chosen["balancer"].startswith("fixed") and given["balancer"].startswith("lra")  # recipe / as written
    for config in (chosen, given):  # the recipe's settings under both, the sweep's steps over the recipe's 3
        assert config["train"]["width"] == 8 and config["train"]["lbfgs"] == 2 and config["train"]["steps"] == 2
    assert "| `recipe (fixed" in first.tables
    again = compare([str(recipe_file)], ["recipe", "lra"], seeds=1, out=out, jobs=1, progress=False, steps=2)
    assert not again.outcomes and len(again.skipped) == 2  # a recipe's settings are the sweep's, not "other"
    report = accuracy_report([str(recipe_file)], ["recipe", "lra"], 1, out, "test", jobs=1, progress=False, steps=2)
    assert "- `poisson1d`, by its recipe: balancer fixed" in report and "lbfgs=2" in report and "steps=3" not in report
    assert "| `recipe (fixed" in report and "| `lra` | " in report and report.count("1/1") == 2


OBSERVED_PROBLEM = '''
import numpy as np
import pinnbal as pb

x = np.linspace(0.05, 0.95, {n})[:, None]
problem = pb.Problem(
    name="observed", domain=pb.Box(x=(0.0, 1.0)), outputs=["u"],
    terms=[pb.Residual("pde", lambda p: p.u_xx + 1.0, points=32),
           pb.Boundary("ends", on=pb.Face("x"), value=0.0, points=2),
           pb.Data("obs", x=x, values=0.5 * x * (1 - x))],
)
'''


@pytest.mark.parametrize("observations, balancer", [(200, "bayes"), (10, "bayes"), (9, "lra"), (1, "lra")])
def test_the_default_balancer_is_bayes_once_a_problem_holds_observations(observations, balancer, tmp_path, capsys):
    path = tmp_path / f"observed{observations}.py"
    path.write_text(OBSERVED_PROBLEM.format(n=observations))
    out = tmp_path / "run"
    assert main(["run", str(path), "--steps", "2", "--lbfgs", "0", "--out", str(out), "--quiet", "--no-render"]) == 0
    assert config_of(out)["balancer"].split(":")[0] == balancer
    assert main(["info", str(path)]) == 0
    side = "at least" if observations >= 10 else "fewer than"
    assert f"balancer  {balancer}  (the library default: {observations} observations, {side} 10" in capsys.readouterr().out
    out2 = tmp_path / "chosen"  # the command line still decides
    assert main(["run", str(path), "--balancer", "fixed", "--steps", "2", "--lbfgs", "0", "--out", str(out2),
                 "--quiet", "--no-render"]) == 0
    assert config_of(out2)["balancer"].startswith("fixed")
