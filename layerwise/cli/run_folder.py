"""The run folder a training run writes: config, metrics, plots, checkpoints and the model.

Layout of ``RUN/``::

    config.json           every setting, resolved (the run is rebuilt from it on --resume)
    loss.csv              iteration,loss
    epochs.csv            epoch,train_acc,val_acc
    loss.png, accuracy.png, filters.png (conv nets), confusion.png
    confusion.csv, metrics.json   test accuracy, per-class accuracy, confusion matrix
    model.npz + model.json        the trained model (best validation accuracy)
    checkpoints/checkpoint_epoch_N.npz/.json   the training state after epoch N (newest two kept)
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_STEM = "checkpoint"  # the Solver appends _epoch_N
_CHECKPOINT = re.compile(rf"^{CHECKPOINT_STEM}_epoch_(\d+)\.json$")


def write_text(path: Path, text: str) -> None:
    """Write a UTF-8 text file atomically, with the mode a plain ``open`` would give it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def write_json(path: Path, value: Any) -> None:
    write_text(path, json.dumps(value, indent=2, allow_nan=False) + "\n")


def write_csv(path: Path, header: list[str], rows) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def checkpoint_stem(run_dir: Path) -> str:
    """The ``checkpoint_name`` to give the Solver: files become ``checkpoints/checkpoint_epoch_N.*``."""
    return str(run_dir / CHECKPOINT_DIR / CHECKPOINT_STEM)


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(epoch, json path)`` of every complete checkpoint, oldest first."""
    folder = run_dir / CHECKPOINT_DIR
    found = []
    if folder.is_dir():
        for path in folder.iterdir():
            match = _CHECKPOINT.match(path.name)
            if match and path.with_suffix(".npz").is_file():
                found.append((int(match.group(1)), path))
    return sorted(found)


def prune_checkpoints(run_dir: Path, keep: int = 2) -> None:
    """Delete all but the newest ``keep`` checkpoints (the newest one is never touched)."""
    for _, path in checkpoints(run_dir)[:-keep]:
        path.unlink(missing_ok=True)
        path.with_suffix(".npz").unlink(missing_ok=True)
