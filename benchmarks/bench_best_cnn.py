"""Train the ``best-cnn`` preset on the full CIFAR-10 and the same network and recipe in PyTorch.

Usage, from the repository root::

    python benchmarks/bench_best_cnn.py [--data ../shared/data/cifar-10-python.tar.gz] [--epochs 8]
                                        [--frameworks layerwise,torch] [--out DIR] [--profile-only]

Each framework trains in a process of its own (two thread pools in one process would share the
cores), one after the other, on the same data split and preprocessing (``layerwise``'s loader,
per-channel mean and standard deviation of the training images), with the preset's recipe: the
network of :data:`layerwise.cli.presets.PRESETS["best-cnn"]`, random crop (reflect pad 4) and
horizontal flip, SGD with Nesterov momentum 0.9 and weight decay 5e-4, a one-cycle learning rate
(max 0.2), label smoothing 0.1, batch 256, and the full 10,000-image test set scored with flip
averaging after every epoch. The test scoring is not counted as training time; the validation
check each epoch (1,000 images) is, in both.

Printed, in one run:

* the processor, the threads and the BLAS kernel in use;
* the machine's float32 matrix-product rate (a 2048 x 2048 product, best of several), the
  preset's FLOPs per epoch (convolutions and the affine layer, forward and backward) and each
  framework's achieved rate against it;
* a per-layer-type time breakdown of one layerwise training step (batch 256);
* one row per epoch: each framework's test accuracy and elapsed training time;
* time to 80% test accuracy, the median epoch time of each and their ratio (layerwise / torch).

``--out DIR`` also writes ``results.json`` and ``curve.png`` (test accuracy against training time,
both frameworks). PyTorch rows are left out when torch is not installed.

On processors where the environment pins OpenBLAS to an older kernel (``OPENBLAS_CORETYPE``), run
this with that variable and ``OPENBLAS_L2_SIZE`` unset to measure what NumPy picks by itself; the
header names the kernel in use.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.80
BATCH = 256


# --- what the network costs ----------------------------------------------------------------------


def conv_layers(blocks, image=32, channels=3):
    """(C_in, F, H, W) of each 3x3 'same' convolution of the preset's blocks (as ``parse_blocks``
    gives them), at its input size."""
    layers, size = [], image
    for block in blocks:
        layers.append((channels, block["filters"], size, size))
        channels = block["filters"]
        if block["pool"]:
            size //= 2
    return layers, channels


def flops_per_image(blocks, num_classes=10) -> float:
    """Multiply-adds x 2 of one image's forward and backward pass: the convolutions and the affine
    layer; the backward pass costs twice the forward (dx and dw), the first layer's once (no dx)."""
    layers, features = conv_layers(blocks)
    total = 0.0
    for i, (C, F, H, W) in enumerate(layers):
        forward = 2.0 * C * F * 9 * H * W
        total += forward * (2 if i == 0 else 3)
    total += 2.0 * features * num_classes * 3
    return total


def matmul_rate(threads: int) -> float:
    """float32 GFLOP/s of a 2048 x 2048 product on ``threads`` BLAS threads (best of five)."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    b = a.T.copy()
    with threadpool_limits(threads, user_api="blas"):
        a @ b
        best = min(_timed(lambda: a @ b) for _ in range(5))
    return 2 * 2048**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- the children: one framework each -----------------------------------------------------------


def _preset_options(args) -> dict:
    options = {"preset": "best-cnn", "data": args.data, "epochs": args.epochs, "seed": args.seed}
    return options if args.num_training is None else {**options, "num_training": args.num_training}



def layerwise_child(args) -> None:
    """Train the preset through the command line's own functions; a JSON line per epoch."""
    from layerwise import inference
    from layerwise.cli import settings
    from layerwise.cli import train as train_cli

    config = settings.resolve_config(_preset_options(args))
    np.random.seed(config["seed"])
    data, _, _ = train_cli.load_data(config)
    model = train_cli.build_model(config)
    reporter = EpochReporter(lambda: inference.class_scores(model, data["X_test"], flip=True), data["y_test"])
    solver = train_cli.make_solver(model, data, config, callbacks=[reporter])
    reporter.start()
    solver.train()


