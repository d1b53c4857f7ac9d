"""Fully-connected (affine) layer and ReLU activation."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from .. import _validation as v
from .masking import select
from . import threads


# Products of at least this many multiply-adds (m*k*n) are split; below, a split costs more than it saves.
_SPLIT_FROM = 1 << 24
# A split product has at most this many parts, each at least _MIN_PART rows (or columns) of the
# result: smaller parts re-pack the other operand too often to gain.
_MAX_PARTS = 8
_MIN_PART = 16
# A product whose inner dimension is at least this many times both of the result's is split along
# the inner dimension instead, into parts of at least _MIN_INNER_PART, their products summed in
# order: splitting a small result re-packs the whole of the other operand for every part.
_INNER_SPLIT_RATIO = 4
_MIN_INNER_PART = 2048
_MAX_INNER_PARTS = 4


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The affine layer's ``a @ b`` for 2-d arrays: one BLAS call, or, where
    :func:`.threads.splits_products` (inside :func:`.threads.products_on_layer_threads` with more
    than one thread), a large product split into parts that depend only on the shapes and run on
    the layers' threads: the rows of the result, or its columns when it has fewer rows than
    columns, or the inner dimension when it is much longer than both. As with BLAS's own threads,
    the last bits can differ between one thread and several.
    """
    rows, inner = a.shape
    cols = b.shape[1]
    if rows * inner * cols < _SPLIT_FROM or not threads.splits_products():
        return a @ b
    if inner >= _INNER_SPLIT_RATIO * max(rows, cols):
        return threads.split_inner(a, b, min(_MAX_INNER_PARTS, inner // _MIN_INNER_PART))
    by_rows = rows >= cols
    # one part: still BLAS on one thread
    return threads.split_outer(a, b, min(_MAX_PARTS, (rows if by_rows else cols) // _MIN_PART), by_rows)


class AffineCache(NamedTuple):
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray


def affine_forward(x: np.ndarray, w: Any, b: Any) -> tuple[np.ndarray, AffineCache]:
    """Forward pass of an affine layer: ``out = x.reshape(N, D) @ w + b``.

    Parameters
    ----------
    x : ndarray, shape (N, d_1, ..., d_k)
        A minibatch of N examples; each is flattened to D = d_1 * ... * d_k values.
    w : ndarray, shape (D, M)
    b : ndarray, shape (M,)

    Returns
    -------
    out : ndarray, shape (N, M), dtype of x
    cache : AffineCache
        ``(x, w, b)``.
    """
    func = "affine_forward"
    x = v.float_array(func, "x", x)
    if x.ndim < 1:
        raise ValueError(f"{func}: x must have shape (N, d_1, ..., d_k), got a 0-d array")
    w = v.param_array(func, "w", w, x.dtype)
    b = v.param_array(func, "b", b, x.dtype)
    v.check_ndim(func, "w", w, 2, "(D, M)")
    N = x.shape[0]
    D = math.prod(x.shape[1:])
    if w.shape[0] != D:
        raise ValueError(
            f"{func}: x has {D} features per example but w expects {w.shape[0]} "
            f"(x.shape={x.shape}, w.shape={w.shape})"
        )
    v.check_shape(func, "b", b, (w.shape[1],))
    out = matmul(x.reshape(N, D), w)
    out += b
    return out, AffineCache(x, w, b)


def affine_backward(
    dout: np.ndarray, cache: AffineCache, *, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Backward pass of :func:`affine_forward`.

    Parameters
    ----------
    dout : ndarray, shape (N, M)
    cache : AffineCache
    input_grad : bool
        False skips ``dx`` (returned as None): a network's first layer, whose input is the data,
        needs none.

    Returns
    -------
    dx : ndarray, shape of x, or None
    dw : ndarray, shape (D, M)
    db : ndarray, shape (M,)
    """
    x, w, _ = v.cache_tuple("affine_backward", cache, 3)
    dout = v.upstream("affine_backward", dout, (x.shape[0], w.shape[1]), x.dtype)
    dx = matmul(dout, w.T).reshape(x.shape) if input_grad else None
    return (dx, *_weight_grads(dout, x))


def _weight_grads(dout: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return matmul(x.reshape(x.shape[0], -1).T, dout), dout.sum(axis=0)


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward pass of a rectified linear unit, ``max(0, x)`` elementwise.

    Returns
    -------
    out : ndarray, same shape and dtype as x
    cache : ndarray
        x itself.
    """
    x = v.float_array("relu_forward", "x", x)
    return np.maximum(x, 0), x


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Backward pass of :func:`relu_forward`: the gradient flows where ``x > 0``.

    Returns
    -------
    dx : ndarray, same shape as x
    """
    x = v.float_array("relu_backward", "cache", cache)
    dout = v.upstream("relu_backward", dout, x.shape, x.dtype)
    return select(x > 0, dout, np.empty(x.shape, dtype=x.dtype))
