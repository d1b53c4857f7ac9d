"""Time layerwise's fast layers and whole training steps against the naive layers and PyTorch.

Run from the repository root::

    python benchmarks/bench_speed.py              # the table and the notebook cells, ~2-3 minutes
    python benchmarks/bench_speed.py --quick      # fewer repeats, no naive layers
    python benchmarks/bench_speed.py --epoch      # also a 1-epoch ThreeLayerConvNet run on CIFAR-10
    python benchmarks/bench_speed.py --threads 1  # cap numpy's BLAS and torch to one thread

The table
---------
One row per operation or model step:

naive ms      one run of the naive layer (notebook shapes only; it is slow)
layerwise ms  median of ``--repeat`` runs of ``layerwise.fast_layers`` or of a model step
torch ms      median of the same operation in PyTorch on the CPU, when torch is importable
ratio         layerwise / torch; below 1 means layerwise is faster
vs naive      naive time / layerwise time
peak MB       model steps only, layerwise / torch: see "Peak memory"

Every layerwise and torch figure comes from child processes that import one framework only,
alternating layerwise and torch ``--rounds`` times (default 3) so that both see the same drift of a shared
machine; a row shows the median over the rounds of each process's median. Two frameworks in one
process would share the cores between their thread pools (layerwise's, OpenBLAS's, torch's OpenMP
workers, which keep spinning after their work) and distort any comparison with more than one
thread. The layerwise op processes load its optional Numba kernels before timing (as a training
run's first convolutions do); the notebook cells run in this process without them loaded, as in
a fresh notebook. The naive layers run once, in this process. Layer inputs are float32 except the
notebook's cells (float64, as in the notebook). Torch inputs require grad, as in training; a torch
backward row times ``y.backward(dout)`` on a kept graph.

A model step is what :class:`layerwise.solver.Solver` does once per iteration, and the same in
torch:

* layerwise: ``Solver._step`` itself: draw a minibatch index with ``np.random.choice``, gather
  ``X_train[idx]`` from a larger training array, ``model.loss(X, y)``, then the update rule on
  every parameter (``sgd``, learning rate 1e-3);
* torch: the same index draw, ``Xt[idx]`` from the same training array (shared memory),
  ``zero_grad()``, the model's forward, ``F.cross_entropy``, ``backward()``,
  ``torch.optim.SGD(lr=1e-3).step()`` and ``loss.item()``. The torch models have the same layers
  and parameter shapes (``nn.Conv2d``, ``nn.Linear``, ``nn.BatchNorm1d``, ReLU, 2x2 max pool),
  initialised with layerwise's initial weights.

Models: ``ThreeLayerConvNet()`` (3x32x32 input, 32 7x7 filters, hidden 100) at batch 50;
``TwoLayerNet`` (3072-100-10) at batch 32; ``FullyConnectedNet([100] * 4, normalization='batchnorm')``
at batch 128; all float32. The minibatches are drawn from real images: the 1,800 training images
of the CIFAR-10 sample embedded in layerwise, mean-subtracted as in the notebooks
(``get_embedded_data``). The data matters: torch's ThreeLayerConvNet step took 14.8 ms on CIFAR-10
images and 16.8 ms on standard-normal noise of the same shape (two threads, medians of 400
steps); layerwise's took 14.2 ms on the images and within noise of that on the noise.

Model steps and peak memory
---------------------------
Each framework's model step runs in a fresh Python process that imports only its own framework
(plus numpy), builds the model and loads the training images, then resets the
kernel's resident-set high-water mark (``/proc/self/clear_refs``) and reads the resident set
(``VmRSS``). It then runs ``WARMUP_STEPS`` steps and ``--repeat`` timed ones, and reports the
median step time and ``VmHWM - VmRSS`` from before the first step. ``--rounds`` such processes
run per framework, alternating layerwise and torch; a row shows the median over them. The memory
figure is every byte the steps made resident, the transient activations,
caches and gradients as well as whatever each framework keeps between steps (torch's ``.grad``
tensors and allocator pools, NumPy's freed blocks that malloc keeps). Where ``clear_refs`` is
unavailable the column shows ``-``. Each framework's runtime is loaded before the baseline: torch's
by its import, layerwise's optional Numba kernels by ``kernels.warm_up()`` (which loads LLVM and
compiles or loads the kernels); the resident memory that costs is printed on its own line below the
table, not hidden: without it, with Numba, the first step would carry ~100 MB of JIT.

Other output
------------
* The notebook's speed cells (``conv_forward_fast`` ... ``max_pool_backward_fast`` against the
  naive layers, float64, the notebook's shapes and seed), printed as the notebook prints them.
* With ``--epoch``: one epoch of ``ThreeLayerConvNet`` trained by the Solver on the full CIFAR-10
  archive in ``../shared/data`` (49,000 images, batch 50, ``sgd`` at 1e-3, as in the notebook's
  "Train the net"): wall time and final validation accuracy, and the same loop in torch; each
  in a fresh process of its own, its runtime (Numba's kernels, torch's import) loaded first.

``--threads`` caps both libraries: torch via ``torch.set_num_threads`` and NumPy's BLAS via the
``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` environment variables, set before
NumPy is imported. Without it both use their defaults (all cores).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "cifar-10-python.tar.gz"
WARMUP_STEPS = 3


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="threads for numpy's BLAS and torch")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per measurement (median)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating child processes per framework (median)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no naive layers, no notebook cells")
    parser.add_argument("--epoch", action="store_true", help="also train ThreeLayerConvNet for one epoch")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "FRAMEWORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeat is None:
        args.repeat = 5 if args.quick else 11
    return args


ARGS = _parse()
if ARGS.threads is not None:
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(ARGS.threads)

import numpy as np  # noqa: E402  (after the thread environment is set)

sys.path.insert(0, str(ROOT))
from layerwise._layers.conv_naive import conv_backward_naive, conv_forward_naive  # noqa: E402
from layerwise._layers.pool_naive import max_pool_backward_naive, max_pool_forward_naive  # noqa: E402
from layerwise.classifiers.cnn import ThreeLayerConvNet  # noqa: E402
from layerwise.classifiers.fc_net import FullyConnectedNet, TwoLayerNet  # noqa: E402
from layerwise.fast_layers import (  # noqa: E402
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from layerwise.solver import Solver  # noqa: E402

torch = None
if not (ARGS.child and ARGS.child[1] == "layerwise"):  # the layerwise step child stays torch-free
    try:
        import torch
        import torch.nn.functional as TF
    except ImportError:  # the table simply loses its torch columns
        torch = None

# (label, kind, N, C, H, W, F or None, HH, WW, stride, pad, dtype, naive?)
CASES = [
    ("notebook conv", "conv", 100, 3, 31, 31, 25, 3, 3, 2, 1, "float64", True),
    ("notebook pool", "pool", 100, 3, 32, 32, None, 2, 2, 2, 0, "float64", True),
    ("3-layer conv 7x7", "conv", 50, 3, 32, 32, 32, 7, 7, 1, 3, "float32", False),
    ("3-layer pool", "pool", 50, 32, 32, 32, None, 2, 2, 2, 0, "float32", False),
    ("cnn 3->16 32x32", "conv", 128, 3, 32, 32, 16, 3, 3, 1, 1, "float32", False),
    ("cnn 16->16 32x32", "conv", 128, 16, 32, 32, 16, 3, 3, 1, 1, "float32", False),
    ("cnn 32->64 32x32 s2", "conv", 64, 32, 32, 32, 64, 3, 3, 2, 1, "float32", False),
    ("cnn 32->32 16x16", "conv", 128, 32, 16, 16, 32, 3, 3, 1, 1, "float32", False),
    ("cnn 64->64 16x16", "conv", 128, 64, 16, 16, 64, 3, 3, 1, 1, "float32", False),
    ("cnn 64->128 8x8", "conv", 128, 64, 8, 8, 128, 3, 3, 1, 1, "float32", False),
    ("cnn 128->128 4x4", "conv", 128, 128, 4, 4, 128, 3, 3, 1, 1, "float32", False),
    ("pool 16x32x32", "pool", 128, 16, 32, 32, None, 2, 2, 2, 0, "float32", False),
    ("pool 64x16x16", "pool", 128, 64, 16, 16, None, 2, 2, 2, 0, "float32", False),
    ("pool 3x3 s2 64x15x15", "pool", 128, 64, 15, 15, None, 3, 3, 2, 0, "float32", False),
]

# name: (label, batch size)
MODELS = {
    "cnn": ("ThreeLayerConvNet step", 50),
    "two": ("TwoLayerNet step", 32),
    "fc5bn": ("FC 5-layer bn step", 128),
}


# --- timing ------------------------------------------------------------------------------------


def repeated_ms(fn, repeat: int) -> float:
    """Median milliseconds of ``fn`` over ``repeat`` runs after a warm-up."""
    fn()  # page in buffers, let the thread pools start
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def once_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - start)


# --- operations --------------------------------------------------------------------------------


def conv_ops(case, framework: str, repeat: int) -> dict:
    """``{"fwd": ms, "bwd": ms}``: median times of ``framework``'s convolution on ``case``."""
    _, _, N, C, H, W, F, HH, WW, stride, pad, dtype, _ = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, HH, WW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    param = {"stride": stride, "pad": pad}
    out, cache = conv_forward_fast(x, w, b, param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    if framework == "layerwise":
        return {
            "fwd": repeated_ms(lambda: conv_forward_fast(x, w, b, param), repeat),
            "bwd": repeated_ms(lambda: conv_backward_fast(dout, cache), repeat),
        }
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    dt = torch.tensor(dout)
    yt = TF.conv2d(xt, wt, bt, stride=stride, padding=pad)

    def torch_backward():
        xt.grad = wt.grad = bt.grad = None
        yt.backward(dt, retain_graph=True)

    return {
        "fwd": repeated_ms(lambda: TF.conv2d(xt, wt, bt, stride=stride, padding=pad), repeat),
        "bwd": repeated_ms(torch_backward, repeat),
    }


def pool_ops(case, framework: str, repeat: int) -> dict:
    """``{"fwd": ms, "bwd": ms}``: median times of ``framework``'s max pool on ``case``."""
    _, _, N, C, H, W, _, PH, PW, stride, _, dtype, _ = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    param = {"pool_height": PH, "pool_width": PW, "stride": stride}
    out, cache = max_pool_forward_fast(x, param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    if framework == "layerwise":
        return {
            "fwd": repeated_ms(lambda: max_pool_forward_fast(x, param), repeat),
            "bwd": repeated_ms(lambda: max_pool_backward_fast(dout, cache), repeat),
        }
    xt = torch.tensor(x, requires_grad=True)
    dt = torch.tensor(dout)
    yt = TF.max_pool2d(xt, (PH, PW), stride)

    def torch_backward():
        xt.grad = None
        yt.backward(dt, retain_graph=True)

    return {"fwd": repeated_ms(lambda: TF.max_pool2d(xt, (PH, PW), stride), repeat), "bwd": repeated_ms(torch_backward, repeat)}


def naive_ops(case) -> dict:
    """``{"fwd": ms, "bwd": ms}`` of the naive layer on ``case``, timed once (they take seconds)."""
    _, kind, N, C, H, W, F, HH, WW, stride, pad, dtype, _ = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    if kind == "conv":
        w = rng.standard_normal((F, C, HH, WW)).astype(dtype)
        b = rng.standard_normal(F).astype(dtype)
        param = {"stride": stride, "pad": pad}
        out, cache = conv_forward_naive(x, w, b, param)
        dout = rng.standard_normal(out.shape).astype(dtype)
        return {"fwd": once_ms(lambda: conv_forward_naive(x, w, b, param)),
                "bwd": once_ms(lambda: conv_backward_naive(dout, cache))}
    param = {"pool_height": HH, "pool_width": WW, "stride": stride}
    out, cache = max_pool_forward_naive(x, param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    return {"fwd": once_ms(lambda: max_pool_forward_naive(x, param)),
            "bwd": once_ms(lambda: max_pool_backward_naive(dout, cache))}


def ops_child(framework: str) -> None:
    """Body of the ``--child ops FRAMEWORK`` process: every case's medians, as JSON."""
    if framework == "layerwise":  # Numba's kernels loaded first, as the convolutions of a training run load them
        from layerwise._layers import kernels

        kernels.warm_up(np.float32)
        kernels.warm_up(np.float64)
    times = {}
    for case in CASES:
        for op, ms in (conv_ops if case[1] == "conv" else pool_ops)(case, framework, ARGS.repeat).items():
            times[f"{case[0]}|{op}"] = ms
    print(json.dumps(times))


def bench_ops() -> dict:
    """``{(label, op): {framework: median ms}}`` from alternating child processes."""
    frameworks = ["layerwise"] + (["torch"] if torch is not None else [])
    runs: dict = {fw: [] for fw in frameworks}
    for _ in range(ARGS.rounds):
        for fw in frameworks:
            runs[fw].append(_child_output("ops", fw, json.loads, {}))
    rows: dict = {}
    for case in CASES:
        for op in ("fwd", "bwd"):
            key = f"{case[0]}|{op}"
            rows[(case[0], op)] = {fw: _median([run.get(key) for run in runs[fw]]) for fw in frameworks}
    return rows


def describe(case) -> str:
    _, kind, N, C, H, W, F, HH, WW, stride, pad, dtype, _ = case
    if kind == "conv":
        return f"x({N},{C},{H},{W}) w({F},{C},{HH},{WW}) s{stride} p{pad} {dtype[5:]}"
    return f"x({N},{C},{H},{W}) {HH}x{WW} s{stride} {dtype[5:]}"


# --- model steps -------------------------------------------------------------------------------


def make_model(name: str):
    """The layerwise model ``name`` of :data:`MODELS`, float32, from a fixed seed."""
    np.random.seed(0)
    if name == "cnn":
        return ThreeLayerConvNet(dtype=np.float32)
    if name == "two":
        return TwoLayerNet(dtype=np.float32)
    return FullyConnectedNet([100] * 4, normalization="batchnorm", dtype=np.float32)


def training_data() -> dict:
    """The embedded CIFAR-10 sample, split and mean-subtracted as the notebooks do, for the Solver."""
    from layerwise.data_utils import get_embedded_data

    return get_embedded_data(dtype=np.float32)


def layerwise_step(model, data, batch: int):
    """A callable doing one ``Solver._step`` (minibatch gather, loss and gradients, sgd update)."""
    solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 1e-3}, batch_size=batch, verbose=False)
    return functools.partial(solver._step, None)  # no lr_schedule: the fixed rate of the update rule


def torch_model(model):
    """The torch twin of a layerwise model: same layers, same initial parameters."""
    nn = torch.nn
    p = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in model.params.items()}
    if isinstance(model, ThreeLayerConvNet):
        conv = nn.Conv2d(model.input_dim[0], model.num_filters, model.filter_size, padding=model.conv_param["pad"])
        layers = [conv, nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(*model.params["W2"].shape), nn.ReLU(),
                  nn.Linear(*model.params["W3"].shape)]
        with torch.no_grad():
            conv.weight.copy_(p["W1"])
            conv.bias.copy_(p["b1"])
            for layer, k in ((layers[4], 2), (layers[6], 3)):
                layer.weight.copy_(p[f"W{k}"].T)
                layer.bias.copy_(p[f"b{k}"])
        return nn.Sequential(*layers)
    layers: list = [nn.Flatten()]
    for k in range(1, model.num_layers + 1):
        linear = nn.Linear(*model.params[f"W{k}"].shape)
        with torch.no_grad():
            linear.weight.copy_(p[f"W{k}"].T)
            linear.bias.copy_(p[f"b{k}"])
        layers.append(linear)
        if k < model.num_layers:
            if model.normalization == "batchnorm":
                layers.append(nn.BatchNorm1d(linear.out_features, eps=1e-5, momentum=0.1))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def torch_step(model, data, batch: int):
    """A callable doing the torch twin of one ``Solver._step``."""
    net = torch_model(model)
    net.train()
    sgd = torch.optim.SGD(net.parameters(), lr=1e-3)
    X, y = torch.from_numpy(data["X_train"]), torch.from_numpy(data["y_train"])

    def step() -> float:
        idx = torch.from_numpy(np.random.choice(len(X), batch))
        sgd.zero_grad()
        loss = TF.cross_entropy(net(X[idx]), y[idx])
        loss.backward()
        sgd.step()
        return loss.item()

    return step


