"""Derivatives by name match analytic values (first, second, mixed), and names are checked."""
import math

import pytest
import torch

import pinnbal as pb
from pinnbal.points import Points


def analytic_model(x):
    # u = sin(2x) * t^3 + x^2 t, v = exp(x) * t
    xs, ts = x[:, 0:1], x[:, 1:2]
    return torch.cat([torch.sin(2 * xs) * ts**3 + xs**2 * ts, torch.exp(xs) * ts], dim=1)


@pytest.fixture
def p():
    torch.manual_seed(0)
    coords = torch.rand(50, 2, dtype=torch.float64).requires_grad_(True)
    return Points(coords, ["x", "t"], ["u", "v"], analytic_model, {"kappa": torch.tensor(0.5)}, where="test")


def test_coordinates_outputs_and_unknowns(p):
    x, t = p.coords[:, 0:1], p.coords[:, 1:2]
    assert torch.equal(p.x, x) and p.x.shape == (50, 1)
    assert torch.allclose(p.v, torch.exp(x) * t)
    assert float(p.kappa) == 0.5


def test_first_second_and_mixed_derivatives(p):
    x, t = p.coords[:, 0:1].detach(), p.coords[:, 1:2].detach()
    assert torch.allclose(p.u_x, 2 * torch.cos(2 * x) * t**3 + 2 * x * t)
    assert torch.allclose(p.u_t, 3 * torch.sin(2 * x) * t**2 + x**2)
    assert torch.allclose(p.u_xx, -4 * torch.sin(2 * x) * t**3 + 2 * t)
    assert torch.allclose(p.u_tt, 6 * torch.sin(2 * x) * t)
    assert torch.allclose(p.u_xt, 6 * torch.cos(2 * x) * t**2 + 2 * x)
    assert torch.allclose(p.u_tx, p.u_xt)
    assert torch.allclose(p.u_xxx, -8 * torch.cos(2 * x) * t**3)
    assert torch.allclose(p.v_xt, torch.exp(x))
    assert torch.allclose(p.d("u", "x", "x"), p.u_xx)


def test_derivatives_are_cached_and_trainable(p):
    assert p.u_xx is p.u_xx
    assert p.u_xt is p.u_tx
    assert p.u_xx.requires_grad  # create_graph: residuals can be trained through


def test_long_coordinate_names():
    r = torch.linspace(1, 2, 7, dtype=torch.float64)[:, None].requires_grad_(True)
    p = Points(r, ["radius"], ["u"], lambda c: c**3, {})
    assert torch.allclose(p.d("u", "radius", "radius"), 6 * r.detach())


def test_multi_letter_coordinates_read_in_derivative_names_longest_first():
    """Coordinates x and tau (and t): p.u_tau is d/dtau, p.u_xtau d2/dx dtau, p.u_t d/dt."""
    c = torch.rand(9, 3, dtype=torch.float64).requires_grad_(True)
    p = Points(c, ["x", "tau", "t"], ["u"], lambda c: c[:, :1] ** 2 * c[:, 1:2] ** 3 + c[:, 2:3], {})
    x, tau = c[:, :1].detach(), c[:, 1:2].detach()
    assert torch.allclose(p.u_tau, 3 * x**2 * tau**2)
    assert torch.allclose(p.u_xtau, 6 * x * tau**2) and torch.equal(p.u_xtau, p.d("u", "x", "tau"))
    assert torch.allclose(p.u_t, torch.ones_like(x))
    with pytest.raises(pb.ProblemError, match="p.u_taux?y: 'y' is not a coordinate"):
        p.u_tauy


def test_derivative_of_a_constant_is_zero():
    x = torch.rand(5, 1, dtype=torch.float64).requires_grad_(True)
    p = Points(x, ["x"], ["u"], lambda c: 3 * c, {})
    assert torch.equal(p.u_xx, torch.zeros(5, 1, dtype=torch.float64))


@pytest.mark.parametrize("name, fragment", [("u_xy", "'y' is not a coordinate"), ("w", "p.w"), ("u_", "p.u_")])
def test_unknown_names_raise_problem_error(p, name, fragment):
    with pytest.raises(pb.ProblemError, match=fragment.replace("(", r"\(")):
        getattr(p, name)


def test_sin_model_through_pinn_scaling():
    """PINNModel's input scaling is differentiated through correctly."""
    from pinnbal.nets import PINNModel

    class SinNet(torch.nn.Module):
        def forward(self, z):  # z in [-1, 1]: x = 2 + 3 z for the box (−1, 5)
            return torch.sin(2 + 3 * z)

    problem = pb.Problem("s", pb.Box(x=(-1.0, 5.0)), ["u"], [pb.Residual("pde", lambda p: p.u_xx, points=4)])
    model = PINNModel(problem, SinNet()).double()
    x = torch.linspace(-1, 5, 9, dtype=torch.float64)[:, None].requires_grad_(True)
    p = model.points(x, "test")
    assert torch.allclose(p.u, torch.sin(x.detach()))
    assert torch.allclose(p.u_xx, -torch.sin(x.detach()))
    assert math.isclose(float(p.u_x[0].detach()), math.cos(-1.0), rel_tol=1e-12)
