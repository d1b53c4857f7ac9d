"""An optional compiled kernel (Numba) for the pass NumPy does slowest in a training step: the
fused 2x2 max pool of a convolution's output with each window's first-maximum offset.

NumPy needs about a dozen passes for it (the bias, the row and column maxima, one comparison per
window offset; see :mod:`.pool_fast`), many of them strided and each a call that takes and
releases the GIL; the kernel makes one pass without the GIL: 50 us against 450 us for a group of
12 ThreeLayerConvNet images (32 filters, 32x32). It is used when Numba is installed (``pip install
'layerwise[fast]'``) and gives the NumPy path's results to the bit: the same maxima of the same
biased outputs, the first in row-major order on ties, the first NaN of a window holding one.
Without Numba, or with ``LAYERWISE_NO_NUMBA=1``, :data:`available` is False and nothing here runs;
with it, Numba is imported and the kernel compiled (or loaded from its on-disk cache) on first use.
The backward's scatter through those offsets (with the ReLU's gate) is the second kernel: zeros,
then one write a window, 160 us against 350 us for NumPy's masked copies. The third is the
standalone max pool's backward scatter through its flat indices (:mod:`.pool_fast`), a chunk of
images at a time on the layers' threads: 0.1-0.3 ms against NumPy's 0.4-0.6 ms (2 threads).
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading

import numpy as np

# Numba is imported on the first call, not here: importing it takes ~0.3 s and ~70 MB, which
# every `import layerwise` would otherwise pay, convolutions or not.
available = (
    os.environ.get("LAYERWISE_NO_NUMBA", "").strip() in ("", "0") and importlib.util.find_spec("numba") is not None
)
_compiled: dict = {}
_compiling = threading.Lock()


def pool_2x2_code(grid, bias, pooled, code) -> None:
    """:func:`_pool_2x2_code`, compiled by Numba on the first call (only when :data:`available`)."""
    _kernel(_pool_2x2_code)(grid, bias, pooled, code)


def scatter_2x2(code, grad, relu_input, target) -> None:
    """:func:`_scatter_2x2`, compiled by Numba on the first call (only when :data:`available`)."""
    _kernel(_scatter_2x2)(code, grad, relu_input, target)


def scatter_add(index, grad, target, first) -> None:
    """:func:`_scatter_add`, compiled by Numba on the first call (only when :data:`available`)."""
    _kernel(_scatter_add)(index, grad, target, first)


def warm_up(dtype=np.float32) -> None:
    """Load Numba and compile (or load from the on-disk cache) the kernels for ``dtype`` now, on
    tiny arrays, rather than in the first training step: about a second and 100+ MB of resident
    memory (LLVM) the first time in a process. Does nothing without Numba."""
    if not available:
        return
    dtype = np.dtype(dtype)
    tiles = np.zeros((1, 1, 1, 1), dtype=dtype)
    grid = np.zeros((1, 1, 2, 2), dtype=dtype)
    code = np.zeros((1, 1, 1, 1), dtype=np.uint8)
    pool_2x2_code(grid, np.zeros(1, dtype=dtype), tiles, code)
    scatter_2x2(code, tiles, tiles, grid)
    scatter_add(np.zeros(1, dtype=np.intp), tiles.reshape(1), grid.reshape(4), 0)


def _kernel(function):
    """``function`` compiled by Numba, once."""
    kernel = _compiled.get(function.__name__)
    if kernel is None:
        with _compiling:  # chunks on several threads may arrive here at once
            if function.__name__ not in _compiled:
                from numba import njit

                _compiled[function.__name__] = njit(nogil=True, cache=True)(function)
        kernel = _compiled[function.__name__]
    return kernel


def _pool_2x2_code(grid, bias, pooled, code):  # pragma: no cover (compiled)
    """grid (F, m, H, W) (W may be a row pitch wider than 2 * W_out), bias (F,); writes pooled
    (F, m, H_out, W_out) = each 2x2 window's maximum of grid + bias, and code (same shape, uint8) =
    the row-major offset of its first maximum (of its first NaN if it holds one)."""
    F, m, H_out, W_out = pooled.shape
    for f in range(F):
        b = bias[f]
        for n in range(m):
            for y in range(H_out):
                top, bottom = grid[f, n, 2 * y], grid[f, n, 2 * y + 1]
                for x in range(W_out):
                    v0, v1 = top[2 * x] + b, top[2 * x + 1] + b
                    v2, v3 = bottom[2 * x] + b, bottom[2 * x + 1] + b
                    best, k = v0, 0
                    if v1 > best:
                        best, k = v1, 1
                    if v2 > best:
                        best, k = v2, 2
                    if v3 > best:
                        best, k = v3, 3
                    if math.isnan(v0) or math.isnan(v1) or math.isnan(v2) or math.isnan(v3):  # the first NaN
                        if math.isnan(v0):
                            best, k = v0, 0
                        elif math.isnan(v1):
                            best, k = v1, 1
                        elif math.isnan(v2):
                            best, k = v2, 2
                        else:
                            best, k = v3, 3
                    pooled[f, n, y, x] = best
                    code[f, n, y, x] = k



def _scatter_2x2(code, grad, relu_input, target):  # pragma: no cover (compiled)
    """target (F, m, H, W): zeros, then for each 2x2 window (stride 2) ``grad`` at its offset
    ``code`` where ``relu_input > 0`` (the ReLU's gate). code, grad, relu_input (F, m, H_out, W_out)."""
    F, m, H_out, W_out = code.shape
    H, W = target.shape[2], target.shape[3]
    for f in range(F):
        for n in range(m):
            for y in range(H):
                for x in range(W):
                    target[f, n, y, x] = 0
            for y in range(H_out):
                for x in range(W_out):
                    if relu_input[f, n, y, x] > 0:
                        k = code[f, n, y, x]
                        target[f, n, 2 * y + (k >> 1), 2 * x + (k & 1)] = grad[f, n, y, x]


def _scatter_add(index, grad, target, first):  # pragma: no cover (compiled)
    """target (1-d): zeros, then ``target[index[i] - first] += grad[i]`` for i in order, as
    ``np.add.at`` adds (0 + g is g + 0.0: -0.0 becomes 0.0, as in the naive layer). index (intp)
    and grad (1-d, the same length)."""
    for j in range(target.shape[0]):
        target[j] = 0
    for i in range(index.shape[0]):
        target[index[i] - first] += grad[i]
