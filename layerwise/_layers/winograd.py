"""Forward pass of a 3x3, stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3).

Each 2x2 block of output ("tile") of one filter is computed from the 4x4 block of padded input
under it (tiles overlap by two rows/columns) as (Lavin & Gray, "Fast Algorithms for Convolutional
Neural Networks", 2016)::

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise, summed over the channels)

    B^T = [[1, 0, -1,  0],     G = [[1,    0,   0],     A^T = [[1, 1,  1,  0],
           [0, 1,  1,  0],          [1/2,  1/2, 1/2],          [0, 1, -1, -1]]
           [0, -1, 1,  0],          [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]          [0,    0,   1]]

The sum over channels of the 16 elementwise products is, for each of the 16 positions ``(a, b)``
of the 4x4 transformed tile, one matrix product ``U[a, b] (F, C) @ V[a, b] (C, tiles)``: 16
multiplications per output tile and channel pair instead of the 36 of the direct (im2col) method,
2.25x fewer. The transforms are additions only (the 1/2 of ``G`` is exact in binary), done by a
few whole-array slice operations in the input's dtype, or, with Numba, by kernels of
:mod:`.kernels` that make the same operations a tile at a time (the same bits, faster).

The batch is processed a few images at a time (``nb`` chosen so the transformed input of one chunk
stays near :data:`.conv_plan.WINOGRAD_CHUNK_BYTES`) in per-thread scratch buffers, the chunks spread over threads
(:mod:`.threads`), as in :mod:`.conv_fast`. The tile grid covers ``ceil(H_out/2) x ceil(W_out/2)``
tiles; when an output size is odd the extra row/column is computed from zero padding and cropped.
"""

from __future__ import annotations

import numpy as np

from . import conv_plan as planning
from . import kernels
from .geometry import ConvGeometry
from .scratch import bordered, scratch
from .threads import chunks_of, for_each_chunk, holds_one_blas_thread


_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
# G w G^T for one 3x3 filter w, flattened row-major on both sides: U.ravel() = _GG @ w.ravel().
# Its entries (0, +-1/4, +-1/2, 1) are exact in binary.
_GG = np.kron(_G, _G)


def filter_transform(w: np.ndarray) -> np.ndarray:
    """``U = G w G^T`` for every filter and channel: (F, C, 3, 3) -> (16, C, F), in ``w.dtype``.

    One (16, 9) @ (9, C*F) matrix product rather than ``F*C`` stacked 3x3 products, which would
    matter at small batches.
    """
    F, C = w.shape[:2]
    u = np.empty((16, C, F), dtype=w.dtype)
    np.matmul(_GG.astype(w.dtype), w.transpose(2, 3, 1, 0).reshape(9, C * F), out=u.reshape(16, C * F))
    return u


@holds_one_blas_thread
def winograd_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: ConvGeometry, out: np.ndarray
) -> None:
    """Fill ``out`` (N, F, H_out, W_out) with the convolution of ``x`` (N, C, H, W) by the 3x3
    filters ``w`` (F, C, 3, 3), stride 1, plus ``b`` (F,), or no bias when ``b`` is None. All
    arrays share one dtype; ``x`` and ``w`` may be any strided views. The chunks of images run on
    :mod:`.threads`'s threads."""
    U = filter_transform(w)

    def work(_: int, n0: int, m: int) -> None:
        _winograd_chunk(x[n0 : n0 + m], U, b, g, out[n0 : n0 + m])

    for_each_chunk(_chunks(g, x.dtype), work)


