"""
Burgers' equation with learning-rate annealing
==============================================

The viscous Burgers equation

    u_t + u u_x = (0.01 / pi) u_xx,   x in [-1, 1], t in [0, 1],
    u(x, 0) = -sin(pi x),   u(-1, t) = u(1, t) = 0,

steepens into a shock at x = 0 around t = 0.4.  A PINN minimises three loss
terms at once: the PDE residual (``pde``), the initial condition (``ic``)
and the boundary condition (``walls``).  Their gradients differ by orders of
magnitude, so with equal weights the optimiser mostly listens to the
residual.  Learning-rate annealing (``lra``, Wang, Teng & Perdikaris 2021)
sets each weight from the gradient magnitudes: w_k = max|grad L_pde| /
mean|grad w_k L_k|, smoothed over time.  This example trains it and shows
the solution, its error and how the weights moved.
"""

# %%
# Budget
# ------
# The full budget (about two minutes on two CPU cores) is 1000 Adam steps
# and 3000 L-BFGS iterations; L-BFGS keeps the balancer's final weights.
# ``--quick`` trains for a few steps only, to check that the script runs.
import pinnbal as pb
from pinnbal.render import render_run

from _common import keep, options, problem_file, report

# float32 L-BFGS: the images and figures in gallery/README.md were made with it (the default is now
# float64)
FULL = dict(steps=1000, lbfgs=3000, eval_every=250, then="lbfgs:dtype=float32")
QUICK = dict(steps=20, lbfgs=10, eval_every=10)
args = options(__file__, __doc__, full=FULL, quick=QUICK)

# %%
# Train
# -----
# One call: the problem file, the balancer, the budget and a run directory.
# The run directory holds everything the pictures below are drawn from
# (``history.csv``, ``predictions.npz``, ``metrics.json``, ...).
run = pb.train(problem_file("burgers"), "lra", seed=0, out=args.runs / "burgers-lra", force=True,
               render=False, **args.budget)

# %%
# Pictures
# --------
# ``render_run`` draws the run directory's figures:
#
# - ``solution.png``: the PINN and the reference solution over (t, x) on
#   one colour scale, and the absolute error, largest along the shock;
# - ``snapshots.png``: u(x) at three times, PINN against reference;
# - ``losses.png``: the term losses, the weights that ``lra`` chose (``ic``
#   and ``walls`` climb well above the residual's weight of 1) and the
#   relative L2 error against the step;
# - ``solution.gif`` (``gif=True``, as ``pinnbal render --gif``): u(x) at
#   every time, PINN against reference, and the error beneath it, which
#   peaks at the shock once it has formed.
figures = render_run(run.out, gif=True)
report(args, [run], keep(figures, args.out))
