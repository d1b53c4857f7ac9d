"""Max pooling in pure NumPy, by whole-array operations over the few window offsets.

Forward: the maximum over a window is separable, so it is taken in two passes, first over the
window's rows, then over its columns. The row pass takes the elementwise maximum of ``PH``
strided row slices ``x[:, :, i::stride, :]``, each a run of whole contiguous rows; the column
pass does the same with ``PW`` strided column slices of that smaller array. The standalone
:func:`max_pool_forward_fast` then records where each window's first maximum is (``cache.code``,
and ``cache.index`` when windows do not overlap), so its backward is a scatter; the fused forward of
the conv sandwich records nothing and its backward finds the maxima again, as follows.

Backward: each upstream derivative goes to the first maximum of its window in row-major order.
Without a recorded position, for each window offset ``(i, j)`` in that order, the strided slice ``x[:, :, i::stride, j::stride]``
(cut to ``(H_out, W_out)``) holds that element of every window; where it equals the window's
maximum (the cached output) and no earlier offset of the window did, the derivative is added to
the same slice of ``dx``. Within one offset the slice never hits a pixel twice, so adding on a view
is exact, and overlapping windows that share a maximum add their derivatives as they should. The
Python loops have ``PH + PW`` and ``PH * PW`` steps (4 for the usual 2x2 pool) and the same code
serves windows that tile, overlap or leave rows/columns uncovered. :func:`max_pool_relu_backward`
is the same loop for a pool followed by a ReLU, with the ReLU's gate applied by marking windows
whose maximum is not positive as already found.

The usual pool (2x2 windows, stride 2, tiling the input) has a faster path over whole contiguous
rows: every pixel is compared with its window's maximum in one pass, and where no window has two
maxima that mask is the answer; a batch (or chunk) with ties takes the offset loop instead, so the
result is always the same. :func:`max_pool_relu_backward_writer` runs it a few images at a time,
straight into the buffers of the convolution below (``layer_utils.conv_relu_pool_backward``), and
:func:`max_pool_forward_fast_chunks` pools each chunk of a convolution's output while it is in cache.

The row-pass result and the backward pass's masks are per-thread scratch arrays
(:mod:`.scratch`), reused from call to call; outputs and caches are always new arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _validation as v
from .geometry import PoolGeometry, pool_inputs, upstream
from .masking import select
from .scratch import scratch


class PoolFastCache(NamedTuple):
    """What :func:`max_pool_backward_fast` needs: the input, the parameters and the output."""

    x: np.ndarray
    pool_param: dict
    out: np.ndarray  # (N, C, H_out, W_out): each window's maximum
    # (N, C, H_out, W_out) unsigned ints: the row-major offset of each window's first maximum (its
    # first NaN in a NaN window); None where the forward did not record it (the fused conv sandwich),
    # and the backward finds the maxima again in x.
    code: np.ndarray | None = None
    # (N, C, H_out, W_out) intp: the index into x.ravel() of each window's first maximum, made with
    # ``code`` where windows do not overlap (each pixel then receives one derivative at most, so the
    # backward is a single scatter); None where windows overlap or ``code`` is None.
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
        ``(x, pool_param, out, code, index)``; ``code`` holds, for each window, the row-major
        offset ``i * pool_width + j`` of its first maximum, to which the backward pass sends the
        gradient; where windows do not overlap, ``index`` holds the same position as an index into
        ``x.ravel()`` (else None).
    """
    out, cache, pool_images = max_pool_forward_fast_chunks(x, pool_param)
    pool_images(0, cache.x.shape[0])
    g = pool_inputs("max_pool_forward_fast", cache.x, pool_param)[1]
    code = _first_max_offsets(cache.x, out, g)
    index = _first_max_indices(code, g) if _disjoint(g) else None
    return out, cache._replace(code=code, index=index)


def max_pool_forward_fast_chunks(x: np.ndarray, pool_param: dict):
    """:func:`max_pool_forward_fast` a few images at a time, for an input still being written.

    The arguments are validated at once (``x``'s values are not read). Returns
    ``(out, cache, pool_images)``: ``out`` is allocated, and ``pool_images(n0, m)`` fills
    ``out[n0:n0+m]`` from ``x[n0:n0+m]``; every image must be pooled before ``out`` or ``cache``
    is used. Windows never cross images, so any geometry can be pooled this way.
    """
    x, g = pool_inputs("max_pool_forward_fast", x, pool_param)
    out = np.empty((g.N, g.C, g.H_out, g.W_out), dtype=x.dtype)

    def pool_images(n0: int, m: int) -> None:
        _pool(x[n0 : n0 + m], g, out[n0 : n0 + m])

    return out, PoolFastCache(x, dict(pool_param), out), pool_images


