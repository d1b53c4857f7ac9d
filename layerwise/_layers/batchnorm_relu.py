"""Spatial batch normalization followed by a ReLU, as one layer: what a convolutional block runs
after each convolution.

For float32 with the compiled kernels, the forward pass is one pass of per-channel sums over x and
one pass that writes ``max(gamma * xhat + beta, 0)``; the backward pass is one pass of sums and
one that writes dx, both recomputing ``xhat`` from x instead of keeping it, with the ReLU's gate
read from the output. NumPy would make a dozen passes over the batch for the same work. Its sums
run in float64 in their own order, so its bits are not those of the composition. Other dtypes
(float64 gradient checks) compose :func:`.normalization.spatial_batchnorm_forward` and
:func:`.affine.relu_forward`, and give their bits. The choice depends on the dtype alone.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import _validation as v
from . import kernels
from .affine import relu_backward, relu_forward
from .normalization import (
    _scale_params,
    batchnorm_settings,
    keep_running_statistics,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    update_running_statistics,
)
from .threads import even_parts, for_each_chunk, get_num_threads


class BatchnormReluCache(NamedTuple):
    """The compiled path's cache: the input ``x`` and output ``out`` (N, C, H, W), the statistics
    used (``mean``, ``inv_std``, float64 (C,)), ``gamma`` (C,) and whether the statistics were the
    batch's; or, on the composed path, ``parts = (bn_cache, relu_cache)`` and the rest None."""

    x: np.ndarray | None
    out: np.ndarray | None
    mean: np.ndarray | None
    inv_std: np.ndarray | None
    gamma: np.ndarray | None
    batch_statistics: bool
    parts: tuple | None


def spatial_batchnorm_relu_forward(x: np.ndarray, gamma: Any, beta: Any, bn_param: dict) -> tuple[np.ndarray, BatchnormReluCache]:
    """``relu(spatial_batchnorm(x))``: per channel, normalize over the batch and both image axes,
    scale by gamma, shift by beta, then ``max(., 0)``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    gamma, beta : ndarray, shape (C,)
    bn_param : dict
        As for :func:`.normalization.spatial_batchnorm_forward` (mode, eps, momentum, running
        statistics of shape (C,), updated in train mode).

    Returns
    -------
    out : ndarray, shape (N, C, H, W), x's dtype
    cache : BatchnormReluCache
    """
    func = "spatial_batchnorm_relu_forward"
    x = v.float_array(func, "x", x)
    v.check_ndim(func, "x", x, 4, "(N, C, H, W)")
    if not kernels.serves_training(x.dtype) or x.size == 0:  # empty maps: NumPy's NaN means, not 0 / 0 in a kernel
        normed, bn_cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
        out, relu_cache = relu_forward(normed)
        return out, BatchnormReluCache(None, None, None, None, None, bn_cache.axes is not None, (bn_cache, relu_cache))
    N, C, H, W = x.shape
    gamma, beta = _scale_params(func, x, gamma, beta, (C,))
    settings = batchnorm_settings(func, x, bn_param, C)
    x = np.ascontiguousarray(x)
    x3 = x.reshape(N, C, H * W)
    parts = even_parts(C, get_num_threads())
    train = settings.mode == "train"
    if train:
        mean, var = np.empty(C), np.empty(C)
        for_each_chunk(parts, lambda _, c0, m: kernels.channel_moments(x3, c0, c0 + m, mean, var))
        update_running_statistics(bn_param, settings, mean, var, x.dtype)
    else:
        mean = settings.running_mean.astype(np.float64)
        var = settings.running_var.astype(np.float64)
        keep_running_statistics(bn_param, settings)
    inv_std = 1.0 / np.sqrt(var + settings.eps)
    scale = gamma * inv_std
    shift = beta - mean * scale
    out = np.empty_like(x)
    out3 = out.reshape(x3.shape)
    for_each_chunk(parts, lambda _, c0, m: kernels.scale_shift_relu(x3, scale, shift, c0, c0 + m, out3))
    return out, BatchnormReluCache(x, out, mean, inv_std, gamma, train, None)


def spatial_batchnorm_relu_backward(dout: np.ndarray, cache: BatchnormReluCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`spatial_batchnorm_relu_forward`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dgamma, dbeta : ndarray, shape (C,)
    """
    func = "spatial_batchnorm_relu_backward"
    if not isinstance(cache, BatchnormReluCache):
        raise TypeError(f"{func}: cache must be the BatchnormReluCache made by spatial_batchnorm_relu_forward, got {v.describe(cache)}")
    if cache.parts is not None:
        bn_cache, relu_cache = cache.parts
        return spatial_batchnorm_backward(relu_backward(dout, relu_cache), bn_cache)
    x, out = cache.x, cache.out
    dout = np.ascontiguousarray(v.upstream(func, dout, x.shape, x.dtype))
    N, C, H, W = x.shape
    x3, out3, dout3 = (a.reshape(N, C, H * W) for a in (x, out, dout))
    parts = even_parts(C, get_num_threads())
    dbeta, dgamma = np.empty(C), np.empty(C)
    for_each_chunk(
        parts, lambda _, c0, m: kernels.gated_sums(dout3, out3, x3, cache.mean, cache.inv_std, c0, c0 + m, dbeta, dgamma)
    )
    if cache.batch_statistics:  # the statistics depend on x: dx also flows through them
        count = N * H * W
        mean_g, mean_gx = dbeta / count, dgamma / count
    else:
        mean_g = mean_gx = np.zeros(C)
    scale = cache.gamma * cache.inv_std
    dx = np.empty_like(x)
    dx3 = dx.reshape(x3.shape)
    for_each_chunk(
        parts,
        lambda _, c0, m: kernels.gated_input_grad(
            dout3, out3, x3, cache.mean, cache.inv_std, scale, mean_g, mean_gx, c0, c0 + m, dx3
        ),
    )
    return dx, dgamma.astype(x.dtype), dbeta.astype(x.dtype)
