"""Max pooling by whole-array NumPy operations over the few window offsets.

Forward: the maximum over a window is separable, so it is taken in two passes, first over the
window's rows, then over its columns. The row pass takes the elementwise maximum of ``PH``
strided row slices ``x[:, :, i::stride, :]``, each a run of whole contiguous rows; the column
pass does the same with ``PW`` strided column slices of that smaller array. The forward then
records where each window's first maximum (in row-major order) is, as an index into
``x.ravel()``: a window's offset is the count of leading offsets whose element is strictly below
the maximum, one comparison pass per offset over the strided slice ``x[:, :, i::stride, j::stride]``.

Backward: each upstream derivative goes to its window's recorded first maximum, by one scatter
into zeros: a plain assignment where windows do not overlap, else ``np.add.at``, which adds in the
order of the indices, the naive layer's window order, so where windows share a maximum the
derivatives add up in the same order. Either way the result is the naive layer's to the bit. Once
Numba is loaded, a compiled loop (:func:`.kernels.scatter_add`) does the same additions in the same
order, a chunk of images per thread.
:func:`max_pool_relu_backward` is the same scatter for a pool followed by a ReLU, the ReLU's gate
applied to ``dout`` first. The forward runs a few images at a time on the layers' threads
(:mod:`.threads`).

:mod:`.conv_pool` uses :func:`pool_into`, :func:`first_max_code` and :func:`scatter_by_code` to
pool each chunk of a convolution's output while it is in cache and to write the gradient back by
window offsets. The row-pass result and the comparison masks are per-thread scratch arrays
(:mod:`.scratch`), reused from call to call; outputs and caches are always new arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _validation as v
from . import kernels
from .geometry import PoolGeometry, pool_inputs
from .masking import select
from .scratch import scratch
from .threads import chunks_of, for_each_chunk

# Bytes of input per chunk of images that one thread pools (or scatters the gradient of) at once.
_CHUNK_BYTES = 2 << 20
# The compiled backward scatter runs as one call in the calling thread below this many bytes of
# dx: there, waking a second thread costs more than the work it would take over.
_SCATTER_ALONE_BELOW = 4 << 20


class PoolFastCache(NamedTuple):
    """What :func:`max_pool_backward_fast` needs: the input, the parameters and the output."""

    x: np.ndarray
    pool_param: dict
    out: np.ndarray  # (N, C, H_out, W_out): each window's maximum
    # (N, C, H_out, W_out) intp: the index into x.ravel() of each window's first maximum in
    # row-major order (in a window holding a NaN, its first NaN). A cache built by hand as
    # (x, pool_param, out) has none; the backward pass then finds the maxima again.
    index: np.ndarray | None = None


def max_pool_forward_fast(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, PoolFastCache]:
    """Forward pass of a max-pooling layer.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        float32 or float64; the output keeps this dtype.
    pool_param : dict
        ``'pool_height'``, ``'pool_width'`` (window size) and ``'stride'``. Windows may overlap;
        rows/columns at the bottom/right that no full window covers are ignored.

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out), C-contiguous
        ``H_out = 1 + (H - pool_height) // stride``, ``W_out = 1 + (W - pool_width) // stride``.
    cache : PoolFastCache
        ``(x, pool_param, out, index)``; ``index`` holds, for each window, the index into
        ``x.ravel()`` of its first maximum in row-major order, to which the backward pass sends
        the gradient.
    """
    x, g = pool_inputs("max_pool_forward_fast", x, pool_param)
    out = np.empty((g.N, g.C, g.H_out, g.W_out), dtype=x.dtype)
    index = np.empty(out.shape, dtype=np.intp)

    def work(_: int, n0: int, m: int) -> None:
        part, chunk_g = slice(n0, n0 + m), g._replace(N=m)
        pool_into(x[part], chunk_g, out[part])
        code = scratch("pool.code", (m, *out.shape[1:]), code_dtype(g))
        first_max_code(x[part], out[part], chunk_g, code)
        _index_of(code, chunk_g, index[part], first_image=n0)

    for_each_chunk(chunks_of(len(x), x[0].nbytes, _CHUNK_BYTES), work)
    return out, PoolFastCache(x, dict(pool_param), out, index)


def pool_into(x: np.ndarray, g: PoolGeometry, out: np.ndarray) -> None:
    """Each window's maximum of ``x`` (m, C, H, W), any strides, into ``out`` (m, C, H_out, W_out)."""
    row_views = [x[:, :, i : i + g.stride * (g.H_out - 1) + 1 : g.stride] for i in range(g.PH)]
    rows = _running_max(row_views, scratch("pool.rows", row_views[0].shape, x.dtype))
    span = g.stride * (g.W_out - 1) + 1
    _running_max([rows[..., j : j + span : g.stride] for j in range(g.PW)], out)


def code_dtype(g: PoolGeometry) -> np.dtype:
    """The dtype of :func:`first_max_code`'s offsets: one byte where the window has at most 256."""
    return np.dtype(np.uint8 if g.PH * g.PW <= 256 else np.intp)


