"""Running one trial: the training ``layerwise train`` does, without a run folder, never raising.

The trial follows ``layerwise train``'s steps with the trial's settings (seed the global
generator, build the model, train with the same Solver settings), so ``layerwise train --config``
of a trial's ``config``, run with its ``threads`` for BLAS and layerwise alike
(``OPENBLAS_NUM_THREADS=T layerwise train --config C --threads T``), gives the same parameters to
the bit (BLAS rounds the last bits differently on another number of threads; tested).
A trial whose loss becomes non-finite is ``diverged``; one that raises anything else is ``failed``;
either way the error is recorded and the sweep goes on. With early stopping (:mod:`.stopping`) a
trial the rule ends is ``stopped``, the reason in its ``error``; its training up to there is
``layerwise train --config`` of its ``config`` with ``--epochs`` its ``epochs_done``.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

from .._layers import threads as layer_threads
from ..cli.train import build_model, make_solver
from ..solver import NonFiniteLossError
from .spec import Trial
from .stopping import Stopper, TrialStopped, epoch_curve

STATUSES = ("ok", "stopped", "diverged", "failed")


class TrialRun(NamedTuple):
    """What a finished trial leaves besides its record: the model's parameters and its histories.

    It has the attributes of a Solver that ``train.write_run_results`` reads, so the best trial's
    run folder is written by the same code as ``layerwise train``'s.
    """

    params: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    loss_history: list[float]
    train_acc_history: list[float]
    val_acc_history: list[float]
    iterations_per_epoch: int
    best_val_acc: float
    epoch: int
    train_seconds: float


def run_trial(trial: Trial, data: dict[str, np.ndarray], threads: int,
              stopper: Stopper | None = None) -> tuple[dict[str, Any], TrialRun | None]:  # fmt: skip
    """Train trial ``trial`` on ``data`` with ``threads`` threads (BLAS and layerwise's own).

    Parameters
    ----------
    trial : Trial
    data : dict
        ``X_train`` (N, 3, 32, 32), ``y_train`` (N,), ``X_val``, ``y_val``: mean-subtracted, as
        ``train.load_data`` returns them; read, never written (they may be read-only shared memory).
    threads : int >= 1
    stopper : Stopper, optional
        Early stopping: the trial reports to its board after every epoch and stops when told.

    Returns
    -------
    record : dict
        ``trial``, ``status`` (one of ``STATUSES``), ``seed``, the space's settings, the metrics
        ``best_val_acc``, ``final_val_acc``, ``best_train_acc``, ``final_train_acc`` (None before
        the first accuracy check), ``epochs_done``, ``val_acc_curve`` and ``train_acc_curve`` (the
        accuracies at the end of each completed epoch), ``train_seconds``, ``wall_seconds``,
        ``threads``, ``error`` ("" when ok; why, when stopped) and ``config`` (every setting, for
        ``layerwise train --config``).
    run : TrialRun or None
        For ``ok`` trials: the trained (best) parameters and the histories.
    """
    start = time.perf_counter()
    record: dict[str, Any] = {"trial": trial.index, "status": "ok", "seed": trial.seed, **trial.settings}
    solver = None
    try:
        with threadpool_limits(threads), _layer_threads(threads):
            np.random.seed(trial.config["seed"])
            model = build_model(trial.config)
            callbacks = [stopper.callback(trial.index, trial.config["epochs"])] if stopper is not None else []
            solver = make_solver(model, data, trial.config, callbacks=callbacks)
            # Overflow ends in a non-finite loss, which is recorded as the divergence instead.
            with np.errstate(over="ignore", invalid="ignore"):
                solver.train()
    except TrialStopped as stopped:
        record.update(status="stopped", error=stopped.reason)
    except NonFiniteLossError as error:
        record.update(status="diverged", error=f"the loss became {error.loss} at iteration {error.iteration}")
    except Exception as error:  # noqa: BLE001 - any error ends this trial only, and is recorded
        record.update(status="failed", error=f"{type(error).__name__}: {error}")
    record.update(_metrics(solver), wall_seconds=round(time.perf_counter() - start, 3), threads=threads)
    record.setdefault("error", "")
    record["config"] = trial.config
    if stopper is not None:
        _tell_ended(stopper, record)
    if record["status"] != "ok":
        return record, None
    return record, TrialRun(
        params=dict(model.params), state=dict(_state(model)), loss_history=[float(x) for x in solver.loss_history],
        train_acc_history=list(solver.train_acc_history), val_acc_history=list(solver.val_acc_history),
        iterations_per_epoch=solver.iterations_per_epoch, best_val_acc=solver.best_val_acc, epoch=solver.epoch,
        train_seconds=solver.train_seconds,
    )  # fmt: skip


@contextlib.contextmanager
def _layer_threads(threads: int):
    """layerwise's threads set to ``threads`` for the duration (a worker process may run other trials)."""
    previous = layer_threads._requested
    layer_threads.set_num_threads(threads)
    try:
        yield
    finally:
        layer_threads.set_num_threads(previous)


def _tell_ended(stopper: Stopper, record: dict[str, Any]) -> None:
    """Tell the board that this trial ended, so the trials waiting on it go on even if its result is never collected."""
    try:
        stopper.ended(record)
    except Exception:  # noqa: BLE001 - a board gone (the sweep interrupted) must not turn the trial's result into an error
        pass


def _state(model) -> dict[str, np.ndarray]:
    get_state = getattr(model, "get_state", None)
    return get_state() if get_state is not None else {}


def failed_record(trial: Trial, error: str, wall_seconds: float = 0.0) -> dict[str, Any]:
    """The record of a trial that ended without training results, e.g. a task Ray gave up on."""
    record = {"trial": trial.index, "status": "failed", "seed": trial.seed, **trial.settings}
    record.update(_metrics(None), wall_seconds=round(wall_seconds, 3), threads=None, error=error, config=trial.config)
    return record


def _metrics(solver) -> dict[str, Any]:
    """The accuracies so far (None where no check ran), completed epochs and training time."""
    if solver is None:
        return {"best_val_acc": None, "final_val_acc": None, "best_train_acc": None, "final_train_acc": None,
                "epochs_done": 0, "train_seconds": 0.0, "val_acc_curve": [], "train_acc_curve": []}  # fmt: skip
    checked = bool(solver.val_acc_history)
    epochs = int(solver.epoch)
    return {
        "best_val_acc": _finite(solver.best_val_acc) if checked else None,
        "final_val_acc": _finite(solver.val_acc_history[-1]) if checked else None,
        "best_train_acc": _finite(max(solver.train_acc_history)) if checked else None,
        "final_train_acc": _finite(solver.train_acc_history[-1]) if checked else None,
        "epochs_done": epochs,
        "train_seconds": round(float(solver.train_seconds), 3),
        "val_acc_curve": epoch_curve(solver.val_acc_history, epochs),
        "train_acc_curve": epoch_curve(solver.train_acc_history, epochs),
    }


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
