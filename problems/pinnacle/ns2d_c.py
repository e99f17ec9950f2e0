"""NS2d-C of PINNacle (Hao et al. 2024): class NS2D_LidDriven (a = 4) in src/pde/ns.py.

    u u_x + v u_y + p_x = NU (u_xx + u_yy)
    u v_x + v v_y + p_y = NU (v_xx + v_yy)      on [0, 1]^2,   NU = 1/100 (Re 100)
    u_x + v_y = 0
    lid y = 1: u = A x (1 - x), v = 0 (A = 4);   other walls: u = v = 0;   gauge: p(0, 0) = 0

A lid-driven cavity whose lid speed is a parabola vanishing at the corners,
so unlike problems/cavity.py the velocity is continuous there.  PINNacle pins
the pressure with one observation p(0, 0) = 0, as the reference is pinned.
Reference: PINNacle's COMSOL solution ref/lid_driven_a4.dat (x, y, u, v, p at
10201 mesh nodes), read when the problem file is loaded.
Published L2RE (PINNacle's main table): PINN 4.70e-2; best LAAF 3.60e-2
(pinnbal/bench/pinnacle_published.py).
Points: PINNacle's defaults are 8192 interior and 2048 boundary points; here
4096 interior (three outputs and their second derivatives, as problems/cavity.py),
512 on the lid and 1536 on the other walls.
"""
import torch

import pinnbal as pb

FILE = "lid_driven_a4.dat"
NU = 1.0 / 100.0
A = 4.0


def momentum_x(p):
    return p.u * p.u_x + p.v * p.u_y + p.p_x - NU * (p.u_xx + p.u_yy)


def momentum_y(p):
    return p.u * p.v_x + p.v * p.v_y + p.p_y - NU * (p.v_xx + p.v_yy)


def continuity(p):
    return p.u_x + p.v_y


def lid(p):
    return torch.cat([A * p.x * (1 - p.x), torch.zeros_like(p.x)], dim=1)


def comsol_reference():
    path = pb.find_data(FILE, env="PINNBAL_PINNACLE_DIR",
                        source="the ref/ folder of a PINNacle checkout (github.com/i207M/PINNacle)")
    table = pb.read_comsol(path)
    return pb.ScatteredReference(points=table[:, :2], values=table[:, 2:5])


problem = pb.Problem(
    name="ns2d_c",
    domain=pb.Box(x=(0.0, 1.0), y=(0.0, 1.0)),
    outputs=["u", "v", "p"],
    terms=[
        pb.Residual("momentum_x", momentum_x, points=4096),
        pb.Residual("momentum_y", momentum_y, points="momentum_x"),
        pb.Residual("continuity", continuity, points="momentum_x"),
        pb.Boundary("lid", on=pb.Face(y=1.0), outputs=["u", "v"], value=lid, points=512),
        pb.Boundary("walls", on=pb.Face("x", y=0.0), outputs=["u", "v"], value=0.0, points=1536),
        pb.Data("gauge", x=[[0.0, 0.0]], values=[[0.0]], outputs=["p"]),
    ],
    reference=comsol_reference(),
)
