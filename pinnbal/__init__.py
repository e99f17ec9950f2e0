"""pinnbal: physics-informed neural networks with adaptive loss balancing.

A problem file defines a :class:`Problem`; :func:`train` trains it under a
balancer and writes a run directory; ``pinnbal run PROBLEM`` does the same
from the shell.
"""

from .balancers import Balancer, Stats, TermInfo  # noqa: E402
from .datafiles import find_data, read_comsol  # noqa: E402
from .errors import OptionError, PinnbalError, ProblemError  # noqa: E402
from .geometry import Box, Face  # noqa: E402
from .shapes import Ball, Disk, Polygon  # noqa: E402
from .loader import load_problem  # noqa: E402
from .points import Points  # noqa: E402
from .problem import L1, L2, Boundary, Data, ElasticNet, Initial, Problem, Regularisation, Residual  # noqa: E402
from .recipe import Recipe  # noqa: E402
from .reference import GridReference, ScatteredReference  # noqa: E402
from .rundir import SavedRun, read_run  # noqa: E402
from .train import Run, TrainConfig  # noqa: E402
from .version import __version__  # noqa: E402
from .workflow import resume, train  # noqa: E402

__all__ = [
    "Ball", "Balancer", "Box", "Disk", "Polygon", "ScatteredReference", "Boundary", "Data", "ElasticNet", "Face", "L1", "L2", "Regularisation", "GridReference", "Initial", "OptionError", "PinnbalError", "Points",
    "Problem", "ProblemError", "Recipe", "Residual", "Run", "SavedRun", "Stats", "TermInfo", "TrainConfig", "__version__",
    "find_data", "load_problem", "read_comsol", "read_run", "resume", "train",
]
