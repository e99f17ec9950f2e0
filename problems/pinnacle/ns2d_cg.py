"""NS2d-CG of PINNacle (Hao et al. 2024): class NS2D_BackStep (no obstacles) in src/pde/ns.py.

    u u_x + v u_y + p_x = NU (u_xx + u_yy)
    u v_x + v v_y + p_y = NU (v_xx + v_yy)      on [0, 4] x [0, 2] less [0, 2] x [1, 2],   NU = 1/100
    u_x + v_y = 0
    inlet x = 0 (0 <= y <= 1): u = 4 y (1 - y), v = 0;   outlet x = 4: p = 0;
    every other wall (the step included): u = v = 0

Flow over a backward-facing step: a channel of height 1 opens at x = 2 into
one of height 2.  The domain is written as the L-shaped polygon it is.
Reference: PINNacle's COMSOL solution ref/ns_0_obstacle.dat (x, y, u, v, p at
12910 mesh nodes), read when the problem file is loaded.
Published L2RE (PINNacle's main table): PINN not found in a source we could
read; best LAAF 8.24e-2 (pinnbal/bench/pinnacle_published.py).
Points: PINNacle's defaults are 8192 interior and 2048 boundary points; here
4096 interior (three outputs and their second derivatives), 256 on the inlet,
256 on the outlet and 1536 on the walls.
"""
import torch

import pinnbal as pb

FILE = "ns_0_obstacle.dat"
NU = 1.0 / 100.0
EDGE = 1e-6  # how close to x = 0 or x = 4 a boundary point is on the inlet or outlet


def momentum_x(p):
    return p.u * p.u_x + p.v * p.u_y + p.p_x - NU * (p.u_xx + p.u_yy)


def momentum_y(p):
    return p.u * p.v_x + p.v * p.v_y + p.p_y - NU * (p.v_xx + p.v_yy)


def continuity(p):
    return p.u_x + p.v_y


def inflow(p):
    return torch.cat([4 * p.y * (1 - p.y), torch.zeros_like(p.y)], dim=1)


def comsol_reference():
    path = pb.find_data(FILE, env="PINNBAL_PINNACLE_DIR",
                        source="the ref/ folder of a PINNacle checkout (github.com/i207M/PINNacle)")
    table = pb.read_comsol(path)
    return pb.ScatteredReference(points=table[:, :2], values=table[:, 2:5])


problem = pb.Problem(
    name="ns2d_cg",
    domain=pb.Polygon(x=[0.0, 4.0, 4.0, 2.0, 2.0, 0.0], y=[0.0, 0.0, 2.0, 2.0, 1.0, 1.0]),
    outputs=["u", "v", "p"],
    terms=[
        pb.Residual("momentum_x", momentum_x, points=4096),
        pb.Residual("momentum_y", momentum_y, points="momentum_x"),
        pb.Residual("continuity", continuity, points="momentum_x"),
        pb.Boundary("inlet", on=lambda p: p.x < EDGE, outputs=["u", "v"], value=inflow, points=256),
        pb.Boundary("outlet", on=lambda p: p.x > 4.0 - EDGE, outputs=["p"], value=0.0, points=256),
        pb.Boundary("walls", on=lambda p: (p.x >= EDGE) & (p.x <= 4.0 - EDGE), outputs=["u", "v"], value=0.0,
                    points=1536),
    ],
    reference=comsol_reference(),
)
