"""Data files a problem reads (reference solutions, measurements), found where the user keeps them.

Problem files never ship large data and pinnbal never downloads: a problem
asks ``pb.find_data("burgers1d.dat", env="PINNBAL_PINNACLE_DIR", source=...)``
and gets the file from the folder given by ``--data DIR`` on the command
line (stored in ``PINNBAL_DATA_DIR`` so that worker processes see it too),
else from the folder in the environment variable ``env``; when it is in
neither, one line says where to get it.  ``pb.read_comsol`` reads a COMSOL
text export (``%`` header lines, then one row of numbers per mesh node).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import OptionError, ProblemError

#: the folder of ``--data DIR``
DATA_DIR = "PINNBAL_DATA_DIR"


def use_data_dir(folder: str) -> None:
    """Make ``folder`` (``--data DIR``) the first place :func:`find_data` looks, for this process and its workers."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise OptionError(f"--data {folder}: no such folder; give the folder that holds the problem's data files")
    os.environ[DATA_DIR] = str(path.resolve())


def find_data(name: str, env: str = DATA_DIR, source: str = "") -> Path:
    """The path of the data file ``name``: in the ``--data`` folder, else in the folder ``$env``."""
    searched = []
    for variable in dict.fromkeys([DATA_DIR, env]):
        folder = os.environ.get(variable)
        if folder:
            path = Path(folder).expanduser() / name
            if path.is_file():
                return path
            searched.append(f"{path} (${variable})")
    where = f"looked at {', '.join(searched)}" if searched else f"neither --data nor ${env} is set"
    get = f"get it from {source}, then " if source else ""
    raise ProblemError(f"data file {name!r} not found ({where}); {get}pass its folder with --data DIR or set {env}")


def read_comsol(path: str | os.PathLike) -> np.ndarray:
    """The numbers of a COMSOL text export, shape (nodes, columns); ``%`` lines are its header."""
    try:
        rows = np.loadtxt(path, comments="%", ndmin=2)
    except (OSError, ValueError) as exc:
        raise ProblemError(f"read_comsol: cannot read {path}: {exc}") from None
    if rows.size == 0:
        raise ProblemError(f"read_comsol: {path} has no data rows")
    return rows
