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
import pinnbal as pb
from pinnbal.render import plot_unknowns, render_run
from pinnbal.rundir import read_run

from _common import keep, options, problem_file, report

# float32 L-BFGS: the images and figures in gallery/README.md were made with it (the default is now
# float64)
FULL = dict(steps=2000, lbfgs=1000, eval_every=100, then="lbfgs:dtype=float32")
QUICK = dict(steps=20, lbfgs=10, eval_every=10)
args = options(__file__, __doc__, full=FULL, quick=QUICK)

# %%
# The problem
# -----------
# ``problems/heat_inverse.py`` holds it (read it: 40 lines).  Its data are the
# true solution (kappa = 0.1) at 200 random points of the space-time box with
# Gaussian noise; ``unknowns={"kappa": 0.5}`` makes kappa a parameter that
# trains with the network, and the residual reads it as ``p.kappa``.  The
# reference (the exact solution) only measures the error of the field.
problem = pb.load_problem(problem_file("heat_inverse"))
KAPPA = 0.1  # the truth, for the picture

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
