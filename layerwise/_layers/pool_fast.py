"""Max pooling in pure NumPy, by whole-array operations over the few window offsets.

Forward: the maximum over a window is separable, so it is taken in two passes, first over the
window's rows, then over its columns. The row pass takes the elementwise maximum of ``PH``
strided row slices ``x[:, :, i::stride, :]``, each a run of whole contiguous rows; the column
pass does the same with ``PW`` strided column slices of that smaller array. Nothing else is
computed: the backward pass finds the maxima again.

Backward: each upstream derivative goes to the first maximum of its window in row-major order.
For each window offset ``(i, j)`` in that order, the strided slice ``x[:, :, i::stride, j::stride]``
(cut to ``(H_out, W_out)``) holds that element of every window; where it equals the window's
maximum (the cached output) and no earlier offset of the window did, the derivative is added to
the same slice of ``dx``. Within one offset the slice never hits a pixel twice, so adding on a view
is exact, and overlapping windows that share a maximum add their derivatives as they should. The
Python loops have ``PH + PW`` and ``PH * PW`` steps (4 for the usual 2x2 pool) and the same code
serves windows that tile, overlap or leave rows/columns uncovered. :func:`max_pool_relu_backward`
is the same loop for a pool followed by a ReLU, with the ReLU's gate applied by marking windows
whose maximum is not positive as already found.

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
    out: np.ndarray  # (N, C, H_out, W_out): each window's maximum, found again in x by the backward


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
        ``(x, pool_param, out)``; the backward pass needs ``x`` and ``out`` unchanged.
    """
    x, g = pool_inputs("max_pool_forward_fast", x, pool_param)
    row_views = [x[:, :, i : i + g.stride * (g.H_out - 1) + 1 : g.stride] for i in range(g.PH)]
    rows = _running_max(row_views, scratch("pool.rows", row_views[0].shape, x.dtype))
    span = g.stride * (g.W_out - 1) + 1
    out = np.empty((g.N, g.C, g.H_out, g.W_out), dtype=x.dtype)
    _running_max([rows[..., j : j + span : g.stride] for j in range(g.PW)], out)
    return out, PoolFastCache(x, dict(pool_param), out)


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


def _backward(func: str, dout: np.ndarray, cache: PoolFastCache, relu_input: np.ndarray | None = None) -> np.ndarray:
    """The backward pass, with the upstream gradient gated by ``relu_input > 0`` when given."""
    x, pool_param, out = v.cache_tuple(func, cache, 3)
    x, g = pool_inputs(func, x, pool_param)
    dout = upstream(func, dout, (g.N, g.C, g.H_out, g.W_out), x.dtype)
    if not isinstance(out, np.ndarray) or out.shape != dout.shape or out.dtype != x.dtype:
        raise TypeError(
            f"{func}: cache.out must be the output made by max_pool_forward_fast, got {v.describe(out)}"
        )
    found = scratch("pool.found", out.shape, bool)  # windows whose first maximum has been seen
    if relu_input is None:
        found[...] = False
    else:  # where the ReLU passes nothing back, act as if the maximum had been found already
        relu_input = v.float_array(func, "relu_cache", relu_input)
        v.check_same_shape(func, "relu_cache", relu_input, "the pool output", out.shape)
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
