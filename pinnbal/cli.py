"""The ``pinnbal`` command: run, info, balancers, render.

Mistakes in user input (problem files, options) print one line and exit 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import OptionError, PinnbalError, StorageError

DEFAULTS_HELP = "(default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        sys.stderr.write(f"pinnbal: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


def parse_weights(text: str) -> dict[str, float]:
    weights = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, eq, value = item.partition("=")
        try:
            if not eq:
                raise ValueError
            weights[name.strip()] = float(value)
        except ValueError:
            raise OptionError(f"--weights {text!r}: {item!r} is not term=number (e.g. --weights pde=1,ic=100)") from None
    return weights


def add_train_options(p: argparse.ArgumentParser, given_only: bool = False) -> None:
    """The training flags, one per :class:`TrainConfig` field.  ``given_only``: an option not typed is None, so
    the problem's recipe (``pinnbal run``) can fill it; the help still shows the library default."""
    from .train import DEFAULT_BALANCER, TrainConfig
    from .train.config import OBSERVATIONS_BALANCER, OBSERVED

    d = TrainConfig()

    def add(*flags, **kw):
        if given_only and "default" in kw:
            kw["help"] = kw.get("help", "").replace("%(default)s", str(kw["default"]))
            if not kw["help"]:
                kw["help"] = f"(default: {kw['default']})"
            kw["default"] = None
        p.add_argument(*flags, **kw)

    add("--balancer", default=DEFAULT_BALANCER, help="balancer spec, e.g. lra or lra:alpha=0.9,every=10 " + DEFAULTS_HELP
        + f"; {OBSERVATIONS_BALANCER} for a problem with at least {OBSERVED} observations (pb.Data values)")
    add("--optimizer", help="the Adam stage in one spec: adam:steps=N,lr=X,warmup=N,decay=G/EVERY (the same as "
        "--steps, --lr, --warmup, --lr-decay, --lr-decay-every)")
    add("--steps", type=int, default=d.steps, help="Adam steps " + DEFAULTS_HELP)
    add("--lbfgs", type=int, default=d.lbfgs, help="iterations of the second stage after Adam " + DEFAULTS_HELP)
    add("--then", default=d.then, help="the second stage: lbfgs, bfgs, ssbfgs or ssbroyden (dense, up to 20k "
        "parameters), lm (Levenberg-Marquardt, small networks; :damping=X); auto: ssbfgs up to 5000 parameters, "
        "else lbfgs; float64 unless :dtype=float32; :iters=N is --lbfgs N; :resample=N draws fresh points every N "
        "iterations; the dense methods' :first_step=adaptive|unit (line search from the last decrease, or alpha=1 "
        "always) " + DEFAULTS_HELP)
    add("--seed", type=int, default=d.seed, help=DEFAULTS_HELP)
    add("--lr", type=float, default=d.lr, help="Adam learning rate " + DEFAULTS_HELP)
    add("--lr-decay", type=float, default=d.lr_decay, help="decay factor per --lr-decay-every steps " + DEFAULTS_HELP)
    add("--lr-decay-every", type=int, default=d.lr_decay_every, help=DEFAULTS_HELP)
    add("--warmup", type=int, default=d.warmup, help="Adam steps of linear learning-rate warm-up " + DEFAULTS_HELP)
    add("--budget", type=float, default=d.budget, help="seconds of training: Adam stops at half of it when a second "
        "stage follows, the second stage at all of it; 0: no limit " + DEFAULTS_HELP)
    add("--device", default=d.device, help="auto, cpu or cuda " + DEFAULTS_HELP)
    add("--dtype", default=d.dtype, help="float32 or float64 " + DEFAULTS_HELP)
    add_network_options(add, d)
    add("--sampler", default=d.sampler, help="uniform, sobol or lhs " + DEFAULTS_HELP)
    add("--resample-every", type=int, default=d.resample_every, help="redraw points every N steps, 0: never " + DEFAULTS_HELP)
    add("--jacobian", default=d.jacobian, help="per-term gradients: auto, loop or batched " + DEFAULTS_HELP)
    add("--compile", default=d.compile, help="the loss under torch.compile (Adam's, and the second stage's anew "
        "in its dtype, except lm's): on, off, auto (off: on this CPU a 25 s compile paid back only after about "
        "2400 Burgers steps) " + DEFAULTS_HELP)
    add("--derivatives", default=d.derivatives, help="p.u_xx by: forward (carried through the layers in closed "
        "form, one backward), autograd (nested), auto (forward where the network allows) " + DEFAULTS_HELP)
    add("--log-every", type=int, default=d.log_every, help=DEFAULTS_HELP)
    add("--eval-every", type=int, default=d.eval_every, help=DEFAULTS_HELP)
    add("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help="steps between checkpoints in the run directory " + DEFAULTS_HELP)
    add("--dropout", type=float, default=d.dropout, help="dropout after each hidden activation, Adam "
                   "phase only " + DEFAULTS_HELP)
    add("--early-stop", type=int, default=d.early_stop, help="stop after N evaluations without a better "
                   "validation loss on held-out points; 0: never " + DEFAULTS_HELP)
    add("--holdout", type=float, default=d.holdout, help="fraction of Data observations kept out of "
                   "training for validation " + DEFAULTS_HELP)
    add("--weights", default="", help="initial/fixed term weights, e.g. pde=1,ic=100")


def add_network_options(add, d) -> None:
    """The network flags of :func:`add_train_options` (``add``: its flag adder, ``d``: the default config)."""
    add("--arch", default=d.arch, help="mlp, fourier or modified " + DEFAULTS_HELP)
    add("--width", type=int, default=d.width, help=DEFAULTS_HELP)
    add("--depth", type=int, default=d.depth, help="hidden layers " + DEFAULTS_HELP)
    add("--activation", default=d.activation, help="tanh, sin, gelu, silu, relu " + DEFAULTS_HELP)
    add("--fourier-scale", type=float, default=d.fourier_scale, help="sigma of the Fourier features (--arch "
        "fourier) " + DEFAULTS_HELP)
    add("--rwf", default=d.rwf, help="random weight factorisation of every dense layer: on (mean=1,std=0.1) or "
        "mean=M,std=S; empty: off " + DEFAULTS_HELP)
    add("--time-windows", type=int, default=d.time_windows, help="train an x-t problem window by window in time, "
        "one network per window, each window's initial condition the previous window's prediction; 1: off "
        + DEFAULTS_HELP)


def train_settings(args) -> dict:
    """The training flags the user typed (``--optimizer`` included): unset ones are None and left out, so a
    recipe or the library defaults fill them."""
    from .train import TrainConfig
    from .train.config import SPEC_SETTINGS

    names = [*TrainConfig.__dataclass_fields__, *SPEC_SETTINGS]
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def add_data_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DIR", help="the folder of the data files problem files read "
                                                 "(e.g. a PINNacle checkout's ref/)")


