"""What a sweep is, as data, and how it is planned: :class:`Sweep` of :class:`Job` runs (problem ×
balancer × seed), checked before anything is written; which runs are still to train (:func:`pending`)."""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..balancers import TermInfo, make_balancer
from ..errors import OptionError
from ..loader import load_problem
from ..rundir import CHECKPOINT, CONFIG, METRICS
from ..storage import read_json
from ..train import TrainConfig, pick_device
from ..train.config import SPEC_SETTINGS, expand_settings
from ..workflow import with_recipe

#: metrics.json states that are a result: skipped when the sweep runs again.
FINAL = ("completed", "diverged")

#: The balancer "spec" that means each problem's own: its recipe's balancer, the library default where it has none.
RECIPE = "recipe"


@dataclass(frozen=True)
class Entry:
    """One balancer of the sweep."""

    spec: str  # as written by the user: the row label
    canonical: str  # Balancer.spec, what config.json records
    name: str  # the balancer's registry name (fixed, lra, ...)
    folder: str  # directory name
    per_problem: dict[str, str] = field(default_factory=dict)  # RECIPE: problem name -> its balancer's canonical spec
    chosen: dict[str, str] = field(default_factory=dict)  # RECIPE: problem name -> its balancer as the recipe writes it

    def canonical_for(self, problem: str) -> str:
        """What a run of ``problem`` records as its balancer (config.json)."""
        return self.per_problem.get(problem, self.canonical)

    def label_for(self, problem: str) -> str:
        """The row label: the spec as written, with the balancer a recipe chose for ``problem``."""
        return f"{self.spec} ({self.chosen[problem]})" if problem in self.chosen else self.spec

    @property
    def run_spec(self) -> str | None:
        """The balancer handed to :func:`pinnbal.train`: None lets each problem's recipe choose."""
        return None if self.spec == RECIPE else self.spec


@dataclass(frozen=True)
class Job:
    """One (problem, balancer, seed) run."""

    problem: str
    problem_path: str
    entry: Entry
    seed: int
    out: Path
    resume: bool = False  # an interrupted run with a checkpoint and this sweep's settings: continue it
    planned: float = 0.0  # when the sweep chose to train it (time.time()): a result written later is not ours

    @property
    def label(self) -> str:
        return f"{self.problem}/{self.out.name}"


@dataclass(frozen=True)
class TermSize:
    """One term of a problem with points: its name, kind and declared points (a Data term: its observations)."""

    name: str
    kind: str
    points: int


@dataclass
class Sweep:
    """Everything a comparison needs, validated before any file is written.

    ``settings`` are every run's TrainConfig fields (seed aside), the same for
    every balancer; its ``holdout`` is the largest validation fraction any
    balancer of the sweep needs (``needed``) or the user's (``given_holdout``),
    whichever is larger, so that every run trains on the same observations.
    """

    problems: dict[str, str]  # problem name -> resolved path
    given_paths: list[str]
    entries: list[Entry]
    seeds: list[int]
    settings: dict[str, Any]
    out: Path
    target: float
    terms: dict[str, list[TermSize]] = field(default_factory=dict)  # problem name -> its terms with points
    given_holdout: float = 0.0  # the user's --holdout
    needed: dict[str, float] = field(default_factory=dict)  # spec -> the holdout its validation set needs
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)  # problem name -> its recipe's settings

    def run_settings(self, problem: str) -> dict[str, Any]:
        """The TrainConfig fields a run of ``problem`` trains with: its recipe under the sweep's settings."""
        return self.recipes.get(problem, {}) | self.settings

    @property
    def holdout(self) -> float:
        """The holdout every run of the sweep trains with (TrainConfig.holdout)."""
        return float(self.settings.get("holdout", 0.0))

    @property
    def jobs(self) -> list[Job]:
        return [Job(name, path, entry, seed, self.out / name / f"{entry.folder}-s{seed}")
                for name, path in self.problems.items() for entry in self.entries for seed in self.seeds]

    def expected_config(self, job: Job) -> dict[str, Any]:
        return {"problem_path": job.problem_path, "balancer": job.entry.canonical_for(job.problem),
                "train": asdict(TrainConfig(**self.run_settings(job.problem), seed=job.seed))}


