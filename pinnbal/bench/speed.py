"""``pinnbal bench speed``: what each balancer costs per step, measured, not assumed.

For one problem (default Burgers) every balancer trains ``steps`` Adam steps
in this process, one after another (never in parallel: on a small CPU two
torch processes slow each other many-fold), after an untimed warm-up run.
The table gives ms per step, the ratio to ``fixed`` measured in the same
sweep, and, for the per-term Jacobian, one K × P Jacobian by the loop of K
backward passes against one vmapped pass on the same graph.  A problem
whose terms share points (``points="momentum_x"``) is also timed with every
term on points of its own, same counts, rounds alternating.  The machine,
versions and the exact command go with the table.
"""

from __future__ import annotations

import copy
import platform
import time
from pathlib import Path

import numpy as np
import torch

from ..balancers import BALANCERS, make_balancer
from ..batches import evaluate_terms
from ..jacobian import jacobian_batched, jacobian_loop, sync
from ..loader import load_problem
from ..problem import Problem
from ..train import TrainConfig, Trainer
from ..workflow import train


def balancer_speed(problem_path: str, balancers: list[str], steps: int, settings: dict,
                   rounds: int = 1, compiled: bool = False) -> list[dict]:
    """ms/step of each balancer over ``steps`` Adam steps (no L-BFGS), with the ratio to ``fixed``; with
    ``compiled`` also under ``--compile on`` (``compiled_ms``, ``compiled_ratio`` to compiled ``fixed``; None
    where the run trained uncompiled, its compile apart).

    Each balancer is timed ``rounds`` times, the order rotating between
    rounds, and keeps its fastest round: interference from other work on the
    machine only ever adds time, so the minimum is the least disturbed.
    """
    problem = load_problem(problem_path)
    for spec in balancers:  # bad specs fail before anything is timed
        make_balancer(spec)
    train(problem, "fixed", steps=min(steps, 20), lbfgs=0, **settings)  # warm-up: allocations, caches
    modes = {"ms_per_step": "off", "compiled_ms": "on"} if compiled else {"ms_per_step": "off"}
    best = {(spec, key): float("inf") for spec in balancers for key in modes}
    for r in range(rounds):
        for spec in balancers[r % len(balancers):] + balancers[: r % len(balancers)]:
            for key, mode in modes.items():
                if best[spec, key] is None:
                    continue
                run = train(problem, spec, steps=steps, lbfgs=0, eval_every=10**9, compile=mode, **settings)
                uncompiled = mode == "on" and run.metrics["compile_s"] is None
                best[spec, key] = None if uncompiled else min(best[spec, key], run.metrics["ms_per_step"])
    rows = []
    for spec in balancers:
        row = {"balancer": spec}
        for key, ratio in (("ms_per_step", "ratio"), ("compiled_ms", "compiled_ratio")):
            if key in modes:
                base, ms = best.get(("fixed", key)), best[spec, key]
                row |= {key: ms, ratio: None if base is None or ms is None else ms / base}
        rows.append(row)
    return rows


def fastest(variants: dict[str, tuple[Problem, dict]], steps: int, settings: dict,
            rounds: int) -> tuple[dict[str, float | None], list[float]]:
    """ms/step of ``fixed`` for each variant (its problem and its own training options), the fastest of
    ``rounds``, the variants rotating within each round; and the compile times seen.  A variant under
    ``--compile on`` that fell back to eager has no compiled time to show: None, and it is not run again."""
    names = list(variants)
    best: dict[str, float | None] = {name: float("inf") for name in names}
    compile_s: list[float] = []
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            if best[name] is None:
                continue
            problem, options = variants[name]
            run = train(problem, "fixed", steps=steps, lbfgs=0, eval_every=10**9, **options, **settings)
            if options.get("compile") == "on" and run.metrics["compile_s"] is None:
                best[name] = None
                continue
            best[name] = min(best[name], run.metrics["ms_per_step"])
            compile_s += [run.metrics["compile_s"]] if run.metrics["compile_s"] is not None else []
    return best, compile_s


def sharing_speed(problem_path: str, steps: int, settings: dict, rounds: int = 1,
                  compiled: bool = False) -> dict[str, float | None] | None:
    """ms/step of ``fixed`` with the problem's terms sharing their batches as written, and with every term on
    points of its own (same counts), and with ``compiled`` both again under ``--compile on`` ("shared compiled",
    "separate compiled"; None where the run fell back to eager); :func:`fastest` of ``rounds``.  None when no
    term shares points."""
    shared = load_problem(problem_path)
    if not any(t.shares for t in shared.terms):
        return None
    problems = {"shared": shared, "separate": separate_points(shared)}
    variants = {name: (problem, {"compile": "off"}) for name, problem in problems.items()}
    if compiled:
        variants |= {f"{name} compiled": (problem, {"compile": "on"}) for name, problem in problems.items()}
    return fastest(variants, steps, settings, rounds)[0]


#: the ways a step can be computed: (--derivatives, --compile)
ENGINES = {"autograd": ("autograd", "off"), "forward": ("forward", "off"), "compiled": ("forward", "on")}


def derivative_speed(problem_paths: list[str], steps: int, settings: dict, rounds: int = 1,
                     compiled: bool = False) -> list[dict]:
    """ms/step of ``fixed`` on each problem with its derivatives by nested autograd and carried forward
    (:mod:`pinnbal.forward`), and with ``compiled`` also forward under ``--compile on`` (its compile time
    apart); :func:`fastest` of ``rounds``."""
    rows = []
    for path in problem_paths:
        problem = load_problem(path)
        names = list(ENGINES) if compiled else ["autograd", "forward"]
        variants = {name: (problem, {"derivatives": ENGINES[name][0], "compile": ENGINES[name][1]}) for name in names}
        best, compile_s = fastest(variants, steps, settings, rounds)
        rows.append({"problem": Path(path).stem, **best, "compile_s": max(compile_s) if compile_s else None})
    return rows


