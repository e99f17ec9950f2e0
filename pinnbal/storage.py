"""Files written all or nothing, and read back: bytes, JSON, CSV, torch state.

Every write goes to a temporary file in the same directory, is fsynced and
then moved over the target with ``os.replace``, so a crash or a full disk
leaves either the old file or the new one, never half of one.  The run
directory (:mod:`pinnbal.rundir`), cached references and comparison
summaries all write through here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import torch

from .errors import StorageError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing; a failed write (disk full, ...) leaves the old file intact
    and no temporary file behind, and is raised as one clear :class:`StorageError`."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}; its previous version (if any) is intact. "
                           f"Free space or fix permissions, then run again") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def clean_json(value: Any) -> Any:
    """Non-finite floats become null (JSON has no NaN); tensors become numbers."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value


def write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, (json.dumps(clean_json(value), indent=2) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def write_csv(path: Path, rows: Iterable[dict[str, Any]], columns: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    atomic_write_bytes(path, buf.getvalue().encode())


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of ``history.csv`` with numbers parsed (empty cells → None)."""
    def parse(v: str) -> Any:
        if v == "":
            return None
        try:
            return float(v)
        except ValueError:
            return v

    with open(path, newline="") as fh:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def save_state(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_state(path: Path) -> dict[str, Any]:
    return torch.load(path, weights_only=True, map_location="cpu")

