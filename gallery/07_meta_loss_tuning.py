"""
Meta-gradient loss tuning: outliers, schedules and what it costs
================================================================

The ``meta`` balancer (seed 003, issue 4) trains the parameters φ of the loss
L_φ while the network trains: every ``k`` steps it unrolls ``T``
differentiable training steps from the current network, scores the result on
held-out points (fresh collocation and boundary points, held-out
observations) and moves φ along the gradient of that score.  φ is either one
log-weight per term (``param=weights``), a per-term polynomial shape of the
pointwise loss, c₁|r| + c₂r² + c₃|r|³ in units of the term's typical residual
(``param=poly``), or a small monotone network of the residual
(``param=net``).  ``meta_lr=0`` freezes φ at its start, the plain loss: the
seed's §4.4.1 ablation.

This script reproduces the measurements issue 4 asks for, with
:func:`pinnbal.compare` (every run a run directory, three seeds each):

1. noisy data (seed §4.6): the inverse heat problem with 30% of its
   observations replaced by gross outliers; does a meta-learned loss recover
   the field and the diffusivity κ better than the plain mean-squared data
   term?
2. a hand schedule against the meta-learned one (seed §4.4.2), and against
   ``fixed`` and ``lra``, on the stiff Helmholtz problem;
3. φ over training (seed §4.5);
4. the cost: milliseconds per step and peak memory against the unroll
   length T.

The tables go to stdout and to ``results.md`` next to the images.
"""

# %%
# Budget
# ------
# Part 1: 1500 Adam steps and 300 L-BFGS iterations per run, 6 balancers ×
# 3 seeds; part 2: 500 Adam steps and 500 L-BFGS iterations, 5 balancers × 3
# seeds; part 4: 100 Adam steps per variant, the fastest of 2 rounds.  About
# 18 minutes (6.5 + 7 + 4) on one core of a shared two-core machine, one
# training process at a time; see gallery/README.md for why one core.
# ``--quick`` trains a few steps of a tiny network, one seed: it checks that
# the script runs, not what it finds.  Running the script again reuses the
# finished runs under ``--runs`` (``pinnbal.compare`` skips them).
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import pinnbal as pb
from pinnbal.compare import compare
from pinnbal.compare.figures import pyplot
from pinnbal.rundir import read_run

from _common import REPO, keep, options, problem_file, report

FULL = dict(seeds=3, noisy=dict(steps=1500, lbfgs=300, eval_every=100, then="lbfgs:dtype=float32"),
            helmholtz=dict(steps=500, lbfgs=500, eval_every=50, then="lbfgs:dtype=float32"),
            overhead=dict(steps=100, rounds=2))  # float32 L-BFGS: as gallery/README.md's figures were made
QUICK = dict(seeds=1, noisy=dict(steps=4, lbfgs=2, eval_every=2, width=8, depth=1, log_every=1),
             helmholtz=dict(steps=4, lbfgs=2, eval_every=2, width=8, depth=1, log_every=1),
             overhead=dict(steps=3, rounds=1, width=8, depth=1))
args = options(__file__, __doc__, full=FULL, quick=QUICK)
load_before = os.getloadavg()
results = [f"# 07: meta-gradient loss tuning{' (--quick: a smoke test, not results)' if args.quick else ''}", "",
           f"Made by: `python gallery/07_meta_loss_tuning.py{' --quick' if args.quick else ''}`; "
           f"budget {json.dumps(args.budget)}; {os.cpu_count()} CPUs visible, "
           f"{len(os.sched_getaffinity(0))} usable; torch {torch.__version__}, {platform.machine()}; load "
           f"average at the start {load_before[0]:.1f}.", ""]


def show(text: str) -> None:
    """Print ``text`` and keep it for results.md."""
    print(text)
    results.extend([text, ""])


def sweep(name: str, problem: str, balancers: list[str], seeds: int, **settings):
    """One pinnbal.compare sweep (one run at a time) and its runs read back, by balancer spec."""
    started = time.perf_counter()
    comparison = compare([problem_file(problem)], balancers, seeds=seeds, out=args.runs / name, jobs=1,
                            progress=not args.quick, **settings)
    runs = {spec: [] for spec in balancers}
    for job in comparison.sweep.jobs:
        if (job.out / "metrics.json").is_file():
            runs[job.entry.spec].append(read_run(job.out))
    folder = comparison.sweep.out / problem  # the problem files here are named like their problems
    line = (f"{name}: {len(comparison.sweep.jobs)} runs ({len(comparison.skipped)} found finished, not trained "
            f"again) in {time.perf_counter() - started:.0f} s, {comparison.threads} torch thread(s); "
            f"summary {folder / 'summary.md'}")
    print(line)
    results.extend([line.replace(str(REPO) + "/", ""), ""])
    return runs, folder


