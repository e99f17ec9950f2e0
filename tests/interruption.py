"""One way to stop a run as SIGINT would, shared by the resume tests."""
from __future__ import annotations

import signal
from pathlib import Path

import pytest

import pinnbal as pb
from pinnbal.rundir import prepare_out_dir
from pinnbal.train import Interrupted, TrainConfig, Trainer, finish, write_run_start


def interrupted_run(problem_path: str | Path, spec: str, out: Path, stop_after: int, settings: dict) -> Trainer:
    """Train ``problem_path`` into ``out`` and stop it: the stop arrives while the row of step ``stop_after``
    is recorded and takes effect at the end of that Adam step or second-stage chunk, after a checkpoint."""
    path = str(Path(problem_path).resolve())
    trainer = Trainer(pb.load_problem(path), spec, TrainConfig(**settings), path, out=out)
    prepare_out_dir(out, force=False)
    write_run_start(out, trainer)
    record = trainer.record

    def record_then_signal(step, *args, **kwargs):
        record(step, *args, **kwargs)
        if step >= stop_after:
            trainer.stop.signum = signal.SIGINT

    trainer.record = record_then_signal
    with pytest.raises(Interrupted, match="--resume"):
        finish(trainer, out, progress=False, render=False)
    return trainer


def strip_wall(history: list[dict]) -> list[dict]:
    """History rows without their wall-clock times (the only column two identical runs may differ in)."""
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in history]
