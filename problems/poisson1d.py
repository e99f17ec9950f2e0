"""Poisson equation in 1D (Wang, Yu & Perdikaris 2022, the NTK paper).

    u_xx = -(4 pi)^2 sin(4 pi x)   on x in [0, 1],   u(0) = u(1) = 0
    exact solution u = sin(4 pi x)
"""
import math

import torch

import pinnbal as pb

K = 4 * math.pi


def poisson(p):
    return p.u_xx + K**2 * torch.sin(K * p.x)


problem = pb.Problem(
    name="poisson1d",
    domain=pb.Box(x=(0.0, 1.0)),
    outputs=["u"],
    terms=[
        pb.Residual("pde", poisson, points=512),
        pb.Boundary("ends", value=0.0, points=2),
    ],
    reference=lambda p: torch.sin(K * p.x),
)