def bench_model(name: str) -> dict:
    """Median step time and peak memory of each framework, from alternating child processes."""
    frameworks = ["layerwise"] + (["torch"] if torch is not None else [])
    runs: dict = {fw: [] for fw in frameworks}
    for _ in range(ARGS.rounds):
        for fw in frameworks:
            runs[fw].append(run_child(name, fw))
    row: dict = {fw: _median([ms for ms, _, _ in runs[fw]]) for fw in frameworks}
    row["peak"] = {fw: _median([mb for _, _, mb in runs[fw]]) for fw in frameworks}
    row["runtime"] = _median([runtime for _, runtime, _ in runs["layerwise"]])
    return row


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None and v == v]
    return float(np.median(values)) if values else None


def run_child(name: str, framework: str) -> tuple[float | None, float | None]:
    """``(median step ms, MB the Numba runtime took, peak MB)`` of ``framework``'s step of model
    ``name``, in a fresh process."""

    def parse(stdout: str) -> tuple[float, float, float]:
        ms, runtime_mb, mb = stdout.split()[-3:]
        return float(ms), float(runtime_mb), float(mb)

    return _child_output(name, framework, parse, (None, None, None))


def _child_output(what: str, framework: str, parse, failed):
    """``parse`` of the output of ``--child what framework`` run in a fresh process, or ``failed``."""
    command = [sys.executable, __file__, "--child", what, framework, "--repeat", str(ARGS.repeat)]
    if ARGS.threads is not None:
        command += ["--threads", str(ARGS.threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        return parse(result.stdout)
    except ValueError:
        print(f"child {what} {framework} failed: {result.stderr.strip()[-500:]}", file=sys.stderr)
        return failed


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1])
    raise KeyError(key)


