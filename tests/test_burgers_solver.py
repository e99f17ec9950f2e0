"""Tests for the Cole--Hopf reference solver of the viscous Burgers benchmark.

Known values below were cross-checked against an independent 50-digit
``mpmath`` adaptive quadrature of the Cole--Hopf integrals (not Gauss--Hermite),
which agreed with the solver to < 1e-15.
"""

import numpy as np
import pytest

from pinnbal.solvers.burgers import burgers_cole_hopf, raissi_grid

NU = 0.01 / np.pi

# u(0.5, 0.5); 50-digit mpmath quadrature gives -0.59276953440205108...
U_HALF_HALF = -0.592769534402051
# max_x |u(x, 0.99)| on the Raissi x grid, attained at x[124] = -0.02745...;
# mpmath gives 0.71783913041116960... (Burgers.npz has 0.7178391304123).
UMAX_T099 = 0.7178391304111698


@pytest.fixture(scope="module")
def raissi_solution():
    x, t = raissi_grid()
    return x, t, burgers_cole_hopf(x, t, NU)


def test_raissi_grid():
    x, t = raissi_grid()
    assert x.shape == (256,) and t.shape == (100,)
    assert x[0] == -1.0 and x[-1] == 1.0
    np.testing.assert_allclose(np.diff(x), 2.0 / 255, rtol=0, atol=1e-15)
    np.testing.assert_allclose(t, np.arange(100) / 100, rtol=0, atol=1e-15)
    assert t[0] == 0.0


def test_shape_and_dtype(raissi_solution):
    x, t, u = raissi_solution
    assert u.shape == (x.size, t.size)
    assert u.dtype == np.float64
    assert np.all(np.isfinite(u))
    # 'ij' indexing: u[i, j] = u(x[i], t[j])
    i, j = 200, 37
    single = burgers_cole_hopf(x[[i]], t[[j]], NU)
    assert single.shape == (1, 1)
    assert single[0, 0] == pytest.approx(u[i, j], abs=1e-15)


def test_initial_condition(raissi_solution):
    x, _, u = raissi_solution
    np.testing.assert_array_equal(u[:, 0], -np.sin(np.pi * x))
    # The quadrature branch is continuous as t -> 0+.
    x_in = np.linspace(-0.9, 0.9, 37)
    u_small = burgers_cole_hopf(x_in, np.array([1e-8]), NU)[:, 0]
    np.testing.assert_allclose(u_small, -np.sin(np.pi * x_in), rtol=0, atol=1e-6)


def test_odd_in_x_and_zero_at_boundary(raissi_solution):
    x, _, u = raissi_solution
    np.testing.assert_allclose(x, -x[::-1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(u[::-1, :], -u, rtol=0, atol=1e-13)
    np.testing.assert_allclose(u[[0, -1], :], 0.0, rtol=0, atol=1e-13)
    # Boundary also at a time not on the Raissi grid.
    ub = burgers_cole_hopf(np.array([-1.0, 1.0]), np.array([0.123, 1.0]), NU)
    np.testing.assert_allclose(ub, 0.0, rtol=0, atol=1e-13)


def test_known_value_midpoint():
    u = burgers_cole_hopf(np.array([0.5]), np.array([0.5]), NU)[0, 0]
    assert u == pytest.approx(U_HALF_HALF, abs=1e-10)


def test_max_abs_late_time(raissi_solution):
    x, t, u = raissi_solution
    assert t[-1] == pytest.approx(0.99, abs=1e-15)
    col = np.abs(u[:, -1])
    assert col.max() == pytest.approx(UMAX_T099, abs=1e-10)
    # Steep front just left of the origin: the maximum sits at x[124] < 0.
    assert int(col.argmax()) == 124


def test_convergence_by_doubling_nodes(raissi_solution):
    x, t, u_default = raissi_solution
    u_double = burgers_cole_hopf(x, t, NU, n_nodes=400)
    assert np.max(np.abs(u_double - u_default)) < 1e-10
    u_100 = burgers_cole_hopf(x, t, NU, n_nodes=100)
    assert np.max(np.abs(u_100 - u_default)) < 1e-10
    # The check has teeth: an under-resolved rule is visibly off.
    u_25 = burgers_cole_hopf(x, t, NU, n_nodes=25)
    u_50 = burgers_cole_hopf(x, t, NU, n_nodes=50)
    assert np.max(np.abs(u_50 - u_25)) > 1e-3


def _fd_residual(x0, t0, h):
    """4th-order central-difference terms of the Burgers equation at (x0, t0)."""
    offsets = np.arange(-2, 3)
    u = burgers_cole_hopf(x0 + h * offsets, t0 + h * offsets, NU)
    d1 = np.array([1.0, -8.0, 0.0, 8.0, -1.0]) / 12.0
    d2 = np.array([-1.0, 16.0, -30.0, 16.0, -1.0]) / 12.0
    u_t = d1 @ u[2, :] / h
    u_x = d1 @ u[:, 2] / h
    u_xx = d2 @ u[:, 2] / h**2
    adv = u[2, 2] * u_x
    visc = NU * u_xx
    return u_t + adv - visc, u_t, adv, visc


@pytest.mark.parametrize(
    "x0, t0, h",
    [
        (0.5, 0.3, 1e-3),  # smooth region
        (0.05, 0.5, 3e-4),  # near the front, viscous term ~7% of u_t
    ],
)
def test_satisfies_pde(x0, t0, h):
    res, u_t, adv, visc = _fd_residual(x0, t0, h)
    scale = abs(u_t) + abs(adv) + abs(visc)
    assert scale > 0.1
    assert abs(res) < 1e-7 * scale
    # Residual is far below the viscous term, so the viscosity is resolved too.
    assert abs(res) < 1e-4 * abs(visc)


@pytest.mark.parametrize(
    "x, t, nu, n_nodes",
    [
        (np.zeros(3), np.array([-0.1]), NU, 100),
        (np.zeros((3, 1)), np.array([0.1]), NU, 100),
        (np.zeros(3), np.array([[0.1]]), NU, 100),
        (np.zeros(3), np.array([0.1]), 0.0, 100),
        (np.zeros(3), np.array([np.nan]), NU, 100),
        (np.zeros(3), np.array([0.1]), NU, 0),
    ],
)
def test_invalid_input(x, t, nu, n_nodes):
    with pytest.raises(ValueError):
        burgers_cole_hopf(x, t, nu, n_nodes=n_nodes)
