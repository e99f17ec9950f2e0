"""Kovasznay flow (Kovasznay 1948): steady incompressible Navier–Stokes at Re = 20, three balanced equations.

    u u_x + v u_y + P_x − (u_xx + u_yy)/Re = 0
    u v_x + v v_y + P_y − (v_xx + v_yy)/Re = 0
    u_x + v_y = 0                  on (x, y) in [−0.5, 1] × [−0.5, 1.5]

    exact: λ = Re/2 − sqrt(Re²/4 + 4π²),  u = 1 − e^{λx} cos 2πy,  v = λ/(2π) e^{λx} sin 2πy,
           P = (1 − e^{2λx})/2          (the velocity on the whole boundary; P pinned by its value on it too)

The two momentum equations and continuity are separate terms, so every balancer weighs each one; the
continuity and y-momentum terms train on the x-momentum term's points (``points="momentum_x"``): one
batch, one forward pass and one set of derivatives for the three.  Jin, Cai, Li & Karniadakis 2021
(NSFnets) use this flow as their first test.
"""
import math

import torch

import pinnbal as pb

RE = 20.0
LAM = RE / 2 - math.sqrt(RE**2 / 4 + 4 * math.pi**2)


def momentum_x(p):
    return p.u * p.u_x + p.v * p.u_y + p.P_x - (p.u_xx + p.u_yy) / RE


def momentum_y(p):
    return p.u * p.v_x + p.v * p.v_y + p.P_y - (p.v_xx + p.v_yy) / RE


def continuity(p):
    return p.u_x + p.v_y


def exact(p):
    grow = torch.exp(LAM * p.x)
    return torch.cat([1 - grow * torch.cos(2 * math.pi * p.y),
                      LAM / (2 * math.pi) * grow * torch.sin(2 * math.pi * p.y),
                      (1 - torch.exp(2 * LAM * p.x)) / 2], dim=1)


problem = pb.Problem(
    name="kovasznay",
    domain=pb.Box(x=(-0.5, 1.0), y=(-0.5, 1.5)),
    outputs=["u", "v", "P"],
    terms=[
        pb.Residual("momentum_x", momentum_x, points=2048),
        pb.Residual("momentum_y", momentum_y, points="momentum_x"),
        pb.Residual("continuity", continuity, points="momentum_x"),
        pb.Boundary("walls", value=exact, points=512),
    ],
    reference=exact,
)
