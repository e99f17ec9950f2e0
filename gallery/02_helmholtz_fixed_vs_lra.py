"""
Helmholtz: the classic failure of fixed weights, and its fix
============================================================

``u_xx + u_yy + u = q`` on [-1, 1]², ``u = 0`` on the boundary, with the
exact solution ``sin(pi x) sin(4 pi y)`` (Wang, Teng & Perdikaris 2021).
The source term is large, so the residual's gradients dwarf the boundary
term's: with equal weights the network satisfies the PDE but lets the
boundary values drift, and the error spreads inwards.  Learning-rate
annealing (``lra``) weights the boundary up until the gradients balance.

Run it: ``python gallery/02_helmholtz_fixed_vs_lra.py`` (full budget, about
four minutes on two CPU cores) or ``--quick``.
"""

# %%
# The same problem file, network, budget and seed for both balancers.
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import pinnbal as pb  # noqa: E402

HERE = Path(__file__).resolve().parent
parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
parser.add_argument("--quick", action="store_true", help="a few steps, for tests")
parser.add_argument("--out", type=Path, default=HERE / "images" / "02_helmholtz_fixed_vs_lra", help="where the images go")
args = parser.parse_args()
budget = dict(steps=30, lbfgs=20, eval_every=10) if args.quick else dict(steps=1000, lbfgs=4000)

runs = {}
for balancer in ("fixed", "lra"):
    runs[balancer] = pb.train(HERE.parent / "problems" / "helmholtz2d.py", balancer, seed=0,
                              out=args.out / "runs" / balancer, force=True, **budget)
    print(f"{balancer}: rel L2 {runs[balancer].metrics['rel_l2']:.3e}")

# %%
# Side by side: the absolute error of each, on one colour scale, and the
# relative L2 error during training.
saved = {b: np.load(args.out / "runs" / b / "predictions.npz") for b in runs}
errors = {b: np.abs(s["prediction"][:, 0] - s["reference"][:, 0]) for b, s in saved.items()}
x, y = saved["fixed"]["axis0"], saved["fixed"]["axis1"]
top = max(e.max() for e in errors.values())
fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
for ax, (balancer, err) in zip(axes, errors.items()):
    im = ax.imshow(err.reshape(len(x), len(y)).T, origin="lower", extent=[x[0], x[-1], y[0], y[-1]],
                   cmap="magma", vmin=0, vmax=top, aspect="auto")
    ax.set_title(f"|error|, {balancer}: rel L2 {runs[balancer].metrics['rel_l2']:.2e}")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    fig.colorbar(im, ax=ax)
for balancer, run in runs.items():
    rows = [r for r in run.history if r["rel_l2"] is not None]
    axes[2].semilogy([r["step"] for r in rows], [r["rel_l2"] for r in rows], marker="o", label=balancer)
axes[2].set_xlabel("step (Adam, then L-BFGS)")
axes[2].set_ylabel("relative L2 error")
axes[2].grid(alpha=0.3, which="both")
axes[2].legend()
fig.suptitle("Helmholtz 2D (a1 = 1, a2 = 4): fixed weights vs learning-rate annealing, seed 0")
args.out.mkdir(parents=True, exist_ok=True)
fig.savefig(args.out / "fixed_vs_lra.png", dpi=110)
print("images in", args.out)
