"""Poisson equation in 3D on the unit cube, with a closed-form solution.

    -(u_xx + u_yy + u_zz) = f(x, y, z)   on [0, 1]^3,   u = 0 on the whole boundary
    f = 3 pi^2 u,  exact u = sin(pi x) sin(pi y) sin(pi z)
"""
import math

import torch

import pinnbal as pb


def exact(p):
    return torch.sin(math.pi * p.x) * torch.sin(math.pi * p.y) * torch.sin(math.pi * p.z)


def poisson(p):
    f = 3 * math.pi**2 * exact(p)
    return -(p.u_xx + p.u_yy + p.u_zz) - f


problem = pb.Problem(
    name="poisson3d",
    domain=pb.Box(x=(0.0, 1.0), y=(0.0, 1.0), z=(0.0, 1.0)),
    outputs=["u"],
    terms=[
        pb.Residual("pde", poisson, points=4096),
        pb.Boundary("walls", value=0.0, points=1536),
    ],
    reference=exact,
)
