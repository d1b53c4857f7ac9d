"""Train the notebooks' models on the full CIFAR-10 and print their accuracy, as one table.

Each row is one ``layerwise train`` command (run in a subprocess, so it is exactly what a user
types), with a fixed seed; the figures come from the run folder it writes. Reproduces the
notebooks' targets:

- TwoLayerNet: at least 50% validation accuracy within 5 epochs;
- the best FullyConnectedNet: at least 55% validation accuracy;
- ThreeLayerConvNet after one epoch: at least 40% validation accuracy.

Usage, from the repository root::

    python benchmarks/bench_cifar.py [--data ../shared/data/cifar-10-python.tar.gz] [--only fc]

The archive in ../shared/data is mostly JPEG re-encoded (see its README), so accuracies a point or
two below those published for the official files are expected. Wall times include loading the data
and the per-epoch accuracy checks; the machine's other load shows in them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name, target validation accuracy, layerwise train arguments
RUNS = [
    ("two-layer", 0.50, "--model two-layer --hidden-dim 500 --learning-rate 1e-4 --batch-size 100 --epochs 5 --lr-decay 0.8"),
    ("fc", 0.55, "--model fc --hidden-dims 512,256 --normalization batchnorm --dropout-keep 0.75 "
                 "--learning-rate 1e-3 --batch-size 200 --epochs 15 --lr-decay 0.9"),
    ("three-layer-conv", 0.40, "--model three-layer-conv --hidden-dim 500 --reg 0.001 --learning-rate 1e-3 --batch-size 50 --epochs 1"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cifar-10-python.tar.gz"))
    parser.add_argument("--only", help="run only the rows whose name contains this")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not Path(args.data).exists():
        print(f"no CIFAR-10 archive at {args.data}; pass --data", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, target, arguments in RUNS:
            if args.only and args.only not in name:
                continue
            run_dir = Path(scratch) / name
            command = f"layerwise train {arguments} --seed {args.seed} --no-progress"
            print(f"== {name}: {command} --data {args.data}", flush=True)
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "layerwise", "train", *shlex.split(arguments), "--seed", str(args.seed),
                 "--no-progress", "--data", args.data, "--run-dir", str(run_dir)],
                check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
            wall = time.perf_counter() - started
            metrics = json.loads((run_dir / "metrics.json").read_text())
            rows.append((name, metrics["best_val_acc"], target, metrics["test_accuracy"], metrics["train_seconds"], wall, command))
    print()
    print(f"{'model':<18}{'val acc':>8}{'target':>8}{'test acc':>9}{'train s':>9}{'wall s':>8}  command")
    for name, val, target, test, train_s, wall, command in rows:
        mark = "" if val >= target else "  (below target)"
        print(f"{name:<18}{val:>8.3f}{target:>8.2f}{test:>9.3f}{train_s:>9.0f}{wall:>8.0f}  {command}{mark}")
    return 0 if all(val >= target for _, val, target, *_ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
