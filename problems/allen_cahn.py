"""Allen-Cahn equation (Raissi et al. 2019; the jaxpi benchmark).

    u_t - EPS u_xx + 5 u^3 - 5 u = 0   on x in [-1, 1], t in [0, 1],   EPS = 1e-4
    u(x, 0) = x^2 cos(pi x),   periodic: u(-1, t) = u(1, t), u_x(-1, t) = u_x(1, t)

Boundary: periodic in x, exactly: ``pb.Box(..., periodic="x")`` feeds the
network (cos, sin) of pi x, so no boundary term is needed.

Reference: Fourier pseudo-spectral + ETDRK4 (pinnbal/solvers/allen_cahn.py) on
the jaxpi grid, 512 x values by 201 times, cached next to this file.
Published rel L2: 5.2e-1 with fixed weights (jaxpi ablation), 2.1e-2 (SA-PINN),
2.5e-2 (RBA), 2.24e-5 (PirateNet, 300k+ steps).
"""
import math
from pathlib import Path

import torch

import pinnbal as pb
from pinnbal.solvers.allen_cahn import allen_cahn, jaxpi_grid

EPS, A = 1e-4, 5.0


def allen_cahn_residual(p):
    return p.u_t - EPS * p.u_xx + A * p.u**3 - A * p.u


def spectral_reference():
    _, t = jaxpi_grid()
    x, u = allen_cahn(t, n_points=511, eps=EPS, a=A)  # x = linspace(-1, 1, 512)
    return pb.GridReference(axes={"x": x, "t": t}, values={"u": u})


problem = pb.Problem(
    name="allen_cahn",
    domain=pb.Box(x=(-1.0, 1.0), t=(0.0, 1.0), periodic="x"),
    outputs=["u"],
    terms=[
        pb.Residual("pde", allen_cahn_residual, points=8192),
        pb.Initial("ic", value=lambda p: p.x**2 * torch.cos(math.pi * p.x), points=512),
    ],
    reference=pb.GridReference.cached(Path(__file__).with_name("allen_cahn_reference.npz"), spectral_reference),
)
