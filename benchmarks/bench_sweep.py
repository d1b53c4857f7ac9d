"""Wall time of one 16-trial sweep on the full CIFAR-10 archive: 1 worker, 2 workers, local Ray.

Usage: python3 benchmarks/bench_sweep.py [--data PATH] [--trials 16] [--num-training 5000]

Each trial is short (a one-hidden-layer net, one epoch on a subset of the training images) so the
sweep measures the back-ends, not the network. The data is loaded once per sweep (its time is
included in each total and printed separately). Every configuration runs the same trials (same
seed); those with one thread per trial must give the same ranking, which the script checks (BLAS
on two threads rounds the last bits differently, which can reorder close trials).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from layerwise.cli import settings, train
from layerwise.sweep import parse_sweep, run_sweep
from layerwise.sweep.ray_backend import ray_available
from layerwise.sweep.runner import default_cpus


def sweep_document(data: str, trials: int, num_training: int) -> dict:
    return {
        "base": {"model": "fc", "hidden_dims": [256], "normalization": "batchnorm", "data": data, "download": False,
                 "num_training": num_training, "epochs": 1, "batch_size": 100, "num_val_samples": 1000},
        "space": {"learning_rate": {"loguniform": [1e-4, 3e-3]}, "weight_scale": {"loguniform": [1e-3, 1e-1]}},
        "trials": trials, "seed": 0,
    }  # fmt: skip


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "unknown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/cifar-10-python.tar.gz"))
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--num-training", type=int, default=5000)
    args = parser.parse_args()
    spec = parse_sweep(sweep_document(args.data, args.trials, args.num_training))
    start = time.perf_counter()
    train.load_data(settings.resolve_settings({**spec.base, "seed": 0}))
    load = time.perf_counter() - start
    print(f"{cpu_name()}, {default_cpus()} CPUs; {args.trials} trials of 1 epoch on {args.num_training} images; "
          f"loading the data takes {load:.1f} s of each total; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    runs = [("local, 1 worker x 2 threads", dict(workers=1, threads=2)),
            ("local, 1 worker x 1 thread", dict(workers=1, threads=1)),
            ("local, 2 workers x 1 thread", dict(workers=2, threads=1))]  # fmt: skip
    if ray_available():
        runs.append(("ray (local instance), 2 x 1 CPU", dict(backend="ray")))
    rankings, base = {}, None
    with tempfile.TemporaryDirectory() as scratch:
        for name, options in runs:
            result = run_sweep(spec, Path(scratch) / name.replace(" ", "_"), progress=None, **options)
            rankings[name] = [(r["trial"], r["best_val_acc"]) for r in result.records]
            trials = sum(r["wall_seconds"] for r in result.records)
            base = base or result.wall_seconds
            print(f"| {name} | {result.wall_seconds:.1f} s | {base / result.wall_seconds:.2f}x | "
                  f"{trials / len(result.records):.2f} s |", flush=True)  # fmt: skip
    single = [ranking for name, ranking in rankings.items() if "x 2 threads" not in name]
    print("same ranking with one thread per trial:", all(ranking == single[0] for ranking in single))
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (the machine is shared)")


if __name__ == "__main__":
    main()
