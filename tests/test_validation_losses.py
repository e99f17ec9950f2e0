"""metrics["validation_losses"]: each term's loss of the final model on fresh points, with known answers."""
import math

import pytest
import torch

import pinnbal as pb


def poisson(transform):
    """u'' = −π² sin(πx) on [0, 1], u = 0 at both ends; ``transform`` fixes the model's function."""
    return pb.Problem(
        name="validation_check",
        domain=pb.Box(x=(0.0, 1.0)),
        outputs=["u"],
        terms=[pb.Residual("pde", lambda p: p.u_xx + math.pi**2 * torch.sin(math.pi * p.x), points=256),
               pb.Boundary("ends", on=pb.Face("x"), value=0.0, points=2)],
        transform=transform,
    )


@pytest.mark.parametrize("bump, pde_loss", [(0.0, 0.0), (0.1, 0.04)])
def test_a_known_function_has_its_known_loss_on_fresh_points(bump, pde_loss):
    """u = sin(πx) + b x(1 − x) (the network's output multiplied by 0): the residual is −2b at every point, so
    the validation PDE loss is 4b² on any points, and the ends are exact."""
    problem = poisson(lambda p, u: torch.sin(math.pi * p.x) + bump * p.x * (1 - p.x) + 0 * u)
    run = pb.train(problem, "fixed", steps=1, lbfgs=0, width=4, depth=1)
    losses = run.metrics["validation_losses"]
    assert set(losses) == {"pde", "ends"}
    assert losses["pde"] == pytest.approx(pde_loss, rel=1e-4, abs=1e-8)
    assert losses["ends"] == pytest.approx(0.0, abs=1e-12)


def test_validation_points_are_not_the_training_points_and_windows_are_routed():
    run = pb.train("problems/advection.py", "fixed", steps=3, lbfgs=0, width=8, depth=1, time_windows=2)
    losses, trained = run.metrics["validation_losses"], run.metrics["final_losses"]
    assert set(losses) == set(trained) == {"pde", "ic"}
    assert all(math.isfinite(v) and v > 0 for v in losses.values())
    assert losses["pde"] != trained["pde"]
