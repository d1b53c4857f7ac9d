"""``layerwise sweep``: a hyperparameter search, in local processes or on Ray, into a sweep folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import settings as run_settings
from .progress import format_duration

RUNTIME = ("sweep", "trials", "workers", "threads", "backend", "address", "out", "resume", "metric", "early_stopping", "quiet",
           "handler", "command")  # fmt: skip


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run a hyperparameter search (local processes or Ray), ranking the trials",
        description=(
            "Train one model per trial of a search space and rank them. SWEEP.json is "
            '{"base": {SETTINGS}, "space": {SETTING: {"values"|"choice": [...]} or {"uniform"|"loguniform": [LOW, HIGH]}}} '
            'with optional "trials", "seed", "metric" and "early_stopping" ({"rule": "median", "grace_epochs": 1, '
            '"min_trials": 3}); the settings are the keys of a run\'s config.json, and the train options below set the '
            "base (they win over the file's). Writes DIR/results.csv and results.json (ranked), DIR/best/ (the best "
            "trial as a run folder) and DIR/sweep.png."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("sweep", metavar="SWEEP.json", nargs="?", help="the sweep (not with --resume)")
    group = parser.add_argument_group("sweep")
    group.add_argument("--trials", type=run_settings.positive_int, help="trials to run (default: the file's, else the grid's size, else 10)")
    group.add_argument("--metric", help="best_val_acc (default), final_val_acc, best_train_acc or final_train_acc")
    group.add_argument("--early-stopping", choices=("median", "none"), dest="early_stopping",
                       help="stop a trial whose best accuracy after an epoch is below the median of the earlier trials' at "
                            "that epoch (the file's grace_epochs and min_trials kept; none: every trial runs to its end)")
    group.add_argument("--workers", type=run_settings.positive_int, help="trials at once (default: one per core; Ray: the cluster's CPUs)")
    group.add_argument("--threads", type=run_settings.positive_int, help="threads per trial (default: the cores shared out; Ray: 1)")
    group.add_argument("--backend", choices=("local", "ray"), help="where the trials run (default local)")
    group.add_argument("--address", help="Ray: an existing cluster's address (default: a local Ray instance)")
    group.add_argument("--out", help="the sweep folder (default sweeps/DATE-TIME-NAME)")
    group.add_argument("--resume", metavar="DIR", help="continue the sweep in DIR, skipping the trials it recorded")
    group.add_argument("--quiet", action="store_true", help="no line per trial")
    run_settings.add_setting_arguments(parser)
    parser.set_defaults(handler=run)


def _overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Settings for the base, and the sweep's ``trials``, ``metric``, ``early_stopping``, ``seed`` (``--seed`` is the sweep's)."""
    sweep_keys = ("trials", "metric", "early_stopping")
    return {key: value for key, value in options.items() if key in run_settings.SETTINGS or key in sweep_keys}


def _with_preset(document: Any, preset: str | None) -> Any:
    """``document`` with a ``--preset``'s settings under its base (the base's own settings win, as a
    ``--config`` file's win over a preset in ``layerwise train``)."""
    if preset is None or not isinstance(document, dict) or not isinstance(document.get("base", {}), dict):
        return document
    return {**document, "base": {**run_settings.preset_settings(preset), **document.get("base", {})}}


def run(options: dict[str, Any]) -> int:
    """Entry point of ``layerwise sweep``: 0 when a trial ended ok, 1 when none did, 130 interrupted."""
    from ..sweep import SweepError, parse_sweep, run_sweep  # here: layerwise.sweep imports this package

    resume = options.get("resume")
    if resume:
        given = sorted(key for key in options if key not in RUNTIME or key in ("sweep", "metric", "early_stopping"))
        if given:
            raise SweepError(f"--resume continues the sweep recorded in {resume} (only --trials may change); "
                             f"drop {['SWEEP.json' if key == 'sweep' else run_settings.option_name(key) for key in given]}")  # fmt: skip
        spec, out_dir = None, Path(resume)
    else:
        if not options.get("sweep"):
            raise SweepError("give SWEEP.json, or --resume DIR")
        path = Path(options["sweep"])
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise SweepError(f"SWEEP.json: cannot read {path}: {error}") from None
        spec = parse_sweep(_with_preset(document, options.get("preset")), _overrides(options))
        out_dir = Path(options.get("out") or Path("sweeps") / f"{_timestamp()}-{path.stem}")
    stream = None if options.get("quiet") else sys.stderr
    try:
        result = run_sweep(
            spec, out_dir, backend=options.get("backend", "local"), workers=options.get("workers"),
            threads=options.get("threads"), address=options.get("address"), resume=bool(resume),
            trials=options.get("trials") if resume else None, progress=stream,
        )  # fmt: skip
    except KeyboardInterrupt:
        print(f"\nInterrupted; the finished trials are in {out_dir}. Continue with: layerwise sweep --resume {out_dir}",
              file=sys.stderr)  # fmt: skip
        return 130
    print(summary(result))
    return 0 if result.best is not None else 1


def summary(result, top: int = 5) -> str:
    """The sweep's outcome in a few lines: counts, the best trials, where the files are."""
    records = result.records
    counts = {status: sum(r["status"] == status for r in records) for status in ("ok", "stopped", "diverged", "failed")}
    metric = json.loads((result.out_dir / "results.json").read_text(encoding="utf-8"))["metric"]
    stopped = f"{counts['stopped']} stopped early, " if counts["stopped"] else ""
    lines = [
        f"{len(records)} trials ({counts['ok']} ok, {stopped}{counts['diverged']} diverged, {counts['failed']} failed); "
        f"{result.ran} run in {format_duration(result.wall_seconds)}",
    ]
    from ..sweep.spec import describe

    config_keys = [key for key in records[0] if key in run_settings.SETTINGS] if records else []
    for record in records[:top]:
        value = "-" if record.get(metric) is None else f"{record[metric]:.4f}"
        settings = describe({key: record[key] for key in config_keys if key != "seed"})
        lines.append(f"  {record['rank']:>3}. trial {record['trial']:<4} {record['status']:<8} {metric} {value}  {settings}")
    if result.best is not None:
        best_dir = result.out_dir / "best"
        lines.append(f"Best: trial {result.best['trial']}; its model is in {best_dir} (layerwise evaluate {best_dir})")
    else:
        lines.append("No trial ended ok: see the errors in results.csv")
    lines.append(f"Results: {result.out_dir / 'results.csv'}" + (f", plot {result.out_dir / 'sweep.png'}" if result.plotted else ""))
    return "\n".join(lines)


def _timestamp() -> str:
    import time

    return time.strftime("%Y%m%d-%H%M%S")
