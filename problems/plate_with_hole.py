"""Poisson on a plate with a hole: Dirichlet on the outer edges, Neumann on the hole.

    u_xx + u_yy = -2 π² sin(πx) sin(πy)     on [-1, 1]² less the disk of radius 0.4 at the origin
    u = 0 on the sides of the square,   ∇u · n = g on the circle

The outward normal n of the plate points into the hole (p.nx, p.ny), and g
is the normal derivative of the exact solution u = sin(πx) sin(πy), a
manufactured solution, so the error is measured against a closed form.
"""
import math

import torch

import pinnbal as pb

PI = math.pi
hole = pb.Disk(x=0.0, y=0.0, radius=0.4)


def exact(p):
    return torch.sin(PI * p.x) * torch.sin(PI * p.y)


def exact_normal(p):
    grad_x = PI * torch.cos(PI * p.x) * torch.sin(PI * p.y)
    grad_y = PI * torch.sin(PI * p.x) * torch.cos(PI * p.y)
    return grad_x * p.nx + grad_y * p.ny


problem = pb.Problem(
    name="plate_with_hole",
    domain=pb.Box(x=(-1.0, 1.0), y=(-1.0, 1.0)) - hole,
    outputs=["u"],
    terms=[
        pb.Residual("pde", lambda p: p.u_xx + p.u_yy + 2 * PI ** 2 * exact(p), points=4096),
        pb.Boundary("sides", on=pb.Face("x", "y"), value=0.0, points=512),
        pb.Boundary("hole", on=hole, residual=lambda p: p.u_n - exact_normal(p), points=256),
    ],
    reference=exact,
)
