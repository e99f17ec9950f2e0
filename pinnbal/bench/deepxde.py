"""``pinnbal bench deepxde``: pinnbal and DeepXDE side by side on the same Burgers setup.

Both codes train the same thing in this one process, one after the other
(never in parallel: two torch workloads on a small CPU slow each other down):

- **the same points**: pinnbal draws each term's batch (problem file's point
  counts, its sampler, the seed) and DeepXDE gets exactly those: the residual
  points as ``anchors`` of a ``TimePDE`` with no points of its own, each
  boundary or initial term as a ``PointSetBC`` with the term's target values;
- **the same network and initial weights**: pinnbal's MLP (``width`` × ``depth``
  tanh, Glorot-normal weights, zero biases) is built and its weights copied
  into DeepXDE's ``FNN``, with pinnbal's input scaling to [−1, 1] as
  DeepXDE's feature transform;
- **the same loss**: the unweighted sum of the mean-squared term losses
  (pinnbal's ``fixed`` balancer with weight 1 for every term; DeepXDE's
  default), the same Burgers residual (checked on a few points before
  anything is timed);
- **the same optimiser**: Adam at one constant learning rate for ``steps``
  steps, then optionally ``lbfgs`` L-BFGS iterations (``torch.optim.LBFGS``,
  strong-Wolfe line search, history 50, zero tolerances, 4 function
  evaluations per iteration at most, for both);
- float32 on the CPU, ``torch.set_num_threads(threads)`` for both.

ms per Adam step is the mean over a run's steps of the optimiser step alone
(pinnbal's ``ms_per_step`` bookkeeping; DeepXDE's from a callback around each
step, leaving out the last step, the one that runs DeepXDE's test
evaluation), after an untimed 20-step warm-up of each code, fastest of
``rounds`` alternating rounds.  rel L2 is measured for both on the problem's
evaluation set (for Burgers the Cole–Hopf reference on Raissi's grid) by one
function.

DeepXDE is an optional extra (``pip install 'pinnbal[bench]'``); it is
imported with ``DDE_BACKEND=pytorch`` set in this process first.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import OptionError
from ..loader import load_problem
from ..nets import PINNModel
from ..problem import Problem
from ..train import TrainConfig, Trainer, fit
from ..train.records import ms_per_step
from ..version import __version__
from .speed import machine

INSTALL = "pinnbal bench deepxde needs DeepXDE: pip install 'pinnbal[bench]'"
#: The viscosity of problems/burgers.py, which the DeepXDE side's residual encodes.
NU = 0.01 / math.pi
WARMUP_STEPS = 20


def import_deepxde():
    """The ``deepxde`` module on its PyTorch backend, or an :class:`OptionError` saying how to install it.

    ``DDE_BACKEND=pytorch`` is set before the import (DeepXDE reads it then);
    DeepXDE's banner is swallowed (the report goes to stdout); DeepXDE makes
    CUDA torch's default device when it finds a GPU, which is undone: this
    benchmark is on the CPU.
    """
    os.environ["DDE_BACKEND"] = "pytorch"
    device = torch.get_default_device()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import deepxde
    except ImportError:
        raise OptionError(INSTALL) from None
    if torch.get_default_device() != device:
        # None, not "cpu": a default device other than None adds a torch-function mode to every torch call
        torch.set_default_device(None if device.type == "cpu" else device)
    if deepxde.backend.backend_name != "pytorch":
        raise OptionError(f"DeepXDE was imported with the {deepxde.backend.backend_name} backend before pinnbal "
                          f"could choose pytorch; run pinnbal bench deepxde in a fresh process")
    return deepxde


@dataclass
class Side:
    """One code's row of the report."""

    code: str
    version: str
    ms_per_step: float  # Adam, fastest round
    loss: float  # training loss after Adam (unweighted sum of the term losses)
    rel_l2_adam: float | None
    rel_l2_lbfgs: float | None = None
    compile_s: float | None = None  # pinnbal under --compile on: its first step, apart from ms_per_step


