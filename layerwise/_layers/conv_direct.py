"""Direct convolution of float32 stride-1 layers by the compiled kernels, without im2col columns.

Each image is zero-padded into the wide layout of :class:`.conv_im2col.Columns` (rows ``R`` wide,
the right padding of one row the left padding of the next), where every filter tap's input is one
contiguous run: :func:`.kernels.direct_conv` sums four filters from three taps a pass straight
into the output grids (:func:`direct_forward`), :func:`.kernels.direct_weight_grads` makes ``dw``
and ``db`` as dot products of the upstream gradient with those runs (:func:`direct_weight_grads`),
and ``dx`` is the direct convolution of ``dout`` by the flipped filters (:func:`direct_dx`). They
sum in their own order, so their results differ from im2col's by rounding.
"""

from __future__ import annotations

import functools

import numpy as np

from . import kernels
from .conv_plan import DIRECT_DW_CHUNKS, dx_geometry
from .geometry import ConvGeometry
from .scratch import bordered, scratch
from .threads import even_parts, for_each_chunk, get_num_threads


def direct_forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry, b=None, out=None, consume=None) -> None:
    """The stride-1 convolution of ``x`` by ``w`` by :func:`.kernels.direct_conv`, a few images
    per call on :mod:`.threads`'s threads (every output the same bits whatever the chunks).

    Either into ``out`` (N, F, H_out, W_out) with the bias ``b`` added, or, given ``consume``, as
    :func:`.conv_im2col.im2col_forward` hands its output on: ``consume(n0, m, grid)`` is called in the thread
    that computed images ``n0:n0+m``, ``grid`` (F, m, H_out, W_out) being their output without the
    bias, in this thread's scratch array, which ``consume`` may change but must not keep.
    """
    R = max(g.W + g.pad, g.W_out)  # as the wide im2col layout
    K = g.C * g.HH * g.WW
    w4 = np.zeros((-(-g.F // 4) * 4, K), dtype=x.dtype)  # whole blocks of four filters
    w4[: g.F] = w.reshape(g.F, K)
    taps = _direct_taps(g.C, g.H + 2 * g.pad, R, g.HH, g.WW)

    def work(_: int, n0: int, m: int) -> None:
        padded = _direct_padded(x, n0, m, g, R)
        acc = scratch("conv.direct_acc", (4, g.H_out * R), x.dtype)
        if consume is None:
            kernels.direct_conv(padded, w4, taps, b, acc, out[n0 : n0 + m])
            return
        grid = scratch("conv.direct_grid", (g.F, m, g.H_out, g.W_out), x.dtype)
        kernels.direct_conv(padded, w4, taps, None, acc, grid)
        consume(n0, m, grid)

    # Chunks of a few images: each call makes whole images, so the chunking changes no bit.
    for_each_chunk(even_parts(g.N, 4 * get_num_threads()), work)


def _direct_padded(x: np.ndarray, n0: int, m: int, g: ConvGeometry, R: int) -> np.ndarray:
    """Images ``n0:n0+m`` of ``x`` zero-padded for the direct kernels, (m, C * Hp * R + WW): C
    planes of ``Hp = H + 2 * pad`` rows ``R`` wide, each row ``pad`` zeros then ``W`` pixels (the
    zeros of the next row pad it on the right, as in the wide im2col layout), then ``WW``
    zeros, which the last taps' runs reach into. This thread's scratch array."""
    Hp = g.H + 2 * g.pad
    padded = bordered("conv.direct_padded", (m, g.C * Hp * R + g.WW), x.dtype, (g, R))
    planes = padded[:, : g.C * Hp * R].reshape(m, g.C, Hp, R)
    planes[:, :, g.pad : g.pad + g.H, g.pad : g.pad + g.W] = x[n0 : n0 + m]
    return padded


@functools.lru_cache(maxsize=64)
def _direct_taps(C: int, Hp: int, R: int, HH: int, WW: int) -> np.ndarray:
    """Offsets ``c * Hp * R + i * R + j`` of the filter taps (c, i, j), in ``w.reshape(F, K)``'s
    order, into a padded image of C planes of Hp rows R wide. Read-only (cached)."""
    c, i, j = np.meshgrid(np.arange(C), np.arange(HH), np.arange(WW), indexing="ij")
    taps = (c * (Hp * R) + i * R + j).reshape(-1).astype(np.intp)
    taps.flags.writeable = False
    return taps



def direct_dx(dout: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """``dx`` (N, C, H, W) by :func:`direct_forward`, as the convolution of :func:`.conv_plan.dx_geometry`."""
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, F, HH, WW)
    dx = np.empty((g.N, g.C, g.H, g.W), dtype=dout.dtype)
    direct_forward(dout, flipped, dx_geometry(g), np.zeros(g.C, dtype=dout.dtype), dx)
    return dx



def direct_weight_grads(x: np.ndarray, g: ConvGeometry, fill) -> tuple[np.ndarray, np.ndarray]:
    """``(dw, db)`` of a stride-1 convolution by :func:`.kernels.direct_weight_grads`, on
    :mod:`.threads`'s threads, without im2col columns. The upstream gradient is written by
    ``fill(n0, m, target)`` as for :func:`.conv_im2col.im2col_backward` (``target`` (F, m, H_out, W_out), a
    strided view of a scratch array). Each of a fixed number of chunks of images makes its own
    partial sums, added up in chunk order: the same bits on any number of threads."""
    R = max(g.W + g.pad, g.W_out)
    K, F4 = g.C * g.HH * g.WW, -(-g.F // 4) * 4
    taps = _direct_taps(g.C, g.H + 2 * g.pad, R, g.HH, g.WW)
    chunks = even_parts(g.N, DIRECT_DW_CHUNKS)
    dw_parts = np.empty((len(chunks), F4, K), dtype=x.dtype)
    db_parts = np.empty((len(chunks), F4), dtype=x.dtype)

    def work(i: int, n0: int, m: int) -> None:
        # Zeros outside the filters and columns that fill writes: they add nothing.
        grid = bordered("conv.direct_dout", (m, F4, g.H_out, R), x.dtype, (g.F, g.W_out))
        fill(n0, m, grid[:, : g.F, :, : g.W_out].transpose(1, 0, 2, 3))
        kernels.direct_weight_grads(_direct_padded(x, n0, m, g, R), grid, taps, dw_parts[i], db_parts[i])

    for_each_chunk(chunks, work)
    dw, db = dw_parts[0].copy(), db_parts[0].copy()
    for i in range(1, len(chunks)):
        dw += dw_parts[i]
        db += db_parts[i]
    return dw[: g.F].reshape(g.F, g.C, g.HH, g.WW), db[: g.F]