class EpochReporter:
    """Solver callback: after every epoch, score the test set (the clock paused) and print a JSON line."""

    def __init__(self, scores, y_test):
        self.scores, self.y_test = scores, y_test

    def start(self) -> None:
        self.started, self.paused = time.perf_counter(), 0.0

    def on_epoch_end(self, solver) -> None:
        if solver.epoch == 0:
            return
        self.report(solver.epoch)

    def report(self, epoch: int) -> None:
        elapsed = time.perf_counter() - self.started - self.paused
        start = time.perf_counter()
        accuracy = float(np.mean(np.argmax(self.scores(), axis=1) == self.y_test))
        self.paused += time.perf_counter() - start
        print(json.dumps({"epoch": epoch, "test_acc": accuracy, "seconds": elapsed}), flush=True)


def torch_child(args) -> None:
    """The same network and recipe in PyTorch, on the same data (layerwise's loader and normalization)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from layerwise.cli import settings
    from layerwise.cli import train as train_cli

    config = settings.resolve_config(_preset_options(args))
    torch.manual_seed(config["seed"])
    torch.set_num_threads(args.threads)
    data, _, _ = train_cli.load_data(config)
    X_train, y_train = torch.from_numpy(data["X_train"]), torch.from_numpy(data["y_train"]).long()
    X_val, y_val = torch.from_numpy(data["X_val"]), torch.from_numpy(data["y_val"]).long()
    X_test = torch.from_numpy(data["X_test"])

    layers, channels = [], 3
    for block in settings.parse_blocks(config["blocks"]):
        layers += [nn.Conv2d(channels, block["filters"], 3, padding=1), nn.BatchNorm2d(block["filters"]), nn.ReLU()]
        layers += [nn.MaxPool2d(2)] if block["pool"] else []
        channels = block["filters"]
    pool = nn.AdaptiveMaxPool2d(1) if config["global_pool"] == "max" else nn.AdaptiveAvgPool2d(1)
    net = nn.Sequential(*layers, pool, nn.Flatten(), nn.Linear(channels, 10))
    optim = config["optim_config"]
    optimizer = torch.optim.SGD(
        net.parameters(), lr=config["learning_rate"], momentum=optim["momentum"], nesterov=True,
        weight_decay=optim["coupled_weight_decay"],
    )  # fmt: skip
    per_epoch = len(X_train) // BATCH
    schedule = config["lr_schedule"]
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=schedule["max_lr"], total_steps=args.epochs * per_epoch)

    def scores(X):
        net.eval()
        with torch.no_grad():
            out = torch.cat([F.softmax(net(X[i : i + 500]), 1) + F.softmax(net(X[i : i + 500].flip(3)), 1) for i in range(0, len(X), 500)])
        net.train()
        return out.numpy()

    reporter = EpochReporter(lambda: scores(X_test), data["y_test"])
    generator = torch.Generator().manual_seed(config["seed"])
    reporter.start()
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(X_train), generator=generator)
        for step in range(per_epoch):
            index = order[step * BATCH : (step + 1) * BATCH]
            X = crop_flip(X_train[index], generator)
            optimizer.zero_grad()
            loss = F.cross_entropy(net(X), y_train[index], label_smoothing=config["label_smoothing"])
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss.item()
        net.eval()
        with torch.no_grad():  # the per-epoch validation check layerwise's Solver makes
            (net(X_val).argmax(1) == y_val).float().mean().item()
        net.train()
        reporter.report(epoch)


def crop_flip(X, generator):
    """Random 32x32 crops of the reflect-padded (4) batch and random horizontal flips, batched."""
    import torch
    import torch.nn.functional as F

    N, _, H, W = X.shape
    padded = F.pad(X, (4, 4, 4, 4), mode="reflect")
    dy = torch.randint(0, 9, (N,), generator=generator)
    dx = torch.randint(0, 9, (N,), generator=generator)
    rows = (dy[:, None] + torch.arange(H)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(W)[None, :])
    flip = torch.rand(N, generator=generator) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]
    batch = torch.arange(N)[:, None, None, None]
    channel = torch.arange(X.shape[1])[None, :, None, None]
    return padded[batch, channel, rows, cols]


# --- the step profile -------------------------------------------------------------------------------


# Where the profile reads the clock: (module, function name, layer type).
PROFILED = [
    ("layerwise.layer_utils", "conv_forward_fast", "conv"),
    ("layerwise.layer_utils", "conv_backward_fast", "conv"),
    ("layerwise.layer_utils", "conv_backward_fast_weights", "conv"),
    ("layerwise.layer_utils", "spatial_batchnorm_relu_forward", "batchnorm+relu"),
    ("layerwise.layer_utils", "spatial_batchnorm_relu_backward", "batchnorm+relu"),
    ("layerwise.layer_utils", "max_pool_forward_fast", "max pool"),
    ("layerwise.layer_utils", "max_pool_backward_fast", "max pool"),
    ("layerwise.classifiers.convnet", "affine_forward", "affine+loss"),
    ("layerwise.classifiers.convnet", "affine_backward", "affine+loss"),
    ("layerwise.classifiers.convnet", "softmax_loss", "affine+loss"),
]


def profile_child(args) -> None:
    """Median per-layer-type milliseconds of layerwise training steps of the preset (batch 256):
    the augmentation, the model's forward and backward pass by layer type, and the update rule."""
    import importlib

    from layerwise import optim
    from layerwise.augmentation import make_augmentation
    from layerwise.cli import settings
    from layerwise.cli import train as train_cli

    config = settings.resolve_config({"preset": "best-cnn", "sample": True, "seed": args.seed})
    np.random.seed(0)
    model = train_cli.build_model(config)
    augment = make_augmentation(config["augment"], config["seed"])
    rule = optim.get_update_rule(config["update_rule"])
    configs = {name: {**config["optim_config"], "learning_rate": 0.01} for name in model.params}
    X = np.random.default_rng(0).standard_normal((BATCH, 3, 32, 32)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 10, BATCH)
    spent: dict[str, float] = {}

    def timed(kind, fn):
        def run(*a, **k):
            start = time.perf_counter()
            result = fn(*a, **k)
            spent[kind] = spent.get(kind, 0.0) + time.perf_counter() - start
            return result

        return run

    originals = []
    for module_name, name, kind in PROFILED:
        module = importlib.import_module(module_name)
        if hasattr(module, name):
            originals.append((module, name, getattr(module, name)))
            setattr(module, name, timed(kind, getattr(module, name)))

    from layerwise.classifiers import convnet  # its global pools are looked up in a table

    global_pools = convnet._GLOBAL_POOLS
    convnet._GLOBAL_POOLS = {key: tuple(timed("global pool", fn) for fn in pair) for key, pair in global_pools.items()}

    def step():
        batch = timed("augmentation", augment)(X)
        loss, grads = model.loss(batch, y)
        start = time.perf_counter()
        for name, w in model.params.items():
            model.params[name], configs[name] = rule(w, grads[name], configs[name])
        spent["update"] = spent.get("update", 0.0) + time.perf_counter() - start

    step()  # compiles the kernels, fills the scratch buffers
    steps, per_type = [], []
    for _ in range(args.steps):
        spent.clear()
        steps.append(_timed(step))
        per_type.append(dict(spent))
    for module, name, fn in originals:
        setattr(module, name, fn)
    convnet._GLOBAL_POOLS = global_pools
    kinds = sorted({kind for row in per_type for kind in row})
    ms = {kind: 1e3 * float(np.median([row.get(kind, 0.0) for row in per_type])) for kind in kinds}
    print(json.dumps({"step_ms": 1e3 * float(np.median(steps)), "by_type_ms": ms}), flush=True)