def _pool(x: np.ndarray, g: PoolGeometry, out: np.ndarray) -> None:
    """Each window's maximum of ``x`` (m, C, H, W) into ``out`` (m, C, H_out, W_out)."""
    row_views = [x[:, :, i : i + g.stride * (g.H_out - 1) + 1 : g.stride] for i in range(g.PH)]
    rows = _running_max(row_views, scratch("pool.rows", row_views[0].shape, x.dtype))
    span = g.stride * (g.W_out - 1) + 1
    _running_max([rows[..., j : j + span : g.stride] for j in range(g.PW)], out)


def _first_max_offsets(x: np.ndarray, out: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """The row-major offset of each window's first maximum, as unsigned ints of ``out``'s shape.

    The offset is the number of offsets before the first one that holds the maximum: the count of
    the leading offsets whose element is below it (strictly, so a tie keeps the earlier offset).
    In a window holding a NaN every comparison is False; those windows, rare, are then given the
    offset of their first NaN, as ``np.argmax`` (the naive layer) chooses; torch's CPU kernel
    takes the last NaN instead.
    """
    K = g.PH * g.PW
    code = np.zeros(out.shape, dtype=np.min_scalar_type(K - 1))
    not_yet = scratch("pool.not_yet", out.shape, bool)  # windows whose maximum comes later
    below = scratch("pool.below", out.shape, bool)
    for k, x_view in enumerate(_offset_views(x, g)):
        if k == K - 1:  # a window whose maximum is none of the earlier offsets has it at the last
            break
        np.less(x_view, out, out=below if k else not_yet)
        if k:
            not_yet &= below
        np.add(code, not_yet, out=code, casting="unsafe")
    nan_windows = np.isnan(out)
    if nan_windows.any():
        code[nan_windows] = K - 1
        for k, x_view in reversed(list(enumerate(_offset_views(x, g)))):
            code[nan_windows & np.isnan(x_view)] = k
    return code


def _first_max_indices(code: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """The index into ``x.ravel()`` of each window's first maximum, from its offset ``code``.

    A window's index is its top-left pixel's plus the offset's ``i * W + j``. The backward pass
    scatters ``dout`` through these indices in one pass; computing them here, where the forward
    pass has time to spare (it is several times faster than torch's), keeps the backward short.
    """
    k = np.arange(g.PH * g.PW)
    index = np.take(k // g.PW * g.W + k % g.PW, code)  # intp, (N, C, H_out, W_out)
    corners = np.arange(g.H_out)[:, None] * (g.stride * g.W) + np.arange(g.W_out) * g.stride
    index += corners
    index += np.arange(g.N * g.C).reshape(g.N, g.C, 1, 1) * (g.H * g.W)
    return index


def max_pool_backward_fast(dout: np.ndarray, cache: PoolFastCache) -> np.ndarray:
    """Backward pass of :func:`max_pool_forward_fast`.

    Each upstream derivative goes to the first maximum of its window in row-major order, as in
    :func:`~layerwise._layers.pool_naive.max_pool_backward_naive` and
    ``torch.nn.functional.max_pool2d``; where windows overlap the derivatives add up.

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
    """``max_pool_backward_fast(relu_backward(dout, relu_cache), cache)`` in one pass over the windows.

    For a max pool followed by a ReLU whose input ``relu_cache`` is the pool's output: windows
    whose maximum is not positive pass no gradient, as if their first maximum had already been
    found. Exactly the same result as the two layers' backward passes, without the intermediate
    ``(N, C, H_out, W_out)`` gradient.

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


def max_pool_relu_backward_writer(dout: np.ndarray, relu_cache: np.ndarray, cache: PoolFastCache):
    """:func:`max_pool_relu_backward` a few images at a time, for a consumer that wants the
    gradient in its own buffers (the convolution below the pool, see ``layer_utils``).

    Validates the arguments as :func:`max_pool_relu_backward` does. For the usual pool (2x2 windows,
    stride 2, tiling the input) returns ``write(n0, m, dx)``, which writes the gradient of images
    ``n0:n0+m`` into ``dx`` (m, C, H, W), any strides, exactly as :func:`max_pool_relu_backward`
    would; ``write`` must be called before any other pool backward in this thread (it reads a
    scratch array). For other geometries returns None.
    """
    func = "max_pool_relu_backward"
    x, out, dout, relu_input, g = _checked(func, dout, cache, relu_cache)
    return _writer(x, out, dout, relu_input, g) if _tiles_2x2(g) else None


def _backward(func: str, dout: np.ndarray, cache: PoolFastCache, relu_input: np.ndarray | None = None) -> np.ndarray:
    """The backward pass, with the upstream gradient gated by ``relu_input > 0`` when given."""
    x, out, dout, relu_input, g = _checked(func, dout, cache, relu_input)
    code = getattr(cache, "code", None) if relu_input is None else None
    if code is not None:
        index = cache.index
        if index is not None and _disjoint(g):
            return _backward_by_index(index, dout, g)
        return _backward_by_code(code, dout, g)
    if not _tiles_2x2(g):
        return _backward_by_offsets(x, out, dout, relu_input, g)
    dx = np.empty(x.shape, dtype=x.dtype)
    _writer(x, out, dout, relu_input, g)(0, g.N, dx)
    return dx


def _checked(func: str, dout, cache, relu_input):
    """``(x, out, dout, relu_input, geometry)`` of a backward pass, validated, ``dout`` in x's dtype."""
    if isinstance(cache, PoolFastCache):
        x, pool_param, out, code, index = cache
        if code is not None and (not isinstance(code, np.ndarray) or code.shape != getattr(out, "shape", None)):
            raise TypeError(
                f"{func}: cache.code must be the offsets made by max_pool_forward_fast, got {v.describe(code)}"
            )
        if index is not None and (
            not isinstance(index, np.ndarray) or index.shape != getattr(out, "shape", None) or index.dtype != np.intp
        ):
            raise TypeError(
                f"{func}: cache.index must be the indices made by max_pool_forward_fast, got {v.describe(index)}"
            )
    else:
        x, pool_param, out = v.cache_tuple(func, cache, 3)
    x, g = pool_inputs(func, x, pool_param)
    dout = upstream(func, dout, (g.N, g.C, g.H_out, g.W_out), x.dtype)
    if not isinstance(out, np.ndarray) or out.shape != dout.shape or out.dtype != x.dtype:
        raise TypeError(
            f"{func}: cache.out must be the output made by max_pool_forward_fast, got {v.describe(out)}"
        )
    if relu_input is not None:
        relu_input = v.float_array(func, "relu_cache", relu_input)
        v.check_same_shape(func, "relu_cache", relu_input, "the pool output", out.shape)
    return x, out, dout, relu_input, g


def _writer(x, out, dout, relu_input, g: PoolGeometry):
    """``write(n0, m, dx)`` for a tiling 2x2 pool: the gradient of images ``n0:n0+m`` into ``dx``."""
    grad = dout  # where the ReLU passes nothing back, no window receives a gradient
    if relu_input is not None:
        grad = select(relu_input > 0, dout, scratch("pool.gated", out.shape, x.dtype))

    def write(n0: int, m: int, dx: np.ndarray) -> None:
        part = slice(n0, n0 + m)
        if not _backward_2x2(x[part], out[part], grad[part], dx):  # ties: the general loop
            relu_part = None if relu_input is None else relu_input[part]
            dx[...] = _backward_by_offsets(x[part], out[part], dout[part], relu_part, g._replace(N=m))

    return write


def _backward_by_offsets(x, out, dout, relu_input, g: PoolGeometry) -> np.ndarray:
    """The backward pass for any geometry: one pass over the windows per offset ``(i, j)``."""
    found = scratch("pool.found", out.shape, bool)  # windows whose first maximum has been seen
    if relu_input is None:
        found[...] = False
    else:  # where the ReLU passes nothing back, act as if the maximum had been found already
        np.logical_not(relu_input > 0, out=found)
    disjoint = g.stride >= g.PH and g.stride >= g.PW
    tiles = disjoint and g.stride == g.PH == g.PW and g.H == g.H_out * g.PH and g.W == g.W_out * g.PW
    dx = (np.empty if tiles else np.zeros)(x.shape, dtype=x.dtype)  # tiling windows write every pixel
    hit = scratch("pool.hit", out.shape, bool)
    share = None if disjoint else scratch("pool.share", out.shape, x.dtype)
    for x_view, dx_view in zip(_offset_views(x, g), _offset_views(dx, g)):
        np.equal(x_view, out, out=hit)
        np.greater(hit, found, out=hit)  # a maximum, and the window's first
        found |= hit
        if disjoint:  # each pixel lies in one window at most
            select(hit, dout, dx_view)
        else:
            dx_view += select(hit, dout, share)
    return dx


def _backward_by_index(index: np.ndarray, dout: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """The backward pass of windows that do not overlap: ``dout`` scattered to each window's first
    maximum, zeros elsewhere. Every pixel is written once at most, so the order of the writes does
    not matter and the result is the same to the bit as :func:`_backward_by_code`'s."""
    dx = np.zeros((g.N, g.C, g.H, g.W), dtype=dout.dtype)
    dx.reshape(-1)[index.reshape(-1)] = dout.reshape(-1)
    return dx


def _disjoint(g: PoolGeometry) -> bool:
    """Whether no two windows share a pixel."""
    return g.stride >= g.PH and g.stride >= g.PW


def _backward_by_code(code: np.ndarray, dout: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """The backward pass from the recorded offsets: per offset k, ``dout`` where ``code == k``.

    The same writes and additions, in the same order, as :func:`_backward_by_offsets`, so the
    result is the same to the bit; only the masks come from ``code`` instead of comparing ``x``.
    """
    disjoint = g.stride >= g.PH and g.stride >= g.PW
    tiles = disjoint and g.stride == g.PH == g.PW and g.H == g.H_out * g.PH and g.W == g.W_out * g.PW
    dx = (np.empty if tiles else np.zeros)((g.N, g.C, g.H, g.W), dtype=dout.dtype)
    bits = np.dtype(f"i{dout.itemsize}")
    words = scratch("pool.words", code.shape, bits)  # all ones where the window's maximum is at k
    share = None if disjoint else scratch("pool.share", code.shape, dout.dtype)
    dout_bits = dout.view(bits)
    for k, dx_view in enumerate(_offset_views(dx, g)):
        np.equal(code, k, out=words, casting="unsafe")
        np.negative(words, out=words)
        if disjoint:  # each pixel lies in one window at most
            np.bitwise_and(dout_bits, words, out=dx_view.view(bits))
        else:
            np.bitwise_and(dout_bits, words, out=share.view(bits))
            dx_view += share
    return dx


def _tiles_2x2(g: PoolGeometry) -> bool:
    """Whether the windows are 2x2 with stride 2 and cover the input exactly (the usual pool)."""
    return g.PH == g.PW == g.stride == 2 and g.H == 2 * g.H_out and g.W == 2 * g.W_out


def _backward_2x2(x: np.ndarray, out: np.ndarray, grad: np.ndarray, dx: np.ndarray) -> bool:
    """Backward pass of a tiling 2x2 stride-2 pool, in whole contiguous rows; False on ties.

    Compares every pixel with its window's maximum in one pass (each output row, repeated
    pixel-wise, against the two input rows of its windows), instead of one strided pass per
    window offset. Where no window holds more than one maximum the mask is already "the first
    maximum", and ``dx`` is the mask applied to ``grad`` spread over the windows. Where some window
    has ties, the caller falls back to the offset loop, which picks the first maximum in row-major
    order. A window none of whose pixels equals ``out`` (a NaN maximum) passes nothing, as there.

    Parameters
    ----------
    x : ndarray, shape (N, C, 2*H_out, 2*W_out)
    out : ndarray, shape (N, C, H_out, W_out)
        Each window's maximum.
    grad : ndarray, shape (N, C, H_out, W_out)
        The gradient of each window's output (after the ReLU's gate, if any).
    dx : ndarray, shape of x, any strides
        Written with the gradient when the function returns True.
    """
    N, C, H_out, W_out = out.shape
    rows = (N, C, H_out, 2, 2 * W_out)  # axis 3: the two input rows of a row of windows
    hit = scratch("pool.hit2x2", rows, bool)
    np.equal(x.reshape(rows), _each_twice(out, "pool.out2")[:, :, :, None, :], out=hit)
    if _has_ties(hit):
        return False
    select(hit, _each_twice(grad, "pool.grad2")[:, :, :, None, :], np.reshape(dx, rows, copy=False))
    return True


def _has_ties(hit: np.ndarray) -> bool:
    """Whether a window of a 2x2 tiling ``hit`` mask (N, C, H_out, 2, 2*W_out) has two maxima.

    A window's two pixels in one row are one 16-bit word of the bool array: OR-ing a window's
    two words gives a nonzero word exactly when the window has a maximum, so the windows hold
    more maxima than there are windows with one iff some window holds two or more.
    """
    pairs = hit.view(np.uint16)  # (N, C, H_out, 2, W_out)
    windows = scratch("pool.windows", pairs[:, :, :, 0].shape, np.uint16)
    np.bitwise_or(pairs[:, :, :, 0], pairs[:, :, :, 1], out=windows)
    return np.count_nonzero(hit) != np.count_nonzero(windows)


def _each_twice(a: np.ndarray, name: str) -> np.ndarray:
    """``np.repeat(a, 2, axis=-1)`` of a float array (float32: in the scratch array ``name``).

    For float32, by one integer multiply: a 32-bit word ``u`` times ``2**32 + 1`` is the 64-bit
    word holding ``u`` in both halves (3x faster than ``np.repeat``'s element-wise copies).
    """
    if a.dtype != np.float32:
        return np.repeat(a, 2, axis=-1)
    twice = scratch(name, a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    np.multiply(a.view(np.uint32), np.uint64(0x1_0000_0001), out=twice.view(np.uint64), dtype=np.uint64)
    return twice


def _running_max(views: list[np.ndarray], out: np.ndarray) -> np.ndarray:
    """Elementwise maximum of same-shaped views, written into ``out`` (C-contiguous) and returned."""
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
