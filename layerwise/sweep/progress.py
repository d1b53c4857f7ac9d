"""The sweep's progress on the terminal: a line per finished trial with the counts and the best so far."""

from __future__ import annotations

from typing import Any, TextIO

from .spec import describe


class SweepProgress:
    """Prints ``[done/total] trial i STATUS ... | running R, failed F, diverged D, best M (trial j)`` as trials end.

    Once a trial has stopped early, the counts show ``stopped S`` too.

    Parameters
    ----------
    total : int
        Trials in the sweep (those recorded before a resume included).
    stream : text stream, or None for silence
    metric : str
    space_keys : list of str
        The settings shown for each trial.
    """

    def __init__(self, total: int, stream: TextIO | None, metric: str, space_keys: list[str]):
        self.total, self.stream, self.metric, self.space_keys = total, stream, metric, space_keys

    def line(self, record: dict[str, Any], records: list[dict[str, Any]], running: int, best: dict[str, Any] | None) -> str:
        """The line for ``record``, given every record so far (``record`` included)."""
        settings = describe({key: record.get(key) for key in self.space_keys})
        if record["status"] == "ok":
            outcome = f"{self.metric} {_number(record.get(self.metric))}"
        elif record["status"] == "stopped":
            outcome = f"{self.metric} {_number(record.get(self.metric))} after epoch {record['epochs_done']}"
        else:
            error = record.get("error", "")
            outcome = error if len(error) <= 80 else error[:77] + "..."
        failed = sum(r["status"] == "failed" for r in records)
        diverged = sum(r["status"] == "diverged" for r in records)
        stopped = sum(r["status"] == "stopped" for r in records)
        leader = f"best {_number(best[self.metric])} (trial {best['trial']})" if best else "no best yet"
        width = len(str(self.total))
        return (
            f"[{len(records):>{width}}/{self.total}] trial {record['trial']} {record['status']}: {outcome} "
            f"({settings}; {record['wall_seconds']:.1f} s) | running {running}, failed {failed}, diverged {diverged}, "
            + (f"stopped {stopped}, " if stopped else "") + leader
        )

    def update(self, record: dict[str, Any], records: list[dict[str, Any]], running: int, best: dict[str, Any] | None) -> None:
        if self.stream is not None:
            print(self.line(record, records, running, best), file=self.stream, flush=True)


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"
