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
from pathlib import Path

from .errors import PinnbalError, ProblemError
from .problem import Problem


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
    try:
        spec.loader.exec_module(module)
    except PinnbalError as exc:
        raise ProblemError(f"{path}: {exc}") from None
    except SyntaxError as exc:
        raise ProblemError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:  # any error in user code: report where, in one line
        line = _user_line(exc, path)
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
    return problem


def _user_line(exc: BaseException, path: Path) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == path.resolve()]
    return f":{frames[-1].lineno}" if frames else ""
