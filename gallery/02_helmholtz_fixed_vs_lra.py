"""
Helmholtz: the classic failure of fixed weights, and its fix
============================================================

The Helmholtz equation on the square (Wang, Teng & Perdikaris 2021)

    u_xx + u_yy + u = q(x, y)   on [-1, 1]^2,   u = 0 on the boundary,

with q chosen so that the exact solution is u = sin(pi x) sin(4 pi y).
The source q is large (about 170 at its peaks), so the gradient of the
residual loss dwarfs that of the boundary loss.  With fixed, equal weights
the network fits the PDE in the interior but lets the boundary values
drift, and the error spreads inwards from the edges.  Learning-rate
annealing (``lra``) raises the boundary weight until both gradients have
comparable size.  Both runs below share the problem file, the network, the
budget and the seed; only the balancer differs.
"""

# %%
# Budget
# ------
# 1000 Adam steps and 1500 L-BFGS iterations per run (about three minutes for
# both on two CPU cores); ``--quick`` trains a few steps.
import pinnbal as pb
from pinnbal.render import plot_comparison, render_run

from _common import keep, options, problem_file, report

# float32 L-BFGS: the images and figures in gallery/README.md were made with it (the default is now
# float64)
FULL = dict(steps=1000, lbfgs=1500, eval_every=250, then="lbfgs:dtype=float32")
QUICK = dict(steps=20, lbfgs=10, eval_every=10)
args = options(__file__, __doc__, full=FULL, quick=QUICK)

# %%
# Train once per balancer
# -----------------------
# Each run keeps its own run directory and figures; we keep its solution
# figure (prediction, reference and error) under the balancer's name.
runs, images = [], []
for balancer in ("fixed", "lra"):
    run = pb.train(problem_file("helmholtz2d"), balancer, seed=0, out=args.runs / balancer, force=True,
                   render=False, **args.budget)
    figures = render_run(run.out)
    images += keep(figures, args.out, prefix=f"{balancer}-")
    runs.append(run)

# %%
# Side by side
# ------------
# One row per balancer: the prediction (one colour scale for both), the
# absolute error (one logarithmic scale for both) and the term weights.
# ``fixed`` keeps both weights at 1 and its error is largest near the
# boundary; ``lra`` gives the boundary a weight in the tens to hundreds and
# its error is orders of magnitude smaller everywhere.
images.append(plot_comparison([run.out for run in runs], args.out / "fixed_vs_lra.png"))
report(args, runs, images)
