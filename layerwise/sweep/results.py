"""A sweep folder's results: the append-only log of finished trials, and the ranked tables.

``DIR/trials.jsonl`` gets one JSON line per finished trial, appended with a single ``write`` on a
file opened with ``O_APPEND`` and then synced, so a crash leaves whole lines (and at worst a torn
last line, which is ignored). It is what ``--resume`` reads. ``DIR/results.csv`` and
``DIR/results.json`` are rewritten atomically (temporary file, then rename) after every trial,
ranked: ``ok`` trials by the metric (higher first, ties by trial), then ``stopped`` ones (early
stopping; by the metric too), then ``diverged``, then ``failed``. The curves of a record (lists)
are in ``results.json`` and ``trials.jsonl``, not in the CSV.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from ..cli import run_folder

LOG = "trials.jsonl"
METRIC_COLUMNS = ("best_val_acc", "final_val_acc", "best_train_acc", "final_train_acc", "epochs_done", "train_seconds",
                  "wall_seconds")  # fmt: skip
_STATUS_ORDER = {"ok": 0, "stopped": 1, "diverged": 2, "failed": 3}


def append_record(out_dir: Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one line of ``DIR/trials.jsonl``, in one write, synced to disk."""
    line = (json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")
    fd = os.open(out_dir / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        written = os.write(fd, line)
        if written != len(line):  # only on a full disk or similar; the torn line is ignored on reading
            raise OSError(f"{out_dir / LOG}: wrote {written} of {len(line)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)


def read_records(out_dir: Path) -> dict[int, dict[str, Any]]:
    """The finished trials recorded in ``DIR/trials.jsonl``, by trial index (the first record of each).

    A last line without its newline (a write cut short) is cut off the file, with a warning on
    stderr, so that the next record appended starts a line of its own; that trial runs again.
    """
    path = out_dir / LOG
    if not path.exists():
        return {}
    records: dict[int, dict[str, Any]] = {}
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines[-1]:
        print(f"layerwise: warning: {path}: the last line is incomplete (an interrupted write); that trial runs again",
              file=sys.stderr)  # fmt: skip
        os.truncate(path, len(text.encode("utf-8")) - len(lines[-1].encode("utf-8")))
    for number, line in enumerate(lines[:-1], start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: line {number} is not JSON ({error})") from None
        records.setdefault(record["trial"], record)
    return records


def ranked(records: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """``records`` sorted best first, each with its 1-based ``rank`` (copies; the inputs are kept)."""

    def key(record: dict[str, Any]):
        value = record.get(metric)
        return _STATUS_ORDER[record["status"]], -(value if value is not None else -math.inf), record["trial"]

    return [{"rank": rank, **record} for rank, record in enumerate(sorted(records, key=key), start=1)]


def columns(space_keys: list[str]) -> list[str]:
    """The columns of ``results.csv``, in order."""
    return ["rank", "trial", "status", "seed", *space_keys, *METRIC_COLUMNS, "threads", "error"]


def write_tables(out_dir: Path, records: list[dict[str, Any]], space_keys: list[str], metric: str,
                 early_stopping: dict[str, Any] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Rewrite ``results.csv`` and ``results.json`` (ranked) from ``records``; return the ranked records.

    ``results.json`` is ``{"metric", "early_stopping" (the rule as in sweep.json, or null), "trials"}``.
    """
    rows = ranked(records, metric)
    header = columns(space_keys)
    run_folder.write_csv(out_dir / "results.csv", header, ([_cell(row.get(name)) for name in header] for row in rows))
    run_folder.write_json(out_dir / "results.json", {"metric": metric, "early_stopping": early_stopping, "trials": rows})
    return rows


def _cell(value: Any) -> Any:
    """A CSV cell: lists and dicts as JSON, None as empty."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value
