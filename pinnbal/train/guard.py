"""Protecting a run directory while a run is alive: a lock, and signals.

- :func:`run_lock`: ``RUN_DIR/.lock`` created with O_EXCL and holding the
  owner's pid; a second run pointed at the same directory is refused while
  the owner lives (a lock left by a killed process is taken over).
- :func:`stop_on_signals`: SIGINT and SIGTERM set a flag that the training
  loop reads after each step, so the step in flight finishes and a
  checkpoint is written; a second signal raises at once (files stay whole:
  every write is atomic).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path

from ..errors import OptionError

LOCK_NAME = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def run_lock(out: Path):
    path = Path(out) / LOCK_NAME
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                owner = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and _alive(owner):
                raise OptionError(f"--out {out}: in use by another pinnbal run (pid {owner}); "
                                  f"wait for it or choose another --out") from None
            path.unlink(missing_ok=True)  # stale: its owner is gone
    else:
        raise OptionError(f"--out {out}: cannot take the lock {path}")
    with os.fdopen(fd, "w") as fh:
        fh.write(str(os.getpid()))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


class StopFlag:
    """Which signal asked the run to stop (None while none has)."""

    def __init__(self):
        self.signum: int | None = None


@contextlib.contextmanager
def stop_on_signals(flag: StopFlag):
    if threading.current_thread() is not threading.main_thread():
        yield  # signals can only be handled in the main thread
        return

    def handler(signum, frame):
        if flag.signum is not None:  # second signal: stop now
            raise KeyboardInterrupt
        flag.signum = signum

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