def stats(values) -> str:
    """median [min, max] of the values that exist."""
    a = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if not a.size:
        return "–"
    return f"{np.median(a):.3g}" if a.size == 1 else f"{np.median(a):.3g} [{a.min():.3g}, {a.max():.3g}]"


def completed(runs):
    return [r for r in runs if r.metrics.get("status") == "completed"]


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


# %%
# 1. Noisy observations (seed §4.6)
# ---------------------------------
# ``problems/heat_inverse_noisy.py`` is the inverse heat problem of example 4
# (u_t = κ u_xx, κ unknown, true 0.1, starting at 0.5) with 60 of its 200
# observations replaced by their value plus N(0, 0.5²) noise.  ``meta``
# keeps 20% of the observations out of training for its validation
# objective; ``holdout=0.2`` gives *every* balancer the same split, so the
# baselines train on the same 160 observations.  The held-out 40 are drawn
# from the same corrupted set: the validation signal has outliers too.
#
# The balancers: ``fixed`` (the plain mean-squared data term); ``meta`` with
# per-term weights, with the polynomial shape (which could learn an |r|-like,
# outlier-tolerant data loss), the same with φ frozen (``meta_lr=0``: the
# §4.4.1 ablation, bit for bit the ``fixed`` training at meta's cost), with
# the monotone network shape (which can saturate), and the polynomial shape
# scored on the held-out observations only (``validate=data``).
NOISY = ["fixed", "meta:param=weights", "meta:param=poly", "meta:param=poly,meta_lr=0", "meta:param=net",
         "meta:param=poly,validate=data"]
noisy, noisy_folder = sweep("noisy", "heat_inverse_noisy", NOISY, args.budget["seeds"], holdout=0.2,
                            **args.budget["noisy"])
KAPPA = 0.1
rows = []
for spec, runs in noisy.items():
    done = completed(runs)
    kappas = [r.metrics["unknowns"]["kappa"] for r in done]
    rows.append([f"`{spec}`", f"{len(done)}/{len(runs)}", stats([r.metrics["rel_l2"] for r in done]),
                 stats(kappas), stats([abs(k - KAPPA) for k in kappas]),
                 stats([r.metrics["ms_per_step"] for r in done])])
show("Part 1: heat_inverse_noisy (30% gross outliers), holdout=0.2 for all; median [min, max] over seeds")
show(table(["balancer", "runs", "rel L2 of u", "κ (true 0.1)", "abs(κ − 0.1)", "ms/step"], rows))

# %%
# One figure: each seed's error and κ per balancer (median as a bar).
plt = pyplot()
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
for i, (spec, runs) in enumerate(noisy.items()):
    done = completed(runs)
    for ax, values in ((axes[0], [r.metrics["rel_l2"] for r in done]),
                       (axes[1], [r.metrics["unknowns"]["kappa"] for r in done])):
        if values:
            ax.plot([i] * len(values), values, "o", color=f"C{i}", alpha=0.7)
            ax.plot([i - 0.25, i + 0.25], [np.median(values)] * 2, color=f"C{i}", lw=2.5)
axes[0].set(yscale="log", ylabel="relative L2 error of u", title="field error")
axes[1].axhline(KAPPA, color="k", ls=":", lw=1)
axes[1].text(len(NOISY) - 0.5, KAPPA, "true κ", va="bottom", ha="right", fontsize=8)
axes[1].set(ylabel="recovered κ", title="diffusivity")
for ax in axes:
    ax.set_xticks(range(len(NOISY)), [s.replace("meta:", "meta:\n").replace(",", ",\n") for s in NOISY],
                  fontsize=7)
    ax.grid(alpha=0.3, axis="y", which="both")
fig.suptitle("heat_inverse_noisy: 30% outliers, one dot per seed")
fig.tight_layout()
noisy_png = args.out / "noisy.png"
fig.savefig(noisy_png, dpi=110)
plt.close(fig)

# %%
# 2. A hand schedule against the meta-learned one (seed §4.4.2)
# -------------------------------------------------------------
# Helmholtz with a1 = 1, a2 = 4 (example 2): equal weights fail because the
# residual's gradients drown the boundary's.  The hand schedule ramps the
# boundary weight linearly from 1 to 100 over the Adam phase
# (``schedule:walls=1>100``; 100 is of the order of what ``lra`` settles on,
# so it is an informed guess, not a tuned one).  ``meta:param=weights`` runs
# with its defaults (k=50, T=3, meta_lr=0.05); with 500 Adam steps that is
# 10 outer steps, so a second row gives it 5 times the outer steps, 4 times
# the meta learning rate and no early stopping
# (``k=10,meta_lr=0.2,patience=0``).
HELMHOLTZ = ["fixed", "lra", "schedule:walls=1>100", "meta:param=weights",
             "meta:param=weights,k=10,meta_lr=0.2,patience=0"]
