"""Running a sweep: its folder, the trials on a back-end, the results as they come, the best model.

Layout of the sweep folder ``DIR/``::

    sweep.json           the sweep as run (base, space, trials, seed, metric, early_stopping); --resume reads it
    trials.jsonl         one line per finished trial, appended as it ends
    results.csv, results.json   every finished trial, ranked (rewritten after each)
    best/                the best ok trial as a ``layerwise train`` run folder (no checkpoints)
    sweep.png            the metric against the two most varied settings (needs matplotlib)
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, TextIO

from ..cli import run_folder, train
from ..cli.progress import plural
from . import local, ray_backend, results
from .plot import plot_sweep
from .progress import SweepProgress
from .space import SweepError
from .spec import SweepSpec, make_trials, parse_sweep
from .stopping import StoppingPlan
from .trial import TrialRun

BACKENDS = ("local", "ray")
SPEC_FILE = "sweep.json"
BEST_DIR = "best"


class SweepResult(NamedTuple):
    """What :func:`run_sweep` returns.

    Attributes
    ----------
    out_dir : Path
    records : list of dict
        Every finished trial, ranked (see :mod:`layerwise.sweep.results`).
    best : dict or None
        The best ok trial's record (its run folder is ``out_dir / "best"``).
    ran : int
        Trials run by this call (fewer than the sweep's on a resume).
    wall_seconds : float
        This call's time, data loading included.
    plotted : bool
        Whether ``sweep.png`` was written.
    """

    out_dir: Path
    records: list[dict[str, Any]]
    best: dict[str, Any] | None
    ran: int
    wall_seconds: float
    plotted: bool


def default_cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def plan_workers(backend: str, workers: int | None, threads: int | None, pending: int) -> tuple[int | None, int]:
    """``(workers, threads per trial)``: locally one trial per core and the cores shared out between them;
    on Ray one CPU per trial and as many trials as the cluster holds (None)."""
    for name, value in (("workers", workers), ("threads", threads)):
        if value is not None and (type(value) is not int or value < 1):
            raise SweepError(f"{name} must be a positive integer, got {value!r}")
    if backend == "ray":
        return workers, threads or 1
    workers = workers or max(1, min(default_cpus(), pending))
    return workers, threads or max(1, default_cpus() // workers)


def open_sweep(out_dir: Path, spec: SweepSpec | None, resume: bool, trials: int | None = None) -> SweepSpec:
    """Create the sweep folder for ``spec``, or read the recorded sweep of ``out_dir`` to resume it.

    On a resume, ``trials`` may extend the sweep (trial ``i``'s settings do not depend on the total).
    """
    path = out_dir / SPEC_FILE
    if resume:
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise SweepError(f"--resume: {out_dir} is not a sweep folder ({path}: {error})") from None
        spec = parse_sweep(recorded, {} if trials is None else {"trials": trials})
    else:
        if spec is None:
            raise SweepError("a sweep needs its spec unless it is resumed")
        if out_dir.exists() and any(out_dir.iterdir()):
            raise SweepError(f"--out: {out_dir} already holds files; use --resume {out_dir} to continue that sweep, or another folder")
    return spec


def run_sweep(spec: SweepSpec | None, out_dir: str | os.PathLike, *, backend: str = "local", workers: int | None = None,
              threads: int | None = None, address: str | None = None, resume: bool = False, trials: int | None = None,
              progress: TextIO | None = sys.stderr,
              on_result: Callable[[dict[str, Any]], None] | None = None) -> SweepResult:  # fmt: skip
    """Run (or resume) a sweep, writing its folder as trials finish.

    Parameters
    ----------
    spec : SweepSpec, or None to resume the one recorded in ``out_dir``
    out_dir : path
        The sweep folder: new (or empty), or one to resume.
    backend : {"local", "ray"}
    workers : int, optional
        Trials at once (local default: one per core; Ray: as many as the cluster's CPUs hold).
    threads : int, optional
        BLAS and layerwise threads per trial (local default: the cores shared between the workers;
        Ray: 1, each trial taking one CPU of the cluster).
    address : str, optional
        Ray only: an existing cluster's address.
    resume : bool
        Continue the sweep recorded in ``out_dir``, skipping the trials already recorded.
    trials : int, optional
        On a resume, a new trial budget (the recorded one by default).
    progress : text stream or None
        Where the progress lines go.
    on_result : callable, optional
        Called with each new record after it has been written (tests use it to interrupt).

    Raises
    ------
    SweepError
        Before anything runs, for a bad spec, folder or option; or a back-end that cannot start.
    KeyboardInterrupt
        When interrupted: the trials recorded so far stay, ``resume=True`` continues.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    if backend not in BACKENDS:
        raise SweepError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if address is not None and backend != "ray":
        raise SweepError("--address applies to --backend ray only")
    if backend == "ray" and not ray_backend.ray_available():
        raise SweepError("--backend ray needs Ray: pip install 'layerwise[ray]'")
    spec = open_sweep(out_dir, spec, resume, trials)
    all_trials = make_trials(spec)  # every trial's settings checked before anything runs or is written
    done = results.read_records(out_dir) if resume else {}
    records = [record for index, record in sorted(done.items()) if index < spec.trials]
    pending = [trial for trial in all_trials if trial.index not in done]
    workers, threads = plan_workers(backend, workers, threads, len(pending))
    run_folder.write_json(out_dir / SPEC_FILE, spec.to_json())

    space_keys = list(spec.space)
    early_stopping = None if spec.early_stopping is None else spec.early_stopping.to_json()
    results.write_tables(out_dir, records, space_keys, spec.metric, early_stopping)
    best = _best(records, spec.metric)
    display = SweepProgress(spec.trials, progress, spec.metric, space_keys)
    if pending:
        data, data_info, preprocessing = train.load_data(all_trials[0].config)
        if progress is not None:
            where = "Ray" + (f" at {address}" if address else "") if backend == "ray" else f"{plural(workers, 'local worker')}"
            print(train.describe_data(data_info), file=progress)
            print(f"Sweep {out_dir}: {len(pending)} of {spec.trials} trials to run on {where}, {plural(threads, 'thread')} each",
                  file=progress, flush=True)  # fmt: skip

        def record_result(record: dict[str, Any], run: TrialRun | None, running: int) -> None:
            nonlocal best
            results.append_record(out_dir, record)
            records.append(record)
            results.write_tables(out_dir, records, space_keys, spec.metric, early_stopping)
            if run is not None and _is_better(record, best, spec.metric):
                write_best(out_dir / BEST_DIR, record, run, data, data_info, preprocessing)
                best = record
            display.update(record, records, running, best)
            if on_result is not None:
                on_result(record)

        # Early stopping compares each trial with every earlier one, those recorded before a resume included.
        stopping = None if spec.early_stopping is None else StoppingPlan(spec.early_stopping, spec.metric, list(records))
        if backend == "local":
            local.run_local(pending, data, record_result, workers, threads, stopping=stopping)
        else:
            try:
                ray_backend.run_ray(pending, data, record_result, workers, threads, address=address, stopping=stopping)
            except ConnectionError as error:
                raise SweepError(f"--address: cannot connect to Ray ({error})") from None
    ranked = results.write_tables(out_dir, records, space_keys, spec.metric, early_stopping)
    plotted = plot_sweep(out_dir / "sweep.png", sorted(records, key=lambda r: r["trial"]), spec.space, spec.metric)
    best = next((record for record in ranked if best is not None and record["trial"] == best["trial"]), None)
    return SweepResult(out_dir, ranked, best, len(pending), time.perf_counter() - start, plotted)


def _best(records: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    ok = [record for record in records if record["status"] == "ok" and record.get(metric) is not None]
    return results.ranked(ok, metric)[0] if ok else None


def _is_better(record: dict[str, Any], best: dict[str, Any] | None, metric: str) -> bool:
    if record["status"] != "ok" or record.get(metric) is None:
        return False
    return best is None or results.ranked([record, best], metric)[0]["trial"] == record["trial"]


def write_best(best_dir: Path, record: dict[str, Any], run: TrialRun, data, data_info, preprocessing) -> None:
    """Write the trial as a ``layerwise train`` run folder: built aside, then swapped in for the old one."""
    staging = best_dir.with_name(best_dir.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    config = {**record["config"], "data_info": data_info}
    run_folder.write_json(staging / "config.json", config)
    run_folder.write_json(staging / "trial.json", {key: value for key, value in record.items() if key != "config"})
    model = train.build_model(config)
    model.params = {name: value.copy() for name, value in run.params.items()}
    if run.state:
        model.set_state(run.state)
    train.write_run_results(staging, model, run, data, data_info, preprocessing, io.StringIO(), test_flip=config["test_flip"])
    old = best_dir.with_name(best_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if best_dir.exists():
        best_dir.rename(old)
    staging.rename(best_dir)
    shutil.rmtree(old, ignore_errors=True)