def first_max_code(x: np.ndarray, out: np.ndarray, g: PoolGeometry, code: np.ndarray) -> np.ndarray:
    """Write into ``code`` (``out``'s shape, unsigned) the row-major offset ``k = i * PW + j`` of
    each window's first maximum, for ``x`` (m, C, H, W) and its window maxima ``out``; returns it.

    The offset is the number of offsets before the first one that holds the maximum: the count of
    the leading offsets whose element is below it (strictly, so a tie keeps the earlier offset).
    In a window holding a NaN every comparison is False; those windows, rare, are then given
    their first NaN, as ``np.argmax`` (the naive layer) chooses; torch's CPU kernel takes the last
    NaN instead.
    """
    K = g.PH * g.PW
    code[...] = 0
    not_yet = scratch("pool.not_yet", out.shape, bool)  # windows whose maximum comes later
    below = scratch("pool.below", out.shape, bool)
    for k, x_view in enumerate(_offset_views(x, g)):
        if k == K - 1:  # a window whose maximum is none of the earlier offsets has it at the last
            break
        np.less(x_view, out, out=below if k else not_yet)
        if k:
            not_yet &= below
        code += not_yet
    nan_windows = np.isnan(out)
    if nan_windows.any():
        code[nan_windows] = K - 1
        for k, x_view in reversed(list(enumerate(_offset_views(x, g)))):
            code[nan_windows & np.isnan(x_view)] = k
    return code


