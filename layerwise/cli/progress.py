"""Training progress on the terminal: a progress bar with loss, rate and ETA, and a line per epoch."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def plural(count: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs``: the count and the noun, in the number the count needs."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressReporter:
    """A Solver callback. On a terminal it redraws one bar line; elsewhere (logs, pipes) it
    prints a plain line every ``log_every`` iterations, so files stay readable, or none when
    ``log_every`` is None. Every epoch ends with a summary line."""

    def __init__(self, stream: TextIO | None = None, bar: bool | None = None, log_every: int | None = 100, width: int = 24):
        self.stream = stream or sys.stderr
        self.bar = self.stream.isatty() if bar is None else bar
        self.log_every = log_every
        self.width = width
        self._start_time: float | None = None
        self._start_iteration = 0
        self._last_draw = 0.0

    def on_step(self, solver, iteration: int, num_iterations: int, loss: float) -> None:
        now = time.perf_counter()
        if self._start_time is None:  # timing starts after the first step (it includes warm-up)
            self._start_time, self._start_iteration = now, iteration
        done = iteration - self._start_iteration
        if done:
            rate = done / max(now - self._start_time, 1e-9)
            speed = f"{rate:.1f} it/s ETA {format_duration((num_iterations - iteration) / rate)}"
        else:
            speed = "-- it/s ETA --:--"
        per_epoch = solver.iterations_per_epoch
        epoch = min((iteration - 1) // per_epoch + 1, solver.num_epochs)
        text = f"epoch {epoch}/{solver.num_epochs} it {iteration}/{num_iterations} loss {loss:.4f} {speed}"
        if self.bar:
            if now - self._last_draw < 0.1 and iteration != num_iterations:
                return
            self._last_draw = now
            filled = int(self.width * iteration / num_iterations)
            self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {text}\033[K")
            self.stream.flush()
        elif self.log_every is not None and (iteration == 1 or iteration % self.log_every == 0 or iteration == num_iterations):
            self.stream.write(text + "\n")
            self.stream.flush()

    def on_epoch_end(self, solver) -> None:
        if self.bar:
            self.stream.write("\r\033[K")
        self.stream.write(
            f"epoch {solver.epoch}/{solver.num_epochs}: train acc {solver.train_acc_history[-1]:.3f}, "
            f"val acc {solver.val_acc_history[-1]:.3f} (best {solver.best_val_acc:.3f})\n"
        )
        self.stream.flush()
