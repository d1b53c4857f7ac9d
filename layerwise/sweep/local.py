"""The local back-end: trials in parallel worker processes on this machine.

The training data goes to each worker process once, when it starts (not once per trial); each
trial then runs with its share of the cores as BLAS and layerwise threads, so that ``workers``
trials at once do not oversubscribe the machine. Processes are started with ``spawn``: a forked
child would inherit the parent's thread pools (BLAS's, layerwise's) in an unusable state.

With early stopping, the board (:class:`.stopping.Board`) lives in a multiprocessing manager
process; each worker gets a proxy of it with the data. Trials are submitted in index order, so
the earlier trials a trial waits for are running or done.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing.managers import BaseManager
from typing import Any, Callable

import numpy as np

from .spec import Trial
from .stopping import Board, Stopper, StoppingPlan
from .trial import TrialRun, run_trial

OnResult = Callable[[dict[str, Any], "TrialRun | None", int], None]
"""Called in the driver as each trial ends: ``on_result(record, run, running)``."""

_data: dict[str, np.ndarray] | None = None  # the worker process's copy of the training data
_stopper: Stopper | None = None  # and its early stopping (a proxy of the board), if any


def _receive_data(data: dict[str, np.ndarray], stopper: Stopper | None = None) -> None:
    global _data, _stopper
    _data, _stopper = data, stopper


def _run_in_worker(trial: Trial, threads: int):
    return run_trial(trial, _data, threads, _stopper)


class _BoardManager(BaseManager):
    """A process holding the sweep's Board, reached through proxies from the driver and the workers."""


_BoardManager.register("Board", Board)


@contextlib.contextmanager
def _hosted_stopper(plan: StoppingPlan | None, context):
    """A Stopper whose board lives in a manager process for the duration (None without early stopping)."""
    if plan is None:
        yield None
        return
    with _BoardManager(ctx=context) as manager:  # the manager process ignores Ctrl-C; it ends on leaving
        yield plan.open(manager.Board(*plan.board_args()))


def run_local(trials: list[Trial], data: dict[str, np.ndarray], on_result: OnResult, workers: int, threads: int,
              stopping: StoppingPlan | None = None) -> None:  # fmt: skip
    """Run ``trials`` in ``workers`` processes of ``threads`` threads each, calling ``on_result`` as each ends.

    At most ``workers`` trials are submitted at once, so that an interruption (KeyboardInterrupt,
    or an exception from ``on_result``) leaves no queue behind: the running trials finish or die
    with their processes, and their results are not recorded. ``stopping``: early stopping.
    """
    if not trials:
        return
    context = multiprocessing.get_context("spawn")
    with _hosted_stopper(stopping, context) as stopper:
        waiting = list(reversed(trials))
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_receive_data, initargs=(data, stopper))
        running: dict[Any, Trial] = {}
        try:
            while waiting or running:
                while waiting and len(running) < workers:
                    trial = waiting.pop()
                    running[pool.submit(_run_in_worker, trial, threads)] = trial
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: running[f].index):
                    running.pop(future)
                    record, run = future.result()  # a dead worker process raises BrokenProcessPool here
                    on_result(record, run, len(running) + min(len(waiting), workers - len(running)))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
