"""Convolution as matrix products over im2col columns, a few images at a time.

The batch is processed in chunks of images whose column matrix (``K = C*HH*WW`` rows by
``m*Q`` columns for ``m`` images) stays near :data:`.conv_plan.CHUNK_BYTES`: it is built in
cache, consumed by BLAS while still in cache, and overwritten by the next chunk. A whole-batch
column matrix would be ``K`` times the input, and writing then re-reading it from memory costs
more than building it again. Each column is one output position of one image, its ``K`` rows
ordered ``(c, i, j)`` as in ``w.reshape(F, K)``; the two column layouts are :class:`Columns`'s.

* forward (:func:`im2col_forward`): ``product = w.reshape(F, K) @ cols``, shape ``(F, m*Q)``,
  handed to a consumer (the copy into the output with the bias, or :mod:`.conv_pool`'s pool while
  in cache); or, per image, written straight into the output (:func:`im2col_forward_per_image`);
* backward (:func:`im2col_backward`): the chunk's upstream gradient in the same grid layout,
  summed into ``db`` while in cache, ``dw.T += cols @ dout.T`` as one GEMM, and
  ``dcols = w.T @ dout`` summed back onto the pixels (col2im: :meth:`Columns.col2im`).

The chunks run on :mod:`.threads`'s threads, BLAS held to one thread; each writes its own part of
the outputs and its own partial ``dw`` and ``db``, added up in chunk order, so the results are
the same bits on any number of threads. The columns are rebuilt in the backward pass rather than
cached, and every buffer is a per-thread scratch array (:mod:`.scratch`).
"""

from __future__ import annotations

import functools
import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import conv_plan as planning
from . import kernels
from .conv_plan import ConvPlan
from .geometry import ConvGeometry
from .scratch import bordered, scratch
from .threads import for_each_chunk, get_num_threads


def im2col_forward_per_image(x: np.ndarray, w: np.ndarray, b: np.ndarray, g: ConvGeometry, out: np.ndarray) -> None:
    """The convolution of ``x`` by ``w`` plus ``b`` into ``out``, compact columns chunk by chunk:
    each image's product ``w (F, K) @ columns (K, Q)`` is written straight into its (F, Q)
    slice of ``out``, so there is no copy out of a chunk-wide product."""
    plan = Columns(g, x.dtype, wide=False)
    w2, bias = w.reshape(g.F, plan.K), b.reshape(1, g.F, 1)

    def work(_: int, n0: int, m: int) -> None:
        cols = plan.columns(x, n0, m).reshape(plan.K, m, plan.Q).transpose(1, 0, 2)
        images = out[n0 : n0 + m].reshape(m, g.F, plan.Q)
        np.matmul(w2, cols, out=images)
        images += bias

    for_each_chunk(plan.chunks(), work)



def im2col_forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry, plan: ConvPlan, consume, grouped: bool = False) -> None:
    """The convolution of ``x`` by ``w`` (no bias) chunk by chunk, on :mod:`.threads`'s threads.

    For each chunk (each group of chunks, with ``grouped``; see :meth:`Columns.groups`), calls
    ``consume(n0, m, grid)`` in the thread that computed it: ``grid`` is the (F, m, H_out, Wg)
    output of images ``n0:n0+m``, C-contiguous, whose first ``W_out`` columns are the output and
    the rest (``Wg > W_out`` in the wide layout) are to be ignored; it is this thread's scratch
    array, which ``consume`` may change but must not keep, and ``consume`` must only write outputs
    of those images.
    """
    columns = Columns(g, x.dtype, plan.columns == "wide")
    w2 = w.reshape(g.F, columns.K)
    chunks, groups = columns.chunks(), columns.groups(get_num_threads(), grouped)

    def work(i: int, n0: int, m: int) -> None:
        product = scratch("conv.product", (g.F, m * columns.Q), x.dtype)
        for c0, cm in (chunks[c] for c in groups[i]):
            start = (c0 - n0) * columns.Q
            np.matmul(w2, columns.columns(x, c0, cm), out=product[:, start : start + cm * columns.Q])
        consume(n0, m, product.reshape(g.F, m, g.H_out, columns.Wg))

    for_each_chunk(columns.spans(groups), work)