helm, helm_folder = sweep("helmholtz", "helmholtz2d", HELMHOLTZ, args.budget["seeds"],
                          **args.budget["helmholtz"])


def last(run, key):
    return next((r[key] for r in reversed(run.history) if r.get(key) is not None), None)


rows = []
for spec, runs in helm.items():
    done = completed(runs)
    ratio = [last(r, "weight/walls") / last(r, "weight/pde") for r in done]
    rows.append([f"`{spec}`", f"{len(done)}/{len(runs)}", stats([r.metrics["rel_l2"] for r in done]),
                 stats(ratio), stats([r.metrics["ms_per_step"] for r in done])])
show("Part 2: helmholtz2d; median [min, max] over seeds; w_walls / w_pde at the end of training")
show(table(["balancer", "runs", "rel L2", "w_walls / w_pde", "ms/step"], rows))

# %%
# 3. φ over training (seed §4.5)
# ------------------------------
# Seed 0 of four meta runs.  Top: on the noisy inverse problem, the
# effective multiplier of each term (for ``weights`` the weight itself; for
# ``poly`` the learned slope of the loss shape, ℓ-weighted, times the weight)
# and the data term's polynomial coefficients.  Bottom left: the validation
# loss of each term relative to its value at the first outer step, the
# signal meta follows.  Bottom right: on Helmholtz, the boundary-to-residual
# weight ratio of the hand schedule, ``lra`` and both meta runs.  Flat lines
# after a while mean early stopping of φ (back to the best φ, frozen).


def first(runs):
    return (runs or [None])[0]


fig, axes = plt.subplots(2, 2, figsize=(12, 8))
styles = {"pde": "-", "walls": "--", "obs": "-."}
META = (("meta:param=weights", "C0"), ("meta:param=poly", "C1"), ("meta:param=net", "C2"))
for spec, color in META:
    run = first(noisy[spec])
    if run is None:
        continue
    for term, style in styles.items():
        rows_ = [(r["step"], r[f"effective/{term}"]) for r in run.history if r.get(f"effective/{term}") is not None]
        if rows_:
            s, v = zip(*rows_)
            axes[0, 0].plot(s, v, ls=style, color=color, label=f"{spec.split(':')[1]}: {term}")
axes[0, 0].set(title="noisy heat: effective multiplier per term", xlabel="step", ylabel="effective weight")
for spec, color in (("meta:param=poly", "C1"), ("meta:param=poly,validate=data", "C4")):
    run = first(noisy[spec])
    if run is None:
        continue
    for j, style in ((1, ":"), (2, "-"), (3, "--")):
        rows_ = [(r["step"], r[f"coef{j}/obs"]) for r in run.history if r.get(f"coef{j}/obs") is not None]
        if rows_:
            s, v = zip(*rows_)
            axes[0, 1].plot(s, v, ls=style, color=color, label=f"{spec.split(':')[1]}: c{j}")
axes[0, 1].set(title="noisy heat: poly coefficients of the data term (c2 = 1: plain mse)", xlabel="step",
               ylabel="coefficient")
for spec, color in META:
    run = first(noisy[spec])
    if run is None:
        continue
    for term, style in styles.items():
        rows_ = [(r["step"], r[f"val_rel/{term}"]) for r in run.history if r.get(f"val_rel/{term}") is not None]
        if rows_:
            s, v = zip(*rows_)
            axes[1, 0].plot(s, v, ls=style, color=color, label=f"{spec.split(':')[1]}: {term}")
axes[1, 0].set(title="noisy heat: validation loss / its first value", xlabel="step", ylabel="val_rel", yscale="log")
for i, spec in enumerate(HELMHOLTZ[1:]):
    run = first(helm[spec])
    if run is None:
        continue
    rows_ = [(r["step"], r["weight/walls"] / r["weight/pde"]) for r in run.history
             if r.get("weight/walls") is not None and r.get("weight/pde")]
    if rows_:
        s, v = zip(*rows_)
        axes[1, 1].plot(s, v, color=f"C{i + 1}", label=spec)
axes[1, 1].set(title="Helmholtz: w_walls / w_pde", xlabel="step", ylabel="weight ratio", yscale="log")
for ax in axes.flat:
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    steps = args.budget["noisy" if ax is not axes[1, 1] else "helmholtz"]["steps"]
    ax.axvline(steps, color="grey", ls="--", lw=0.8)  # L-BFGS starts: φ and the weights stay as they are