def step_child(name: str, framework: str) -> None:
    """Body of the ``--child`` process: print the median step ms and the peak resident MB."""
    model, batch = make_model(name), MODELS[name][1]
    data = training_data()
    step = (layerwise_step if framework == "layerwise" else torch_step)(model, data, batch)
    if framework == "layerwise":
        # Load the optional Numba runtime now, as torch's runtime is loaded by its import, both
        # before the memory baseline; what it costs is printed separately (see "Model steps").
        before = _status_kb("VmRSS:") if os.path.exists("/proc/self/status") else 0
        from layerwise._layers import kernels

        kernels.warm_up(np.float32)
        runtime_mb = (_status_kb("VmRSS:") - before) / 1024 if before else float("nan")
    else:
        runtime_mb = float("nan")
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # reset VmHWM to the current resident set
        before = _status_kb("VmRSS:")
    except OSError:
        before = None
    for _ in range(WARMUP_STEPS):
        step()
    times = []
    for _ in range(ARGS.repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak = "nan" if before is None else f"{(_status_kb('VmHWM:') - before) / 1024:.1f}"
    print(f"{1e3 * float(np.median(times)):.3f} {runtime_mb:.1f} {peak}")


# --- notebook cells ----------------------------------------------------------------------------


def rel_error(x, y) -> float:
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def notebook_cells() -> None:
    """The notebook's two speed cells, as it prints them (float64, its shapes and seed)."""
    np.random.seed(231)
    x = np.random.randn(100, 3, 31, 31)
    w = np.random.randn(25, 3, 3, 3)
    b = np.random.randn(25)
    dout = np.random.randn(100, 25, 16, 16)
    param = {"stride": 2, "pad": 1}
    (out_n, cache_n), t_naive = _timed(conv_forward_naive, x, w, b, param)
    (out_f, cache_f), t_fast = _timed(conv_forward_fast, x, w, b, param)
    _print_cell("conv_forward_fast", t_naive, t_fast, {"Difference": rel_error(out_n, out_f)})
    grads_n, t_naive = _timed(conv_backward_naive, dout, cache_n)
    grads_f, t_fast = _timed(conv_backward_fast, dout, cache_f)
    errors = {f"{k} difference": rel_error(a, c) for k, a, c in zip(("dx", "dw", "db"), grads_n, grads_f)}
    _print_cell("conv_backward_fast", t_naive, t_fast, errors)

    np.random.seed(231)
    x = np.random.randn(100, 3, 32, 32)
    dout = np.random.randn(100, 3, 16, 16)
    param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    (out_n, cache_n), t_naive = _timed(max_pool_forward_naive, x, param)
    (out_f, cache_f), t_fast = _timed(max_pool_forward_fast, x, param)
    _print_cell("pool_forward_fast", t_naive, t_fast, {"difference": rel_error(out_n, out_f)})
    dx_n, t_naive = _timed(max_pool_backward_naive, dout, cache_n)
    dx_f, t_fast = _timed(max_pool_backward_fast, dout, cache_f)
    _print_cell("pool_backward_fast", t_naive, t_fast, {"dx difference": rel_error(dx_n, dx_f)})


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def _print_cell(name: str, t_naive: float, t_fast: float, errors: dict) -> None:
    print(f"\nTesting {name}:")
    print(f"Naive: {t_naive:f}s")
    print(f"Fast: {t_fast:f}s")
    print(f"Speedup: {t_naive / t_fast:f}x")
    for label, value in errors.items():
        print(f"{label}: {value}")


# --- one epoch ---------------------------------------------------------------------------------


def one_epoch() -> None:
    """Train ThreeLayerConvNet for one epoch with the Solver, then the same loop in torch, each in
    a process of its own (as the steps, so that neither framework's threads slow the other)."""
    print("\n1 epoch of ThreeLayerConvNet, 49000 images, batch 50, sgd lr 1e-3, each in a fresh process:")
    frameworks = ["layerwise"] + (["torch"] if torch is not None else [])
    for framework in frameworks:
        print(_child_output("epoch", framework, _checked_line, f"  {framework}: failed\n"), end="")


def _checked_line(stdout: str) -> str:
    if not stdout.strip():
        raise ValueError("no output")
    return stdout


def epoch_child(framework: str) -> None:
    """Body of the ``--child epoch FRAMEWORK`` process: one epoch, then its time and accuracy."""
    from layerwise.data_utils import get_CIFAR10_data

    data = get_CIFAR10_data(data_dir=DATA)
    np.random.seed(231)
    model = ThreeLayerConvNet(dtype=np.float32)
    if framework == "layerwise":
        from layerwise._layers import kernels

        kernels.warm_up(np.float32)  # Numba's runtime before the clock, as torch's is loaded by its import
        solver = Solver(model, data, num_epochs=1, batch_size=50, update_rule="sgd",
                        optim_config={"learning_rate": 1e-3}, verbose=False)
        start = time.perf_counter()
        solver.train()
        elapsed = time.perf_counter() - start
        print(f"  layerwise Solver: {elapsed:6.1f} s ({1e3 * elapsed / solver.iteration:.1f} ms/iteration, "
              f"including the accuracy checks); final val acc {solver.val_acc_history[-1]:.3f}, "
              f"train acc {solver.train_acc_history[-1]:.3f}")
        return
    net = torch_model(model)
    sgd = torch.optim.SGD(net.parameters(), lr=1e-3)
    X, y = torch.from_numpy(data["X_train"]), torch.from_numpy(data["y_train"])
    iterations = len(X) // 50  # as the Solver: one epoch of batches drawn with replacement
    start = time.perf_counter()
    for _ in range(iterations):
        idx = torch.from_numpy(np.random.choice(len(X), 50))
        sgd.zero_grad()
        loss = TF.cross_entropy(net(X[idx]), y[idx])
        loss.backward()
        sgd.step()
        loss.item()
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        val = torch.from_numpy(data["X_val"])
        accuracy = float((net(val).argmax(1).numpy() == data["y_val"]).mean())
    print(f"  torch loop:       {elapsed:6.1f} s ({1e3 * elapsed / iterations:.1f} ms/iteration, "
          f"no accuracy checks); final val acc {accuracy:.3f}")


# --- output ------------------------------------------------------------------------------------


def main() -> None:
    if ARGS.child:
        if torch is not None and ARGS.threads is not None:
            torch.set_num_threads(ARGS.threads)
        if ARGS.child[0] == "ops":
            ops_child(ARGS.child[1])
        elif ARGS.child[0] == "epoch":
            epoch_child(ARGS.child[1])
        else:
            step_child(*ARGS.child)
        return
    if torch is not None and ARGS.threads is not None:
        torch.set_num_threads(ARGS.threads)
    print(f"{platform.machine()} {_cpu_name()}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}")
    print(f"numpy {np.__version__} ({_blas_info()}); torch "
          f"{torch.__version__ + f' with {torch.get_num_threads()} threads' if torch else 'not installed'}; "
          f"ops and steps: median of {ARGS.rounds} alternating processes per framework, each the median of "
          f"{ARGS.repeat} runs; load average {os.getloadavg()[0]:.1f} at start")
    header = (f"{'case':<23} {'shape':<40} {'op':<5} {'naive ms':>9} {'layerwise ms':>12} {'torch ms':>9} "
              f"{'ratio':>6} {'vs naive':>9} {'peak MB lw/torch':>17}")
    print(header)
    print("-" * len(header))
    ops = bench_ops()
    for case in CASES:
        naive = naive_ops(case) if case[-1] and not ARGS.quick else {}
        for op in ("fwd", "bwd"):
            row = dict(ops[(case[0], op)])
            if op in naive:
                row["naive"] = naive[op]
            _print_row(case[0], describe(case), op, row)
    runtimes: list = []
    for name, (label, batch) in MODELS.items():
        r = bench_model(name)
        peak, runtime = r.pop("peak"), r.pop("runtime")
        runtimes.append(runtime)
        memory = f"{_fmt(peak.get('layerwise'), 7, 1)} /{_fmt(peak.get('torch'), 6, 1)}"
        _print_row(label, f"batch {batch}, float32, sgd", "step", r, memory)
    if any(r is not None and r > 1 for r in runtimes):
        print(f"layerwise's Numba runtime, loaded before the memory baseline as torch's is by its import: "
              f"{max(r for r in runtimes if r is not None):.0f} MB resident (not in the peak MB column)")
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    if not ARGS.quick:
        notebook_cells()
    if ARGS.epoch:
        one_epoch()


def _print_row(label: str, shape: str, op: str, r: dict, memory: str = "") -> None:
    fast, naive, tt = r["layerwise"], r.get("naive"), r.get("torch")
    print(
        f"{label:<23} {shape:<40} {op:<5} {_fmt(naive, 9, 1)} {fast:>12.2f} {_fmt(tt, 9, 2)} "
        f"{_fmt(fast / tt if tt else None, 6, 2)} {_fmt(naive / fast if naive else None, 9, 0)} {memory:>17}",
        flush=True,
    )


def _fmt(value, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None or value != value else f"{value:>{width}.{digits}f}"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS details need threadpoolctl"
    parts = [
        f"{p.get('internal_api')} {p.get('version')} kernel={p.get('architecture')} threads={p.get('num_threads')}"
        for p in threadpool_info()
        if p.get("user_api") == "blas" and "numpy" in p.get("filepath", "")
    ]
    return "; ".join(parts) or "BLAS unknown"


if __name__ == "__main__":
    main()
