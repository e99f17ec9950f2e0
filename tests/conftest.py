"""Shared fixtures for the CLI tests: tiny problem files and ways to run ``pinnbal``.

Everything here is sized to be fast on a 2-core CPU: a 1D Poisson problem with
64 residual points, a width-8 one-hidden-layer network and a handful of steps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROBLEMS = REPO / "problems"

#: Training options that keep a run to a fraction of a second.
FAST = ["--steps", "5", "--lbfgs", "0", "--width", "8", "--depth", "1", "--quiet", "--no-render"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: u'' = -pi^2 sin(pi x) on [0, 1], u(0) = u(1) = 0; exact u = sin(pi x).
DEFAULT_TERMS = [
    'pb.Residual("pde", lambda p: p.u_xx + math.pi**2 * torch.sin(math.pi * p.x), points=64)',
    'pb.Boundary("ends", value=0.0, points=2)',
]

TEMPLATE = """\
import math

import numpy as np
import torch

import pinnbal as pb

{extra}

problem = pb.Problem(
    name={name!r},
    domain={domain},
    outputs={outputs},
    terms=[
        {terms}
    ],
    reference={reference},
    unknowns={unknowns},
)
"""


def problem_source(
    terms: list[str] | None = None,
    *,
    name: str = "tiny",
    domain: str = "pb.Box(x=(0.0, 1.0))",
    outputs: str = '["u"]',
    reference: str = "lambda p: torch.sin(math.pi * p.x)",
    unknowns: str = "None",
    extra: str = "",
) -> str:
    """The text of a problem file; by default the tiny 1D Poisson problem."""
    return TEMPLATE.format(
        extra=textwrap.dedent(extra),
        name=name,
        domain=domain,
        outputs=outputs,
        terms=",\n        ".join(DEFAULT_TERMS if terms is None else terms),
        reference=reference,
        unknowns=unknowns,
    )


@pytest.fixture
def src_dir(tmp_path: Path) -> Path:
    """Where problem files are written (kept apart from the working directory)."""
    d = tmp_path / "src"
    d.mkdir()
    return d


@pytest.fixture
def work_dir(tmp_path: Path, monkeypatch) -> Path:
    """An empty current working directory for the test (default run dirs land here)."""
    d = tmp_path / "work"
    d.mkdir()
    monkeypatch.chdir(d)
    return d


@pytest.fixture
def write_problem(src_dir: Path):
    """``write_problem(source=None, filename="problem.py", **problem_source_kwargs) -> Path``.

    With ``source`` the text is written as is (dedented); otherwise it is built
    by :func:`problem_source` from the keyword arguments.
    """

    def write(source: str | None = None, filename: str = "problem.py", **kwargs) -> Path:
        text = textwrap.dedent(source) if source is not None else problem_source(**kwargs)
        path = src_dir / filename
        path.write_text(text)
        return path

    return write


@pytest.fixture
def tiny_problem(write_problem) -> Path:
    """The default tiny Poisson problem file (with a closed-form reference)."""
    return write_problem()


@dataclass
class CliResult:
    rc: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture
def cli(capsys):
    """Run ``pinnbal.cli.main(argv)`` in-process; return rc, stdout and stderr.

    argparse usage errors leave by ``SystemExit``; its code is returned like a
    normal exit code.
    """
    from pinnbal.cli import main

    def run(*args) -> CliResult:
        argv = [str(a) for a in args]
        capsys.readouterr()
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(rc, captured.out, captured.err)

    return run


def run_pinnbal(*args, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real ``pinnbal`` console script (falls back to ``python -m pinnbal.cli``)."""
    import shutil

    exe = shutil.which("pinnbal")
    cmd = [exe] if exe else [sys.executable, "-m", "pinnbal.cli"]
    env = dict(os.environ, PYTHONWARNINGS="ignore", MPLBACKEND="Agg")
    return subprocess.run(
        cmd + [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture
def pinnbal_subprocess():
    return run_pinnbal
