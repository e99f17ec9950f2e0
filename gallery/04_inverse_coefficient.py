"""
An inverse problem: recovering a diffusion coefficient from noisy data
======================================================================

The heat equation

    u_t = kappa u_xx   on x in [0, 1], t in [0, 1],   u(0, t) = u(1, t) = 0,

has, for the initial state sin(pi x), the solution
u = exp(-kappa pi^2 t) sin(pi x).  Here kappa is *not* given: we observe u
at 200 random points with Gaussian noise (standard deviation 0.01) and ask
the PINN for both the field and the coefficient.  ``unknowns={"kappa": 0.5}``
makes kappa a trainable parameter, starting five times too high; the
residual reads it as ``p.kappa``; a ``pb.Data`` term ties the network to the
observations.  The initial condition is not used: the data stand in for it.
"""

# %%
# Budget
# ------
# 2000 Adam steps, then up to 1000 L-BFGS iterations (L-BFGS stops early
# once no step lowers the loss: the data's noise sets a floor); under a
# minute on two CPU cores.  ``--quick`` trains a few steps.
import math

import numpy as np
import torch

import pinnbal as pb
from pinnbal.plots import plot_unknowns, render_run
from pinnbal.runs import read_run

from _common import keep, options, report

FULL = dict(steps=2000, lbfgs=1000, eval_every=100)
QUICK = dict(steps=20, lbfgs=10, eval_every=10)
args = options(__file__, __doc__, full=FULL, quick=QUICK)

# %%
# The data
# --------
# 200 observations of the true solution (kappa = 0.1) at random points of
# the space-time box, with noise.
KAPPA = 0.1
rng = np.random.default_rng(0)
x_obs = rng.uniform([0.0, 0.0], [1.0, 1.0], size=(200, 2))  # columns: x, t
u_obs = np.exp(-KAPPA * math.pi**2 * x_obs[:, 1]) * np.sin(math.pi * x_obs[:, 0])
u_obs += rng.normal(0.0, 0.01, size=u_obs.shape)

# %%
# The problem
# -----------
# Problems can live in a script as well as in a problem file.  The reference
# (used only to measure the error of the field) is the exact solution.
problem = pb.Problem(
    name="heat-inverse",
    domain=pb.Box(x=(0.0, 1.0), t=(0.0, 1.0)),
    outputs=["u"],
    terms=[
        pb.Residual("pde", lambda p: p.u_t - p.kappa * p.u_xx, points=2048),
        pb.Boundary("walls", on=pb.Face("x"), value=0.0, points=256),
        pb.Data("obs", x=x_obs, values=u_obs[:, None]),
    ],
    reference=lambda p: torch.exp(-KAPPA * math.pi**2 * p.t) * torch.sin(math.pi * p.x),
    unknowns={"kappa": 0.5},
)

# %%
# Train
# -----
# ``lra`` balances the boundary and data terms against the residual.
run = pb.train(problem, "lra", seed=0, out=args.runs / "heat-inverse", force=True, render=False, **args.budget)

# %%
# Pictures
# --------
# ``losses.png`` has a panel for the unknown next to the losses, weights and
# error; ``kappa.png`` draws kappa against the step with its true value
# (dotted); ``solution.png`` and ``snapshots.png`` show the recovered field.
figures = render_run(run.out)
figures.append(plot_unknowns(read_run(run.out), run.out / "figures" / "kappa.png", truth={"kappa": KAPPA}))
print(f"kappa: true {KAPPA}, recovered {run.metrics['unknowns']['kappa']:.5f}")
report(args, [run], keep(figures, args.out))
