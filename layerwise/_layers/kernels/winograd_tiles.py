"""Compiled Winograd F(2x2, 3x3) transforms (:mod:`..winograd`): each tile's in one pass over
contiguous runs of (image, channel), the NumPy passes' operations in their order."""

from __future__ import annotations

import numpy as np

from .registry import kernel


def _pixel_major_examples(dtype):
    return [(np.zeros((1, 1, 2, 2), dtype=dtype), np.zeros((2, 2, 1, 1), dtype=dtype))]


def _input_tiles_examples(dtype):
    return [(np.zeros((4, 4, 1), dtype=dtype), np.zeros((4, 4, 1, 1, 1), dtype=dtype))]


def _output_tiles_examples(dtype):
    prod, out = np.zeros((4, 4, 1, 1, 1, 1), dtype=dtype), np.zeros((1, 1, 2, 2), dtype=dtype)
    return [(prod, prod[0, 0, 0, 0, 0], False, out), (prod, np.zeros(1, dtype=dtype), True, out)]


def _gradient_tiles_examples(dtype):
    return [(np.zeros((2, 2, 1), dtype=dtype), np.zeros((4, 4, 1, 1, 1), dtype=dtype))]


@kernel(_pixel_major_examples)
def to_pixel_major(x, target):  # pragma: no cover (compiled)
    """target (H, W, m, C)[y, x, n, c] = x (m, C, H, W)[n, c, y, x]: the Winograd input's layout
    change, a channel run at a time (NumPy's transposed copy moves one element per inner step)."""
    m, C, H, W = x.shape
    for n in range(m):
        for y in range(H):
            for col in range(W):
                run = target[y, col, n]
                for c in range(C):
                    run[c] = x[n, c, y, col]


@kernel(_input_tiles_examples)
def winograd_input_tiles(padded, V):  # pragma: no cover (compiled)
    """V (4, 4, tH, tW, L)[a, b, ty, tx] = (B^T d B)[a, b] of the 4x4 tile of ``padded`` (Hp, Wp, L)
    at rows and columns (2 ty, 2 tx), L = images x channels: the operations of
    :func:`..winograd._input_transform`'s NumPy passes, in their order (rows first, then columns),
    one tile at a time on runs of L."""
    tH, tW, L = V.shape[2], V.shape[3], V.shape[4]
    r = np.empty((4, 4, L), dtype=V.dtype)  # r[a, j]: row combination a at tile column j
    for ty in range(tH):
        for tx in range(tW):
            for j in range(4):
                d0, d1 = padded[2 * ty, 2 * tx + j], padded[2 * ty + 1, 2 * tx + j]
                d2, d3 = padded[2 * ty + 2, 2 * tx + j], padded[2 * ty + 3, 2 * tx + j]
                r0, r1, r2, r3 = r[0, j], r[1, j], r[2, j], r[3, j]
                for t in range(L):
                    r0[t] = d0[t] - d2[t]
                    r1[t] = d1[t] + d2[t]
                    r2[t] = d2[t] - d1[t]
                    r3[t] = d1[t] - d3[t]
            for a in range(4):
                e0, e1, e2, e3 = r[a, 0], r[a, 1], r[a, 2], r[a, 3]
                v0, v1, v2, v3 = V[a, 0, ty, tx], V[a, 1, ty, tx], V[a, 2, ty, tx], V[a, 3, ty, tx]
                for t in range(L):
                    v0[t] = e0[t] - e2[t]
                    v1[t] = e1[t] + e2[t]
                    v2[t] = e2[t] - e1[t]
                    v3[t] = e1[t] - e3[t]


def winograd_output_tiles(prod, bias, out) -> None:
    """:func:`_winograd_output_tiles`, ``bias`` (F,) or None for none."""
    if bias is None:  # any (F,) array of the dtype stands in, unread: one compiled signature
        _winograd_output_tiles(prod, prod[0, 0, 0, 0, 0], False, out)
    else:
        _winograd_output_tiles(prod, bias, True, out)


