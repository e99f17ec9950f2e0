"""Helmholtz equation in 2D (Wang, Teng & Perdikaris 2021, section 4.1).

    u_xx + u_yy + k^2 u = q(x, y)   on [-1, 1]^2,   u = 0 on the boundary
    q = -(a1 pi)^2 u - (a2 pi)^2 u + k^2 u,  exact u = sin(a1 pi x) sin(a2 pi y)
    a1 = 1, a2 = 4, k = 1: the stiff case where fixed weights fail (rel L2 1.8e-1)
"""
import math

import torch

import pinnbal as pb

A1, A2, K = 1.0, 4.0, 1.0


def exact(p):
    return torch.sin(A1 * math.pi * p.x) * torch.sin(A2 * math.pi * p.y)


def helmholtz(p):
    u = exact(p)
    q = (K**2 - (A1 * math.pi) ** 2 - (A2 * math.pi) ** 2) * u
    return p.u_xx + p.u_yy + K**2 * p.u - q


problem = pb.Problem(
    name="helmholtz2d",
    domain=pb.Box(x=(-1.0, 1.0), y=(-1.0, 1.0)),
    outputs=["u"],
    terms=[
        pb.Residual("pde", helmholtz, points=4096),
        pb.Boundary("walls", value=0.0, points=1024),
    ],
    reference=exact,
)
