"""1D wave equation (Wang, Yu & Perdikaris 2022, the NTK paper).

    u_tt = C^2 u_xx   on x in [0, 1], t in [0, 1],   C = 2
    u(0, t) = u(1, t) = 0,   u(x, 0) = sin(pi x) + 1/2 sin(4 pi x),   u_t(x, 0) = 0
    exact u = sin(pi x) cos(2 pi t) + 1/2 sin(4 pi x) cos(8 pi t)

The initial velocity is a second initial term, written as a residual (u_t = 0).
Published rel L2: 4.52e-1 with fixed weights, 1.73e-3 with NTK weights
(5 x 500 tanh MLP, 80k Adam steps).
"""
import math

import torch

import pinnbal as pb

C = 2.0


def exact(p):
    return (torch.sin(math.pi * p.x) * torch.cos(C * math.pi * p.t)
            + 0.5 * torch.sin(4 * math.pi * p.x) * torch.cos(4 * C * math.pi * p.t))


def wave(p):
    return p.u_tt - C**2 * p.u_xx


problem = pb.Problem(
    name="wave1d",
    domain=pb.Box(x=(0.0, 1.0), t=(0.0, 1.0)),
    outputs=["u"],
    terms=[
        pb.Residual("pde", wave, points=4096),
        pb.Initial("ic", value=lambda p: torch.sin(math.pi * p.x) + 0.5 * torch.sin(4 * math.pi * p.x), points=512),
        pb.Initial("ic_velocity", residual=lambda p: p.u_t, points=512),
        pb.Boundary("walls", on=pb.Face("x"), value=0.0, points=512),
    ],
    reference=exact,
)

# Our measurement (README, "Accuracy"): the modified MLP, lra weights, a short Adam stage, then self-scaled Broyden
# in float64 for the rest of a 600 s budget (budget=600 below), one CPU thread per run.  Chosen by the loss on fresh
# points (metrics.json validation_losses), 2026-12-03: with 3000 Adam steps first (the earlier recipe) seed 0 ended
# at a fresh-point PDE loss of 3.9e-4, with 1000 at 8.0e-5, with 300 at 4.6e-5; lra's weights reach their scale in the
# first 300 steps (to 40-75), and every second spent in Adam is one the Broyden stage, which does the fitting, loses.
# Seeds 0-2 with 300 Adam steps: rel L2 2.17e-3, 2.18e-3, 4.67e-3 (3200-3950 Broyden iterations in the budget,
# loss still falling); with 3000: 8.1e-3, 9.6e-3, 1.6e-2.  Alone on both cores of the 2-core development CPU the
# three seeds reached 1.95e-3, 1.65e-3 and 3.21e-3 (median 1.95e-3), each in its 4000 iterations in 439-497 s, the
# training loss still falling; so the stage now runs to the 600 s budget (up to 8000 iterations; README 'Accuracy').
recipe = pb.Recipe(arch="modified", steps=300, then="ssbroyden", lbfgs=8000, budget=600,
                   source="pinnbal's own measurement: modified MLP + SSBroyden, README 'Accuracy'")
