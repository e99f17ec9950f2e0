"""Poisson2d-CG of PINNacle (Hao et al. 2024): class PoissonBoltzmann2D in src/pde/poisson.py.

    -(u_xx + u_yy) + K^2 u = f       on the square [-1, 1]^2 less four disks:
                                     centres (0.5, 0.5), (0.4, -0.4), (-0.2, -0.7), (-0.6, 0.5),
                                     radii 0.2, 0.4, 0.1, 0.3
    f = A (M1^2 + x^2 + M2^2 + y^2) sin(M1 pi x) sin(M2 pi y),   K = 8, A = 10, (M1, M2) = (1, 4)
    u = 0.2 on the sides of the square,   u = 1 on the four circles

A Poisson-Boltzmann (screened Poisson) equation.  Reference: PINNacle's COMSOL
solution ref/poisson_boltzmann2d.dat (x, y, u at 3236 mesh nodes), read when the
file is loaded.
Published L2RE (PINNacle's main table): PINN not found in a source we could
read; best PINN-NTK 1.43e-2 (pinnbal/bench/pinnacle_published.py).
Points: PINNacle's defaults are 8192 interior and 2048 boundary points;
here 8192 interior, 1024 on the square and 1024 on the circles.
"""
import math

import torch

import pinnbal as pb

FILE = "poisson_boltzmann2d.dat"
K, A, M1, M2 = 8.0, 10.0, 1.0, 4.0
DISKS = [(0.5, 0.5, 0.2), (0.4, -0.4, 0.4), (-0.2, -0.7, 0.1), (-0.6, 0.5, 0.3)]
holes = pb.Disk(x=DISKS[0][0], y=DISKS[0][1], radius=DISKS[0][2])
for cx, cy, r in DISKS[1:]:
    holes = holes | pb.Disk(x=cx, y=cy, radius=r)


def source(p):
    return A * (M1**2 + p.x**2 + M2**2 + p.y**2) * torch.sin(M1 * math.pi * p.x) * torch.sin(M2 * math.pi * p.y)


def poisson_boltzmann(p):
    return -(p.u_xx + p.u_yy) + K**2 * p.u - source(p)


def comsol_reference():
    path = pb.find_data(FILE, env="PINNBAL_PINNACLE_DIR",
                        source="the ref/ folder of a PINNacle checkout (github.com/i207M/PINNacle)")
    table = pb.read_comsol(path)
    return pb.ScatteredReference(points=table[:, :2], values=table[:, 2:3])


problem = pb.Problem(
    name="poisson2d_cg",
    domain=pb.Box(x=(-1.0, 1.0), y=(-1.0, 1.0)) - holes,
    outputs=["u"],
    terms=[
        pb.Residual("pde", poisson_boltzmann, points=8192),
        pb.Boundary("square", on=pb.Face("x", "y"), value=0.2, points=1024),
        pb.Boundary("circles", on=holes, value=1.0, points=1024),
    ],
    reference=comsol_reference(),
)
