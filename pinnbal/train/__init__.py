"""The training engine: one run's :class:`Trainer`, its loops and what watches them.

- :mod:`.config`     :class:`TrainConfig`, every setting of a run (the CLI's flags come from its fields);
- :mod:`.trainer`    :class:`Trainer`, one run's objects and the balanced step;
- :mod:`.loop`       the Adam stage and the second stage;
- :mod:`.callbacks`  history and progress bar, roll-back, checkpoints, time budget;
- :mod:`.records`    what a run records: the checkpoint (snapshot, restore), metrics, config;
- :mod:`.stages`, :mod:`.quasi_newton`  the second-stage optimisers (``--then``);
- :mod:`.early_stop`, :mod:`.guard`  early stopping; signals and the run lock.

Guards: a step whose loss or gradient is not finite is not applied (roll-back,
halved learning rate, an event in ``metrics.json``; five in a row end the run
as ``diverged``).  With a run directory a checkpoint is written every
``checkpoint_every`` steps and on SIGINT/SIGTERM, and
:func:`pinnbal.workflow.resume` continues from it exactly (same history on CPU).
:mod:`pinnbal.workflow` wraps the engine into the public ``pb.train``.
"""

from .callbacks import MAX_FAILURES
from .config import DEFAULT_BALANCER, DTYPES, default_balancer, TrainConfig, adam_progress, lr_schedule, pick_device
from .loop import fit
from .trainer import Run, Trainer

__all__ = ["DEFAULT_BALANCER", "DTYPES", "default_balancer", "MAX_FAILURES", "Run", "TrainConfig", "Trainer", "adam_progress", "fit",
           "lr_schedule", "pick_device"]
