"""Balancer comparison sweeps: ``pinnbal compare``.

A sweep trains every (problem, balancer, seed) as an ordinary run directory,
then summarises and draws them from those directories alone:

- :mod:`~pinnbal.compare.plan`: what a sweep is and which of its runs are still to train;
- :mod:`~pinnbal.compare.results`: what became of each run; finished runs read back per balancer;
- :mod:`~pinnbal.compare.figures`: the matplotlib figures;
- :mod:`~pinnbal.compare.summary`: statistics, Markdown tables, summary files;
- :mod:`~pinnbal.compare.execute` and :mod:`~pinnbal.compare.ray_executor`: running the jobs here or on Ray;
- :mod:`~pinnbal.compare.sweep`: :func:`compare`, the whole sweep.
"""

from .figures import FIGURES, on_grid
from .plan import FINAL, folder_name, split_balancers
from .results import steps_to
from .summary import ranks
from .sweep import compare

__all__ = ["FIGURES", "FINAL", "compare", "folder_name", "on_grid", "ranks", "split_balancers", "steps_to"]
