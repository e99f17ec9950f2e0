"""
Comparing balancers across seeds
================================

One run per balancer says little: the same balancer can land an order of
magnitude apart from one seed to the next.  ``pinnbal.compare`` trains every
(balancer, seed) pair of a problem as an ordinary run directory, then
summarises them: a table (mean, spread and median of the final error, time
per step, steps to a target error) and four figures drawn from the run
directories alone.  This example compares fixed weights with three adaptive
balancers on the stiff Helmholtz problem of example 2
(``problems/helmholtz2d.py``, u = sin(pi x) sin(4 pi y)):

- ``fixed``: equal weights, the baseline that fails here;
- ``lra``: learning-rate annealing (Wang, Teng & Perdikaris 2021), from
  gradient magnitudes;
- ``gradnorm-eq``: grad-norm weights (Wang et al. 2023), from gradient norms;
- ``relobralo``: ReLoBRaLo (Bischof & Kraus 2021), from loss ratios alone.

The same sweep from the shell::

    pinnbal compare problems/helmholtz2d.py --balancers fixed,lra,gradnorm-eq,relobralo \\
        --seeds 3 --steps 1000 --lbfgs 1000 --jobs 1
"""

# %%
# Budget
# ------
# Three seeds per balancer, 1000 Adam steps and 1000 iterations of the
# default second stage (self-scaled BFGS in float64) per run, one run at a
# time (``jobs=1``: on two cores two runs side by side are no faster).
# Twelve runs, about two minutes each on one CPU core; ``--quick`` trains
# two seeds for a few steps.
import shutil
import time

from pinnbal.compare import compare

from _common import options, problem_file

FULL = dict(seeds=3, steps=1000, lbfgs=1000, eval_every=100)
QUICK = dict(seeds=2, steps=20, lbfgs=10, eval_every=10)
args = options(__file__, __doc__, full=FULL, quick=QUICK)

# %%
# The sweep
# ---------
# One call of ``pinnbal.compare.compare``.  Each run lands in ``<out>/helmholtz2d/<balancer>-s<seed>/``
# (``pinnbal render`` and friends work on it); ``summary.md`` and
# ``figures/`` sit beside them.  ``force=True`` trains every run again; leave
# it out and a rerun skips the runs already finished with these settings.
BALANCERS = ["fixed", "lra", "gradnorm-eq", "relobralo"]
result = compare([problem_file("helmholtz2d")], BALANCERS, out=args.runs, jobs=1, force=True, progress=False,
                 **args.budget)

# %%
# The summary table
# -----------------
# One row per balancer: the final relative L2 error over seeds (mean ± sample
# standard deviation, median in bold for the best, min and max), the final
# unweighted loss, the time per run and per step, the cost relative to
# ``fixed``, and the steps to reach rel L2 ≤ 1e-2 (median over seeds; in
# brackets how many seeds got there).  ``summary.md`` adds the budget, the
# machine and the command that reruns the sweep.
print(result.tables)
print(f"summary: {result.summary}")
for outcome in result.outcomes:
    job = outcome.job
    rel = "–" if outcome.rel_l2 is None else f"{outcome.rel_l2:.3e}"
    print(f"{job.problem} [{job.entry.spec}] seed {job.seed}: rel L2 {rel} ({outcome.status})")

# %%
# The figures
# -----------
# ``compare`` draws them into ``<out>/helmholtz2d/figures/``; we copy them
# here.
#
# - ``error_vs_step.png``: rel L2 against the step, median and min–max band
#   over seeds, with the target line;
# - ``weights.png``: the term weights of each balancer (median over seeds);
# - ``final_error.png``: the final rel L2, a box per balancer, one dot per seed;
# - ``error_maps.png``: |prediction − reference| of each balancer's median seed.
figures = sorted((result.summary.parent / "figures").glob("*.png"))
for figure in figures:
    target = args.out / figure.name
    shutil.copyfile(figure, target)
    print(f"wrote {target}")
print(f"{len(result.outcomes)} runs, {len(result.failed)} failed; total {time.perf_counter() - args.started:.1f} s")
