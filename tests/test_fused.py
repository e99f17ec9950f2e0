"""The one-graph gradient (``--compile on``, :mod:`pinnbal.train.fused`): the gradient of Σ_k w_k L_k that nested
autograd takes, to rounding, on every kind of term; and the steps it serves."""
import math

import pytest
import torch

import pinnbal as pb
from pinnbal.balancers import make_balancer
from pinnbal.batches import evaluate_terms
from pinnbal.train.fused import weights_ahead
from pinnbal.loader import load_problem
from pinnbal.train import TrainConfig, Trainer


def regularised_poisson():
    terms = [pb.Residual("pde", lambda p: p.u_xx + math.pi**2 * torch.sin(math.pi * p.x), points=64),
             pb.Boundary("ends", value=0.0, points=2), pb.L2(weight=0.1)]
    return pb.Problem("poisson", pb.Box(x=(0.0, 1.0)), ["u"], terms, reference=lambda p: torch.sin(math.pi * p.x))


def autograd_gradients(problem, weights, **settings):
    """∇ Σ_k w_k L_k, the per-term gradients J (K × P) and the term losses by nested autograd, uncompiled, on
    the trainer the same seed builds."""
    trainer = Trainer(problem, "fixed", TrainConfig(derivatives="autograd", compile="off", **settings))
    values = evaluate_terms(trainer.model, trainer.batches)
    rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, trainer.params, retain_graph=True,
                                                                  allow_unused=True, materialize_grads=True)])
            for loss in values.terms]
    (weights * values.losses).sum().backward()
    return [p.grad for p in trainer.params], torch.stack(rows), values.means


@pytest.mark.parametrize("source, settings", [
    ("problems/burgers.py", {}),  # initial and boundary terms, a transform-free mlp
    ("problems/heat_inverse.py", {}),  # an unknown coefficient and noisy observations
    ("problems/kovasznay.py", {"arch": "modified"}),  # three equations on shared points
    ("problems/plate_with_hole.py", {"arch": "fourier"}),  # outward normals from the domain, outside the graph
    (regularised_poisson, {"rwf": "on"}),  # a penalty on the weights: one "point"
])
def test_the_one_graph_gradient_and_rows_are_nested_autograds_to_rounding(source, settings):
    problem = source() if callable(source) else load_problem(source)
    settings = dict(settings, steps=2, lbfgs=0, width=8, depth=2, dtype="float64", seed=3)
    trainer = Trainer(problem, "fixed", TrainConfig(compile="on", **settings))
    assert trainer.fused is not None
    weights = torch.linspace(0.5, 2.0, len(problem.terms), dtype=torch.float64)
    total, pointwise = trainer.fused(trainer.params, weights)
    expected, jacobian, means = autograd_gradients(problem, weights, **settings)
    for p, g in zip(trainer.params, expected):
        assert torch.allclose(p.grad, g, rtol=1e-10, atol=1e-12 * float(g.abs().max()))
    assert torch.allclose(torch.stack([ell.mean() for ell in pointwise]), means, rtol=1e-10)
    assert float(total) == pytest.approx(float((weights * means).sum()), rel=1e-10)
    rows, pointwise = trainer.fused.rows(trainer.params)
    assert rows.shape == jacobian.shape
    assert torch.allclose(rows, jacobian, rtol=1e-10, atol=1e-12 * float(jacobian.abs().max()))
    assert torch.allclose(torch.stack([ell.mean() for ell in pointwise]), means, rtol=1e-10)


@pytest.mark.parametrize("spec, step, ahead", [
    ("fixed", 0, True),
    ("lra", 0, False),  # its update step reads the per-term gradients
    ("lra", 3, True),  # every=10: the weights stand until step 10
    ("relobralo", 3, False),  # updates every step from the step's losses
    ("bayes", 3, False),  # its own update
    ("rba", 3, False),  # per-point weights inside the term losses
    ("pcgrad", 3, False),  # an aggregator: a direction, not a weighted sum
])
def test_the_steps_whose_weights_are_known_before_the_step(spec, step, ahead):
    assert weights_ahead(make_balancer(spec), step) is ahead


def test_a_compiled_fixed_run_takes_every_step_from_one_graph():
    """Burgers, 5 steps then 3 float64 BFGS iterations: one graph for Adam's steps, the same code recompiled
    once for float64; the history follows the uncompiled run."""
    import torch._dynamo

    settings = dict(steps=5, lbfgs=3, then="bfgs", width=8, depth=2, eval_every=10**9, log_every=1)
    eager = pb.train("problems/burgers.py", "fixed", compile="off", **settings)
    torch._dynamo.utils.counters.clear()
    run = pb.train("problems/burgers.py", "fixed", compile="on", **settings)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 2 and not run.metrics["events"]
    assert run.metrics["stage_compile_s"] > 0
    for a, b in zip(eager.history, run.history, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4), a["step"]


@pytest.mark.parametrize("spec", ["lra:every=2", "pcgrad", "gradnorm", "relobralo", "bayes"])
def test_a_compiled_run_of_a_gradient_balancer_follows_the_eager_one(spec):
    """The per-term gradients from one graph (asked for, or for losses-driven weights the step Σ_k w_k J_k of
    them): the weights and losses follow the uncompiled run's."""
    settings = dict(steps=6, lbfgs=0, width=8, depth=2, eval_every=10**9, log_every=1)
    eager = pb.train("problems/burgers.py", spec, compile="off", **settings)
    run = pb.train("problems/burgers.py", spec, compile="on", **settings)
    assert not run.metrics["events"]
    for a, b in zip(eager.history, run.history, strict=True):
        for key in ("loss", "weight/ic", "weight/walls"):
            assert b[key] == pytest.approx(a[key], rel=1e-4), (a["step"], key)


def test_a_residual_that_breaks_the_graph_trains_on_per_batch_graphs_with_one_line(capsys):
    """A residual calling scipy on the points cannot be one graph: the run says so in one line and an event,
    and trains on the per-batch graphs, following the uncompiled run."""
    from scipy.special import erf

    def residual(p):
        forcing = torch.as_tensor(erf(p.x.detach().cpu().numpy()), dtype=p.x.dtype)  # scipy: a graph break
        return p.u_xx + forcing

    problem = pb.Problem("poisson", pb.Box(x=(0.0, 1.0)), ["u"],
                         [pb.Residual("pde", residual, points=32), pb.Boundary("ends", value=0.0, points=2)],
                         reference=lambda p: torch.sin(math.pi * p.x))
    settings = dict(steps=4, lbfgs=0, width=8, depth=1, eval_every=10**9, log_every=1)
    eager = pb.train(problem, "fixed", compile="off", **settings)
    run = pb.train(problem, "fixed", compile="on", **settings)
    lines = [line for line in capsys.readouterr().err.splitlines() if "one-graph gradient failed" in line]
    assert len(lines) == 1 and [e["action"] for e in run.metrics["events"]] == ["per-batch compiled graphs from now on"]
    for a, b in zip(eager.history, run.history, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4), a["step"]
