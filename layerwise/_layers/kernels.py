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
(A kernel for the backward's scatter through the offsets measured slower than NumPy's masked
copies, 500-900 us against 350 us, and is not here.)
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading

# Numba is imported on the first call, not here: importing it takes ~0.3 s and ~70 MB, which
# every `import layerwise` would otherwise pay, convolutions or not.
available = (
    os.environ.get("LAYERWISE_NO_NUMBA", "").strip() in ("", "0") and importlib.util.find_spec("numba") is not None
)
_compiled: dict = {}
_compiling = threading.Lock()


def pool_2x2_code(grid, bias, pooled, code) -> None:
    """:func:`_pool_2x2_code`, compiled by Numba on the first call (only when :data:`available`)."""
    kernel = _compiled.get("pool_2x2_code")
    if kernel is None:
        with _compiling:  # chunks on several threads may arrive here at once
            if "pool_2x2_code" not in _compiled:
                from numba import njit

                _compiled["pool_2x2_code"] = njit(nogil=True, cache=True)(_pool_2x2_code)
        kernel = _compiled["pool_2x2_code"]
    kernel(grid, bias, pooled, code)


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