@dataclass
class Setup:
    """Everything both codes share: the problem, pinnbal's batches as arrays, the evaluation set."""

    problem: Problem
    config: TrainConfig
    residual: np.ndarray  # the residual term's points
    conditions: list[tuple[str, str, np.ndarray, np.ndarray]]  # (name, kind, points, target values)
    eval_x: np.ndarray
    eval_v: np.ndarray | None
    machine: str = ""  # bench.machine() while the benchmark's torch threads are set


class Zero(nn.Module):
    """A network that outputs zeros: a Dirichlet term's residual on it is minus its target values."""

    def __init__(self, outputs: int):
        super().__init__()
        self.outputs = outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Zeros of shape (N, outputs)."""
        return x.new_zeros(len(x), self.outputs)


def burgers_setup(problem_path: str, config: TrainConfig) -> Setup:
    """Load the problem, check that it is a Burgers setup DeepXDE can be given, and draw pinnbal's points."""
    problem = load_problem(problem_path)
    where = f"--problem {problem_path}"
    residuals = [t for t in problem.terms if t.kind == "residual"]
    others = [t for t in problem.terms if t.kind != "residual"]
    if (problem.domain.names != ["x", "t"] or problem.outputs != ["u"] or len(residuals) != 1
            or problem.transform is not None or problem.unknowns
            or any(t.kind not in ("boundary", "initial") or getattr(t, "value", None) is None for t in others)):
        raise OptionError(f"{where}: pinnbal bench deepxde needs the Burgers setup of problems/burgers.py (box x, t; "
                          f"output u; one residual term; Dirichlet boundary and initial terms)")
    trainer = Trainer(problem, "fixed", replace(config, steps=1, lbfgs=0))
    zero = PINNModel(problem, Zero(1)).double()
    residual, conditions = None, []
    for term, x, _ in trainer.batches.items:
        points = x.detach().double().cpu().numpy()
        if term.kind == "residual":
            residual = points
            continue
        xt = torch.as_tensor(points)
        target = -term.residual(zero.points(xt, where=f"term {term.name!r}"), None).detach().numpy()
        conditions.append((term.name, term.kind, points, target))
    eval_x, eval_v = problem.evaluation_set()
    return Setup(problem, config, residual, conditions, eval_x, eval_v)


#: pinnbal's rows, (name, --derivatives, --compile): its defaults (derivatives carried forward through the
#: network), nested autograd as DeepXDE takes them, and the forward derivatives with the loss compiled
ENGINES = (("pinnbal", "forward", "off"), ("pinnbal, autograd derivatives", "autograd", "off"),
           ("pinnbal, --compile on", "forward", "on"))


def pinnbal_trainer(setup: Setup, derivatives: str = "forward", compile: str = "off") -> Trainer:
    """A fresh pinnbal run of the setup: ``fixed`` weights of 1, constant learning rate, no L-BFGS yet."""
    weights = {t.name: 1.0 for t in setup.problem.terms}
    return Trainer(setup.problem, "fixed", replace(setup.config, lbfgs=0, weights=weights, derivatives=derivatives,
                                                   compile=compile))