@kernel(_output_tiles_examples)
def _winograd_output_tiles(prod, bias, has_bias, out):  # pragma: no cover (compiled)
    """out (m, F, H_out, W_out) = A^T M A of each tile, M = prod (4, 4, tH, tW, m, F), plus
    ``bias`` (F,) where ``has_bias``, cropped where an output size is odd: the operations of
    :func:`..winograd._winograd_chunk`'s NumPy passes, in their order, one tile at a time on runs
    of F, then its four pixels written into the images."""
    m, F, H_out, W_out = out.shape
    tH, tW = prod.shape[2], prod.shape[3]
    s = np.empty((2, 4, m, F), dtype=out.dtype)  # A^T M: s[a, column]
    y = np.empty((2, 2, m, F), dtype=out.dtype)
    for ty in range(tH):
        for tx in range(tW):
            for col in range(4):
                p0, p1, p2, p3 = prod[0, col, ty, tx], prod[1, col, ty, tx], prod[2, col, ty, tx], prod[3, col, ty, tx]
                s0, s1 = s[0, col], s[1, col]
                for n in range(m):
                    for f in range(F):
                        s0[n, f] = (p0[n, f] + p1[n, f]) + p2[n, f]
                        s1[n, f] = (p1[n, f] - p2[n, f]) - p3[n, f]
            if has_bias:  # on column 1, which both output columns add once
                for a in range(2):
                    for n in range(m):
                        for f in range(F):
                            s[a, 1, n, f] += bias[f]
            for a in range(2):
                q0, q1, q2, q3 = s[a, 0], s[a, 1], s[a, 2], s[a, 3]
                y0, y1 = y[a, 0], y[a, 1]
                for n in range(m):
                    for f in range(F):
                        y0[n, f] = (q0[n, f] + q1[n, f]) + q2[n, f]
                        y1[n, f] = (q1[n, f] - q2[n, f]) - q3[n, f]
            for a in range(2):
                row = 2 * ty + a
                if row >= H_out:
                    continue
                for c in range(2):
                    col = 2 * tx + c
                    if col >= W_out:
                        continue
                    pixel = y[a, c]
                    for n in range(m):
                        for f in range(F):
                            out[n, f, row, col] = pixel[n, f]


@kernel(_gradient_tiles_examples)
def winograd_gradient_tiles(padded, dM):  # pragma: no cover (compiled)
    """dM (4, 4, tH, tW, L)[a, b, ty, tx] = (A dY A^T)[a, b] of the 2x2 tile of ``padded``
    (2 tH, 2 tW, L) at rows and columns (2 ty, 2 tx), L = images x filters: the operations of
    :func:`..winograd._output_gradient_transform`'s NumPy passes, in their order (rows first), one
    tile at a time on runs of L."""
    tH, tW, L = dM.shape[2], dM.shape[3], dM.shape[4]
    r = np.empty((4, 2, L), dtype=dM.dtype)  # r[a, j]: row combination a at tile column j
    for ty in range(tH):
        for tx in range(tW):
            for j in range(2):
                y0, y1 = padded[2 * ty, 2 * tx + j], padded[2 * ty + 1, 2 * tx + j]
                r0, r1, r2, r3 = r[0, j], r[1, j], r[2, j], r[3, j]
                for t in range(L):
                    r0[t] = y0[t]
                    r1[t] = y0[t] + y1[t]
                    r2[t] = y0[t] - y1[t]
                    r3[t] = -y1[t]
            for a in range(4):
                c0, c1 = r[a, 0], r[a, 1]
                m0, m1, m2, m3 = dM[a, 0, ty, tx], dM[a, 1, ty, tx], dM[a, 2, ty, tx], dM[a, 3, ty, tx]
                for t in range(L):
                    m0[t] = c0[t]
                    m1[t] = c0[t] + c1[t]
                    m2[t] = c0[t] - c1[t]
                    m3[t] = -c1[t]
