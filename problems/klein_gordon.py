"""Nonlinear Klein-Gordon equation (Wang, Teng & Perdikaris 2021, the learning-rate annealing paper).

    u_tt - u_xx + u^3 = f(x, t)   on x in [0, 1], t in [0, 1]
    exact u = x cos(5 pi t) + (x t)^3, so
    f = -25 pi^2 x cos(5 pi t) + 6 x^3 t - 6 x t^3 + u^3
    u on x = 0, 1 and u(x, 0) = x, u_t(x, 0) = 0 from the exact solution

(alpha = -1, beta = 0, gamma = 1, k = 3 in the paper's notation.)
Published rel L2 (paper's Table 3): 1.79e-1 with fixed weights, 1.06e-2 with
learning-rate annealing, 2.81e-3 with annealing and the modified MLP.
"""
import math

import torch

import pinnbal as pb

W = 5 * math.pi


def exact(p):
    return p.x * torch.cos(W * p.t) + (p.x * p.t) ** 3


def source(p):
    u_tt = -W**2 * p.x * torch.cos(W * p.t) + 6 * p.x**3 * p.t
    u_xx = 6 * p.x * p.t**3
    return u_tt - u_xx + exact(p) ** 3


def klein_gordon(p):
    return p.u_tt - p.u_xx + p.u**3 - source(p)


problem = pb.Problem(
    name="klein_gordon",
    domain=pb.Box(x=(0.0, 1.0), t=(0.0, 1.0)),
    outputs=["u"],
    terms=[
        pb.Residual("pde", klein_gordon, points=4096),
        pb.Initial("ic", value=lambda p: p.x, points=512),
        pb.Initial("ic_velocity", residual=lambda p: p.u_t, points=512),
        pb.Boundary("walls", on=pb.Face("x"), value=exact, points=512),
    ],
    reference=exact,
)
