"""Global average and max pooling: each channel of each image reduced to one number.

The layer that ends a convolutional network before its classifier: ``(N, C, H, W) -> (N, C)``
whatever H and W, with no parameters.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _validation as v


class GlobalPoolCache(NamedTuple):
    """What the global pools' backward passes need.

    ``x_shape`` and ``dtype`` are the input's; ``index`` (global max only; None for the average)
    holds, for each (image, channel), the row-major position in the H*W plane of its first maximum.
    """

    x_shape: tuple[int, int, int, int]
    dtype: np.dtype
    index: np.ndarray | None


def _pool_input(func: str, x: np.ndarray) -> np.ndarray:
    x = v.float_array(func, "x", x)
    v.check_ndim(func, "x", x, 4, "(N, C, H, W)")
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"{func}: x must have H >= 1 and W >= 1 to pool over, got shape {x.shape}")
    return x


def _checked_cache(func: str, dout, cache, needs_index: bool) -> tuple[np.ndarray, GlobalPoolCache]:
    x_shape, dtype, index = v.cache_tuple(func, cache, 3)
    if needs_index != (index is not None):
        made_by = "global_max_pool_forward" if needs_index else "global_avg_pool_forward"
        raise TypeError(f"{func}: cache must be the GlobalPoolCache made by {made_by}")
    return v.upstream(func, dout, tuple(x_shape[:2]), dtype), GlobalPoolCache(x_shape, dtype, index)


def global_avg_pool_forward(x: np.ndarray) -> tuple[np.ndarray, GlobalPoolCache]:
    """Forward pass of global average pooling: the mean of each channel over both image axes.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)

    Returns
    -------
    out : ndarray, shape (N, C), dtype of x
    cache : GlobalPoolCache
    """
    x = _pool_input("global_avg_pool_forward", x)
    N, C, H, W = x.shape
    out = np.add.reduce(x.reshape(N, C, H * W), axis=2)
    out /= x.dtype.type(H * W)
    return out, GlobalPoolCache(x.shape, x.dtype, None)


def global_avg_pool_backward(dout: np.ndarray, cache: GlobalPoolCache) -> np.ndarray:
    """Backward pass of :func:`global_avg_pool_forward`: each position receives ``dout / (H * W)``.

    Parameters
    ----------
    dout : ndarray, shape (N, C)
    cache : GlobalPoolCache

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    dout, cache = _checked_cache("global_avg_pool_backward", dout, cache, needs_index=False)
    N, C, H, W = cache.x_shape
    dx = np.empty(cache.x_shape, dtype=cache.dtype)
    np.copyto(dx, (dout / cache.dtype.type(H * W)).reshape(N, C, 1, 1))
    return dx


def global_max_pool_forward(x: np.ndarray) -> tuple[np.ndarray, GlobalPoolCache]:
    """Forward pass of global max pooling: the maximum of each channel over both image axes.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)

    Returns
    -------
    out : ndarray, shape (N, C), dtype of x
    cache : GlobalPoolCache
        Holds the position of each channel's first maximum (row-major order over H, W; a channel
        holding a NaN: its first NaN, as ``np.argmax`` and the max pool layers choose).
    """
    x = _pool_input("global_max_pool_forward", x)
    N, C, H, W = x.shape
    flat = x.reshape(N, C, H * W)
    index = np.argmax(flat, axis=2)
    out = np.take_along_axis(flat, index[..., None], axis=2).reshape(N, C)
    return out, GlobalPoolCache(x.shape, x.dtype, index)


def global_max_pool_backward(dout: np.ndarray, cache: GlobalPoolCache) -> np.ndarray:
    """Backward pass of :func:`global_max_pool_forward`.

    Each channel's derivative goes to its first maximum only (row-major order over H and W); where
    a channel holds its maximum more than once (ties, e.g. a ReLU's zeros), the later copies get
    nothing, as in the max pool layers and ``torch.nn.functional.adaptive_max_pool2d``.

    Parameters
    ----------
    dout : ndarray, shape (N, C)
    cache : GlobalPoolCache

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    """
    dout, cache = _checked_cache("global_max_pool_backward", dout, cache, needs_index=True)
    N, C, H, W = cache.x_shape
    dx = np.zeros((N, C, H * W), dtype=cache.dtype)
    np.put_along_axis(dx, cache.index[..., None], dout[..., None], axis=2)
    return dx.reshape(cache.x_shape)
