"""Every setting of a run, in one dataclass: :class:`TrainConfig` (saved as ``config.json``'s ``train``;
the CLI derives its flags from these fields), and the small rules that read it: the device, the learning-rate
schedule, the training progress a schedule sees."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import OptionError
from ..sampling import SAMPLERS
from ..nets import parse_rwf
from ..problem import Problem
from .stages import parse_stage

DTYPES = {"float32": torch.float32, "float64": torch.float64}
DEFAULT_BALANCER = "lra"
#: the default for a problem with observations (a ``pb.Data`` term of at least OBSERVED values): see default_balancer
OBSERVATIONS_BALANCER = "bayes"
OBSERVED = 10


def default_balancer(problem: Problem) -> str:
    """The balancer a run uses when neither the command line nor the problem's recipe names one.

    ``lra`` for a forward problem; ``bayes`` (each term weighted by its residuals' posterior mean precision,
    :mod:`pinnbal.balancers.bayes`) once the problem holds at least ``OBSERVED`` observations.  Why: noisy
    observations cannot be fitted to zero, and a weighting that ignores that trades the PDE for the noise.
    On problems/heat_inverse.py (200 observations, 1 % noise; 1000 Adam steps, 4000 float64 self-scaled
    BFGS iterations, 2026-12-07) ``lra`` weighs the data about 10× the PDE and ends at rel L2 6.0e-2 (median
    of 3 seeds), fixed weights at 2.4e-2 (seed 0), ``bayes`` at 4.45e-3 (worst 4.48e-3): its data weight
    falls to its bound (the data's precision is 1/σ², the PDE's far higher), so the network fits the data
    only through solutions of the PDE, as least squares over the PDE's solutions does (4.5e-3 with 4–7 sine
    modes, gallery/benchmarks/heat_inverse_floor.py).  A gauge (one pinned value) is no observation set.
    """
    return OBSERVATIONS_BALANCER if problem.observations >= OBSERVED else DEFAULT_BALANCER


#: how derivatives are taken (pinnbal.forward, pinnbal.points)
DERIVATIVES = ("auto", "forward", "autograd")
#: whether the Adam stage's loss runs under torch.compile (pinnbal.train.compiling)
COMPILE = ("auto", "on", "off")


@dataclass
class TrainConfig:
    """Every setting of a run; saved as ``config.json``."""

    steps: int = 1000
    lbfgs: int = 4000  # iterations of the second stage
    then: str = "auto"  # the second stage: auto, lbfgs, bfgs, ssbfgs, ssbroyden or lm[:dtype=...] (pinnbal.train.stages)
    lr: float = 5e-3
    lr_decay: float = 0.9  # multiply the learning rate by this ...
    lr_decay_every: int = 1000  # ... every this many steps (smoothly)
    warmup: int = 0  # Adam steps over which the learning rate ramps linearly up to lr (0: none)
    budget: float = 0.0  # seconds of training: Adam gets up to half when a second stage follows (0: no limit)
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    arch: str = "mlp"
    width: int = 32
    depth: int = 4
    activation: str = "tanh"
    fourier_scale: float = 1.0  # σ of the Fourier feature matrix B ~ N(0, σ²) (--arch fourier)
    rwf: str = ""  # random weight factorisation: "", "on" or "mean=M,std=S" (pinnbal.nets)
    time_windows: int = 1  # train window by window in time, one network each (pinnbal.train.windows); 1: off
    sampler: str = "uniform"
    resample_every: int = 0  # 0: keep the first batch
    jacobian: str = "auto"
    derivatives: str = "auto"  # p.u_xx by: forward (carried through the layers), autograd, auto (forward if it can)
    compile: str = "auto"  # the Adam stage's loss under torch.compile: on, off, auto (off: see pinnbal.train.compiling)
    log_every: int = 10
    eval_every: int = 500
    checkpoint_every: int = 500  # steps between checkpoints (needs a run directory)
    dropout: float = 0.0  # dropout after each hidden activation (mlp, fourier), Adam phase only
    early_stop: int = 0  # stop after this many evaluations without a better validation loss (0: never)
    holdout: float = 0.0  # fraction of Data observations kept out of training, for validation
    weights: dict[str, float] = field(default_factory=dict)

    def check(self, problem: Problem) -> None:
        if not 0.0 <= self.holdout < 1.0:
            raise OptionError(f"--holdout {self.holdout}: need a fraction 0 <= holdout < 1")
        for name in ("steps", "lbfgs", "resample_every", "seed", "early_stop", "warmup"):
            if getattr(self, name) < 0:
                raise OptionError(f"--{name.replace('_', '-')} {getattr(self, name)}: need a number >= 0")
        for name in ("log_every", "eval_every", "lr_decay_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise OptionError(f"--{name.replace('_', '-')} {getattr(self, name)}: need an integer >= 1")
        if self.steps + self.lbfgs == 0:
            raise OptionError("nothing to do: --steps and --lbfgs are both 0")
        if not (self.budget >= 0 and math.isfinite(self.budget)):
            raise OptionError(f"--budget {self.budget}: need a number of seconds >= 0 (0: no limit)")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise OptionError(f"--lr {self.lr}: need a positive number")
        if not 0 < self.lr_decay <= 1:
            raise OptionError(f"--lr-decay {self.lr_decay}: need 0 < decay <= 1")
        parse_stage(self.then)  # a bad --then is one line before anything starts
        parse_rwf(self.rwf)
        if not (math.isfinite(self.fourier_scale) and self.fourier_scale > 0):
            raise OptionError(f"--fourier-scale {self.fourier_scale}: need a positive number")
        if self.dtype not in DTYPES:
            raise OptionError(f"--dtype {self.dtype}: choose one of {', '.join(DTYPES)}")
        if self.derivatives not in DERIVATIVES:
            raise OptionError(f"--derivatives {self.derivatives}: choose one of {', '.join(DERIVATIVES)}")
        if self.compile not in COMPILE:
            raise OptionError(f"--compile {self.compile}: choose one of {', '.join(COMPILE)}")
        if self.sampler not in SAMPLERS:
            raise OptionError(f"--sampler {self.sampler}: choose one of {', '.join(SAMPLERS)}")
        unknown = sorted(set(self.weights) - set(problem.term_names))
        if unknown:
            raise OptionError(f"--weights: {unknown[0]!r} is not a term; terms are {', '.join(problem.term_names)}")
        for k, v in self.weights.items():
            if not (math.isfinite(v) and v >= 0):
                raise OptionError(f"--weights: {k}={v}; need a finite number >= 0")


#: ``--optimizer adam:KEY=VALUE,...``: the Adam stage's settings in one spec, and the TrainConfig fields they set
OPTIMIZER_KEYS = {"steps": "steps", "lr": "lr", "warmup": "warmup", "decay": "lr_decay"}
#: what a run accepts besides the TrainConfig fields: specs written out into them by :func:`expand_settings`
SPEC_SETTINGS = ("optimizer",)


def expand_settings(settings: dict) -> dict:
    """``settings`` as TrainConfig fields: ``optimizer`` (``adam:steps=3000,lr=1e-3,warmup=200,decay=0.9/1000``)
    and the second stage's ``iters=N`` (``then="ssbfgs:iters=5000"``, the same as ``lbfgs=5000``) written out.
    A field set both ways to different values is one line."""
    settings = dict(settings)
    spec = settings.pop("optimizer", None)
    written = parse_optimizer(spec) if spec else {}
    iters = parse_stage(settings["then"]).iters if settings.get("then") else None
    if iters is not None:  # written out as lbfgs and dropped from the spec, so a later --lbfgs cannot contradict it
        written["lbfgs"] = iters
        name, _, rest = settings["then"].partition(":")
        kept = [item for item in rest.split(",") if item.strip() and not item.strip().startswith("iters=")]
        settings["then"] = name + (":" + ",".join(kept) if kept else "")
    for key, value in written.items():
        if settings.get(key) is not None and settings[key] != value:
            source = "--then" if key == "lbfgs" else "--optimizer"
            raise OptionError(f"{source} sets {key}={value} but --{key.replace('_', '-')} says {settings[key]}; "
                              f"give it once")
        settings[key] = value
    return settings


def parse_optimizer(spec: str) -> dict:
    """``adam:steps=N,lr=X,warmup=N,decay=G[/EVERY]`` → TrainConfig fields; one line for anything else."""
    name, _, rest = str(spec).strip().partition(":")
    if name != "adam":
        raise OptionError(f"--optimizer {spec!r}: the first stage is adam (e.g. --optimizer adam:steps=3000,lr=1e-3,"
                          f"warmup=200,decay=0.9/1000); the second is --then")
    fields: dict = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key not in OPTIMIZER_KEYS:
            raise OptionError(f"--optimizer {spec!r}: {item!r}; keys are {', '.join(OPTIMIZER_KEYS)}")
        try:
            if key == "decay":
                factor, _, every = value.partition("/")
                fields["lr_decay"] = float(factor)
                if every:
                    fields["lr_decay_every"] = int(every)
            else:
                fields[OPTIMIZER_KEYS[key]] = (float if key == "lr" else int)(value)
        except ValueError:
            raise OptionError(f"--optimizer {spec!r}: {item!r} is not a number") from None
    return fields


def pick_device(name: str) -> torch.device:
    """``--device``: auto (CUDA when available, else CPU), cpu, cuda or cuda:N; one line when unavailable."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise OptionError(f"--device {name}: choose auto, cpu or cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return torch.device(name)


def lr_schedule(adam: torch.optim.Adam, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """lr_s = lr · min(1, (s + 1)/warmup) · decay^(s/every): a linear warm-up (Goyal et al. 2017; the recipe of
    Wang et al. 2023, "An expert's guide to training PINNs") then smooth exponential decay; without warm-up
    the plain exponential decay."""
    gamma = config.lr_decay ** (1.0 / config.lr_decay_every)
    if not config.warmup:
        return torch.optim.lr_scheduler.ExponentialLR(adam, gamma)
    warmup = config.warmup
    return torch.optim.lr_scheduler.LambdaLR(adam, lambda s: min(1.0, (s + 1) / warmup) * gamma**s)


def adam_progress(step: int, steps: int) -> float:
    """Training progress of Adam step ``step`` of ``steps``: 0 at the first step, 1.0 at the last, so a
    schedule's ramp reaches its end value (a single step is the last one: 1.0)."""
    return 1.0 if steps <= 1 else min(step / (steps - 1), 1.0)