# --- the parent -----------------------------------------------------------------------------------


def run_child(kind: str, args) -> list[dict]:
    command = [sys.executable, __file__, "--child", kind, "--data", args.data, "--epochs", str(args.epochs),
               "--seed", str(args.seed), "--threads", str(args.threads), "--steps", str(args.steps)]  # fmt: skip
    if args.num_training is not None:
        command += ["--num-training", str(args.num_training)]
    rows = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "LAYERWISE_NUM_THREADS": str(args.threads)}) as child:
        for line in child.stdout:
            if line.startswith("{"):
                rows.append(json.loads(line))
                if "epoch" in rows[-1]:
                    row = rows[-1]
                    print(f"  {kind} epoch {row['epoch']}: test {row['test_acc']:.4f} after {row['seconds']:.0f} s", flush=True)
    if child.returncode:
        raise SystemExit(f"the {kind} child failed with status {child.returncode}")
    return rows


def time_to(rows: list[dict], target: float) -> float | None:
    return next((row["seconds"] for row in rows if row["test_acc"] >= target), None)


def epoch_seconds(rows: list[dict]) -> float:
    times = [row["seconds"] for row in rows]
    return float(np.median(np.diff([0.0, *times])))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cifar-10-python.tar.gz"))
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    parser.add_argument("--frameworks", default="layerwise,torch")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=5, help="profiled steps")
    parser.add_argument("--num-training", type=int, dest="num_training", help="fewer training images, for a quick look")
    parser.add_argument("--profile-only", action="store_true", help="only the rates and the step breakdown")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", choices=["layerwise", "torch", "profile"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs is None:
        from layerwise.cli.presets import PRESETS

        args.epochs = PRESETS["best-cnn"]["epochs"]
    if args.child:
        {"layerwise": layerwise_child, "torch": torch_child, "profile": profile_child}[args.child](args)
        return 0
    if not args.profile_only and not Path(args.data).exists():
        print(f"no CIFAR-10 archive at {args.data}; pass --data", file=sys.stderr)
        return 2
    from layerwise.cli.presets import PRESETS
    from layerwise.cli.settings import parse_blocks

    blocks = parse_blocks(PRESETS["best-cnn"]["blocks"])
    print(f"{platform.machine()} {_cpu_name()}, {os.cpu_count()} logical CPUs, {args.threads} threads; BLAS {_blas_kernel()}")
    rate = matmul_rate(args.threads)
    per_image = flops_per_image(blocks)
    print(f"float32 matrix product: {rate:.0f} GFLOP/s; the preset: {per_image / 1e9:.3f} GFLOP per training image "
          f"(forward + backward), {per_image * 49000 / 1e12:.2f} TFLOP per epoch of 49,000 images")  # fmt: skip
    profile = run_child("profile", args)[-1]
    parts = ", ".join(f"{kind} {ms:.0f}" for kind, ms in sorted(profile["by_type_ms"].items(), key=lambda item: -item[1]))
    step_rate = per_image * BATCH / (profile["step_ms"] / 1e3) / 1e9
    print(f"layerwise step (batch {BATCH}, forward + backward): {profile['step_ms']:.0f} ms = {step_rate:.0f} GFLOP/s "
          f"({step_rate / rate:.0%} of the matrix product's); by layer type, ms: {parts}")  # fmt: skip
    if args.profile_only:
        return 0

    frameworks = [name for name in args.frameworks.split(",") if name]
    if "torch" in frameworks and not _has_torch():
        print("torch is not installed: its rows are left out")
        frameworks.remove("torch")
    results = {}
    for name in frameworks:
        print(f"== {name}: {args.epochs} epochs", flush=True)
        results[name] = [row for row in run_child(name, args) if "epoch" in row]

    print()
    header = "epoch" + "".join(f"{name + ' test':>17}{'elapsed s':>11}" for name in results)
    print(header)
    for epoch in range(1, args.epochs + 1):
        line = f"{epoch:>5}"
        for rows in results.values():
            row = next((r for r in rows if r["epoch"] == epoch), None)
            line += f"{row['test_acc']:>17.4f}{row['seconds']:>11.0f}" if row else f"{'-':>17}{'-':>11}"
        print(line)
    for name, rows in results.items():
        reached = time_to(rows, TARGET)
        seconds = epoch_seconds(rows)
        achieved = per_image * (args.num_training or 49000) / seconds / 1e9
        when = f"{reached / 60:.1f} min" if reached is not None else "not reached"
        print(f"{name}: {TARGET:.0%} test accuracy after {when}; final {rows[-1]['test_acc']:.4f} after "
              f"{rows[-1]['seconds'] / 60:.1f} min; median epoch {seconds:.0f} s = {achieved:.0f} GFLOP/s ({achieved / rate:.0%} of the matrix product's)")  # fmt: skip
    if len(results) == 2:
        (a, rows_a), (b, rows_b) = results.items()
        print(f"epoch time ratio {a} / {b}: {epoch_seconds(rows_a) / epoch_seconds(rows_b):.2f}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        summary = {"cpu": _cpu_name(), "threads": args.threads, "blas": _blas_kernel(), "matmul_gflops": rate,
                   "gflop_per_image": per_image / 1e9, "profile": profile, "epochs": results}  # fmt: skip
        (args.out / "results.json").write_text(json.dumps(summary, indent=1))
        _plot(results, args.out / "curve.png")
    return 0


def _plot(results: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no curve.png")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in results.items():
        ax.plot([r["seconds"] / 60 for r in rows], [r["test_acc"] for r in rows], marker="o", label=name)
    ax.axhline(TARGET, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("training time (minutes)")
    ax.set_ylabel("test accuracy (10,000 images)")
    ax.set_title("best-cnn on CIFAR-10, " + _cpu_name())
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _blas_kernel() -> str:
    from threadpoolctl import threadpool_info

    return ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')})" for i in threadpool_info() if i["user_api"] == "blas")


if __name__ == "__main__":
    sys.exit(main())
