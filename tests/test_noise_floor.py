"""gallery/benchmarks/heat_inverse_floor.py: the sine series solves the heat problem, and the least-squares
fit recovers κ exactly from noiseless data and the documented estimate from the shipped observations."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

SCRIPT = REPO / "gallery" / "benchmarks" / "heat_inverse_floor.py"
spec = importlib.util.spec_from_file_location("heat_inverse_floor", SCRIPT)
floor = importlib.util.module_from_spec(spec)
spec.loader.exec_module(floor)


def test_the_sine_series_solves_the_heat_equation_with_zero_walls():
    kappa, a = 0.3, np.array([1.0, -0.4, 0.2])
    x, t, h = np.array([0.3, 0.71]), np.array([0.2, 0.55]), 1e-4
    u = lambda x, t: floor.sine_series(kappa, a, x, t)  # noqa: E731
    u_t = (u(x, t + h) - u(x, t - h)) / (2 * h)
    u_xx = (u(x + h, t) - 2 * u(x, t) + u(x - h, t)) / h**2
    np.testing.assert_allclose(u_t, kappa * u_xx, rtol=1e-5)
    np.testing.assert_allclose(floor.sine_series(kappa, a, np.array([0.0, 1.0]), t), 0.0, atol=1e-12)


def test_noiseless_observations_give_kappa_back():
    rng = np.random.default_rng(4)
    points = rng.uniform(0, 1, size=(50, 2))
    observed = floor.sine_series(0.1, np.array([1.0, 0.3]), points[:, 0], points[:, 1])
    kappa, amplitudes = floor.fit(points, observed, modes=2)
    assert kappa == pytest.approx(0.1, rel=1e-8)
    np.testing.assert_allclose(amplitudes, [1.0, 0.3], rtol=1e-8)


def test_the_script_prints_the_floor_of_the_shipped_observations():
    out = subprocess.run([sys.executable, str(SCRIPT), "--modes", "2", "--draws", "20"], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    one_mode = next(line for line in out.splitlines() if line.startswith("| 1 |"))
    kappa = float(one_mode.split("|")[2])
    assert kappa == pytest.approx(0.09914, abs=1e-5)  # the shipped noise draw's estimate: 0.86 % low
    assert "Over 20 fresh draws of 200 observations" in out
    assert math.isfinite(float(one_mode.split("|")[4]))
