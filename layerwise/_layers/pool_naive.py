"""Max pooling, written as the definition: one max per (image, channel, output position).

Slow on purpose: it is the reference the fast pooling is tested against.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _validation as v
from .geometry import pool_inputs


class PoolCache(NamedTuple):
    x: np.ndarray
    pool_param: dict


def max_pool_forward_naive(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, PoolCache]:
    """Forward pass of a max-pooling layer, by loops.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    pool_param : dict
        ``'pool_height'``, ``'pool_width'`` (window size) and ``'stride'``. Windows may overlap;
        rows/columns left over at the bottom/right that no full window covers are ignored.

    Returns
    -------
    out : ndarray, shape (N, C, H_out, W_out)
        ``H_out = 1 + (H - pool_height) // stride``, ``W_out = 1 + (W - pool_width) // stride``.
    cache : PoolCache
        ``(x, pool_param)``.
    """
    x, g = pool_inputs("max_pool_forward_naive", x, pool_param)
    out = np.empty((g.N, g.C, g.H_out, g.W_out), dtype=x.dtype)
    for n in range(g.N):
        for c in range(g.C):
            for i in range(g.H_out):
                for j in range(g.W_out):
                    top, left = i * g.stride, j * g.stride
                    out[n, c, i, j] = x[n, c, top : top + g.PH, left : left + g.PW].max()
    return out, PoolCache(x, dict(pool_param))


def max_pool_backward_naive(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Backward pass of :func:`max_pool_forward_naive`.

    Each upstream derivative goes to the first maximum of its window (row-major order), as in
    ``torch.nn.functional.max_pool2d``; overlapping windows add up.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    x, pool_param = v.cache_tuple("max_pool_backward_naive", cache, 2)
    x, g = pool_inputs("max_pool_backward_naive", x, pool_param)
    dout = v.upstream("max_pool_backward_naive", dout, (g.N, g.C, g.H_out, g.W_out), x.dtype)
    dx = np.zeros_like(x)
    for n in range(g.N):
        for c in range(g.C):
            for i in range(g.H_out):
                for j in range(g.W_out):
                    top, left = i * g.stride, j * g.stride
                    window = x[n, c, top : top + g.PH, left : left + g.PW]
                    r, s = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, top + r, left + s] += dout[n, c, i, j]
    return dx
