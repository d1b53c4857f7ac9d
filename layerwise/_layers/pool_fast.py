"""Max pooling in pure NumPy: a loop over the PH*PW window offsets, then one scatter back.

Each window offset ``(i, j)`` selects one strided slice of the input holding that element of
every window, ``x[:, :, i::stride, j::stride]`` cut to ``(H_out, W_out)``. The forward pass keeps
a running maximum over the slices in row-major offset order and records, with a strict ``>``,
which offset first reached it; from that it stores the flat index into ``x`` of every window's
first maximum. The backward pass is then a single scatter of ``dout`` to those indices: a plain
fancy assignment when windows are disjoint (``stride >= pool_height`` and ``>= pool_width``), and
``np.bincount`` when they overlap, so that gradients of windows sharing a maximum add up. The
Python loop has only PH*PW steps (4 for the usual 2x2 pool); every step is a whole-array
operation, and the same code serves windows that tile, overlap or leave rows/columns uncovered.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _validation as v
from .geometry import PoolGeometry, pool_inputs, upstream


class PoolFastCache(NamedTuple):
    """What :func:`max_pool_backward_fast` needs."""

    x: np.ndarray
    pool_param: dict
    argmax: np.ndarray  # (N, C, H_out, W_out) intp: flat index into x of each window's first max


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
    out : ndarray, shape (N, C, H_out, W_out)
        ``H_out = 1 + (H - pool_height) // stride``, ``W_out = 1 + (W - pool_width) // stride``.
    cache : PoolFastCache
        ``(x, pool_param, argmax)``.
    """
    x, g = pool_inputs("max_pool_forward_fast", x, pool_param)
    slices = _slices(x, g)
    out = np.array(next(slices), dtype=x.dtype, order="C")
    offsets = g.PH * g.PW
    winner = np.zeros(out.shape, dtype=np.uint8 if offsets <= 256 else np.intp)
    better = np.empty(out.shape, dtype=bool)
    for k, piece in enumerate(slices, start=1):
        np.greater(piece, out, out=better)  # strict: ties keep the earlier offset
        np.maximum(out, piece, out=out)
        np.copyto(winner, k, where=better)
    # Flat index into x: image/channel plane + window origin + offset within the window.
    k = np.arange(offsets)
    within = (k // g.PW) * g.W + k % g.PW
    argmax = np.take(within, winner).reshape(g.N * g.C, g.H_out * g.W_out)
    origins = (np.arange(g.H_out)[:, None] * (g.stride * g.W) + np.arange(g.W_out) * g.stride).ravel()
    argmax += origins
    argmax += (np.arange(g.N * g.C) * (g.H * g.W))[:, None]
    return out, PoolFastCache(x, dict(pool_param), argmax.reshape(out.shape))


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
    x, pool_param, argmax = v.cache_tuple("max_pool_backward_fast", cache, 3)
    x, g = pool_inputs("max_pool_backward_fast", x, pool_param)
    dout = upstream("max_pool_backward_fast", dout, (g.N, g.C, g.H_out, g.W_out), x.dtype)
    if not isinstance(argmax, np.ndarray) or argmax.shape != dout.shape or argmax.dtype != np.intp:
        raise TypeError(
            "max_pool_backward_fast: cache.argmax must be the index array made by max_pool_forward_fast, "
            f"got {v.describe(argmax)}"
        )
    if g.stride >= g.PH and g.stride >= g.PW:  # disjoint windows: every index appears once
        dx = np.zeros(x.size, dtype=x.dtype)
        dx[argmax.ravel()] = dout.ravel()
    else:
        # A pixel may be the maximum of several windows: bincount sums their derivatives (in
        # float64, in window order, as the naive loop does; np.add.at would be far slower).
        dx = np.bincount(argmax.ravel(), weights=dout.ravel(), minlength=x.size).astype(x.dtype, copy=False)
    return dx.reshape(x.shape)


def _slices(x: np.ndarray, g: PoolGeometry):
    """Yield, for each window offset (i, j) in row-major order, the (N, C, H_out, W_out) view of x."""
    rows = g.stride * (g.H_out - 1) + 1
    cols = g.stride * (g.W_out - 1) + 1
    for i in range(g.PH):
        for j in range(g.PW):
            yield x[:, :, i : i + rows : g.stride, j : j + cols : g.stride]