def im2col_backward(x: np.ndarray, w: np.ndarray, g: ConvGeometry, plan: ConvPlan, fill, input_grad: bool, grouped: bool = False):
    """``(dx or None, dw, db)`` of the convolution of ``x`` by ``w``, chunk by chunk on
    :mod:`.threads`'s threads, the columns rebuilt from ``x``.

    The upstream gradient is written by ``fill(n0, m, target)``, called in the chunk's thread
    (once for each group of chunks, with ``grouped``; see :meth:`Columns.groups`): it must write the
    derivatives of images ``n0:n0+m`` into ``target``, a strided view of a scratch array with the
    axes (F, m, H_out, W_out) (images second, as the column matrix has them), so a layer above can
    put its gradient straight there.
    """
    dx = None
    columns = Columns(g, x.dtype, plan.columns == "wide")
    K, Q = columns.K, columns.Q
    chunks = columns.chunks()
    # Each chunk's sums, added up in chunk order below: the same bits on any number of threads.
    db_parts = np.empty((len(chunks), g.F), dtype=x.dtype)
    dw_parts = np.empty((len(chunks), K, g.F), dtype=x.dtype)  # dw transposed: the faster GEMM
    if input_grad:
        w2t = w.reshape(g.F, K).T
        dx = np.empty_like(x, order="C")

    groups = columns.groups(get_num_threads(), grouped)

    def work(i: int, n0: int, m: int) -> None:
        # The wide grid's dropped columns hold zero gradient (they add nothing); fill writes the rest.
        grid = bordered("conv.dout", (g.F, m, g.H_out, columns.Wg), x.dtype, (g.H_out, g.W_out))
        fill(n0, m, grid[..., : g.W_out])
        group_dout = grid.reshape(g.F, m * Q)
        for c in groups[i]:
            c0, cm = chunks[c]
            start = (c0 - n0) * Q
            chunk_dout = group_dout[:, start : start + cm * Q]
            cols = columns.columns(x, c0, cm)
            np.add.reduce(chunk_dout, axis=1, out=db_parts[c])  # summed while in cache rather than in a pass over dout
            np.matmul(cols, chunk_dout.T, out=dw_parts[c])
            if input_grad:
                dcols = scratch("conv.dcols", (K, cm * Q), x.dtype)
                np.matmul(w2t, chunk_dout, out=dcols)
                columns.col2im(dcols, dx[c0 : c0 + cm])

    for_each_chunk(columns.spans(groups), work)
    db, dw_t = db_parts[0].copy(), dw_parts[0].copy()
    for i in range(1, len(chunks)):
        db += db_parts[i]
        dw_t += dw_parts[i]
    dw = np.ascontiguousarray(dw_t.T).reshape(w.shape)
    return dx, dw, db



_views = threading.local()  # .columns: Columns._column_views's views, per thread


class Columns:
    """The im2col columns of one convolution: layout and chunking, shared by the forward and backward pass.

    Two column layouts, both ``(K, m*Q)`` for a chunk of ``m`` images:

    * *compact* (any stride): ``Q = H_out*W_out``, one column per output position;
    * *wide* (stride 1, where the plan chose it): ``Q = H_out*R``, one column per position
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

    def __init__(self, g: ConvGeometry, dtype: np.dtype, wide: bool) -> None:
        """``wide``: the wide layout, as the plan chose it (:func:`.conv_plan.column_layout`)."""
        self.g, self.dtype = g, np.dtype(dtype)
        self.K = g.C * g.HH * g.WW
        self.Hp = g.H + 2 * g.pad
        pitch = max(g.W + g.pad, g.W_out)
        self.wide = wide
        self.row = pitch if wide else g.W + 2 * g.pad  # row pitch of the padded buffer
        self.Wg = pitch if wide else g.W_out
        self.Q = g.H_out * self.Wg
        self.nb = planning.images_per_chunk(g, self.dtype, wide)
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
        :data:`.conv_plan.GROUP_BYTES`, so the layer above handles it in fewer, larger NumPy calls. There are a
        multiple of ``threads`` groups where there are enough chunks, so that each thread gets an
        equal share. Results do not depend on the grouping: every partial sum is per chunk.
        """
        n_chunks = -(-self.g.N // self.nb)
        if not grouped:
            return [range(c, c + 1) for c in range(n_chunks)]
        grid_bytes = self.g.N * self.g.F * self.Q * self.dtype.itemsize
        n_groups = max(threads, -(-grid_bytes // planning.GROUP_BYTES))
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
        kept, per thread: a layer builds columns once a chunk, and making these views each time
        holds the GIL long enough to slow a step on two threads."""
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
