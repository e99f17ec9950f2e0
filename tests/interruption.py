"""One way to stop a run as SIGINT would, shared by the resume tests."""
from __future__ import annotations

import signal
from pathlib import Path

import pytest

import pinnbal as pb
from pinnbal.rundir import prepare_out_dir, write_run_start
from pinnbal.train import TrainConfig, Trainer
from pinnbal.train.records import config_record
from pinnbal.workflow import Interrupted, finish


def interrupted_run(problem_path: str | Path, spec: str, out: Path, stop_after: int, settings: dict) -> Trainer:
    """Train ``problem_path`` into ``out`` and stop it: the stop arrives while the row of step ``stop_after``
    is recorded and takes effect at the end of that Adam step or second-stage chunk, after a checkpoint."""
    path = str(Path(problem_path).resolve())
    trainer = Trainer(pb.load_problem(path), spec, TrainConfig(**settings), path, out=out)
    prepare_out_dir(out, force=False)
    write_run_start(out, config_record(trainer))

    def signal_after(row):
        if row["step"] >= stop_after:
            trainer.stop.signum = signal.SIGINT

    trainer.on_row.append(signal_after)
    with pytest.raises(Interrupted, match="--resume"):
        finish(trainer, out, progress=False, render=False)
    return trainer


def strip_wall(history: list[dict]) -> list[dict]:
    """History rows without their wall-clock times (the only column two identical runs may differ in)."""
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in history]


def whole_and_resumed(problem_path: str | Path, spec: str, settings: dict, stop_after: int, tmp: Path):
    """The same run trained straight through and stopped after row ``stop_after`` then resumed: (whole, resumed)."""
    from pinnbal.workflow import resume, train

    whole = train(str(problem_path), spec, out=tmp / "whole", render=False, **settings)
    interrupted_run(problem_path, spec, tmp / "cut", stop_after, settings)
    return whole, resume(tmp / "cut", render=False)
