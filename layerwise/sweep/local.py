"""The local back-end: trials in parallel worker processes on this machine.

The training data goes to each worker process once, when it starts (not once per trial); each
trial then runs with its share of the cores as BLAS and layerwise threads, so that ``workers``
trials at once do not oversubscribe the machine. Processes are started with ``spawn``: a forked
child would inherit the parent's thread pools (BLAS's, layerwise's) in an unusable state.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable

import numpy as np

from .spec import Trial
from .trial import TrialRun, run_trial

OnResult = Callable[[dict[str, Any], "TrialRun | None", int], None]
"""Called in the driver as each trial ends: ``on_result(record, run, running)``."""

_data: dict[str, np.ndarray] | None = None  # the worker process's copy of the training data


def _receive_data(data: dict[str, np.ndarray]) -> None:
    global _data
    _data = data


def _run_in_worker(trial: Trial, threads: int):
    return run_trial(trial, _data, threads)


def run_local(trials: list[Trial], data: dict[str, np.ndarray], on_result: OnResult, workers: int, threads: int) -> None:
    """Run ``trials`` in ``workers`` processes of ``threads`` threads each, calling ``on_result`` as each ends.

    At most ``workers`` trials are submitted at once, so that an interruption (KeyboardInterrupt,
    or an exception from ``on_result``) leaves no queue behind: the running trials finish or die
    with their processes, and their results are not recorded.
    """
    if not trials:
        return
    context = multiprocessing.get_context("spawn")
    waiting = list(reversed(trials))
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_receive_data, initargs=(data,))
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
