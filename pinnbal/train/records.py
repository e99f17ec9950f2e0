"""What a run records about itself: the checkpoint a resume continues from (:func:`snapshot`,
:func:`restore`), the final metrics (:func:`result`) and the configuration (:func:`config_record`)."""

from __future__ import annotations

import math
import platform
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import torch

from ..batches import Batches, evaluate_terms
from ..nets import routed
from ..version import __version__
from .stages import evaluations, make_optimizer
from .trainer import Run, Trainer


def snapshot(trainer: Trainer) -> dict[str, Any]:
    """Everything needed to continue exactly: weights_only-loadable tensors, numbers, strings."""
    return {
        "model": trainer.model.state_dict(),
        "adam": trainer.adam.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "lbfgs": None if trainer.lbfgs is None else trainer.lbfgs.state_dict(),
        "lbfgs_multipliers": trainer.frozen,
        "balancer": dict(trainer.state),
        "batches": [None if x is None else x.detach() for _, x, _ in trainer.batches.items],
        "batch_values": [v for _, _, v in trainer.batches.items],  # a window's start values come from its model
        "window": {"index": trainer.window, "step_offset": trainer.step_offset, "started": trainer.window_started},
        "sampler_rng": trainer.batches.rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "history": trainer.history,
        "counters": {"next_step": trainer.next_step, "lbfgs_done": trainer.lbfgs_done, "next_eval": trainer.next_eval,
                     "lbfgs_previous": trainer.lbfgs_previous, "train_seconds": trainer.train_seconds,
                     "wall_seconds": trainer.wall_seconds, "failures": trainer.failures, "events": trainer.events},
        "early_stop": trainer.early.state(),
        "jacobian": {"strategy": trainer.jacobian.strategy, "timings": trainer.jacobian.timings},
    }


def restore(trainer: Trainer, saved: dict[str, Any]) -> None:
    """Put ``trainer`` where :func:`snapshot` found it: the second stage's precision first, so nothing is rounded."""
    window = saved.get("window", {"index": 0})
    if window["index"]:  # --time-windows: that window's problem and batches first (its values restored below)
        trainer.enter_window(window["index"], warm=False)
        trainer.step_offset, trainer.window_started = window["step_offset"], window["started"]
    saved_dtype = next(v.dtype for v in saved["model"].values() if v.is_floating_point())
    if saved["lbfgs"] is not None or saved_dtype != trainer.dtype:  # a float64 stage (or window) first: no rounding
        trainer.switch_precision()
    trainer.model.load_state_dict(saved["model"])
    trainer.adam.load_state_dict(saved["adam"])
    trainer.scheduler.load_state_dict(saved["scheduler"])
    if saved["lbfgs"] is not None:
        trainer.lbfgs = make_optimizer(trainer.stage, trainer.params, trainer.config.log_every)
        trainer.lbfgs.load_state_dict(saved["lbfgs"])
        trainer.frozen = saved.get("lbfgs_multipliers")
    trainer.state = dict(saved["balancer"])
    values = saved.get("batch_values") or [v for _, _, v in trainer.batches.items]
    trainer.batches.items = [(t, None if x is None or t.shares else
                           x.to(trainer.device).requires_grad_(trainer.batches.needs_grad(t)),
                           None if v is None else v.to(trainer.device))
                          for (t, _, _), x, v in zip(trainer.batches.items, saved["batches"], values)]
    trainer.batches.relink()
    trainer.batches.rng.bit_generator.state = saved["sampler_rng"]
    torch.set_rng_state(saved["torch_rng"])
    trainer.history = list(saved["history"])
    for name, value in saved["counters"].items():
        setattr(trainer, name, value)
    trainer.early.load(saved["early_stop"])
    trainer.jacobian.strategy = saved["jacobian"]["strategy"]
    trainer.jacobian.timings = dict(saved["jacobian"]["timings"])