def _index_of(code: np.ndarray, g: PoolGeometry, index: np.ndarray, first_image: int = 0) -> np.ndarray:
    """Write into ``index`` (intp, ``code``'s shape) the index into ``x.ravel()`` of each window's
    offset ``code``, for the ``g.N`` images that start at image ``first_image`` of ``x``: the
    window's top-left pixel plus ``i * W + j``; returns it."""
    k = np.arange(g.PH * g.PW)
    np.take(k // g.PW * g.W + k % g.PW, code, out=index, mode="clip")  # clip: no buffered copy
    index += np.arange(g.H_out)[:, None] * (g.stride * g.W) + np.arange(g.W_out) * g.stride
    planes = np.arange(first_image * g.C, (first_image + g.N) * g.C)
    index += planes.reshape(g.N, g.C, 1, 1) * (g.H * g.W)
    return index


def max_pool_backward_fast(dout: np.ndarray, cache: PoolFastCache) -> np.ndarray:
    """Backward pass of :func:`max_pool_forward_fast`.

    Each upstream derivative goes to the first maximum of its window in row-major order, as in
    :func:`~layerwise._layers.pool_naive.max_pool_backward_naive` and
    ``torch.nn.functional.max_pool2d``; where windows overlap the derivatives add up, in the naive
    layer's order (the result is the naive layer's to the bit).

    Parameters
    ----------
    dout : ndarray, shape (N, C, H_out, W_out)
    cache : PoolFastCache
        As returned by :func:`max_pool_forward_fast`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), the dtype of the forward input
    """
    return _backward("max_pool_backward_fast", dout, cache)


def max_pool_relu_backward(dout: np.ndarray, relu_cache: np.ndarray, cache: PoolFastCache) -> np.ndarray:
    """``max_pool_backward_fast(relu_backward(dout, relu_cache), cache)`` without the intermediate.

    For a max pool followed by a ReLU whose input ``relu_cache`` is the pool's output: windows
    whose maximum is not positive pass no gradient. Exactly the same result as the two layers'
    backward passes.

    Parameters
    ----------
    dout : ndarray, shape (N, C, H_out, W_out)
    relu_cache : ndarray, shape (N, C, H_out, W_out)
        The ReLU's input, as cached by ``relu_forward``.
    cache : PoolFastCache
        As returned by :func:`max_pool_forward_fast`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    return _backward("max_pool_relu_backward", dout, cache, relu_cache)


def _backward(func: str, dout: np.ndarray, cache: PoolFastCache, relu_input: np.ndarray | None = None) -> np.ndarray:
    """The scatter of ``dout`` (gated by ``relu_input > 0`` when given) to each window's first maximum."""
    x, out, index, dout, relu_input, g = _checked(func, dout, cache, relu_input)
    if index is None:  # a cache built by hand: find the maxima again
        code = first_max_code(x, out, g, scratch("pool.code", out.shape, code_dtype(g)))
        index = _index_of(code, g, scratch("pool.index", out.shape, np.intp))
    grad = dout
    if relu_input is not None:  # where the ReLU passes nothing back, no window receives a gradient
        grad = select(relu_input > 0, dout, scratch("pool.gated", out.shape, x.dtype))
    # float32 only: a float64 pool backward alone (a notebook's timed cell) does not repay the
    # second that loading Numba takes.
    if kernels.serves_training(x.dtype):
        return _scatter_compiled(func, index, grad, g)
    dx = np.zeros((g.N, g.C, g.H, g.W), dtype=x.dtype)
    if g.stride >= g.PH and g.stride >= g.PW:  # windows apart: one derivative a pixel at most
        # A plain scatter, after + 0.0 (which turns -0.0 into 0.0, as the naive layer's 0 + -0.0 does).
        plus_zero = np.add(grad, 0.0, out=scratch("pool.plus0", grad.shape, x.dtype))
        dx.reshape(-1)[index.reshape(-1)] = plus_zero.reshape(-1)
    else:
        np.add.at(dx.reshape(-1), index.reshape(-1), grad.reshape(-1))
    return dx


def _scatter_compiled(func: str, index: np.ndarray, grad: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """:func:`_backward`'s scatter by the compiled kernel, a chunk of images at a time on the
    layers' threads (in one call below ``_SCATTER_ALONE_BELOW`` bytes); the same bits (zeros, then each derivative added in window order). An index
    outside the images of its chunk (only a cache changed by hand has one) raises IndexError, as
    NumPy's scatter does for one outside ``x``, instead of writing outside ``dx``."""
    dx = np.empty((g.N, g.C, g.H, g.W), dtype=grad.dtype)
    image = g.C * g.H * g.W

    def scatter(n0: int, m: int) -> int:
        part = slice(n0, n0 + m)
        return kernels.scatter_add(index[part].reshape(-1), grad[part].reshape(-1), dx[part].reshape(-1), n0 * image)

    if dx.nbytes < _SCATTER_ALONE_BELOW:  # in this thread, without the threads' BLAS hold either
        outside = [scatter(0, g.N)]
    else:
        chunks = chunks_of(len(dx), dx[0].nbytes, _CHUNK_BYTES)
        outside = [0] * len(chunks)

        def work(i: int, n0: int, m: int) -> None:
            outside[i] = scatter(n0, m)

        for_each_chunk(chunks, work)
    if any(outside):
        raise IndexError(
            f"{func}: cache.index must be the indices made by max_pool_forward_fast, got {sum(outside)} "
            f"out of range"
        )
    return dx


def scatter_by_code(code: np.ndarray, grad: np.ndarray, g: PoolGeometry, target: np.ndarray) -> None:
    """The backward pass of windows that do not overlap, from their first-max offsets ``code``:
    ``grad`` (m, C, H_out, W_out) written to each window's first maximum in ``target``
    (m, C, H, W), zeros elsewhere; all three may be any strided views. One masked copy per offset
    (a bitwise AND with an all-ones or all-zeros word, exact for inf and NaN, as
    :func:`~.masking.select`); every pixel is written once at most, so the result is the scatter's
    to the bit."""
    if not (g.stride == g.PH == g.PW and g.H == g.H_out * g.PH and g.W == g.W_out * g.PW):
        target[...] = 0  # pixels outside every window (windows that tile cover them all)
    bits = np.dtype(f"i{grad.itemsize}")
    words = scratch("pool.words", code.shape, bits)
    grad_bits = grad.view(bits)
    for k, view in enumerate(_offset_views(target, g)):
        np.equal(code, k, out=words, casting="unsafe")  # 1 where the window's first maximum is at k
        np.negative(words, out=words)  # all ones there, else 0
        np.bitwise_and(grad_bits, words, out=view.view(bits))


def _checked(func: str, dout, cache, relu_input):
    """``(x, out, index, dout, relu_input, geometry)`` of a backward pass, validated, ``dout`` in
    x's dtype; ``index`` is None for a cache built by hand as ``(x, pool_param, out)``."""
    if isinstance(cache, PoolFastCache):
        x, pool_param, out, index = cache
        if index is not None and (
            not isinstance(index, np.ndarray) or index.shape != getattr(out, "shape", None) or index.dtype != np.intp
        ):
            raise TypeError(
                f"{func}: cache.index must be the indices made by max_pool_forward_fast, got {v.describe(index)}"
            )
    else:
        (x, pool_param, out), index = v.cache_tuple(func, cache, 3), None
    x, g = pool_inputs(func, x, pool_param)
    dout = v.upstream(func, dout, (g.N, g.C, g.H_out, g.W_out), x.dtype)
    if not isinstance(out, np.ndarray) or out.shape != dout.shape or out.dtype != x.dtype:
        raise TypeError(
            f"{func}: cache.out must be the output made by max_pool_forward_fast, got {v.describe(out)}"
        )
    if relu_input is not None:
        relu_input = v.float_array(func, "relu_cache", relu_input)
        v.check_same_shape(func, "relu_cache", relu_input, "the pool output", out.shape)
    return x, out, index, dout, relu_input, g


def _running_max(views: list[np.ndarray], out: np.ndarray) -> np.ndarray:
    """Elementwise maximum of same-shaped views, written into ``out`` (any strides) and returned."""
    if len(views) == 1:
        np.copyto(out, views[0])
        return out
    np.maximum(views[0], views[1], out=out)
    for view in views[2:]:
        np.maximum(out, view, out=out)
    return out


def _offset_views(a: np.ndarray, g: PoolGeometry):
    """Yield, for each window offset (i, j) in row-major order, the (N, C, H_out, W_out) view of a."""
    rows = g.stride * (g.H_out - 1) + 1
    cols = g.stride * (g.W_out - 1) + 1
    for i in range(g.PH):
        for j in range(g.PW):
            yield a[:, :, i : i + rows : g.stride, j : j + cols : g.stride]