def compiled_sharing(sharing: dict) -> str:
    """The compiled half of the sharing sentence ('' when not timed compiled)."""
    if "shared compiled" not in sharing:
        return ""
    shared, separate = sharing["shared compiled"], sharing["separate compiled"]
    if shared is None or separate is None:
        return "; under `--compile on`: – (a run fell back to eager)"
    return (f"; under `--compile on` {shared:.2f} and {separate:.2f} ms/step ({separate / shared:.2f}×; "
            f"{sharing['separate'] / shared:.2f}× against eager separate points)")


def separate_points(problem: Problem) -> Problem:
    """``problem`` with every term drawing points of its own (the counts of the term it shared with)."""
    own = copy.copy(problem)
    own.terms = [copy.copy(t) for t in problem.terms]
    for term in own.terms:
        term.shares = None
    return own


def jacobian_speed(problem_path: str, repeats: int, settings: dict) -> dict[str, float]:
    """Median ms of one K × P Jacobian by each strategy, on the problem's first training graph."""
    problem = load_problem(problem_path)
    trainer = Trainer(problem, "fixed", TrainConfig(steps=1, lbfgs=0, **settings))
    timings: dict[str, list[float]] = {"loop": [], "batched": []}
    for _ in range(repeats):
        for name, fn in (("loop", jacobian_loop), ("batched", jacobian_batched)):
            losses = evaluate_terms(trainer.model, trainer.batches).terms  # K scalars, as training hands them
            sync(trainer.device)
            start = time.perf_counter()
            fn(losses, trainer.params)
            sync(trainer.device)
            timings[name].append(1000 * (time.perf_counter() - start))
    return {name: float(np.median(v)) for name, v in timings.items()}


def number(value: float | None) -> str:
    """A table cell: two decimals, or – for none."""
    return "–" if value is None else f"{value:.2f}"


def machine() -> str:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    return f"{platform.processor() or platform.machine()}, {device}, torch {torch.__version__}, " \
           f"python {platform.python_version()}"


def speed_report(problem_path: str, balancers: list[str] | None, steps: int, repeats: int, command: str,
                 settings: dict, rounds: int = 1, derivative_problems: list[str] | None = None,
                 compiled: bool = False) -> str:
    """The Markdown report of ``pinnbal bench speed``."""
    names = balancers or [n for n in BALANCERS]
    rows = balancer_speed(problem_path, names, steps, settings, rounds, compiled)
    jac = jacobian_speed(problem_path, repeats, settings)
    lines = [f"# Balancer speed on {Path(problem_path).name}", "",
             f"Command: `{command}`  ", f"Machine: {machine()}  ",
             f"Budget: {steps} Adam steps per balancer, no L-BFGS, fastest of {rounds} round(s); network "
             f"{settings.get('depth', TrainConfig.depth)} x {settings.get('width', TrainConfig.width)}"
             + ("; compiled: under `--compile on`, its first step apart, – where the balancer trains uncompiled"
                if compiled else "") + ".", "",
             "| balancer | ms / step | × fixed |" + (" compiled ms / step | × fixed compiled |" if compiled else ""),
             "| --- | --- | --- |" + (" --- | --- |" if compiled else "")]
    lines += [f"| {r['balancer']} | {r['ms_per_step']:.2f} | {number(r['ratio'])} |"
              + (f" {number(r['compiled_ms'])} | {number(r['compiled_ratio'])} |" if compiled else "") for r in rows]
    lines += ["", "One per-term Jacobian (K × P) on the same graph, median of "
              f"{repeats}: loop of K backward passes {jac['loop']:.1f} ms, one vmapped pass {jac['batched']:.1f} ms.",
              ""]
    engines = derivative_speed([problem_path], steps, settings, rounds, compiled=compiled)
    engines += derivative_speed([p for p in derivative_problems or [] if Path(p).resolve() != Path(problem_path).resolve()],
                                steps, settings, rounds, compiled=compiled)
    lines += [f"Derivatives (`fixed`, fastest of {rounds} round(s), the engines rotating): nested autograd against "
              f"carried forward through the layers (`--derivatives`)"
              + (", and forward under `--compile on` (its first step apart: compile s, the longest over the rounds; "
                 "– where the run fell back to eager)" if compiled else "") + ".", "",
              "| problem | autograd ms / step | forward ms / step | × autograd | forward + compile ms / step | "
              "× autograd | compile s |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in engines:
        fast = r.get("compiled")
        lines.append(f"| {r['problem']} | {r['autograd']:.2f} | {r['forward']:.2f} | {r['autograd'] / r['forward']:.2f} | "
                     + ("– | – | – |" if fast is None else
                        f"{fast:.2f} | {r['autograd'] / fast:.2f} | {r['compile_s']:.1f} |"))
    lines.append("")
    sharing = sharing_speed(problem_path, steps, settings, rounds, compiled=compiled)
    if sharing is not None:
        lines += [f"Terms sharing points (`fixed`, fastest of {rounds} round(s)): {sharing['shared']:.2f} ms/step as "
                  f"written, {sharing['separate']:.2f} ms/step with every term on points of its own "
                  f"({sharing['separate'] / sharing['shared']:.2f}×)" + compiled_sharing(sharing) + ".", ""]
    return "\n".join(lines)