def config_difference(saved: dict[str, Any], expected: dict[str, Any]) -> str | None:
    """The first setting in which a saved config.json differs from the sweep's, or None."""
    for key in ("problem_path", "balancer"):
        if saved.get(key) != expected[key]:
            return f"{key} {saved.get(key)!r} (sweep: {expected[key]!r})"
    defaults, train = asdict(TrainConfig()), saved.get("train") or {}
    for key, value in expected["train"].items():
        if train.get(key, defaults[key]) != value:
            return f"{key} {train.get(key, defaults[key])!r} (sweep: {value!r})"
    return None


def saved_state(job: Job, sweep: Sweep) -> tuple[str | None, str | None]:
    """(status in metrics.json or None, how its config differs from the sweep's or None)."""
    try:
        status = read_json(job.out / METRICS).get("status")
        saved = read_json(job.out / CONFIG)
    except (OSError, ValueError):
        return None, None
    return status, config_difference(saved, sweep.expected_config(job))


#: A piece of a --balancers list that continues the spec before it: key=value or term<target.
OPTION_PIECE = re.compile(r"^[^:]*[=<]")


UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


def split_balancers(items: Iterable[str]) -> list[str]:
    """``["fixed,lra:alpha=0.9,every=10", "relobralo"]`` -> ``["fixed", "lra:alpha=0.9,every=10", "relobralo"]``."""
    specs: list[str] = []
    for item in items:
        for piece in (p.strip() for p in item.split(",")):
            if not piece:
                continue
            if OPTION_PIECE.match(piece):
                if not specs:
                    raise OptionError(f"--balancers {item!r}: {piece!r} is an option with no balancer before it "
                                      f"(e.g. --balancers fixed,lra:{piece})")
                specs[-1] += "," + piece
            else:
                specs.append(piece)
    if not specs:
        raise OptionError("--balancers: no balancer given; e.g. --balancers fixed,lra,relobralo")
    return specs


def folder_name(spec: str) -> str:
    """A directory name for a balancer spec: unsafe characters become ``_``."""
    return UNSAFE.sub("_", spec.strip()).strip("._") or "balancer"


def seed_list(seeds: int | Iterable[int]) -> list[int]:
    chosen = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not chosen:
        raise OptionError("--seeds: need at least one seed")
    if min(chosen) < 0 or len(set(chosen)) != len(chosen):
        raise OptionError(f"seeds {chosen}: need distinct seeds >= 0")
    return chosen


def plan(problems: Sequence[str | Path], balancers: Iterable[str], seeds: int | Iterable[int],
         out: str | Path | None, target: float, settings: dict[str, Any], here: bool = True) -> Sweep:
    """Load every problem and balancer and check every option; write nothing.

    ``here=False`` (the runs train elsewhere, on a Ray cluster): a CUDA device
    is not required on this machine; the executor checks the cluster instead.
    """
    if not problems:
        raise OptionError("compare: name at least one problem file")
    if not (isinstance(target, (int, float)) and math.isfinite(target) and target > 0):
        raise OptionError(f"--target {target}: need a positive number")
    allowed = (set(TrainConfig.__dataclass_fields__) | set(SPEC_SETTINGS)) - {"seed"}
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise OptionError(f"compare(): setting {unknown[0]!r} is not allowed here; settings are the TrainConfig "
                          f"fields except seed (use seeds=)")
    settings = expand_settings(settings)
    seeds = seed_list(seeds)
    config = TrainConfig(**settings, seed=seeds[0])
    try:
        pick_device(config.device)
    except OptionError:
        if here or not config.device.startswith("cuda"):
            raise
    loaded, paths, recipes, recipe_balancers = load_problems(problems, settings, seeds[0])
    entries, needed = balancer_entries(balancers, loaded, recipe_balancers, config)
    settings = dict(settings)
    # one data split for every balancer: the largest holdout any of them trains with (see the module docstring)
    observed = any(t.kind == "data" and t.points >= 2 for p in loaded.values() for t in p.terms)
    shared = max([config.holdout, *needed.values()]) if observed else config.holdout
    if shared != config.holdout:
        settings["holdout"] = shared
    terms = {name: [TermSize(t.name, t.kind, int(t.points)) for t in problem.terms if t.has_points]
             for name, problem in loaded.items()}
    default_out = Path("runs") / ("compare-" + "+".join(loaded))
    return Sweep(paths, [str(p) for p in problems], entries, seeds, settings,
                 Path(out) if out else default_out, float(target), terms, float(config.holdout), needed, recipes)


