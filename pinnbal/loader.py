"""Loading problem files.

A problem file is ordinary Python that defines a module-level ``problem``
(a :class:`pinnbal.Problem`) and, optionally, ``def weights(state)``: term
weights by rule for ``--balancer rules``.  Any mistake in it becomes one
:class:`~pinnbal.errors.ProblemError` line naming the file and line.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

from .errors import PinnbalError, ProblemError
from .problem import Problem
from .recipe import Recipe

PACKAGE = Path(__file__).resolve().parent


def load_problem(path: str | Path) -> Problem:
    """Execute the problem file at ``path`` and return its ``problem``."""
    path = Path(path)
    if not path.is_file():
        hint = " (did you mean problems/" + path.name + "?)" if (Path("problems") / path.name).is_file() else ""
        raise ProblemError(f"{path}: no such problem file{hint}")
    module_name = f"pinnbal_problem_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ProblemError(f"{path}: not a Python file; problem files are .py files defining `problem`")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # as for a script: modules next to the problem file import by name (`from helpers import exact`)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except PinnbalError as exc:
        raise ProblemError(f"{path}: {exc}") from None
    except SyntaxError as exc:
        raise ProblemError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:  # any error in user code: report where, in one line
        frame = user_frame(exc)
        line = f":{frame.lineno}" if frame is not None and Path(frame.filename).resolve() == path.resolve() else ""
        raise ProblemError(f"{path}{line}: {type(exc).__name__}: {exc}") from None
    problem = getattr(module, "problem", None)
    if problem is None:
        raise ProblemError(f"{path}: defines no `problem`; add `problem = pb.Problem(...)` at module level")
    if not isinstance(problem, Problem):
        raise ProblemError(f"{path}: `problem` is a {type(problem).__name__}, not a pb.Problem")
    rules = getattr(module, "weights", None)
    if rules is not None and problem.rules is None:
        if not callable(rules):
            raise ProblemError(f"{path}: `weights` must be a function (state) -> {{term: weight}} for --balancer rules")
        problem.rules = rules
    recipe = getattr(module, "recipe", None)
    if recipe is not None and problem.recipe is None:
        if not isinstance(recipe, Recipe):
            raise ProblemError(f"{path}: `recipe` is a {type(recipe).__name__}, not a pb.Recipe(...)")
        problem.recipe = recipe
    return problem


def user_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost traceback frame in the user's code: neither pinnbal's nor an installed package's."""
    library = [PACKAGE, *{Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}]
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        file = Path(frame.filename).resolve()
        if frame.filename.startswith("<") or any(file.is_relative_to(lib) for lib in library):
            continue
        return frame
    return None


@contextmanager
def user_errors():
    """Turn an exception raised inside the user's own functions (a residual, value, transform or
    reference) into one :class:`ProblemError` line naming the file and line; pinnbal's own errors, and
    exceptions with no user frame (bugs of ours), pass through unchanged."""
    try:
        yield
    except PinnbalError:
        raise
    except Exception as exc:
        frame = user_frame(exc)
        if frame is None:
            raise
        raise ProblemError(f"{frame.filename}:{frame.lineno}: {type(exc).__name__}: {exc}") from None