def deepxde_model(dde, setup: Setup, trainer: Trainer):
    """The same setup as a compiled DeepXDE model, starting from ``trainer``'s initial weights."""
    import deepxde.geometry as geometry

    problem, config = setup.problem, setup.config
    (x_lo, t_lo), (x_hi, t_hi) = problem.domain.low, problem.domain.high
    domain = geometry.GeometryXTime(geometry.Interval(float(x_lo), float(x_hi)),
                                    geometry.TimeDomain(float(t_lo), float(t_hi)))

    def pde(x, u):
        """The Burgers residual u_t + u u_x - nu u_xx in DeepXDE's terms (columns x, t)."""
        u_x = dde.grad.jacobian(u, x, i=0, j=0)
        u_t = dde.grad.jacobian(u, x, i=0, j=1)
        u_xx = dde.grad.hessian(u, x, i=0, j=0)
        return u_t + u * u_x - NU * u_xx

    conditions = [dde.icbc.PointSetBC(points.astype(np.float32), target.astype(np.float32))
                  for _, _, points, target in setup.conditions]
    with contextlib.redirect_stdout(io.StringIO()):
        data = dde.data.TimePDE(domain, pde, conditions, num_domain=0, num_boundary=0, num_initial=0,
                                anchors=setup.residual.astype(np.float32))
        net = dde.nn.FNN([2] + [config.width] * config.depth + [1], config.activation, "Glorot normal")
        ours = [m for m in trainer.model.network.modules() if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for mine, theirs in zip(net.linears, ours, strict=True):
                mine.weight.copy_(theirs.weight)
                mine.bias.copy_(theirs.bias)
        center = trainer.model.center.detach().clone().float().cpu()
        half = trainer.model.half_width.detach().clone().float().cpu()
        net.apply_feature_transform(lambda x: (x - center) / half)
        model = dde.Model(data, net)
        model.compile("adam", lr=config.lr)
    model.pde = pde
    return model


def check_same_residual(dde, trainer: Trainer, model) -> None:
    """pinnbal's residual and DeepXDE's on a few points of the initial network agree, or the problem is refused."""
    term, x, values = next(item for item in trainer.batches.items if item[0].kind == "residual")
    x = x[:16].detach().clone().requires_grad_(True)
    ours = term.residual(trainer.model.points(x, where="check"), values).detach()
    xd = x.detach().clone().requires_grad_(True)
    theirs = model.pde(xd, model.net(xd)).detach()
    dde.grad.clear()
    if not torch.allclose(ours, theirs, rtol=1e-3, atol=1e-5):
        raise OptionError(f"--problem: its residual is not u_t + u u_x - nu u_xx with nu = 0.01/pi, the Burgers "
                          "equation of problems/burgers.py that the DeepXDE side solves")


def rel_l2(prediction: np.ndarray, reference: np.ndarray | None) -> float | None:
    """‖prediction − reference‖ / ‖reference‖ over the evaluation set (pinnbal's definition)."""
    if reference is None:
        return None
    prediction = np.asarray(prediction, dtype=float).reshape(reference.shape)
    return float(np.linalg.norm(prediction - reference) / max(np.linalg.norm(reference), 1e-300))


def time_pinnbal(trainer: Trainer) -> float:
    """Train ``trainer``'s Adam steps; ms per step (under ``--compile on`` the first step, the compile, left out:
    it is ``trainer.compile_s``)."""
    fit(trainer, progress_bar=False)
    return ms_per_step(trainer, trainer.config.steps)


def time_deepxde(dde, model, steps: int) -> float:
    """Train ``steps`` DeepXDE Adam steps; mean ms of each optimiser step (the last, which also runs
    DeepXDE's test evaluation, left out)."""

    class StepTimer(dde.callbacks.Callback):
        """Time from the start to the end of each DeepXDE training step."""

        def __init__(self):
            super().__init__()
            self.times: list[float] = []
            self.started = 0.0

        def on_batch_begin(self):
            """A step starts."""
            self.started = time.perf_counter()

        def on_batch_end(self):
            """A step ended: keep its duration."""
            self.times.append(time.perf_counter() - self.started)

    timer = StepTimer()
    with contextlib.redirect_stdout(io.StringIO()):
        model.train(iterations=steps, display_every=steps + 1, callbacks=[timer], verbose=0)
    kept = timer.times[:-1] or timer.times
    return 1000 * sum(kept) / len(kept)


def pinnbal_loss(trainer: Trainer) -> float:
    """The unweighted sum of pinnbal's term losses on its batches, now."""
    from ..batches import term_losses

    losses, _ = term_losses(trainer.model, trainer.batches)
    return float(losses.detach().sum())


def deepxde_loss(model) -> float:
    """The sum of DeepXDE's training losses at its last test evaluation (after the last step)."""
    return float(np.sum(model.train_state.loss_train))


def lbfgs_pinnbal(trainer: Trainer, iterations: int) -> None:
    """Continue ``trainer`` from its Adam steps with ``iterations`` L-BFGS iterations (as a resumed run does)."""
    trainer.config = replace(trainer.config, lbfgs=iterations)
    fit(trainer, progress_bar=False)


def lbfgs_deepxde(dde, model, iterations: int) -> None:
    """Continue ``model`` with ``iterations`` L-BFGS iterations under pinnbal's L-BFGS settings."""
    from deepxde.optimizers.config import LBFGS_options

    dde.optimizers.set_LBFGS_options(maxcor=50, ftol=0, gtol=0, maxiter=iterations, maxfun=4 * iterations, maxls=50)
    # DeepXDE (1.15) derives the iterations per torch LBFGS.step call from maxiter once, at import (min(1000,
    # 15000)), not in set_LBFGS_options: without this, 10 iterations asked for would run 1000.  One call, all of them.
    LBFGS_options["iter_per_step"], LBFGS_options["fun_per_step"] = iterations, 4 * iterations
    with contextlib.redirect_stdout(io.StringIO()):
        model.compile("L-BFGS")
        model.train(verbose=0)


def deepxde_comparison(problem_path: str, steps: int, lbfgs: int, threads: int, rounds: int = 1,
                       settings: dict | None = None, compiled: bool = False) -> tuple[list[Side], Setup]:
    """Train both codes on the same setup; their rows (pinnbal's :data:`ENGINES` first, the compiled one only
    with ``compiled``) and the setup.

    ``settings``: TrainConfig fields for the network and the optimiser
    (``width``, ``depth``, ``lr``, ``seed``, ...); the device (CPU), the
    dtype (float32) and the learning-rate decay (none) are fixed here.
    """
    dde = import_deepxde()
    engines = [engine for engine in ENGINES if compiled or engine[2] == "off"]
    if min(steps, threads, rounds) < 1 or lbfgs < 0:
        raise OptionError("bench deepxde: --steps, --threads and --rounds must be >= 1, --lbfgs >= 0")
    # float32 L-BFGS on both sides (DeepXDE's own precision): the same optimiser, not pinnbal's float64 default
    config = TrainConfig(**{**(settings or {}), "steps": steps, "lbfgs": 0, "then": "lbfgs:dtype=float32",
                            "device": "cpu", "dtype": "float32", "lr_decay": 1.0, "eval_every": 10**9, "arch": "mlp"})
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        setup = burgers_setup(problem_path, config)
        setup.machine = machine()
        warm = pinnbal_trainer(replace(setup, config=replace(config, steps=min(steps, WARMUP_STEPS))))
        warm_model = deepxde_model(dde, setup, warm)
        check_same_residual(dde, warm, warm_model)
        for _, derivatives, compile in engines:  # warm-up: allocations, caches, lazy imports, the compile cache
            time_pinnbal(pinnbal_trainer(replace(setup, config=warm.config), derivatives, compile))
        time_deepxde(dde, warm_model, warm.config.steps)
        best = {name: math.inf for name, _, _ in engines} | {"deepxde": math.inf}
        kept = None
        for r in range(rounds):
            trainers = {name: pinnbal_trainer(setup, derivatives, compile) for name, derivatives, compile in engines}
            model = deepxde_model(dde, setup, trainers["pinnbal"])
            order = [(name, lambda t=t: time_pinnbal(t)) for name, t in trainers.items()]
            order.append(("deepxde", lambda: time_deepxde(dde, model, steps)))
            shift = r % len(order)  # rotated: no code always first
            for name, timed in order[shift:] + order[:shift]:
                best[name] = min(best[name], timed())
            kept = kept or (trainers, model)
        trainers, model = kept
        ours = [Side(name, __version__, best[name], pinnbal_loss(trainer),
                     rel_l2(trainer.predict(setup.eval_x), setup.eval_v), compile_s=trainer.compile_s)
                for name, trainer in trainers.items()]
        with contextlib.redirect_stdout(io.StringIO()):
            predicted = model.predict(setup.eval_x.astype(np.float32))
        theirs = Side("DeepXDE (PyTorch backend)", dde.__version__, best["deepxde"], deepxde_loss(model),
                      rel_l2(predicted, setup.eval_v))
        if lbfgs:
            trainer = trainers["pinnbal"]
            lbfgs_pinnbal(trainer, lbfgs)
            ours[0].rel_l2_lbfgs = rel_l2(trainer.predict(setup.eval_x), setup.eval_v)
            lbfgs_deepxde(dde, model, lbfgs)
            with contextlib.redirect_stdout(io.StringIO()):
                predicted = model.predict(setup.eval_x.astype(np.float32))
            theirs.rel_l2_lbfgs = rel_l2(predicted, setup.eval_v)
    finally:
        torch.set_num_threads(before)
    return [*ours, theirs], setup


def deepxde_report(problem_path: str, steps: int, lbfgs: int, threads: int, command: str, rounds: int = 1,
                   settings: dict | None = None, compiled: bool = False) -> str:
    """The Markdown report of ``pinnbal bench deepxde`` (the layout of ``pinnbal bench speed``'s)."""
    rows, setup = deepxde_comparison(problem_path, steps, lbfgs, threads, rounds, settings, compiled)
    config = setup.config
    points = ", ".join([f"{len(setup.residual)} residual"] + [f"{len(p)} {kind} ({name})"
                                                              for name, kind, p, _ in setup.conditions])

    def num(value: float | None, fmt: str) -> str:
        """A number for the table; "–" when there is none."""
        return "–" if value is None or not math.isfinite(value) else format(value, fmt)

    lines = [f"# pinnbal and DeepXDE on {Path(problem_path).name}", "",
             f"Command: `{command}`  ", f"Machine: {setup.machine}  ",
             f"Setup: the same points for both ({points}; pinnbal's {config.sampler} draw, seed {config.seed}), the "
             f"same network and initial weights (MLP {config.depth} x {config.width} {config.activation}, "
             f"Glorot-normal, inputs scaled to [-1, 1]), the unweighted sum of the mean-squared term losses; Adam at "
             f"a constant learning rate {config.lr:g} for {steps} steps"
             + (f", then {lbfgs} L-BFGS iterations (history 50, strong Wolfe)" if lbfgs else "")
             + f"; float32 on the CPU, {threads} torch thread{'s' * (threads > 1)} for both.  ",
             f"ms per Adam step: mean over the steps of the fastest of {rounds} round(s), after a "
             f"{min(steps, WARMUP_STEPS)}-step warm-up of each; rel L2 on the problem's reference "
             f"({len(setup.eval_x)} points).", "",
             "| code | version | ms / Adam step | loss after Adam | rel L2 after Adam |"
             + (f" rel L2 after {lbfgs} L-BFGS |" if lbfgs else ""),
             "| --- | --- | --- | --- | --- |" + (" --- |" if lbfgs else "")]
    for row in rows:
        ms = f"{row.ms_per_step:.2f}" + ("" if row.compile_s is None else f" (compile {row.compile_s:.1f} s)")
        lines.append(f"| {row.code} | {row.version} | {ms} | {num(row.loss, '.3e')} | "
                     f"{num(row.rel_l2_adam, '.3e')} |" + (f" {num(row.rel_l2_lbfgs, '.3e')} |" if lbfgs else ""))
    (ours, nested, *compiled), theirs = rows[:-1], rows[-1]
    lines += ["", f"DeepXDE / pinnbal time per Adam step: {theirs.ms_per_step / ours.ms_per_step:.2f} × with "
              f"pinnbal's default derivatives (carried forward through the network), "
              f"{theirs.ms_per_step / nested.ms_per_step:.2f} × with nested autograd as DeepXDE takes them"
              + "".join([f", {theirs.ms_per_step / row.ms_per_step:.2f} × with the forward derivatives and the loss "
                         f"under torch.compile (its first step, the compile, apart)" for row in compiled])
              + ".  DeepXDE "
              f"evaluates the PDE residual on every training point, the boundary and initial ones included, and "
              f"keeps the interior part; pinnbal evaluates each term on its own points."
              + ("  L-BFGS continues pinnbal's default row." if lbfgs else ""), ""]
    return "\n".join(lines)
