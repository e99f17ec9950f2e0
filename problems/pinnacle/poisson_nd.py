"""PNd (Poisson-ND) of PINNacle (Hao et al. 2024): class PoissonND (dim = 5) in src/pde/poisson.py.

    -(u_x1x1 + ... + u_x5x5) = pi^2/4 (sin(pi x1/2) + ... + sin(pi x5/2))     on [0, 1]^5
    u = sin(pi x1/2) + ... + sin(pi x5/2) on the whole boundary
    exact u = sin(pi x1/2) + ... + sin(pi x5/2)

The high-dimensional Poisson problem.  Reference: the closed form (on a
7^5-point grid of the cube for the error).
Published L2RE (PINNacle's main table): PINN not found in a source we could
read; best PINNs with Adam + L-BFGS, 4.67e-4 (pinnbal/bench/pinnacle_published.py).
Points: PINNacle uses four times its defaults here, 32768 interior and 8192
boundary points; here 8192 and 2048.
"""
import math

import torch

import pinnbal as pb

DIM = 5
NAMES = [f"x{i}" for i in range(1, DIM + 1)]


def exact(p):
    return sum(torch.sin(math.pi / 2 * getattr(p, n)) for n in NAMES)


def poisson(p):
    laplacian = sum(p.d("u", n, n) for n in NAMES)
    return laplacian + math.pi**2 / 4 * exact(p)


problem = pb.Problem(
    name="poisson_nd",
    domain=pb.Box(**{n: (0.0, 1.0) for n in NAMES}),
    outputs=["u"],
    terms=[
        pb.Residual("pde", poisson, points=8192),
        pb.Boundary("walls", value=exact, points=2048),
    ],
    reference=exact,
)
