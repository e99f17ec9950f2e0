"""Random weight factorisation (--rwf) and the Fourier feature scale (--fourier-scale)."""
from __future__ import annotations

import pytest
import torch

import pinnbal as pb
from pinnbal.cli import main
from pinnbal.errors import OptionError
from pinnbal.nets import FactorizedLinear, build_network, parse_rwf
from pinnbal.rundir import read_run
from pinnbal.workflow import resume

POISSON = "problems/poisson1d.py"
SMALL = dict(steps=6, lbfgs=4, width=8, depth=2, log_every=2, eval_every=4, checkpoint_every=4)


@pytest.mark.parametrize("arch", ["mlp", "modified", "fourier"])
def test_factorised_network_computes_the_plain_networks_function_at_initialisation(arch):
    torch.manual_seed(3)
    plain = build_network(2, 3, arch, width=16, depth=3).double()
    torch.manual_seed(3)
    factorised = build_network(2, 3, arch, width=16, depth=3, rwf="mean=1,std=0.5").double()
    x = torch.rand(64, 2, dtype=torch.float64)
    layers = [m for m in factorised.modules() if isinstance(m, FactorizedLinear)]
    assert len(layers) == sum(isinstance(m, torch.nn.Linear) for m in plain.modules())
    assert all(float(m.scale.detach().std()) > 0.1 for m in layers)  # the factors are random, not all equal
    # the same function up to the float32 rounding of V = W / exp(s) (built in float32, compared in float64)
    torch.testing.assert_close(factorised(x), plain(x), rtol=1e-5, atol=1e-6)


def test_a_factorised_layer_trains_its_scale_and_direction():
    layer = FactorizedLinear(torch.nn.Linear(3, 2), mean=1.0, std=0.1)
    assert {n for n, _ in layer.named_parameters()} == {"scale", "direction", "bias"}
    layer(torch.rand(5, 3)).sum().backward()
    assert layer.scale.grad is not None and layer.direction.grad is not None
    expected = torch.exp(layer.scale)[:, None] * layer.direction
    torch.testing.assert_close(layer.weight, expected)


def test_rwf_spec():
    assert parse_rwf("") is None and parse_rwf("on") == (1.0, 0.1) and parse_rwf("std=0.2") == (1.0, 0.2)
    assert parse_rwf("mean=0.5,std=0") == (0.5, 0.0)
    for bad in ("mean", "scale=2", "std=-1", "mean=x", "mean=nan"):
        with pytest.raises(OptionError, match="--rwf"):
            parse_rwf(bad)


def test_a_factorised_run_trains_resumes_and_rebuilds_from_its_directory(tmp_path):
    from interruption import interrupted_run, strip_wall

    settings = dict(SMALL, rwf="mean=1,std=0.1", seed=2)
    whole = pb.train(POISSON, "lra", out=tmp_path / "whole", render=False, **settings)
    assert whole.metrics["status"] == "completed" and whole.metrics["rel_l2"] < 2.0
    interrupted_run(POISSON, "lra", tmp_path / "cut", stop_after=4, settings=settings)
    resumed = resume(tmp_path / "cut", render=False)
    assert strip_wall(resumed.history) == strip_wall(whole.history)
    problem, model = read_run(tmp_path / "whole").load_model()
    x = torch.linspace(0, 1, 7, dtype=torch.float64)[:, None] * (problem.domain.high - problem.domain.low)[0]
    torch.testing.assert_close(model(x), torch.as_tensor(whole.predict(x.numpy())), rtol=1e-5, atol=1e-5)


def test_weight_matrices_of_a_factorised_network_are_its_scales_and_directions():
    run = pb.train(POISSON, "lra:params=weights", render=False, **dict(SMALL, rwf="on"))
    names = {n for n, p in run.model.named_parameters() if any(p is q for q in run.model.weight_matrices())}
    assert names and all(n.endswith((".scale", ".direction")) for n in names)


def test_fourier_scale_sets_the_feature_spread():
    torch.manual_seed(0)
    narrow = build_network(2, 1, "fourier", width=8, depth=1, fourier_sigma=0.1)
    torch.manual_seed(0)
    wide = build_network(2, 1, "fourier", width=8, depth=1, fourier_sigma=10.0)
    torch.testing.assert_close(wide[0].B, 100 * narrow[0].B)


@pytest.mark.parametrize("flags, message", [(["--rwf", "scale=2"], "--rwf"),
                                            (["--arch", "fourier", "--fourier-scale", "0"], "--fourier-scale")])
def test_bad_recipe_options_are_one_line_exit_2(flags, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", POISSON, "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and not out.exists()
