"""Compiled kernels of the max pool (:mod:`..pool_fast`) and of the fused 2x2 pool after a
convolution (:mod:`..conv_pool`): the pool with each window's first-maximum offset, and the two
scatters of the backward pass."""

from __future__ import annotations

import math

import numpy as np

from .registry import kernel


def _pool_examples(dtype):
    tiles, grid = np.zeros((1, 1, 1, 1), dtype=dtype), np.zeros((1, 1, 2, 2), dtype=dtype)
    return [(grid, np.zeros(1, dtype=dtype), tiles, np.zeros((1, 1, 1, 1), dtype=np.uint8))]


def _scatter_2x2_examples(dtype):
    tiles = np.zeros((1, 1, 1, 1), dtype=dtype)
    target = np.zeros((1, 1, 2, 3), dtype=dtype)[..., :2]  # a strided target, as in use
    bits = np.dtype(f"i{tiles.itemsize}")
    return [(np.zeros((1, 1, 1, 1), dtype=np.uint8), tiles.view(bits), tiles, target.view(bits))]


def _scatter_add_examples(dtype):
    return [(np.zeros(1, dtype=np.intp), np.zeros(1, dtype=dtype), np.zeros(4, dtype=dtype), 0)]


@kernel(_pool_examples)
def pool_2x2_code(grid, bias, pooled, code):  # pragma: no cover (compiled)
    """grid (F, m, H, W) (W may be a row pitch wider than 2 * W_out), bias (F,); writes pooled
    (m, F, H_out, W_out), images first as the layer's output has them, = each 2x2 window's maximum
    of grid + bias, and code (same shape, uint8) = the row-major offset of its first maximum (of
    its first NaN if it holds one).

    Written as selects rather than branches: which element of a window is largest is a coin toss
    the branch predictor loses."""
    m, F, H_out, W_out = pooled.shape
    for f in range(F):
        b = bias[f]
        for n in range(m):
            for y in range(H_out):
                top, bottom = grid[f, n, 2 * y], grid[f, n, 2 * y + 1]
                pooled_row, code_row = pooled[n, f, y], code[n, f, y]
                for x in range(W_out):
                    v0, v1 = top[2 * x] + b, top[2 * x + 1] + b
                    v2, v3 = bottom[2 * x] + b, bottom[2 * x + 1] + b
                    later = v1 > v0
                    best = v1 if later else v0
                    k = np.uint8(1) if later else np.uint8(0)
                    later = v2 > best
                    best = v2 if later else best
                    k = np.uint8(2) if later else k
                    later = v3 > best
                    best = v3 if later else best
                    k = np.uint8(3) if later else k
                    if math.isnan(v0 + v1 + v2 + v3):  # a NaN (or inf - inf), rare: the first NaN
                        if math.isnan(v0):
                            best, k = v0, np.uint8(0)
                        elif math.isnan(v1):
                            best, k = v1, np.uint8(1)
                        elif math.isnan(v2):
                            best, k = v2, np.uint8(2)
                        elif math.isnan(v3):
                            best, k = v3, np.uint8(3)
                    pooled_row[x] = best
                    code_row[x] = k


def scatter_2x2(code, grad, relu_input, target) -> None:
    """:func:`_scatter_2x2` on the bits of ``grad`` and ``target``: ``code``, ``grad``,
    ``relu_input`` (m, F, H_out, W_out), ``target`` (F, m, H, W); ``grad`` and ``target`` share a
    float dtype."""
    bits = np.dtype(f"i{grad.itemsize}")
    _scatter_2x2(code, grad.view(bits), relu_input, target.view(bits))


@kernel(_scatter_2x2_examples)
def _scatter_2x2(code, grad_bits, relu_input, target_bits):  # pragma: no cover (compiled)
    """target (F, m, H, W): zeros, then for each 2x2 window (stride 2) ``grad`` at its offset
    ``code`` where ``relu_input > 0`` (the ReLU's gate). code, grad, relu_input (m, F, H_out,
    W_out), images first as the layer's arrays have them: slices of those are contiguous, which
    halves the time against transposed views, whose generic strides keep the loops from vectorising. ``grad`` and ``target`` come as integer views
    of their bits, so that the gate is a bitwise AND with all ones or all zeros (exact for inf and
    NaN, as :func:`..masking.select`), in a loop of its own that compiles without branches: a gate
    open for about half the windows at random is what a branch predictor handles worst."""
    m, F, H_out, W_out = code.shape
    H, W = target_bits.shape[2], target_bits.shape[3]
    gated = np.empty(W_out, dtype=grad_bits.dtype)
    for f in range(F):
        for n in range(m):
            for y in range(H):
                for x in range(W):
                    target_bits[f, n, y, x] = 0
            for y in range(H_out):
                for x in range(W_out):
                    gated[x] = grad_bits[n, f, y, x] & -np.int64(relu_input[n, f, y, x] > 0)
                for x in range(W_out):
                    k = code[n, f, y, x]
                    if k < 4:  # as NumPy's masked copies, an offset no window has writes nothing
                        target_bits[f, n, 2 * y + (k >> 1), 2 * x + (k & 1)] = gated[x]


@kernel(_scatter_add_examples)
def scatter_add(index, grad, target, first):  # pragma: no cover (compiled)
    """target (1-d): zeros, then ``target[index[i] - first] += grad[i]`` for i in order, as
    ``np.add.at`` adds (0 + g is g + 0.0: -0.0 becomes 0.0, as in the naive layer). index (intp)
    and grad (1-d, the same length). Indices that fall outside target are skipped and counted (the
    count is returned): compiled code has no bounds checks, and the indices come from a cache a
    caller could have built or changed by hand."""
    size = target.shape[0]
    for j in range(size):
        target[j] = 0
    outside = 0
    for i in range(index.shape[0]):
        t = index[i] - first
        if t < 0 or t >= size:
            outside += 1
        else:
            target[t] += grad[i]
    return outside