def build_parser() -> Parser:
    parser = Parser(prog="pinnbal", description="Physics-informed neural networks with adaptive loss balancing.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    add_run_command(sub)
    add_small_commands(sub)
    bench = sub.add_parser("bench", help="benchmarks: balancer speed, accuracy on the benchmark problems, "
                                         "pinnbal against DeepXDE")
    suites = bench.add_subparsers(dest="suite", required=True, parser_class=Parser)
    add_bench_speed(suites)
    add_bench_deepxde(suites)
    add_bench_accuracy(suites)
    add_compare_command(sub)
    return parser


def add_run_command(sub) -> None:
    """``pinnbal run``: train a problem file into a run directory."""
    run = sub.add_parser("run", help="train a problem file and write a run directory")
    run.add_argument("problem", nargs="?", help="path to a problem file, e.g. problems/burgers.py")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    add_train_options(run, given_only=True)  # unset flags come from the problem's recipe
    add_data_option(run)
    run.add_argument("--out", help="run directory (default: runs/<problem>-<balancer>-s<seed>)")
    run.add_argument("--force", action="store_true", help="overwrite the run files in an existing --out")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--no-render", action="store_true", help="skip the figures")


def add_small_commands(sub) -> None:
    """``pinnbal info``, ``balancers`` and ``render``."""
    info = sub.add_parser("info", help="describe a problem file")
    add_data_option(info)
    info.add_argument("problem")

    sub.add_parser("balancers", help="list the balancers and their options")

    render = sub.add_parser("render", help="draw the figures of a run directory")
    render.add_argument("run_dir")
    add_data_option(render)
    render.add_argument("--surface", action="store_true", help="also draw a 2D solution as a warped pyvista surface")
    render.add_argument("--gif", action="store_true", help="also animate a solution in (x, t) over time: "
                                                          "figures/solution.gif")


def add_bench_speed(suites) -> None:
    """``pinnbal bench speed``."""
    speed = suites.add_parser("speed", help="ms per step of every balancer against fixed; the Jacobian strategies")
    speed.add_argument("--problem", default="problems/burgers.py", help=DEFAULTS_HELP)
    add_data_option(speed)
    speed.add_argument("--balancers", help="comma-separated balancer names (default: every registered one)")
    speed.add_argument("--steps", type=int, default=200, help="Adam steps per balancer " + DEFAULTS_HELP)
    speed.add_argument("--repeats", type=int, default=5, help="Jacobian timings to take the median of " + DEFAULTS_HELP)
    speed.add_argument("--rounds", type=int, default=3, help="timings per balancer, the fastest kept " + DEFAULTS_HELP)
    speed.add_argument("--derivative-problems", help="problem files (or names in problems/) to time both derivative "
                       "engines on, comma-separated; all: every problem in problems/ (default: --problem)")
    speed.add_argument("--compiled", action="store_true", help="also time every problem with --compile on (its "
                       "first step compiles: 20-60 s per problem on a CPU, reported apart)")
    speed.add_argument("--width", type=int, default=32, help=DEFAULTS_HELP)
    speed.add_argument("--depth", type=int, default=4, help=DEFAULTS_HELP)
    speed.add_argument("--out", help="also write the Markdown report to this file")


def add_bench_deepxde(suites) -> None:
    """``pinnbal bench deepxde``."""
    dxde = suites.add_parser("deepxde", help="pinnbal and DeepXDE on the same Burgers setup (pip install "
                                             "'pinnbal[bench]')")
    dxde.add_argument("--problem", default="problems/burgers.py", help=DEFAULTS_HELP)
    dxde.add_argument("--steps", type=int, default=200, help="Adam steps per code " + DEFAULTS_HELP)
    dxde.add_argument("--lbfgs", type=int, default=0, help="L-BFGS iterations after Adam, for the final rel L2 "
                      "column " + DEFAULTS_HELP)
    dxde.add_argument("--rounds", type=int, default=3, help="timings per code, the fastest kept " + DEFAULTS_HELP)
    dxde.add_argument("--threads", type=int, help="torch threads for both codes (default: this process's CPUs)")
    dxde.add_argument("--compiled", action="store_true", help="also time pinnbal with --compile on (its first step "
                      "compiles: 20-60 s on a CPU, reported apart)")
    dxde.add_argument("--lr", type=float, help="the constant Adam learning rate (default: pinnbal's)")
    dxde.add_argument("--seed", type=int, default=0, help="seed of the points and initial weights " + DEFAULTS_HELP)
    dxde.add_argument("--width", type=int, default=32, help=DEFAULTS_HELP)
    dxde.add_argument("--depth", type=int, default=4, help=DEFAULTS_HELP)
    dxde.add_argument("--out", help="also write the Markdown report to this file")


def add_bench_accuracy(suites) -> None:
    """``pinnbal bench accuracy`` and ``pinnbal bench pinnacle``: a suite of problem files swept, our errors beside
    the published ones."""
    for name, about, listing in (
            ("accuracy", "the benchmark problems", "burgers, helmholtz2d, poisson1d, wave1d, klein_gordon, "
                                                   "allen_cahn, advection, cavity, poisson3d, heat_inverse"),
            ("pinnacle", "the PINNacle problems (problems/pinnacle/; their data: --data DIR)",
             "burgers1d_c, poisson2d_c, poisson2d_cg, ns2d_c, ns2d_cg, wave1d_c, heat2d_ms, poisson_nd")):
        acc = suites.add_parser(name, conflict_handler="resolve",
                                help=f"{about} with every balancer asked for; our errors beside the published ones")
        acc.add_argument("--problems", help=f"comma-separated suite names or problem files (default: the whole "
                                            f"suite: {listing})")
        add_train_options(acc, given_only=True)
        add_data_option(acc)
        acc.add_argument("--balancers", "--balancer", default="recipe", help="balancer specs separated by commas; "
                         "recipe: each problem's own (its recipe's balancer, else the library default), what "
                         "`pinnbal run` trains it with " + DEFAULTS_HELP)
        acc.add_argument("--seeds", type=int, default=3, help=DEFAULTS_HELP)
        acc.add_argument("--jobs", type=int, help="parallel training processes (default: min(runs, CPUs))")
        acc.add_argument("--runs", default=f"runs/bench-{name}", help="sweep directory; re-running skips finished "
                         "runs " + DEFAULTS_HELP)
        acc.add_argument("--out", help="also write the Markdown report to this file")
        acc.add_argument("--quiet", action="store_true", help="no progress bar")

def add_compare_command(sub) -> None:
    """``pinnbal compare``: balancers × seeds on one or more problems."""
    # compare: the training options of `run`, with --balancers in place of --balancer (conflict_handler
    # "resolve" lets --balancers take over the --balancer flag) and --seed as the first seed
    compare = sub.add_parser(
        "compare", help="train balancers x seeds on one or more problems; tables and figures",
        conflict_handler="resolve",
        description="Train every (problem, balancer, seed) as a run directory DIR/<problem>/<balancer>-s<seed>, "
                    "in parallel processes, then write DIR/<problem>/summary.csv, summary.md and figures/ "
                    "(and DIR/summary.md with a ranking for several problems). Finished runs are skipped when "
                    "the same command runs again.")
    compare.add_argument("problems", nargs="+", metavar="PROBLEM", help="problem files, e.g. problems/*.py")
    add_train_options(compare, given_only=True)
    add_data_option(compare)
    compare.add_argument("--balancers", "--balancer", action="append", metavar="SPECS",
                         help="balancer specs separated by commas; a piece that is key=value (or term<target) "
                              "continues the options of the spec before it, so fixed,lra:alpha=0.9,every=10,relobralo "
                              "is three balancers; recipe: each problem's own, as `pinnbal run` chooses; may be repeated "
                              "(default: fixed,lra,relobralo)")
    compare.add_argument("--seeds", type=int, default=3, help="seeds per balancer " + DEFAULTS_HELP)
    compare.add_argument("--seed", type=int, default=0, help="first seed: the seeds are SEED .. SEED+SEEDS-1 "
                         + DEFAULTS_HELP)
    compare.add_argument("--jobs", type=int, help="parallel training processes (default: min(runs, CPUs)); with "
                         "--executor ray: runs in flight (default: what the cluster has room for)")
    compare.add_argument("--executor", choices=["local", "ray"], default="local",
                         help="local: processes on this machine; ray: one Ray task per run on a Ray cluster (pip "
                              "install 'pinnbal[ray]'), every node seeing the problem files and the sweep directory "
                              "at the same paths (a shared filesystem) " + DEFAULTS_HELP)
    compare.add_argument("--ray-address", metavar="ADDRESS",
                         help="with --executor ray: the cluster to join, 'auto' for the one running here, or "
                              "HOST:PORT (default: start or attach a local Ray instance)")
    compare.add_argument("--out", help="sweep directory (default: runs/compare-<problem>[+<problem>...])")
    compare.add_argument("--target", type=float, default=1e-2, help="rel L2 error for the steps-to-target column "
                         + DEFAULTS_HELP)
    compare.add_argument("--force", action="store_true", help="train every run again, finished or not")
    compare.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_run(args) -> int:
    from .loader import load_problem
    from .workflow import resume, train, with_recipe

    if args.resume:
        if args.problem:
            raise OptionError("give either a problem file or --resume RUN_DIR, not both")
        report(resume(args.resume, progress=not args.quiet, render=not args.no_render), Path(args.resume))
        return 0
    if not args.problem:
        raise OptionError("pinnbal run needs a problem file (e.g. problems/burgers.py) or --resume RUN_DIR")

    from .balancers import make_balancer

    problem = load_problem(args.problem)
    given = train_settings(args)
    if "weights" in given:
        given["weights"] = parse_weights(given["weights"])
    settings, spec = with_recipe(problem, given, args.balancer)
    balancer = make_balancer(spec)
    out = Path(args.out) if args.out else Path("runs") / f"{problem.name}-{balancer.name}-s{settings.get('seed', 0)}"
    run = train(problem, balancer, out=out, force=args.force, progress=not args.quiet, render=not args.no_render,
                problem_path=str(Path(args.problem).resolve()), **settings)
    report(run, out)
    return 0


def report(run, out: Path) -> None:
    m = run.metrics
    err = f"rel L2 {m['rel_l2']:.3e}" if m["rel_l2"] is not None else "no reference"
    print(f"{m['problem']} [{m['balancer']}] seed {m['seed']}: {err} after {m['steps']} steps in {m['wall_s']:.1f} s "
          f"({m['ms_per_step']:.1f} ms/step) -> {out}")


def cmd_info(args) -> int:
    from .loader import load_problem
    from .workflow import problem_balancer

    problem = load_problem(args.problem)
    print(problem.describe())
    chosen, why = problem_balancer(problem)
    print(f"balancer  {chosen}  ({why}; `pinnbal run` trains with it unless --balancer says otherwise)")
    return 0


def cmd_balancers(args) -> int:
    from .balancers import BALANCERS

    for name, cls in BALANCERS.items():
        opts = ", ".join(f"{k}={v}" for k, v in cls.options.items()) or "-"
        needs = "+".join(sorted(cls.needs))
        print(f"{name:<12} {cls.summary}\n{'':<12} needs: {needs}; options: {opts}")
    return 0


def cmd_bench(args) -> int:
    return {"speed": cmd_bench_speed, "deepxde": cmd_bench_deepxde, "accuracy": cmd_bench_accuracy,
            "pinnacle": cmd_bench_accuracy}[args.suite](args)


def bench_command(suite: str) -> str:
    """The command line as typed (for the report's header), or its plain form when called from Python."""
    import shlex

    return "pinnbal " + shlex.join(sys.argv[1:]) if sys.argv[1:3] == ["bench", suite] else f"pinnbal bench {suite}"


def write_report(report: str, out: str | None) -> int:
    from .storage import atomic_write_bytes

    print(report)
    if out:
        atomic_write_bytes(Path(out), report.encode())
    return 0


def cmd_bench_speed(args) -> int:
    """``pinnbal bench speed``: ms per step of each balancer against ``fixed`` (:mod:`pinnbal.bench.speed`)."""
    from .bench.speed import speed_report

    if min(args.steps, args.repeats, args.rounds) < 1:
        raise OptionError("bench: --steps, --repeats and --rounds must be >= 1")
    names = [n.strip() for n in args.balancers.split(",") if n.strip()] if args.balancers else None
    derivative_problems = None
    if args.derivative_problems:
        from .bench.accuracy import PROBLEMS_DIR, suite_paths

        every = sorted(p.stem for p in PROBLEMS_DIR.glob("*.py"))
        chosen = every if args.derivative_problems == "all" else [
            n.strip() for n in args.derivative_problems.split(",") if n.strip()]
        derivative_problems = suite_paths(chosen, every, PROBLEMS_DIR, "bench speed --derivative-problems")
    report = speed_report(args.problem, names, args.steps, args.repeats, bench_command("speed"),
                          {"width": args.width, "depth": args.depth}, args.rounds, derivative_problems, args.compiled)
    return write_report(report, args.out)


def cmd_bench_accuracy(args) -> int:
    """``pinnbal bench accuracy``: the suite's problems, our errors beside the published (:mod:`pinnbal.bench.accuracy`)."""
    from .bench.accuracy import accuracy_report
    from .bench.pinnacle import pinnacle_report

    if args.seeds < 1:
        raise OptionError(f"--seeds {args.seeds}: need at least 1")
    problems = [p.strip() for p in args.problems.split(",") if p.strip()] if args.problems else None
    settings = {k: v for k, v in train_settings(args).items() if k != "seed"}
    settings["weights"] = parse_weights(args.weights or "")
    first = args.seed or 0
    report_of = pinnacle_report if args.suite == "pinnacle" else accuracy_report
    report = report_of(problems, [args.balancers], range(first, first + args.seeds), args.runs,
                       bench_command(args.suite), jobs=args.jobs, progress=not args.quiet, **settings)
    return write_report(report, args.out)


def cmd_bench_deepxde(args) -> int:
    """``pinnbal bench deepxde``: pinnbal and DeepXDE on the same Burgers setup (:mod:`pinnbal.bench.deepxde`)."""
    from .bench.deepxde import deepxde_report, import_deepxde
    from .compare.sweep import available_cpus

    import_deepxde()  # without DeepXDE: one line saying how to install it, before anything runs
    settings = {"width": args.width, "depth": args.depth, "seed": args.seed}
    if args.lr is not None:
        settings["lr"] = args.lr
    report = deepxde_report(args.problem, args.steps, args.lbfgs, args.threads or available_cpus(),
                            bench_command("deepxde"), args.rounds, settings, args.compiled)
    return write_report(report, args.out)


def cmd_render(args) -> int:
    from .render import render_run

    for path in render_run(args.run_dir, surface=args.surface, gif=args.gif):
        print(path)
    return 0


def cmd_compare(args) -> int:
    from .compare import FINAL, compare

    if args.seeds < 1:
        raise OptionError(f"--seeds {args.seeds}: need at least 1")
    settings = {k: v for k, v in train_settings(args).items() if k != "seed"}
    settings["weights"] = parse_weights(args.weights or "")
    try:
        result = compare(args.problems, args.balancers or ["fixed,lra,relobralo"],
                         seeds=range(args.seed, args.seed + args.seeds), out=args.out, jobs=args.jobs,
                         target=args.target, force=args.force, progress=not args.quiet, executor=args.executor,
                         ray_address=args.ray_address, **settings)
    except KeyboardInterrupt:
        sys.stderr.write("pinnbal: compare stopped; finished runs are kept: run the same command again to "
                         "train the rest\n")
        raise
    for outcome in result.outcomes:
        if outcome.error:
            sys.stderr.write(f"pinnbal: {outcome.job.label}: {outcome.status}: {outcome.error}\n")
    print(result.tables)
    if result.skipped:
        total = len(result.skipped) + len(result.outcomes)
        print(f"\n{len(result.skipped)} of {total} runs were already finished with these settings and were not "
              f"trained again (--force retrains them)")
    print(f"\nsummary: {result.summary}")
    return 1 if any(o.status not in FINAL for o in result.outcomes) else 0


COMMANDS = {"run": cmd_run, "info": cmd_info, "balancers": cmd_balancers, "render": cmd_render, "bench": cmd_bench,
            "compare": cmd_compare}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .workflow import Interrupted

    try:
        if getattr(args, "data", None):
            from .datafiles import use_data_dir

            use_data_dir(args.data)
        return COMMANDS[args.command](args)
    except Interrupted as exc:
        sys.stderr.write(f"pinnbal: {exc}\n")
        return 128 + (exc.signum or 2)
    except StorageError as exc:  # the machine, not the input: exit 1
        if args.debug:
            raise
        sys.stderr.write(f"pinnbal: error: {exc}\n")
        return 1
    except PinnbalError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"pinnbal: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("pinnbal: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
