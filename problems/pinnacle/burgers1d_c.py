"""Burgers1d-C of PINNacle (Hao et al. 2024): class Burgers1D in src/pde/burgers.py.

    u_t + u u_x = NU u_xx     on x in [-1, 1], t in [0, 1],   NU = 0.01 / pi
    u(x, 0) = -sin(pi x),     u(-1, t) = u(1, t) = 0

The equation of problems/burgers.py; what differs is the reference, PINNacle's
own: the COMSOL solution ref/burgers1d.dat, u at 101 nodes in x (spacing 0.02)
and 11 times t = 0, 0.1, ..., 1, so accuracy is measured on PINNacle's points.
It is not exact: at its nodes it is 1.33e-2 (rel L2) from the Cole-Hopf
solution that problems/burgers.py uses, 0.088 at worst, at the shock at
t = 0.4.  That is about the published PINN error: below ~1e-2 this reference
cannot tell a better network from a worse one.
Published L2RE (PINNacle's main table): PINN 1.45e-2; best PINN with Adam +
L-BFGS, 1.33e-2 (pinnbal/bench/pinnacle_published.py says where they were read).
Points: PINNacle's defaults are 8192 interior, 2048 initial and 2048 boundary;
here 8192, 1024 and 1024.
"""
import math
import re

import numpy as np
import torch

import pinnbal as pb

NU = 0.01 / math.pi
FILE = "burgers1d.dat"


def burgers(p):
    return p.u_t + p.u * p.u_x - NU * p.u_xx


def comsol_reference():
    """u on the grid of the COMSOL export: rows are x, columns the times named in its last header line."""
    path = pb.find_data(FILE, env="PINNBAL_PINNACLE_DIR",
                        source="the ref/ folder of a PINNacle checkout (github.com/i207M/PINNacle)")
    table = pb.read_comsol(path)
    header = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("%")][-1]
    times = np.array([float(t) for t in re.findall(r"@ t=([-+0-9.eE]+)", header)])
    if table.shape[1] != 1 + len(times):
        raise pb.ProblemError(f"{path}: {table.shape[1] - 1} value columns but {len(times)} times in its header")
    return pb.GridReference(axes={"x": table[:, 0], "t": times}, values={"u": table[:, 1:]})


problem = pb.Problem(
    name="burgers1d_c",
    domain=pb.Box(x=(-1.0, 1.0), t=(0.0, 1.0)),
    outputs=["u"],
    terms=[
        pb.Residual("pde", burgers, points=8192),
        pb.Initial("ic", on=pb.Face(t=0.0), value=lambda p: -torch.sin(math.pi * p.x), points=1024),
        pb.Boundary("walls", on=pb.Face("x"), value=0.0, points=1024),
    ],
    reference=comsol_reference(),
)
