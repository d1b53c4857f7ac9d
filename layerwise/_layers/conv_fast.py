"""Convolution as matrix products over im2col columns, in pure NumPy, a few images at a time.

Layout
------
The batch is processed in chunks of ``nb`` images, ``nb`` chosen so that one chunk's column
matrix (``K = C*HH*WW`` rows by ``nb*Q`` columns) stays near ``_CHUNK_BYTES``: it is built in
cache, consumed by BLAS while still in cache, and overwritten by the next chunk. A whole-batch
column matrix would be ``K`` times the input (30 MB for the 7x7 filters of ThreeLayerConvNet at
batch 50), and writing then re-reading it from memory costs more than building it again.

Each column is one output position of one image, its ``K`` rows ordered ``(c, i, j)`` as in
``w.reshape(F, K)``. Two column layouts (see :class:`_Plan`):

* *compact* (any stride): ``Q = H_out*W_out`` columns per image, built by one strided copy of
  every receptive field;
* *wide* (stride 1): ``Q = H_out*R`` columns per image, one per position of an output grid whose
  rows are as long as the rows of the padded-input buffer (pitch ``R = max(W + pad, W_out)``; the
  right padding of one row is the left padding of the next). Each row of the column matrix is then,
  for one image, a single contiguous run of the buffer, so building it is ``K`` long copies; the
  ``R - W_out`` extra columns per output row are computed and dropped.

* forward: ``product = w.reshape(F, K) @ cols``, shape ``(F, nb*Q)``, then one copy of its valid
  columns into ``out[n0:n1]`` (``(nb, F, H_out, W_out)``) that also adds the bias
  (:func:`im2col_forward` hands each chunk's product to a consumer instead, so that
  :mod:`.conv_pool` pools it while it is in cache). Where the columns are compact or cheap to
  build compact, each image's product is written straight into ``out`` instead
  (:func:`_im2col_forward_into`), with no copy. With Numba, float32 stride-1 layers that Winograd
  does not take skip the columns altogether: :func:`.kernels.direct_conv` sums the taps' runs of the
  same wide padded buffer straight into four filters' output grids at a time
  (:func:`direct_forward`);
* backward: the chunk's upstream gradient is copied into the same grid layout ``(F, nb*Q)`` (zeros
  in the dropped columns), summed into ``db`` while in cache, and used so that
  ``dw.T += cols @ dout.T`` is one GEMM (BLAS reads the transpose in place) and
  ``dcols = w.T @ dout``; ``dx`` is scattered back from ``dcols`` (col2im): wide layout, by
  adding each of the ``HH*WW`` runs into a padded gradient buffer (with Numba, the same sums one
  image channel at a time, :func:`.kernels.col2im_wide`); compact layout, by adding one strided
  slice per kernel offset, clipped to the unpadded input (with Numba, the same sums as contiguous
  runs into the padded image's phase planes, :func:`.kernels.col2im_compact`). Within one offset
  a slice never hits the same pixel twice, so ``+=`` on a view is exact and ``np.add.at`` is not
  needed. For 3x3 stride-1 layers with enough input channels, :func:`conv_backward_fast` instead
  computes ``dx`` as one Winograd convolution of ``dout`` (:func:`_winograd_dx`) and the chunks
  make ``dw`` and ``db`` only (or Winograd makes them too). Float32 stride-1 layers with fewer
  channels, with Numba, need no columns at all: ``dw`` and ``db`` come from
  :func:`direct_weight_grads` and ``dx`` from a direct convolution of ``dout`` (:func:`_direct_dx`).

The chunks run on several threads (:mod:`.threads`), BLAS held to one thread meanwhile. Where the
layer above handles each chunk's output (or writes its upstream gradient) with many NumPy calls
(the fused pool without Numba), they run a group of consecutive chunks at a time
(:meth:`_Plan.groups`): a group shares one output (or upstream gradient) grid, so those calls are
fewer and larger. Each chunk writes its own part of the outputs and its own partial ``dw`` and
``db``, added up in chunk order, so the results are the same to the bit on any number of threads
and any grouping.

The columns are rebuilt in the backward pass rather than cached: rebuilding a chunk in cache is
cheaper than storing the whole-batch matrix and reading it back, and the cache stays
``(x, w, b, conv_param)``. The padded chunk, the columns, the products and the gradient buffers
are per-thread scratch arrays (:mod:`.scratch`) reused from call to call; nothing returned or
cached lives in them.

Unlike :func:`~layerwise._layers.conv_naive.conv_forward_naive`, any geometry is accepted: when the
stride does not tile the padded input, the trailing rows/columns no filter position covers are
dropped (``H_out = 1 + (H + 2*pad - HH) // stride``), as in ``torch.nn.functional.conv2d``.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import _validation as v
from . import kernels
from .geometry import ConvGeometry, conv_inputs, upstream
from .scratch import bordered, scratch
from .threads import even_parts, for_each_chunk, get_num_threads
from .winograd import winograd_forward, winograd_weight_grads

# Bytes of column matrix per chunk: the chunk's buffers stay in L2/L3, and chunks are large enough
# that BLAS calls amortise. Measured (float32, ms, forward/backward, 2 MiB -> 4 MiB, one thread):
# ThreeLayerConvNet's conv 9.6/25.0 -> 10.3/25.4, 16->16 channels 32x32 batch 128 13.7/38.1 ->
# 15.7/42.8; two threads: 5.8/16.6 -> 6.6/16.4, 11.1/30.7 -> 12.0/33.4.
_CHUNK_BYTES = 2 << 20
# Bytes of output (or upstream gradient) grid per group of chunks where the chunks are grouped
# (see _Plan.groups): the layer above (the fused pool's NumPy path) then works in fewer, larger
# NumPy calls, which also hold the GIL less often when chunks run on several threads. Measured on
# ThreeLayerConvNet's conv + pool with the NumPy pool, batch 50 (ms, forward/backward, each chunk
# its own group -> 2 MiB groups): one thread 10.1/11.6 -> 9.4/11.4, two threads
# 5.9-6.5/7.3-7.4 -> 5.6-5.7/6.8-7.1. Where the layer above makes one call per chunk (a Numba
# kernel, one copy), a group's grid only pushes the chunk's product out of L2: 2 MiB groups ->
# each chunk its own (ms, medians of 7 alternations, one thread / two): ThreeLayerConvNet's conv +
# pool forward 7.99 -> 7.52 / 4.37 -> 4.05, backward 9.82 -> 9.59 / 5.35 -> 5.18; 16->16 channels
# 32x32 batch 128 forward 12.33 -> 11.64 / 6.15 -> 6.12, backward 25.75 -> 24.01 / 12.61 -> 12.81.
_GROUP_BYTES = 2 << 20
# The wide layout (stride 1) computes R/W_out times the needed columns; used up to this ratio.
_WIDE_MAX_WASTE = 1.2
# conv_forward_fast computes 3x3, stride-1 convolutions with at least this many input channels by
# Winograd F(2x2, 3x3) (:mod:`.winograd`, 2.25x fewer multiplications). Below it the transforms'
# layout changes cost more than the multiplications saved. Measured (1 BLAS thread, float32,
# batch 128, ms, im2col -> Winograd): 16 channels 32x32 12.7 -> 22.6; 32 channels 16x16
# 10.1 -> 9.0; 64x64 16x16 32.8 -> 26.0; 64->128 8x8 17.2 -> 13.1; 128 4x4 10.1 -> 7.1.
_WINOGRAD_MIN_CHANNELS = 32
# conv_backward_fast computes dx of a 3x3, stride-1 convolution with pad <= 2 as the Winograd
# convolution of dout by the flipped, transposed filters (:func:`_winograd_dx`) when the layer has at
# least this many input channels C, the *output* channels of that convolution; dw and db stay im2col.
# Its input channels F matter little: F = 2..16 still gains when C >= 32. Measured (1 BLAS thread,
# float32, batch 128, whole backward, ms, im2col dx -> Winograd dx): C=3 F=16 32x32 8.4 -> 21.6;
# 16->16 32x32 32.4 -> 35.3; 16->32 32x32 44.8 -> 57.7; 24->24 32x32 57.2 -> 60.1; 16->16 16x16
# 8.6 -> 7.8; 32->8 16x16 13.5 -> 11.8; 32->16 32x32 63.1 -> 52.6; 32->32 16x16 22.8 -> 19.5;
# 64->64 16x16 70.5 -> 56.4; 64->128 8x8 34.1 -> 28.2; 128->128 4x4 22.6 -> 17.1. Below C = 32 the
# transforms' short (images x C) inner runs cost more than the multiplications saved.
_WINOGRAD_DX_MIN_CHANNELS = 32
# conv_backward_fast (and _weights) compute dw and db of a 3x3, stride-1 convolution with at least
# this many input channels by Winograd (winograd.winograd_weight_grads) instead of im2col chunks.
# Measured with NumPy's transforms (float32, batch 128, ms, im2col -> Winograd, one thread / two
# threads): 16->16 32x32 14.3 -> 27.0 / 7.8 -> 16.0; 32->32 16x16 10.6 -> 9.9 / 6.3 -> 7.4; 64->64
# 16x16 33.6 -> 27.6 / 18.6 -> 18.6; 64->128 8x8 17.4 -> 12.0 / 9.6 -> 7.8; 128->128 4x4 11.1 ->
# 5.5 / 6.4 -> 4.1. With the compiled transforms of .kernels the threshold went from 64 down to 32
# (whole backward pass, medians of 5 alternations, threshold 64 -> 32): 32->32 16x16 17.47 ->
# 13.24 / 11.46 -> 8.78; 32->32 8x8 5.42 -> 3.12 / 4.33 -> 2.54; 48->48 16x16 32.33 -> 24.22 /
# 18.76 -> 14.16; 32->64 16x16 29.22 -> 23.70 / 17.44 -> 15.69; 32->32 32x32 (batch 64) 42.08 ->
# 39.13 / 25.75 -> 24.33; in an earlier run 32->32 32x32 (batch 128) and 32->64 32x32 (batch 64)
# came out at 0.95-1.06x, within noise. Without them (NumPy's transforms) it stays at 64.
_WINOGRAD_DW_MIN_CHANNELS = 32
_WINOGRAD_DW_MIN_CHANNELS_NUMPY = 64
# direct_weight_grads splits the batch into this many chunks (fewer for a smaller batch), whatever
# the number of threads, so that its partial sums, and so its bits, do not depend on the threads.
_DIRECT_DW_CHUNKS = 16


class ConvFastCache(NamedTuple):
    """What :func:`conv_backward_fast` needs: the forward inputs (``w``, ``b`` in ``x.dtype``)."""

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray
    conv_param: dict


def conv_forward_fast(x: np.ndarray, w: Any, b: Any, conv_param: dict) -> tuple[np.ndarray, ConvFastCache]:
    """Forward pass of a convolutional layer, by im2col and matrix products.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Input images, float32 or float64; the output and all gradients keep this dtype.
    w : ndarray, shape (F, C, HH, WW)
        Filter weights (cast to ``x.dtype``).
    b : ndarray, shape (F,)
        Biases (cast to ``x.dtype``).
    conv_param : dict
        ``'stride'`` (>= 1) and ``'pad'`` (zeros on every side of H and W, >= 0).

    Returns
    -------
    out : ndarray, shape (N, F, H_out, W_out), C-contiguous
        ``H_out = 1 + (H + 2*pad - HH) // stride``, likewise ``W_out``; positions the stride does
        not reach are dropped, as in ``torch.nn.functional.conv2d``.
    cache : ConvFastCache
        ``(x, w, b, conv_param)`` for :func:`conv_backward_fast`.

    Notes
    -----
    3x3 filters with stride 1 and at least ``_WINOGRAD_MIN_CHANNELS`` input channels are computed
    by Winograd F(2x2, 3x3) (see :func:`uses_winograd`); other float32 stride-1 layers, where
    Numba is installed, by a direct convolution (see :func:`uses_direct`). Their results differ from
    im2col's only by rounding. The backward pass is the same either way.
    """
    x, w, b, g = conv_inputs("conv_forward_fast", x, w, b, conv_param, exact=False)
    out = np.empty((g.N, g.F, g.H_out, g.W_out), dtype=x.dtype)
    if uses_winograd(g):
        winograd_forward(x, w, b, g, out)
    elif uses_direct(g, x.dtype):
        direct_forward(x, w, g, b, out)
    elif _products_into_output(g):
        _im2col_forward_into(x, w, b, g, out)
    else:
        bias = b.reshape(1, g.F, 1, 1)

        def copy_out(n0: int, m: int, grid: np.ndarray) -> None:
            np.add(grid[..., : g.W_out].transpose(1, 0, 2, 3), bias, out=out[n0 : n0 + m])

        im2col_forward(x, w, g, copy_out)
    return out, ConvFastCache(x, w, b, dict(conv_param))


def _products_into_output(g: ConvGeometry) -> bool:
    """Whether the im2col forward (of a layer :func:`uses_direct` does not take) writes each
    image's product straight into the output (:func:`_im2col_forward_into`): where the columns
    are compact anyway (stride > 1), or cheap to build compact (``K <= 2 * F``: the copy out
    saved, ``F`` values per output position, outweighs the slower compact build of ``K`` rows).
    Measured (1 BLAS thread, float32, ms, chunked product then copy out -> per-image products into
    the output): notebook 3->25 stride 2 1.26 -> 0.95; 3->16 32x32 3.76 -> 2.77; 32->64 stride 2
    9.96 -> 9.93; 16->16 32x32 (K = 9 F) 12.3 -> 15.2; 7x7 3->32 (K = 4.6 F) 7.9 -> 9.0."""
    return g.stride > 1 or g.C * g.HH * g.WW <= 2 * g.F


def _im2col_forward_into(x: np.ndarray, w: np.ndarray, b: np.ndarray, g: ConvGeometry, out: np.ndarray) -> None:
    """The convolution of ``x`` by ``w`` plus ``b`` into ``out``, compact columns chunk by chunk:
    each image's product ``w (F, K) @ columns (K, Q)`` is written straight into its (F, Q)
    slice of ``out``, so there is no copy out of a chunk-wide product."""
    plan = _Plan(g, x.dtype, wide=False)
    w2, bias = w.reshape(g.F, plan.K), b.reshape(1, g.F, 1)

    def work(_: int, n0: int, m: int) -> None:
        cols = plan.columns(x, n0, m).reshape(plan.K, m, plan.Q).transpose(1, 0, 2)
        images = out[n0 : n0 + m].reshape(m, g.F, plan.Q)
        np.matmul(w2, cols, out=images)
        images += bias

    for_each_chunk(plan.chunks(), work)


def uses_direct(g: ConvGeometry, dtype: np.dtype) -> bool:
    """Whether :func:`conv_forward_fast` convolves directly (:func:`direct_forward`): stride 1,
    not Winograd, float32, and :mod:`.kernels` serve it. Faster than the im2col product on every
    such layer measured (see :mod:`.kernels`). float64, the dtype of gradient checks, keeps the
    im2col product: the notebook's check of conv -> ReLU -> pool (float64, its seed) gives its
    dx error of 9.59e-09 that way, and 1.46e-08 with the direct sums (1.16e-08 unfused). The
    analytic gradients are the same bits either way; the numeric estimates of the smallest
    derivatives sit at the noise floor of central differences, where any other rounding of the
    forward pass moves them."""
    return g.stride == 1 and not uses_winograd(g) and _direct_dtype(dtype)


def direct_forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry, b=None, out=None, consume=None) -> None:
    """The stride-1 convolution of ``x`` by ``w`` by :func:`.kernels.direct_conv`, a few images
    per call on :mod:`.threads`'s threads (every output the same bits whatever the chunks).

    Either into ``out`` (N, F, H_out, W_out) with the bias ``b`` added, or, given ``consume``, as
    :func:`im2col_forward` hands its output on: ``consume(n0, m, grid)`` is called in the thread
    that computed images ``n0:n0+m``, ``grid`` (F, m, H_out, W_out) being their output without the
    bias, in this thread's scratch array, which ``consume`` may change but must not keep.
    """
    R = max(g.W + g.pad, g.W_out)  # as _Plan's wide layout
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
    zeros of the next row pad it on the right, as in :class:`_Plan`'s wide layout), then ``WW``
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


def uses_winograd(g: ConvGeometry) -> bool:
    """Whether :func:`conv_forward_fast` takes the Winograd path: 3x3, stride 1, C large enough."""
    return g.HH == 3 and g.WW == 3 and g.stride == 1 and g.C >= _WINOGRAD_MIN_CHANNELS


def uses_winograd_dx(g: ConvGeometry) -> bool:
    """Whether :func:`conv_backward_fast` computes ``dx`` by Winograd: 3x3, stride 1, pad <= 2 (the
    dx convolution's padding ``2 - pad`` must not be negative), C large enough."""
    return (
        g.HH == 3 and g.WW == 3 and g.stride == 1 and g.pad <= 2 and g.C >= _WINOGRAD_DX_MIN_CHANNELS
    )


def uses_winograd_dw(g: ConvGeometry, dtype: np.dtype) -> bool:
    """Whether the backward pass computes ``dw`` and ``db`` by Winograd: 3x3, stride 1, C large
    enough (a lower threshold where :mod:`.kernels` make the transforms)."""
    threshold = _WINOGRAD_DW_MIN_CHANNELS if kernels.serves(dtype) else _WINOGRAD_DW_MIN_CHANNELS_NUMPY
    return g.HH == 3 and g.WW == 3 and g.stride == 1 and g.C >= threshold


def _winograd_dx(dout: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """``dx`` (N, C, H, W) of a 3x3, stride-1 convolution, as a convolution of ``dout``.

    ``dx[n, c, y, x] = sum_{f, i, j} dout[n, f, y + pad - i, x + pad - j] * w[f, c, i, j]``: with
    ``i' = 2 - i`` this is a stride-1 convolution of ``dout`` (zero-padded by ``2 - pad``) by the
    filters ``w[:, :, ::-1, ::-1]`` with F and C swapped, whose output is exactly H x W.
    """
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, F, 3, 3)
    dx_g = ConvGeometry(g.N, g.F, g.H_out, g.W_out, g.C, 3, 3, 1, 2 - g.pad, g.H, g.W)
    dx = np.empty((g.N, g.C, g.H, g.W), dtype=dout.dtype)
    winograd_forward(dout, flipped, None, dx_g, dx)
    return dx


def uses_direct_dw(g: ConvGeometry, dtype: np.dtype) -> bool:
    """Whether the backward pass computes ``dw`` and ``db`` by :func:`direct_weight_grads`: a
    layer whose forward :func:`uses_direct`, where Winograd does not make them."""
    return g.stride == 1 and not uses_winograd_dw(g, dtype) and _direct_dtype(dtype)


def uses_direct_dx(g: ConvGeometry, dtype: np.dtype) -> bool:
    """Whether :func:`conv_backward_fast` computes ``dx`` as a direct convolution of ``dout``
    (:func:`_direct_dx`): Winograd's dx does not take the layer, and :func:`uses_direct` takes
    that convolution."""
    dx_g = _dx_geometry(g)
    return dx_g is not None and not uses_winograd_dx(g) and uses_direct(dx_g, dtype)


def _direct_dtype(dtype: np.dtype) -> bool:
    """float32 where :mod:`.kernels` serve it (see :func:`uses_direct` for float64)."""
    return kernels.serves_training(dtype)


def _dx_geometry(g: ConvGeometry) -> ConvGeometry | None:
    """``dx`` as a convolution: ``dx[n, c, y, x] = sum_{f, i, j} dout[n, f, y + pad - i, x + pad -
    j] * w[f, c, i, j]`` is, with ``i' = HH - 1 - i``, the stride-1 convolution of ``dout``
    zero-padded by ``HH - 1 - pad`` with the flipped filters, F and C swapped; its output is
    exactly H x W. None where there is no such convolution (stride > 1, filters not square,
    pad >= HH)."""
    if g.stride != 1 or g.HH != g.WW or g.pad >= g.HH:
        return None
    return ConvGeometry(g.N, g.F, g.H_out, g.W_out, g.C, g.HH, g.WW, 1, g.HH - 1 - g.pad, g.H, g.W)


def _direct_dx(dout: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """``dx`` (N, C, H, W) by :func:`direct_forward`, as the convolution of :func:`_dx_geometry`."""
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, F, HH, WW)
    dx = np.empty((g.N, g.C, g.H, g.W), dtype=dout.dtype)
    direct_forward(dout, flipped, _dx_geometry(g), np.zeros(g.C, dtype=dout.dtype), dx)
    return dx


def direct_weight_grads(x: np.ndarray, g: ConvGeometry, fill) -> tuple[np.ndarray, np.ndarray]:
    """``(dw, db)`` of a stride-1 convolution by :func:`.kernels.direct_weight_grads`, on
    :mod:`.threads`'s threads, without im2col columns. The upstream gradient is written by
    ``fill(n0, m, target)`` as for :func:`im2col_backward` (``target`` (F, m, H_out, W_out), a
    strided view of a scratch array). Each of a fixed number of chunks of images makes its own
    partial sums, added up in chunk order: the same bits on any number of threads."""
    R = max(g.W + g.pad, g.W_out)
    K, F4 = g.C * g.HH * g.WW, -(-g.F // 4) * 4
    taps = _direct_taps(g.C, g.H + 2 * g.pad, R, g.HH, g.WW)
    chunks = even_parts(g.N, _DIRECT_DW_CHUNKS)
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


def im2col_forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry, consume, grouped: bool = False) -> None:
    """The convolution of ``x`` by ``w`` (no bias) chunk by chunk, on :mod:`.threads`'s threads.

    For each chunk (each group of chunks, with ``grouped``; see :meth:`_Plan.groups`), calls
    ``consume(n0, m, grid)`` in the thread that computed it: ``grid`` is the (F, m, H_out, Wg)
    output of images ``n0:n0+m``, C-contiguous, whose first ``W_out`` columns are the output and
    the rest (``Wg > W_out`` in the wide layout) are to be ignored; it is this thread's scratch
    array, which ``consume`` may change but must not keep, and ``consume`` must only write outputs
    of those images.
    """
    plan = _Plan(g, x.dtype)
    w2 = w.reshape(g.F, plan.K)
    chunks, groups = plan.chunks(), plan.groups(get_num_threads(), grouped)

    def work(i: int, n0: int, m: int) -> None:
        product = scratch("conv.product", (g.F, m * plan.Q), x.dtype)
        for c0, cm in (chunks[c] for c in groups[i]):
            start = (c0 - n0) * plan.Q
            np.matmul(w2, plan.columns(x, c0, cm), out=product[:, start : start + cm * plan.Q])
        consume(n0, m, product.reshape(g.F, m, g.H_out, plan.Wg))

    for_each_chunk(plan.spans(groups), work)


def conv_backward_fast(dout: np.ndarray, cache: ConvFastCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv_forward_fast`.

    Parameters
    ----------
    dout : ndarray, shape (N, F, H_out, W_out)
        Upstream derivatives (cast to the layer's dtype).
    cache : ConvFastCache
        As returned by :func:`conv_forward_fast`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dw : ndarray, shape (F, C, HH, WW)
    db : ndarray, shape (F,)

    Notes
    -----
    For 3x3 filters, stride 1, pad <= 2 and at least ``_WINOGRAD_DX_MIN_CHANNELS`` input channels,
    ``dx`` is computed as a Winograd convolution of ``dout`` (see :func:`uses_winograd_dx`); it
    differs from the im2col result only by rounding. With at least ``_WINOGRAD_DW_MIN_CHANNELS``
    input channels (``_WINOGRAD_DW_MIN_CHANNELS_NUMPY`` without Numba) ``dw`` and ``db`` are
    Winograd too (see :func:`uses_winograd_dw`).
    """
    dx, dw, db = _backward("conv_backward_fast", dout, cache, input_grad=True)
    return dx, dw, db


def conv_backward_fast_weights(dout: np.ndarray, cache: ConvFastCache) -> tuple[np.ndarray, np.ndarray]:
    """:func:`conv_backward_fast` without ``dx``, for a network's first layer, whose input needs no
    gradient (PyTorch likewise skips it for inputs that do not require grad): about half the work.

    Returns
    -------
    dw : ndarray, shape (F, C, HH, WW)
    db : ndarray, shape (F,)
    """
    _, dw, db = _backward("conv_backward_fast_weights", dout, cache, input_grad=False)
    return dw, db


def _backward(func: str, dout, cache: ConvFastCache, *, input_grad: bool):
    """``(dx or None, dw, db)`` of the convolution cached in ``cache``, for upstream gradient ``dout``."""
    x, w, b, conv_param = v.cache_tuple(func, cache, 4)
    x, w, b, g = conv_inputs(func, x, w, b, conv_param, exact=False)
    dout = upstream(func, dout, (g.N, g.F, g.H_out, g.W_out), x.dtype)

    def fill(n0: int, m: int, target: np.ndarray) -> None:
        np.copyto(target, dout[n0 : n0 + m].transpose(1, 0, 2, 3))

    if uses_winograd_dw(g, x.dtype) and (not input_grad or uses_winograd_dx(g)):  # else dx needs the im2col chunks
        dw, db = winograd_weight_grads(x, dout, g)
        return (_winograd_dx(dout, w, g) if input_grad else None), dw, db
    if input_grad and uses_winograd_dx(g):  # dx by Winograd, the chunks below make dw and db only
        return (_winograd_dx(dout, w, g), *im2col_backward(x, w, g, fill, input_grad=False)[1:])
    if uses_direct_dw(g, x.dtype) and (not input_grad or uses_direct_dx(g, x.dtype)):
        dw, db = direct_weight_grads(x, g, fill)
        return (_direct_dx(dout, w, g) if input_grad else None), dw, db
    return im2col_backward(x, w, g, fill, input_grad)


def im2col_backward(x: np.ndarray, w: np.ndarray, g: ConvGeometry, fill, input_grad: bool, grouped: bool = False):
    """``(dx or None, dw, db)`` of the convolution of ``x`` by ``w``, chunk by chunk on
    :mod:`.threads`'s threads, the columns rebuilt from ``x``.

    The upstream gradient is written by ``fill(n0, m, target)``, called in the chunk's thread
    (once for each group of chunks, with ``grouped``; see :meth:`_Plan.groups`): it must write the
    derivatives of images ``n0:n0+m`` into ``target``, a strided view of a scratch array with the
    axes (F, m, H_out, W_out) (images second, as the column matrix has them), so a layer above can
    put its gradient straight there.
    """
    dx = None
    plan = _Plan(g, x.dtype)
    K, Q = plan.K, plan.Q
    chunks = plan.chunks()
    # Each chunk's sums, added up in chunk order below: the same bits on any number of threads.
    db_parts = np.empty((len(chunks), g.F), dtype=x.dtype)
    dw_parts = np.empty((len(chunks), K, g.F), dtype=x.dtype)  # dw transposed: the faster GEMM
    if input_grad:
        w2t = w.reshape(g.F, K).T
        dx = np.empty_like(x, order="C")

    groups = plan.groups(get_num_threads(), grouped)

    def work(i: int, n0: int, m: int) -> None:
        # The wide grid's dropped columns hold zero gradient (they add nothing); fill writes the rest.
        grid = bordered("conv.dout", (g.F, m, g.H_out, plan.Wg), x.dtype, (g.H_out, g.W_out))
        fill(n0, m, grid[..., : g.W_out])
        group_dout = grid.reshape(g.F, m * Q)
        for c in groups[i]:
            c0, cm = chunks[c]
            start = (c0 - n0) * Q
            chunk_dout = group_dout[:, start : start + cm * Q]
            cols = plan.columns(x, c0, cm)
            np.add.reduce(chunk_dout, axis=1, out=db_parts[c])  # summed while in cache rather than in a pass over dout
            np.matmul(cols, chunk_dout.T, out=dw_parts[c])
            if input_grad:
                dcols = scratch("conv.dcols", (K, cm * Q), x.dtype)
                np.matmul(w2t, chunk_dout, out=dcols)
                plan.col2im(dcols, dx[c0 : c0 + cm])

    for_each_chunk(plan.spans(groups), work)
    db, dw_t = db_parts[0].copy(), dw_parts[0].copy()
    for i in range(1, len(chunks)):
        db += db_parts[i]
        dw_t += dw_parts[i]
    dw = np.ascontiguousarray(dw_t.T).reshape(w.shape)
    return dx, dw, db


_views = threading.local()  # .columns: _Plan._column_views's views, per thread


class _Plan:
    """Chunking and column layout of one convolution, shared by the forward and backward pass.

    Two column layouts, both ``(K, m*Q)`` for a chunk of ``m`` images:

    * *compact* (any stride): ``Q = H_out*W_out``, one column per output position;
    * *wide* (stride 1, chosen when it wastes little): ``Q = H_out*R``, one column per position
      of an output grid ``R`` wide, ``R`` being the row pitch of the padded buffer. Output
      position ``(y, x)`` with kernel offset ``(i, j)`` reads buffer element ``(y + i)*R + x + j``
      of its channel, so each row ``(c, i, j)`` of the column matrix is, for one image, the single
      run of ``H_out*R`` elements starting at ``i*R + j``: building the columns (and scattering
      their gradient back) moves long runs instead of ``W_out``-long pieces. A buffer row holds
      ``pad`` zeros then the ``W`` pixels of an input row, and nothing else: the ``pad`` zeros of
      the *next* row (or the zero rows below) serve as its right padding, so ``R = W + pad`` (at
      least ``W_out``) rather than ``W + 2*pad``; the ``R - W_out`` extra grid columns per row
      are computed and thrown away.

    Attributes
    ----------
    K : int
        Rows of the column matrix, ``C*HH*WW``.
    Wg : int
        Width of the output grid: ``R`` (wide) or ``W_out`` (compact).
    Q : int
        Columns per image, ``H_out*Wg``.
    nb : int
        Images per chunk.
    """

    def __init__(self, g: ConvGeometry, dtype: np.dtype, wide: bool = True) -> None:
        """``wide=False`` asks for the compact layout whatever the geometry."""
        self.g, self.dtype = g, np.dtype(dtype)
        self.K = g.C * g.HH * g.WW
        self.Hp = g.H + 2 * g.pad
        pitch = max(g.W + g.pad, g.W_out)
        self.wide = wide and g.stride == 1 and g.WW > 1 and pitch <= _WIDE_MAX_WASTE * g.W_out
        self.row = pitch if self.wide else g.W + 2 * g.pad  # row pitch of the padded buffer
        self.Wg = pitch if self.wide else g.W_out
        self.Q = g.H_out * self.Wg
        per_image = self.K * self.Q * self.dtype.itemsize
        self.nb = max(1, min(g.N, _CHUNK_BYTES // per_image))
        self.image = g.C * self.Hp * self.row

    def padded_size(self, m: int) -> int:
        """Elements of the padded buffer of ``m`` images; wide runs read up to ``WW - 1``
        elements past the last image, zeros."""
        return m * self.image + (self.g.WW if self.wide else 0)

    def _padded_view(self, buffer: np.ndarray, m: int) -> np.ndarray:
        """The first ``m`` images of a padded buffer, as (m, C, Hp, row)."""
        return buffer[: m * self.image].reshape(m, self.g.C, self.Hp, self.row)

    def _interior(self, buffer: np.ndarray, m: int) -> np.ndarray:
        """The (m, C, H, W) view of the input pixels inside a padded buffer."""
        p = self.g.pad
        return self._padded_view(buffer, m)[:, :, p : p + self.g.H, p : p + self.g.W]

    def _runs(self, buffer: np.ndarray, m: int) -> np.ndarray:
        """Wide layout: view (C, HH, WW, m, Q) of a padded buffer; each last axis is one run."""
        g, it = self.g, self.dtype.itemsize
        return as_strided(
            buffer,
            shape=(g.C, g.HH, g.WW, m, self.Q),
            strides=(self.Hp * self.row * it, self.row * it, it, self.image * it, it),
        )

    def chunks(self) -> list[tuple[int, int]]:
        """``(n0, m)`` for each chunk: images ``n0:n0+m``."""
        return [(n0, min(self.nb, self.g.N - n0)) for n0 in range(0, self.g.N, self.nb)]

    def groups(self, threads: int, grouped: bool) -> list[range]:
        """Runs of consecutive chunks that one thread takes at once, as ranges of chunk indices:
        each chunk alone, or, with ``grouped``, groups of chunks.

        The chunks of a group share one output (or upstream gradient) grid of about
        ``_GROUP_BYTES``, so the layer above handles it in fewer, larger NumPy calls. There are a
        multiple of ``threads`` groups where there are enough chunks, so that each thread gets an
        equal share. Results do not depend on the grouping: every partial sum is per chunk.
        """
        n_chunks = -(-self.g.N // self.nb)
        if not grouped:
            return [range(c, c + 1) for c in range(n_chunks)]
        grid_bytes = self.g.N * self.g.F * self.Q * self.dtype.itemsize
        n_groups = max(threads, -(-grid_bytes // _GROUP_BYTES))
        n_groups = min(n_chunks, -(-n_groups // threads) * threads)
        bounds = [k * n_chunks // n_groups for k in range(n_groups + 1)]
        return [range(bounds[k], bounds[k + 1]) for k in range(n_groups)]

    def spans(self, groups: list[range]) -> list[tuple[int, int]]:
        """``(n0, m)`` of each group: the images its chunks cover."""
        chunks = self.chunks()
        return [(chunks[r[0]][0], sum(chunks[c][1] for c in r)) for r in groups]

    def columns(self, x: np.ndarray, n0: int, m: int) -> np.ndarray:
        """The column matrix (K, m*Q) of images ``n0:n0+m`` of ``x``, in a scratch array of this
        thread (overwritten by its next call)."""
        g = self.g
        cols = scratch("conv.cols", (self.K, m * self.Q), self.dtype)
        if not (g.pad or self.wide):
            source = _windows(x[n0 : n0 + m], g, (1, 2, 3, 0, 4, 5))
            np.copyto(cols.reshape(g.C, g.HH, g.WW, m, g.H_out, g.W_out), source)
            return cols
        padded = bordered("conv.padded", (self.padded_size(m),), self.dtype, (g, self.wide, m))
        interior, target, source = self._column_views(padded, cols, m)
        interior[...] = x[n0 : n0 + m]
        np.copyto(target, source)
        return cols

    def _column_views(self, padded: np.ndarray, cols: np.ndarray, m: int) -> tuple[np.ndarray, ...]:
        """``(interior, target, source)`` of :meth:`columns` for the padded buffer ``padded`` and the
        column matrix ``cols`` (this thread's scratch arrays): the input chunk goes into
        ``interior``, then ``source`` is copied to ``target``. Made once per pair of arrays and
        kept, per thread: a layer builds columns once a chunk, and on two threads the ~10 us of
        making these views each time, with the GIL held, cost ~5% of a ThreeLayerConvNet step."""
        cache = _views.__dict__.setdefault("columns", {})
        key = (self.g, self.wide, m, self.dtype.str)
        views = cache.get(key)
        if views is not None and views[0] is padded and views[1] is cols:  # the same scratch arrays
            return views[2:]
        if len(cache) >= 8:  # a few layers' worth; older entries may hold replaced scratch arrays
            cache.clear()
        g = self.g
        if self.wide:
            target, source = cols.reshape(g.C, g.HH, g.WW, m, self.Q), self._runs(padded, m)
        else:
            target = cols.reshape(g.C, g.HH, g.WW, m, g.H_out, g.W_out)
            source = _windows(self._padded_view(padded, m), g, (1, 2, 3, 0, 4, 5))
        cache[key] = (padded, cols, self._interior(padded, m), target, source)
        return cache[key][2:]

    def col2im(self, dcols: np.ndarray, dx: np.ndarray) -> None:
        """Sum column gradients ``dcols`` (K, m*Q) into ``dx`` (m, C, H, W), overwriting it."""
        g, m = self.g, dx.shape[0]
        if not self.wide:
            dcols = dcols.reshape(g.C, g.HH, g.WW, m, g.H_out, g.W_out)
            # float32 only: a float64 strided backward alone (the notebook's timed cell) does not
            # repay the second that loading Numba takes.
            if kernels.serves_training(self.dtype):
                kernels.col2im_compact(dcols, g.stride, g.pad, dx)
            else:
                _col2im(dcols, dx, _scatter_plan(g))
            return
        if kernels.serves(self.dtype):
            kernels.col2im_wide(dcols.reshape(g.C, g.HH, g.WW, m, self.Q), self.row, g.pad, dx)
            return
        # Not conv.padded: that buffer still holds the input chunk whose columns are in use.
        grad_padded = scratch("conv.grad_padded", (self.padded_size(m),), self.dtype)
        grad_padded[...] = 0
        runs = self._runs(grad_padded, m)
        dcols = dcols.reshape(g.C, g.HH, g.WW, m, self.Q)
        for i in range(g.HH):
            for j in range(g.WW):
                target = runs[:, i, j]
                target += dcols[:, i, j]
        dx[...] = self._interior(grad_padded, m)


def _windows(xp: np.ndarray, g: ConvGeometry, order: tuple[int, ...]) -> np.ndarray:
    """Read-only view of every receptive field of the padded chunk ``xp`` (m, C, Hp, Wp).

    Axes ``(n, c, i, j, y, x)`` with ``xp[n, c, y*stride + i, x*stride + j]``, permuted by ``order``.
    """
    sN, sC, sH, sW = xp.strides
    shape = (xp.shape[0], g.C, g.HH, g.WW, g.H_out, g.W_out)
    strides = (sN, sC, sH, sW, g.stride * sH, g.stride * sW)
    return as_strided(
        xp,
        shape=tuple(shape[a] for a in order),
        strides=tuple(strides[a] for a in order),
        writeable=False,
    )


def _axis_plan(offset: int, pad: int, stride: int, size: int, size_out: int) -> tuple[slice, slice] | None:
    """For kernel offset ``offset`` along one axis: the output positions ``a`` whose input pixel
    ``offset - pad + a*stride`` lies inside ``[0, size)``, and the slice of those pixels."""
    first = max(0, -((offset - pad) // stride))  # ceil((pad - offset) / stride), at least 0
    stop = min(size_out, (size - 1 - offset + pad) // stride + 1)
    if stop <= first:
        return None
    start = offset - pad + first * stride
    return slice(first, stop), slice(start, start + (stop - first - 1) * stride + 1, stride)


@functools.lru_cache(maxsize=64)
def _scatter_plan(g: ConvGeometry) -> list[tuple[int, int, slice, slice, slice, slice]]:
    """For each kernel offset (i, j) that touches the unpadded input: the source and target slices."""
    plan = []
    for i in range(g.HH):
        rows = _axis_plan(i, g.pad, g.stride, g.H, g.H_out)
        for j in range(g.WW):
            cols = _axis_plan(j, g.pad, g.stride, g.W, g.W_out)
            if rows is not None and cols is not None:
                plan.append((i, j, rows[0], cols[0], rows[1], cols[1]))
    return plan


def _col2im(dcols: np.ndarray, dx: np.ndarray, plan: list) -> None:
    """Sum column gradients ``dcols`` (C, HH, WW, m, H_out, W_out) into ``dx`` (m, C, H, W)."""
    dx[...] = 0
    for i, j, src_rows, src_cols, dst_rows, dst_cols in plan:
        dx[:, :, dst_rows, dst_cols] += dcols[:, i, j, :, src_rows, src_cols].transpose(1, 0, 2, 3)
