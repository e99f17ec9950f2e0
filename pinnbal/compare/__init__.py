"""Balancer comparison sweeps: ``pinnbal compare``.

A sweep trains every (problem, balancer, seed) as an ordinary run directory,
then summarises and draws them from those directories alone:

- :mod:`~pinnbal.compare.sweep`: planning and running a sweep, and :func:`compare`;
- :mod:`~pinnbal.compare.summary`: the runs read back, statistics, Markdown tables, summary files;
- :mod:`~pinnbal.compare.figures`: the matplotlib figures.
"""

from .figures import FIGURES, on_grid
from .summary import FINAL, ranks, steps_to
from .sweep import compare, folder_name, split_balancers

__all__ = ["FIGURES", "FINAL", "compare", "folder_name", "on_grid", "ranks", "split_balancers", "steps_to"]