def load_problems(problems: Sequence[str | Path], settings: dict[str, Any], seed: int):
    """Load and check every problem of a sweep with its recipe under ``settings``.

    Returns (problems by name, resolved paths by name, recipe settings by name for problems with a recipe,
    the balancer each problem's recipe, or the library, chooses by name).
    """
    loaded: dict[str, Any] = {}
    paths: dict[str, str] = {}
    recipes: dict[str, dict[str, Any]] = {}
    recipe_balancers: dict[str, str] = {}
    for given in problems:
        problem = load_problem(given)
        if problem.name in loaded:
            raise OptionError(f"{given}: a second problem named {problem.name!r}; each problem of a sweep needs "
                              f"its own name (it names the directory)")
        merged, chosen = with_recipe(problem, {}, None)
        TrainConfig(**(merged | settings), seed=seed).check(problem)
        loaded[problem.name], paths[problem.name] = problem, str(Path(given).resolve())
        recipe_balancers[problem.name] = chosen
        if problem.recipe is not None:
            recipes[problem.name] = merged
    return loaded, paths, recipes, recipe_balancers


def balancer_entries(balancers: Iterable[str], loaded: dict[str, Any], recipe_balancers: dict[str, str],
                     config: TrainConfig) -> tuple[list[Entry], dict[str, float]]:
    """One :class:`Entry` per balancer spec, each attached to every problem (refused before any run), and
    the validation holdout each spec that keeps one needs."""
    entries, canonicals, folders, needed = [], {}, {}, {}
    for spec in split_balancers(balancers):
        resolved = {}
        for name, problem in loaded.items():
            balancer = make_balancer(recipe_balancers[name] if spec == RECIPE else spec)
            if (fraction := validation_holdout(balancer)) > 0:
                needed[spec] = max(fraction, needed.get(spec, 0.0))
            balancer.attach(problem)  # e.g. causal needs a time coordinate, rules a rule: refuse before any run
            balancer.init([TermInfo(t.name, t.kind, float(config.weights.get(t.name, t.weight)), int(t.points))
                           for t in problem.terms])
            resolved[name] = balancer
        if spec == RECIPE:
            entry = Entry(spec, RECIPE, RECIPE, RECIPE, {n: b.spec for n, b in resolved.items()},
                          {n: recipe_balancers[n] for n in resolved})
        else:
            balancer = next(iter(resolved.values()))
            entry = Entry(spec, balancer.spec, balancer.name, folder_name(spec))
        for seen, key in ((canonicals, entry.canonical), (folders, entry.folder)):
            if key in seen:
                raise OptionError(f"--balancers: {spec!r} repeats {seen[key]!r} (same balancer or same directory "
                                  f"name {entry.folder!r}); give each once")
            seen[key] = spec
        entries.append(entry)
    return entries, needed


def validation_holdout(balancer) -> float:
    """The fraction of each Data term's observations ``balancer`` holds out for its validation set when it
    trains (its request, as :class:`pinnbal.train.Trainer` reads it); 0 for a balancer without one."""
    return balancer.request().holdout


def pending(sweep: Sweep, force: bool) -> tuple[list[Job], list[Job]]:
    """(runs to train, finished runs to keep); a finished run with other settings is an error unless ``force``.

    An interrupted run with a checkpoint and this sweep's settings is continued, not started again.
    """
    todo, done = [], []
    now = time.time()
    for job in sweep.jobs:
        status, difference = saved_state(job, sweep)
        if not force and status == "interrupted" and difference is None and (job.out / CHECKPOINT).is_file():
            todo.append(replace(job, resume=True, planned=now))  # continue it from its checkpoint
        elif force or status not in FINAL:
            todo.append(replace(job, planned=now))
        elif difference is None:
            done.append(job)
        else:
            why = ""
            if difference.startswith("holdout ") and sweep.needed:
                why = (f"; this sweep holds out {sweep.holdout:g} of the observations for every balancer, as "
                       f"{', '.join(sweep.needed)} need{'s' * (len(sweep.needed) == 1)}, so that all train on "
                       f"the same data")
            raise OptionError(f"{job.out}: holds a finished run with other settings ({difference}{why}); pass "
                              f"--force to train it again or choose another --out")
    return todo, done
