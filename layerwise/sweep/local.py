"""The local back-end: trials in parallel worker processes on this machine.

The training data is copied once into shared memory blocks, which every worker process maps
read-only when it starts (no copy per worker, none per trial); where the shared memory file system
has too little room for it (a container's small /dev/shm), each worker gets a copy instead. Each
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
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing.managers import BaseManager
from multiprocessing.shared_memory import SharedMemory
from typing import Any, Callable

import numpy as np

from .spec import Trial
from .stopping import Board, Stopper, StoppingPlan
from .trial import TrialRun, run_trial

OnResult = Callable[[dict[str, Any], "TrialRun | None", int], None]
"""Called in the driver as each trial ends: ``on_result(record, run, running)``."""

_data: dict[str, np.ndarray] | None = None  # the worker process's read-only view of the training data
_blocks: list[SharedMemory] = []  # the shared memory behind it, kept open while the worker lives
_stopper: Stopper | None = None  # and its early stopping (a proxy of the board), if any

ArraySpec = tuple[str, tuple[int, ...], str]
"""A shared array: its block's name, its shape and its dtype (``dtype.str``)."""


SHM_FOLDER = "/dev/shm"  # where POSIX shared memory lives on Linux


def shared_memory_fits(nbytes: int) -> bool:
    """Whether ``nbytes`` fit in the shared memory file system with room to spare. Writing past a
    full tmpfs kills the process (SIGBUS) instead of raising, so this is asked before any block is made."""
    try:
        stats = os.statvfs(SHM_FOLDER)
    except OSError:  # no such folder (not Linux): the platform's shared memory is not a small tmpfs
        return True
    return nbytes + (64 << 20) <= stats.f_bavail * stats.f_frsize


@contextlib.contextmanager
def _shared(data: dict[str, np.ndarray]):
    """``data`` copied into shared memory blocks for the duration: yields ``{key: ArraySpec}``, or
    ``data`` itself where shared memory has too little room (:func:`shared_memory_fits`)."""
    if not shared_memory_fits(sum(array.nbytes for array in data.values())):
        yield data
        return
    blocks: list[SharedMemory] = []
    try:
        specs: dict[str, ArraySpec] = {}
        for key, array in data.items():
            block = SharedMemory(create=True, size=max(array.nbytes, 1))
            blocks.append(block)
            np.ndarray(array.shape, array.dtype, buffer=block.buf)[...] = array
            specs[key] = (block.name, array.shape, array.dtype.str)
        yield specs
    finally:
        for block in blocks:
            block.close()
            block.unlink()


def _receive_data(shared: dict[str, ArraySpec | np.ndarray], stopper: Stopper | None = None) -> None:
    """Worker initializer: map the shared arrays, read-only (training never writes its data); arrays
    sent as copies (no room in shared memory) are taken as they come."""
    global _data, _stopper
    _data = {}
    for key, spec in shared.items():
        if isinstance(spec, np.ndarray):
            _data[key] = spec
            continue
        name, shape, dtype = spec
        block = SharedMemory(name=name)
        _blocks.append(block)
        array = np.ndarray(shape, np.dtype(dtype), buffer=block.buf)
        array.flags.writeable = False
        _data[key] = array
    _stopper = stopper


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
    with _hosted_stopper(stopping, context) as stopper, _shared(data) as specs:
        waiting = list(reversed(trials))
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_receive_data, initargs=(specs, stopper))
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
