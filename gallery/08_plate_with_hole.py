"""
A plate with a hole: constructive geometry and a Neumann condition
==================================================================

Poisson's equation on the square [-1, 1]² with a disk of radius 0.4 cut
out (``problems/plate_with_hole.py``)::

    hole = pb.Disk(x=0.0, y=0.0, radius=0.4)
    domain = pb.Box(x=(-1.0, 1.0), y=(-1.0, 1.0)) - hole

The sides carry u = 0; the hole carries a Neumann condition written with
the outward normal (which points into the hole): ``residual=lambda p:
p.u_n - g(p)``.  Interior points are drawn in the plate and never in the
hole; boundary points are shared between the sides and the circle by
length.  The exact solution is sin(πx) sin(πy); the pictures draw the hole
empty.  ``fixed`` and ``lra`` train the same network with the same budget
and seed.
"""

# %%
# Budget
# ------
# 1000 Adam steps, then 1000 L-BFGS iterations in float64 per run;
# ``--quick`` trains a few steps.
import pinnbal as pb
from pinnbal.render import plot_comparison, render_run

from _common import keep, options, problem_file, report

FULL = dict(steps=1000, lbfgs=1000, eval_every=250)
QUICK = dict(steps=20, lbfgs=10, eval_every=10)
args = options(__file__, __doc__, full=FULL, quick=QUICK)

# %%
# Train once per balancer
# -----------------------
runs, images = [], []
for balancer in ("fixed", "lra"):
    run = pb.train(problem_file("plate_with_hole"), balancer, seed=0, out=args.runs / "plate" / balancer, force=True,
                   render=False, **args.budget)
    images += keep(render_run(run.out), args.out, prefix=f"{balancer}-")
    runs.append(run)

# %%
# Side by side
# ------------
# One row per balancer: the prediction, the absolute error (one logarithmic
# scale for both) and the term weights; the hole is white.
images.append(plot_comparison([run.out for run in runs], args.out / "fixed_vs_lra.png"))
report(args, runs, images)
