"""
Burgers' equation with learning-rate annealing
==============================================

The viscous Burgers equation (Raissi et al. 2019) develops a shock at
x = 0: ``u_t + u u_x = (0.01/pi) u_xx`` on x in [-1, 1], t in [0, 1], with
``u(x, 0) = -sin(pi x)`` and ``u(±1, t) = 0``.  The problem file is
``problems/burgers.py``; its reference is the Cole-Hopf solution.

The initial and boundary terms have much smaller parameter gradients than
the PDE residual, so with equal weights the network fits the PDE and drifts
off the data.  Learning-rate annealing (``lra``) raises their weights until
the gradients balance; the weight history below shows it.

Run it: ``python gallery/01_burgers_lra.py`` (full budget, about two
minutes on two CPU cores) or ``--quick`` (seconds, for the tests).
"""

# %%
# Settings: the full budget is the project default (1000 Adam steps, then
# 4000 L-BFGS iterations); ``--quick`` trains a few steps only.
import argparse
import shutil
from pathlib import Path

import pinnbal as pb

HERE = Path(__file__).resolve().parent
parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
parser.add_argument("--quick", action="store_true", help="a few steps, for tests")
parser.add_argument("--out", type=Path, default=HERE / "images" / "01_burgers_lra", help="where the images go")
args = parser.parse_args()
budget = dict(steps=30, lbfgs=20, eval_every=10) if args.quick else dict(steps=1000, lbfgs=4000)

# %%
# Train with ``lra``; the run directory keeps the history, the metrics and
# the figures, drawn from those files alone.
run_dir = args.out / "run"
run = pb.train(HERE.parent / "problems" / "burgers.py", "lra", seed=0, out=run_dir, force=True, **budget)
print(f"rel L2 {run.metrics['rel_l2']:.3e} in {run.metrics['wall_s']:.0f} s; final weights {run.metrics['final_weights']}")

# %%
# The figures: prediction, reference and error side by side; term losses and
# the weights LRA chose.
for name in ("solution.png", "losses.png"):
    shutil.copy(run_dir / "figures" / name, args.out / name)
print("images in", args.out)
