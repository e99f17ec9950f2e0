"""The noise floor of the inverse heat problem: what its observations allow any method to recover.

``problems/heat_inverse.py`` asks for κ in u_t = κ u_xx (u = 0 at x = 0 and 1,
no initial condition) from 200 observations with Gaussian noise of standard
deviation 0.01.  Every solution of that PDE with those boundary values is a
sine series,

    u(x, t) = Σ_{n=1..N} a_n exp(−κ n² π² t) sin(n π x),

so a nonlinear least-squares fit of (κ, a_1 … a_N) to the observations
(``scipy.optimize.least_squares``) is the estimate a method that knew the
exact solution family would make: with N = 1 the family holds nothing but
the truth's own shape, the most any method can know.  Its error is the
floor set by the data, not by a network or an optimiser:

- on the shipped observations (their one noise draw), the fitted κ and the
  rel L2 of the fitted field on the points ``pinnbal run`` measures, per N;
- over ``--draws`` fresh noise draws and point sets made the way the problem
  file makes its own (uniform points, σ = 0.01, the true N = 1 family), the
  median errors and how often they meet a goal (κ within ``--kappa-goal``,
  u within ``--u-goal``).

Usage: ``python gallery/benchmarks/heat_inverse_floor.py [--modes 6] [--draws 300]``
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

import pinnbal as pb

PROBLEM = Path(__file__).resolve().parents[2] / "problems" / "heat_inverse.py"
SIGMA = 0.01  # the observations' noise, as problems/heat_inverse.py draws it
KAPPA = 0.1  # the truth there


def sine_series(kappa: float, amplitudes: np.ndarray, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Σ_n a_n exp(−κ n² π² t) sin(n π x), n = 1 … len(amplitudes)."""
    n = np.arange(1, len(amplitudes) + 1)[:, None]
    return amplitudes @ (np.exp(-kappa * (n * math.pi) ** 2 * t) * np.sin(n * math.pi * x))


def fit(points: np.ndarray, observed: np.ndarray, modes: int) -> tuple[float, np.ndarray]:
    """Least-squares (κ, a_1 … a_modes) from observations at points (M, 2) of (x, t); κ starts at 0.5 as the
    problem's unknown does, a_1 at 1 and the others at 0."""
    start = np.r_[0.5, 1.0, np.zeros(modes - 1)]
    solution = least_squares(lambda q: sine_series(q[0], q[1:], points[:, 0], points[:, 1]) - observed, start)
    return float(solution.x[0]), solution.x[1:]


def rel_l2(kappa: float, amplitudes: np.ndarray, x: np.ndarray, reference: np.ndarray) -> float:
    predicted = sine_series(kappa, amplitudes, x[:, 0], x[:, 1])
    return float(np.linalg.norm(predicted - reference) / np.linalg.norm(reference))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--modes", type=int, default=6, help="fit N = 1 … this many sine modes (default 6)")
    parser.add_argument("--draws", type=int, default=300, help="fresh noise draws for the floor's spread")
    parser.add_argument("--kappa-goal", type=float, default=1e-3, help="relative κ error counted as met")
    parser.add_argument("--u-goal", type=float, default=1e-3, help="rel L2 of u counted as met")
    args = parser.parse_args()

    problem = pb.load_problem(PROBLEM)
    obs = next(term for term in problem.terms if term.name == "obs")
    points, observed = np.asarray(obs.x_raw), np.asarray(obs.values_raw)[:, 0]
    x_eval, u_eval = problem.evaluation_set()
    reference = u_eval[:, 0]

    print(f"The shipped observations ({len(observed)}, σ = {SIGMA}):\n")
    print("| sine modes N | κ | κ error | rel L2 of u |\n| --- | --- | --- | --- |")
    for modes in range(1, args.modes + 1):
        kappa, amplitudes = fit(points, observed, modes)
        print(f"| {modes} | {kappa:.5f} | {abs(kappa - KAPPA) / KAPPA:.2%} | "
              f"{rel_l2(kappa, amplitudes, x_eval, reference):.2e} |")

    kappa_errors, u_errors = [], []
    for draw in range(args.draws):
        rng = np.random.default_rng(1000 + draw)
        where = rng.uniform([0.0, 0.0], [1.0, 1.0], size=(len(observed), 2))
        noisy = sine_series(KAPPA, np.ones(1), where[:, 0], where[:, 1]) + rng.normal(0.0, SIGMA, len(observed))
        kappa, amplitudes = fit(where, noisy, 1)
        kappa_errors.append(abs(kappa - KAPPA) / KAPPA)
        u_errors.append(rel_l2(kappa, amplitudes, x_eval, reference))
    kappa_errors, u_errors = np.array(kappa_errors), np.array(u_errors)
    print(f"\nOver {args.draws} fresh draws of {len(observed)} observations, the exact family (N = 1): "
          f"κ error median {np.median(kappa_errors):.2%} (within {args.kappa_goal:.1%} in "
          f"{np.mean(kappa_errors <= args.kappa_goal):.0%} of draws), rel L2 of u median {np.median(u_errors):.2e} "
          f"(within {args.u_goal:.0e} in {np.mean(u_errors <= args.u_goal):.0%}); both in "
          f"{np.mean((kappa_errors <= args.kappa_goal) & (u_errors <= args.u_goal)):.0%}.")


if __name__ == "__main__":
    main()