fig.suptitle("φ over training (seed 0); dashed: L-BFGS starts")
fig.tight_layout()
phi_png = args.out / "phi.png"
fig.savefig(phi_png, dpi=110)
plt.close(fig)

# %%
# 4. Overhead against the unroll length T
# ---------------------------------------
# ``fixed`` and ``meta:param=weights`` with k=50 and T = 1, 3, 5: the
# defaults, two outer steps in 100 steps, so the overhead is diluted and
# within the noise of a shared machine; then the same with k=1 (an outer
# step every step, early stopping of φ off so that every step pays), which
# measures one outer step undiluted.  Adam only, on Helmholtz.  Each variant
# trains in its own Python process so that its peak resident memory
# (``VmHWM``) is its own; the rounds alternate the variants and the fastest
# round counts.  The torch thread count is the one ``pinnbal.compare`` used
# above (all usable CPUs).
OVERHEAD = ["fixed", "meta:param=weights,k=50,T=1", "meta:param=weights,k=50,T=3", "meta:param=weights,k=50,T=5",
            "meta:param=weights,k=1,T=1,patience=0", "meta:param=weights,k=1,T=3,patience=0",
            "meta:param=weights,k=1,T=5,patience=0"]
CHILD = """
import json, sys, torch
import pinnbal as pb
from pinnbal.compare import compare
torch.set_num_threads(int(sys.argv[3]))
settings = json.loads(sys.argv[4])
run = pb.train(sys.argv[1], sys.argv[2], lbfgs=0, seed=0, render=False, eval_every=10**6, **settings)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"ms_per_step": run.metrics["ms_per_step"], "peak_mib": peak / 1024}))
"""
over = dict(args.budget["overhead"])
rounds = over.pop("rounds")
threads = len(os.sched_getaffinity(0))
measured = {spec: [] for spec in OVERHEAD}
for _ in range(rounds):
    for spec in OVERHEAD:
        out = subprocess.run([sys.executable, "-c", CHILD, str(problem_file("helmholtz2d")), spec, str(threads),
                              json.dumps(over)], capture_output=True, text=True, check=True)
        measured[spec].append(json.loads(out.stdout.strip().splitlines()[-1]))
base = min(m["ms_per_step"] for m in measured["fixed"])
base_mem = max(m["peak_mib"] for m in measured["fixed"])
rows = []
for spec, ms in measured.items():
    fastest = min(m["ms_per_step"] for m in ms)
    peak = max(m["peak_mib"] for m in ms)
    k = int(spec.partition("k=")[2].split(",")[0] or 0)
    outer = -(-over["steps"] // k) if k else 0  # outer steps at every step divisible by k
    cost = f"{(fastest - base) * over['steps'] / outer / base:.1f}" if outer else "–"
    rows.append([f"`{spec}`", f"{fastest:.1f}", f"{fastest / base:.2f}×", str(outer), cost, f"{peak:.0f}",
                 f"{peak - base_mem:+.0f}"])
show(f"Part 4: overhead on helmholtz2d, {over['steps']} Adam steps, {threads} torch thread(s), fastest of "
     f"{rounds} round(s); one outer step's cost in fixed steps = (ms/step − fixed's) × steps / outer steps / "
     f"fixed's ms/step; peak RSS of the whole Python process")
show(table(["balancer", "ms/step", "× fixed", "outer steps", "one outer step (fixed steps)", "peak RSS (MiB)",
            "vs fixed (MiB)"], rows))

# %%
# Files
# -----
# ``results.md`` holds the tables above; the images are the two figures
# drawn here and the comparison figure of part 2 from the sweep directory.
load_after = os.getloadavg()
shared = max(load_before[0], load_after[2]) > threads + 0.5  # more runnable work than this script's threads
results.append(f"Load average at the end {load_after[0]:.1f} (1 min), {load_after[2]:.1f} (15 min), against "
               f"{threads} torch thread(s) here: "
               f"{'the machine was shared with other work' if shared else 'no other load to speak of'}; "
               f"whole script {time.perf_counter() - args.started:.0f} s.")
# with --quick next to the run directories: the images folder holds images only (tests/test_gallery.py)
written = (args.runs if args.quick else args.out) / "results.md"
written.parent.mkdir(parents=True, exist_ok=True)
written.write_text("\n".join(results) + "\n")
images = [noisy_png, phi_png] + keep([helm_folder / "figures" / "error_vs_step.png"], args.out, prefix="helmholtz-")
report(args, [run for runs in (*noisy.values(), *helm.values()) for run in completed(runs)], images)
print(f"wrote {written}")
