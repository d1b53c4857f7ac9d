"""Time the fast convolution / max-pool layers against the naive ones and against PyTorch.

Run from the repository root::

    python benchmarks/bench_layers.py            # default: every shape, ~1-2 minutes on 2 cores
    python benchmarks/bench_layers.py --threads 1 --quick

Columns
-------
naive ms     one run of the naive layer (notebook shapes only; it is slow)
fast ms      median over ``--repeat`` runs of ``layerwise.fast_layers``
torch ms     median of ``torch.nn.functional`` (conv2d / max_pool2d) and its autograd backward,
             when torch is importable; inputs require grad, as in training
fast/torch   below 1 means layerwise is faster
vs naive     naive time / fast time
peak MB      largest numpy allocation high-water mark during the fast op, measured by tracemalloc
             (bytes numpy allocated beyond what already existed: for forward, output + cache;
             for backward, gradients + temporaries). It does not see BLAS or torch memory.

The notebook cells run in float64 as the cs231n notebook does; everything else is float32.
``--threads`` caps both libraries: torch via ``torch.set_num_threads`` and NumPy's BLAS via the
``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` environment variables, set
before NumPy is imported. Without it both use their defaults (all cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="threads for numpy's BLAS and torch")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per measurement (median)")
    parser.add_argument("--quick", action="store_true", help="skip the naive layers")
    return parser.parse_args()


ARGS = _parse()
if ARGS.threads is not None:
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(ARGS.threads)

import numpy as np  # noqa: E402  (after the thread environment is set)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from layerwise._layers.conv_naive import conv_backward_naive, conv_forward_naive  # noqa: E402
from layerwise._layers.pool_naive import max_pool_backward_naive, max_pool_forward_naive  # noqa: E402
from layerwise.fast_layers import (  # noqa: E402
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)

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


def median_ms(fn, repeat: int) -> float:
    fn()  # warm up: page in buffers, let BLAS spin up its threads
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def peak_mb(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def once_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - start)


def bench_conv(case, repeat):
    _, _, N, C, H, W, F, HH, WW, stride, pad, dtype, naive = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, HH, WW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    param = {"stride": stride, "pad": pad}
    out, cache = conv_forward_fast(x, w, b, param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    rows = {
        "fwd": dict(
            fast=median_ms(lambda: conv_forward_fast(x, w, b, param), repeat),
            peak=peak_mb(lambda: conv_forward_fast(x, w, b, param)),
        ),
        "bwd": dict(
            fast=median_ms(lambda: conv_backward_fast(dout, cache), repeat),
            peak=peak_mb(lambda: conv_backward_fast(dout, cache)),
        ),
    }
    if naive:
        _, naive_cache = conv_forward_naive(x, w, b, param)
        rows["fwd"]["naive"] = once_ms(lambda: conv_forward_naive(x, w, b, param))
        rows["bwd"]["naive"] = once_ms(lambda: conv_backward_naive(dout, naive_cache))
    if torch is not None:
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        dt = torch.tensor(dout)
        rows["fwd"]["torch"] = median_ms(lambda: TF.conv2d(xt, wt, bt, stride=stride, padding=pad), repeat)
        yt = TF.conv2d(xt, wt, bt, stride=stride, padding=pad)

        def torch_backward():
            xt.grad = wt.grad = bt.grad = None
            yt.backward(dt, retain_graph=True)

        rows["bwd"]["torch"] = median_ms(torch_backward, repeat)
    return rows


def bench_pool(case, repeat):
    _, _, N, C, H, W, _, PH, PW, stride, _, dtype, naive = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    param = {"pool_height": PH, "pool_width": PW, "stride": stride}
    out, cache = max_pool_forward_fast(x, param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    rows = {
        "fwd": dict(
            fast=median_ms(lambda: max_pool_forward_fast(x, param), repeat),
            peak=peak_mb(lambda: max_pool_forward_fast(x, param)),
        ),
        "bwd": dict(
            fast=median_ms(lambda: max_pool_backward_fast(dout, cache), repeat),
            peak=peak_mb(lambda: max_pool_backward_fast(dout, cache)),
        ),
    }
    if naive:
        _, naive_cache = max_pool_forward_naive(x, param)
        rows["fwd"]["naive"] = once_ms(lambda: max_pool_forward_naive(x, param))
        rows["bwd"]["naive"] = once_ms(lambda: max_pool_backward_naive(dout, naive_cache))
    if torch is not None:
        xt = torch.tensor(x, requires_grad=True)
        dt = torch.tensor(dout)
        rows["fwd"]["torch"] = median_ms(lambda: TF.max_pool2d(xt, (PH, PW), stride), repeat)
        yt = TF.max_pool2d(xt, (PH, PW), stride)

        def torch_backward():
            xt.grad = None
            yt.backward(dt, retain_graph=True)

        rows["bwd"]["torch"] = median_ms(torch_backward, repeat)
    return rows


def describe(case) -> str:
    _, kind, N, C, H, W, F, HH, WW, stride, pad, dtype, _ = case
    if kind == "conv":
        return f"x({N},{C},{H},{W}) w({F},{C},{HH},{WW}) s{stride} p{pad} {dtype[5:]}"
    return f"x({N},{C},{H},{W}) {HH}x{WW} s{stride} {dtype[5:]}"


def main() -> None:
    if torch is not None and ARGS.threads is not None:
        torch.set_num_threads(ARGS.threads)
    header = (
        f"{'case':<21} {'shape':<40} {'op':<4} {'naive ms':>9} {'fast ms':>8} {'torch ms':>9} "
        f"{'fast/torch':>10} {'vs naive':>9} {'peak MB':>8}"
    )
    blas = _blas_info()
    print(f"numpy {np.__version__} ({blas}); torch {torch.__version__ if torch else 'not installed'}"
          f" with {torch.get_num_threads() if torch else '-'} threads; median of {ARGS.repeat} runs")
    print(header)
    print("-" * len(header))
    for case in CASES:
        if ARGS.quick and case[-1]:
            case = case[:-1] + (False,)
        rows = (bench_conv if case[1] == "conv" else bench_pool)(case, ARGS.repeat)
        for op, r in rows.items():
            naive = r.get("naive")
            tt = r.get("torch")
            print(
                f"{case[0]:<21} {describe(case):<40} {op:<4} "
                f"{_fmt(naive, 9, 1)} {r['fast']:>8.2f} {_fmt(tt, 9, 2)} "
                f"{_fmt(r['fast'] / tt if tt else None, 10, 2)} "
                f"{_fmt(naive / r['fast'] if naive else None, 9, 0)} {r['peak']:>8.1f}",
                flush=True,
            )


def _fmt(value, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


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
