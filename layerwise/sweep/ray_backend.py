"""The Ray back-end: the same trials as Ray tasks, on a local Ray instance or an existing cluster.

Built on Ray's core tasks rather than on Ray Tune. A trial is one task; the training data is put
in the object store once (``ray.put``) and every task gets a reference to it, which a worker on the
same node reads without a copy. A task whose worker or node dies (a system failure) is resubmitted
by Ray, up to ``max_retries`` times; exceptions inside training never leave the task (they become
the trial's ``failed``/``diverged`` record), so retries happen only for lost work, and each task's
result is taken once: every trial is recorded exactly once.

With early stopping, the board (:class:`.stopping.Board`) is a threaded actor of no CPU; a trial
waiting on it for the earlier trials is blocked in ``ray.get``, which frees its CPU for them. The
driver tells the board of every trial that ends, a trial Ray gave up on included.

Why not Tune: a trial's outcome here depends only on its seed and settings (and, with early
stopping, on the trials before it), which makes the two back-ends give the same ranking and
``layerwise train --config`` repeat any trial. Tune's schedulers (ASHA, median stopping) stop a
trial by comparing it with the trials that happen to have reported before it, so what a trial
records would depend on timing and concurrency (see benchmarks/README.md, "Sweeps").
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .local import OnResult
from .spec import Trial
from .stopping import Board, StoppingPlan
from .trial import failed_record, run_trial


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("the Ray back-end needs Ray: pip install 'layerwise[ray]'") from None
    return ray


def _worker_env() -> dict[str, Any]:
    """A runtime environment whose workers import this very ``layerwise`` (a source tree need not be installed)."""
    source = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(part for part in (source, os.environ.get("PYTHONPATH", "")) if part)
    return {"env_vars": {"PYTHONPATH": path}}


def _ray_trial(trial: Trial, data: dict[str, np.ndarray], threads: int, stopper):
    return run_trial(trial, data, threads, stopper)


class ActorBoard:
    """The board's methods, called on its Ray actor (what a Stopper holds on this back-end; picklable)."""

    def __init__(self, actor):
        self.actor = actor

    def report(self, trial: int, curve: list[float], ended: bool = False) -> None:
        _import_ray().get(self.actor.report.remote(trial, curve, ended))

    def decide(self, trial: int, epoch: int, timeout: float) -> str | None:
        return _import_ray().get(self.actor.decide.remote(trial, epoch, timeout))


def run_ray(trials: list[Trial], data: dict[str, np.ndarray], on_result: OnResult, workers: int | None, threads: int,
            address: str | None = None, max_retries: int = 3, stopping: StoppingPlan | None = None) -> None:  # fmt: skip
    """Run ``trials`` as Ray tasks of ``threads`` CPUs each, calling ``on_result`` as each ends.

    Parameters
    ----------
    workers : int or None
        The most trials in flight at once; None: as many as the cluster's CPUs hold.
    address : str or None
        An existing cluster's address (``ray.init(address=...)``); None: the Ray instance this
        process is already connected to, else a new local one (without the dashboard), shut down
        at the end.
    max_retries : int
        How many times Ray resubmits a trial whose worker or node died.
    stopping : StoppingPlan, optional
        Early stopping.
    """
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, runtime_env=_worker_env())
    try:
        if not trials:
            return
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1) // threads))
        remote = ray.remote(_ray_trial).options(
            num_cpus=threads, max_retries=max_retries, retry_exceptions=False, runtime_env=_worker_env()
        )
        data_ref = ray.put(data)
        stopper = None
        if stopping is not None:
            # Every trial in flight may wait on the board at once; a few more threads for the driver's calls.
            actor = ray.remote(Board).options(num_cpus=0, max_concurrency=workers + 4, runtime_env=_worker_env())
            board = actor.remote(*stopping.board_args())
            stopper = stopping.open(ActorBoard(board))
        waiting = list(reversed(trials))
        running: dict[Any, Trial] = {}
        try:
            while waiting or running:
                while waiting and len(running) < workers:
                    trial = waiting.pop()
                    running[remote.remote(trial, data_ref, threads, stopper)] = trial
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    trial = running.pop(ref)
                    record, run = _result(ray, ref, trial)
                    if stopper is not None:
                        stopper.ended(record)
                    on_result(record, run, len(running) + min(len(waiting), workers - len(running)))
        except BaseException:
            for ref in running:
                ray.cancel(ref, force=True)
            raise
        finally:
            if stopper is not None:
                ray.kill(board)
    finally:
        if started_here:
            ray.shutdown()


def _result(ray, ref, trial: Trial):
    """The task's ``(record, run)``; a task Ray gave up on (retries spent) becomes a ``failed`` record."""
    start = time.perf_counter()
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as error:
        text = str(error).strip()
        first_line = text.splitlines()[0] if text else type(error).__name__
        return failed_record(trial, f"{type(error).__name__}: {first_line}", time.perf_counter() - start), None
