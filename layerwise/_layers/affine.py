"""Fully-connected (affine) layer and ReLU activation."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from .. import _validation as v
from .masking import select
from .threads import matmul


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
