"""
Poisson in 3D, rendered with pyvista
====================================

The Poisson equation on the unit cube (``problems/poisson3d.py``)

    -(u_xx + u_yy + u_zz) = 3 pi^2 sin(pi x) sin(pi y) sin(pi z)   on [0, 1]^3,
    u = 0 on all six faces,

has the exact solution u = sin(pi x) sin(pi y) sin(pi z).  A 3D solution does
not fit on a heatmap, so ``render_run`` adds a pyvista scene, rendered
off-screen (no display needed): slices through the middle of the cube of the
prediction, the reference and the absolute error, and iso-surfaces of the
prediction cut open and coloured by the error.  pyvista is optional:
``pip install pyvista``.
"""

# %%
# Budget
# ------
# 2000 Adam steps and 3000 L-BFGS iterations with ``lra`` (about two
# minutes on two CPU cores: every residual point needs three second
# derivatives); ``--quick`` trains a few steps.
import pinnbal as pb
from pinnbal.render import render_run

from _common import keep, options, problem_file, report

# float32 L-BFGS: the images and figures in gallery/README.md were made with it (the default is now
# float64)
FULL = dict(steps=2000, lbfgs=3000, eval_every=250, then="lbfgs:dtype=float32")
QUICK = dict(steps=10, lbfgs=5, eval_every=5)
args = options(__file__, __doc__, full=FULL, quick=QUICK)

# %%
# Train
# -----
# In three dimensions 4096 random points leave gaps; a scrambled Sobol
# sequence (``sampler="sobol"``) covers the cube more evenly.
run = pb.train(problem_file("poisson3d"), "lra", sampler="sobol", seed=0, out=args.runs / "poisson3d-lra",
               force=True, render=False, **args.budget)

# %%
# Pictures
# --------
# ``scene.png`` is the pyvista scene; ``solution.png`` the slice z = 0.5 as
# heatmaps; ``losses.png`` the training history.
figures = render_run(run.out)
report(args, [run], keep(figures, args.out))
