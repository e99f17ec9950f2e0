"""Wave1d-C of PINNacle (Hao et al. 2024): class Wave1D in src/pde/wave.py (C = 2, a = 4).

    u_tt = C^2 u_xx        on x in [0, 1], t in [0, 1],   C = 2
    u(x, 0) = sin(pi x) + 1/2 sin(4 pi x),   u_t(x, 0) = 0,   u(0, t) = u(1, t) = 0
    exact u = sin(pi x) cos(2 pi t) + 1/2 sin(4 pi x) cos(8 pi t)

The equation of problems/wave1d.py (Wang, Yu & Perdikaris 2022), with
PINNacle's published numbers and point counts.  PINNacle states the initial
velocity as a Neumann condition on the face t = 0 (-u_t = 0 there) and takes
the boundary values from the exact solution, which vanishes at x = 0 and 1;
nothing is imposed at t = 1.  Reference: the closed form.
Published L2RE (PINNacle's main table): PINN not found in a source we could
read; best PINN-NTK 9.79e-2 (pinnbal/bench/pinnacle_published.py).
Points: PINNacle's defaults are 8192 interior and 2048 boundary points (shared
by the faces t = 0, x = 0 and x = 1); here 8192 interior, 512 for u and 512
for u_t at t = 0, and 1024 on x = 0 and x = 1.
"""
import math

import torch

import pinnbal as pb

C = 2.0


def exact(p):
    return (torch.sin(math.pi * p.x) * torch.cos(2 * math.pi * p.t)
            + 0.5 * torch.sin(4 * math.pi * p.x) * torch.cos(8 * math.pi * p.t))


def wave(p):
    return p.u_tt - C**2 * p.u_xx


problem = pb.Problem(
    name="wave1d_c",
    domain=pb.Box(x=(0.0, 1.0), t=(0.0, 1.0)),
    outputs=["u"],
    terms=[
        pb.Residual("pde", wave, points=8192),
        pb.Initial("ic", on=pb.Face(t=0.0), value=exact, points=512),
        pb.Initial("ic_velocity", on=pb.Face(t=0.0), residual=lambda p: p.u_t, points=512),
        pb.Boundary("walls", on=pb.Face("x"), value=exact, points=1024),
    ],
    reference=exact,
)