def ms_per_step(trainer, steps: int) -> float:
    """Training ms per step over ``steps`` steps, the first compiled step (the compile, ``compile_s``) and the
    second stage's compile (``stage_compile_s``) apart."""
    compiled = trainer.compile_s is not None
    compiling = (trainer.compile_s or 0.0) + (trainer.stage_compile_s or 0.0)
    return 1000 * (trainer.train_seconds - compiling) / max(steps - compiled, 1)


def validation_losses(trainer: Trainer) -> dict[str, float | None]:
    """Each term's mean loss of the final model on fresh points of the whole problem: collocation, boundary and
    initial points from the validation stream (a seed of their own), and the ``--holdout`` observations (without
    a holdout, the training observations).  Never the reference: a number to choose settings by (the Burgers
    recipe's redraw interval was chosen by it).  Under ``--time-windows`` every point is routed to its window
    (derivatives by autograd there)."""
    problem, config = trainer.full_problem, trainer.config
    if config.time_windows > 1:  # the forward engine takes one window's network at a time; routed, autograd
        config = replace(config, derivatives="autograd")
    batches = Batches(problem, config, trainer.device, trainer.dtype, part="validation",
                      holdout=trainer.batches.holdout)
    mode = trainer.model.training
    trainer.model.eval()
    with routed(trainer.model.network):
        losses = evaluate_terms(trainer.model, batches).means.double().cpu().tolist()
    trainer.model.train(mode)
    return {t.name: v if math.isfinite(v) else None for t, v in zip(problem.terms, losses)}


def result(trainer: Trainer, wall: float) -> Run:
    """The run as it stands: history, model and the metrics ``metrics.json`` records."""
    last = trainer.history[-1] if trainer.history else {}
    rel, per = trainer.rel_l2() if trainer.eval_v is not None else (None, None)
    steps_run = trainer.step_offset + trainer.next_step + trainer.lbfgs_done
    metrics = {
        "problem": trainer.problem.name,
        "balancer": trainer.balancer.name,
        "balancer_spec": trainer.balancer.spec,
        "seed": trainer.config.seed,
        "status": trainer.status,
        "steps": steps_run,
        "adam_steps": trainer.next_step,  # of the last time window under --time-windows
        "lbfgs_iterations": trainer.lbfgs_done,
        "second_stage_evaluations": evaluations(trainer.lbfgs),  # loss-and-gradient evaluations of its line searches
        "time_windows": trainer.config.time_windows,
        "wall_s": round(wall, 3),
        "train_s": round(trainer.train_seconds, 3),
        "ms_per_step": round(ms_per_step(trainer, steps_run), 3),
        "compile_s": None if trainer.compile_s is None else round(trainer.compile_s, 3),
        "stage_compile_s": None if trainer.stage_compile_s is None else round(trainer.stage_compile_s, 3),
        "rel_l2": rel,
        "rel_l2_per_output": per,
        "final_loss": last.get("loss"),
        "final_losses": {t.name: last.get(f"loss/{t.name}") for t in trainer.terms},
        "final_weights": {t.name: last.get(f"weight/{t.name}") for t in trainer.terms},
        "validation_losses": validation_losses(trainer),
        "unknowns": {k: float(v.detach()) for k, v in trainer.model.unknowns.items()},
        "jacobian_strategy": trainer.jacobian.strategy if trainer.jacobian.timings or trainer.jacobian.strategy != "auto"
        else None,
        "jacobian_timings_ms": {k: round(1000 * v, 3) for k, v in trainer.jacobian.timings.items()},
        "device": str(trainer.device),
        "events": trainer.events,
    }
    return Run(trainer.full_problem, trainer.model, trainer.config, trainer.balancer.spec, trainer.history, metrics)


def config_record(trainer: Trainer) -> dict[str, Any]:
    """Everything ``config.json`` records to reproduce the run."""
    return {
        "problem": trainer.problem.name,
        "problem_path": trainer.problem_path,
        "balancer": trainer.balancer.spec,
        "terms": [asdict(t) for t in trainer.terms],
        "holdout_used": trainer.batches.holdout,  # --holdout, or more where a validation balancer needs it
        "train": asdict(trainer.config),
        "versions": {"pinnbal": __version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "machine": platform.platform(),
    }