def _chunks(g: ConvGeometry, dtype: np.dtype) -> list[tuple[int, int]]:
    """Runs of images whose transformed input (16 values per tile and channel) is about
    :data:`.conv_plan.WINOGRAD_CHUNK_BYTES`."""
    tiles = ((g.H_out + 1) // 2) * ((g.W_out + 1) // 2)
    return chunks_of(g.N, 16 * g.C * tiles * np.dtype(dtype).itemsize, planning.WINOGRAD_CHUNK_BYTES)


def _input_transform(x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """``V = B^T d B`` of every 4x4 input tile of the ``m`` images ``x`` (m, C, H, W), zero-padded
    by ``g.pad``: (16, tiles * m, C) in this thread's scratch array ``winograd.V``, the tiles axis
    ordered (tile row, tile column, image)."""
    dtype, m = x.dtype, x.shape[0]
    C, pad = g.C, g.pad
    tH, tW = (g.H_out + 1) // 2, (g.W_out + 1) // 2
    Hp, Wp = 2 * tH + 2, 2 * tW + 2  # >= H + 2*pad: the zero border, plus one row/col when odd
    H, W = min(g.H, Hp - pad), min(g.W, Wp - pad)  # rows/cols past the last tile are never read

    # Pixel-major buffers (y, x, image, channel): every transform is a slice over the two outer
    # axes with one long contiguous inner run (image, channel), and V[a, b] is the (tiles*m, C)
    # matrix BLAS wants. The layout is changed once on the way in and once on the way out.
    xp = bordered("winograd.padded", (Hp, Wp, m, C), dtype, (pad, H, W))
    V = scratch("winograd.V", (16, tH * tW * m, C), dtype)
    if kernels.serves(dtype):  # the same operations, a tile at a time
        kernels.to_pixel_major(x[:, :, :H, :W], xp[pad : pad + H, pad : pad + W])
        kernels.winograd_input_tiles(xp.reshape(Hp, Wp, m * C), V.reshape(4, 4, tH, tW, m * C))
        return V
    xp[pad : pad + H, pad : pad + W] = x[:, :, :H, :W].transpose(2, 3, 0, 1)

    # B^T d: along the rows of each tile (rows 2*ty + i, i = 0..3).
    d0, d1, d2, d3 = (xp[i : i + 2 * tH : 2] for i in range(4))
    r = scratch("winograd.rows", (4, tH, Wp, m, C), dtype)
    np.subtract(d0, d2, out=r[0])
    np.add(d1, d2, out=r[1])
    np.subtract(d2, d1, out=r[2])
    np.subtract(d1, d3, out=r[3])
    # (B^T d) B: along the columns.
    v = V.reshape(4, 4, tH, tW, m, C)
    e0, e1, e2, e3 = (r[:, :, j : j + 2 * tW : 2] for j in range(4))  # all four rows a at once
    np.subtract(e0, e2, out=v[:, 0])
    np.add(e1, e2, out=v[:, 1])
    np.subtract(e2, e1, out=v[:, 2])
    np.subtract(e1, e3, out=v[:, 3])
    return V


@holds_one_blas_thread
def winograd_weight_grads(x: np.ndarray, dout: np.ndarray, g: ConvGeometry) -> tuple[np.ndarray, np.ndarray]:
    """``dw`` (F, C, 3, 3) and ``db`` (F,) of a 3x3, stride-1 convolution of ``x`` (N, C, H, W),
    for the upstream gradient ``dout`` (N, F, H_out, W_out), by Winograd F(2x2, 3x3).

    The forward is ``Y = A^T (U * V) A`` per tile with ``U = G w G^T``, so
    ``dL/dU[a, b] = sum over tiles of V[a, b] * (A dY A^T)[a, b]``: for each of the 16 positions
    one (C, tiles) @ (tiles, F) product, then ``dw = G^T (dL/dU) G``, one (9, 16) @ (16, C*F)
    product. 2.25x fewer multiplications than im2col's ``cols @ dout.T``. Each chunk of images adds
    its own partial ``dL/dU``, summed in chunk order: the same bits on any number of threads.
    """
    chunks = _chunks(g, x.dtype)
    parts = np.empty((len(chunks), 16, g.C, g.F), dtype=x.dtype)

    def work(i: int, n0: int, m: int) -> None:
        V = _input_transform(x[n0 : n0 + m], g)
        np.matmul(V.transpose(0, 2, 1), _output_gradient_transform(dout[n0 : n0 + m], g), out=parts[i])

    for_each_chunk(chunks, work)
    dU = parts[0].copy()
    for part in parts[1:]:
        dU += part
    dw = (_GG.T.astype(x.dtype) @ dU.reshape(16, g.C * g.F)).reshape(3, 3, g.C, g.F).transpose(3, 2, 0, 1)
    return np.ascontiguousarray(dw), dout.sum(axis=(0, 2, 3))


def _output_gradient_transform(dout: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """``A dY A^T`` of every 2x2 output tile of ``dout`` (m, F, H_out, W_out), zeros past an odd
    edge: (16, tiles * m, F) in this thread's scratch array ``winograd.dM``, ordered as
    :func:`_input_transform`'s tiles. ``A = [[1, 0], [1, 1], [1, -1], [0, -1]]``."""
    dtype, m, F = dout.dtype, dout.shape[0], g.F
    tH, tW = (g.H_out + 1) // 2, (g.W_out + 1) // 2
    yp = bordered("winograd.dout", (2 * tH, 2 * tW, m, F), dtype, (g.H_out, g.W_out))
    dM = scratch("winograd.dM", (16, tH * tW * m, F), dtype)
    if kernels.serves(dtype):  # the same operations, a tile at a time
        kernels.to_pixel_major(dout, yp[: g.H_out, : g.W_out])
        kernels.winograd_gradient_tiles(yp.reshape(2 * tH, 2 * tW, m * F), dM.reshape(4, 4, tH, tW, m * F))
        return dM
    yp[: g.H_out, : g.W_out] = dout.transpose(2, 3, 0, 1)
    # A dY: along the rows of each tile.
    y0, y1 = yp[0::2], yp[1::2]  # (tH, 2 * tW, m, F)
    rows = scratch("winograd.drows", (4, tH, 2 * tW, m, F), dtype)
    np.copyto(rows[0], y0)
    np.add(y0, y1, out=rows[1])
    np.subtract(y0, y1, out=rows[2])
    np.negative(y1, out=rows[3])
    # (A dY) A^T: along the columns.
    dm = dM.reshape(4, 4, tH, tW, m, F)
    c0, c1 = rows[:, :, 0::2], rows[:, :, 1::2]  # all four rows a at once
    np.copyto(dm[:, 0], c0)
    np.add(c0, c1, out=dm[:, 1])
    np.subtract(c0, c1, out=dm[:, 2])
    np.negative(c1, out=dm[:, 3])
    return dM


def _winograd_chunk(x: np.ndarray, U: np.ndarray, b: np.ndarray | None, g: ConvGeometry, out: np.ndarray) -> None:
    """:func:`winograd_forward` of the ``m`` images ``x`` (m, C, H, W) into ``out`` (m, F, H_out,
    W_out), with the transformed filters ``U`` (16, C, F)."""
    dtype, m, F = x.dtype, x.shape[0], g.F
    tH, tW = (g.H_out + 1) // 2, (g.W_out + 1) // 2
    T = tH * tW
    V = _input_transform(x, g)

    prod = scratch("winograd.M", (16, T * m, F), dtype)
    np.matmul(V, U, out=prod)
    if kernels.serves(dtype):  # the same operations, a tile at a time
        kernels.winograd_output_tiles(prod.reshape(4, 4, tH, tW, m, F), b, out)
        return

    # A^T M: along the rows; the bias rides on s[:, 1], which both output columns add once.
    p = prod.reshape(4, 4, tH, tW, m, F)
    s = scratch("winograd.half", (2, 4, tH, tW, m, F), dtype)
    np.add(p[0], p[1], out=s[0])
    s[0] += p[2]
    np.subtract(p[1], p[2], out=s[1])
    s[1] -= p[3]
    if b is not None:
        s[:, 1] += b
    # (A^T M) A: along the columns.
    y = scratch("winograd.Y", (2, 2, tH, tW, m, F), dtype)
    np.add(s[:, 0], s[:, 1], out=y[:, 0])  # both rows a at once
    y[:, 0] += s[:, 2]
    np.subtract(s[:, 1], s[:, 2], out=y[:, 1])
    y[:, 1] -= s[:, 3]
    # Back to (n, f, y, x): one strided copy, or one per position in the 2x2 tile when an odd
    # output size crops the last tile.
    if g.H_out % 2 == 0 and g.W_out % 2 == 0 and out.flags.c_contiguous:  # a view, not a copy
        np.copyto(out.reshape(m, F, tH, 2, tW, 2), y.transpose(4, 5, 2, 0, 3, 1))
        return
    for a in range(2):
        for c in range(2):
            rows_out, cols_out = (g.H_out - a + 1) // 2, (g.W_out - c + 1) // 2
            np.copyto(out[:, :, a::2, c::2], y[a, c, :rows_out, :cols_out].transpose(2, 3, 0, 1))


def winograd_dx(dout: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
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

