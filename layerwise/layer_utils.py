"""Sandwich layers: common sequences of layers as one forward/backward pair.

Each forward returns ``(out, cache)`` where cache is the tuple of its parts' caches; each backward
returns the gradient of every input the forward took, in order. Convolutions and pools use the
fast implementations.

The models' first layer needs no gradient for its input (the data): the backward passes that end
in an affine layer, and :func:`conv_relu_pool_backward`, take ``input_grad=False`` to skip
computing ``dx`` and return ``None`` in its place.
"""

from __future__ import annotations

from . import _validation as v
from ._layers.batchnorm_relu import spatial_batchnorm_relu_backward, spatial_batchnorm_relu_forward
from ._layers.conv_pool import ConvPoolCache, conv_pool_forward, conv_pool_relu_backward
from ._layers.conv_fast import conv_backward_fast_weights
from .fast_layers import conv_backward_fast, conv_forward_fast
from .layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    relu_backward,
    relu_forward,
)

__all__ = [
    "affine_relu_forward",
    "affine_relu_backward",
    "affine_bn_relu_forward",
    "affine_bn_relu_backward",
    "affine_ln_relu_forward",
    "affine_ln_relu_backward",
    "conv_relu_forward",
    "conv_relu_backward",
    "conv_relu_pool_forward",
    "conv_relu_pool_backward",
    "conv_bn_relu_forward",
    "conv_bn_relu_backward",
    "spatial_batchnorm_relu_forward",
    "spatial_batchnorm_relu_backward",
]


def affine_relu_forward(x, w, b):
    """affine -> ReLU. x (N, d_1, ..., d_k), w (D, M), b (M,); out (N, M)."""
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout, cache, *, input_grad=True):
    """Backward of :func:`affine_relu_forward`; returns ``dx, dw, db`` (``dx`` None without
    ``input_grad``)."""
    fc_cache, relu_cache = cache
    return affine_backward(relu_backward(dout, relu_cache), fc_cache, input_grad=input_grad)


def affine_bn_relu_forward(x, w, b, gamma, beta, bn_param):
    """affine -> batchnorm -> ReLU. gamma, beta (M,); bn_param as for ``batchnorm_forward``."""
    return _affine_norm_relu_forward(batchnorm_forward, x, w, b, gamma, beta, bn_param)


def affine_bn_relu_backward(dout, cache, *, input_grad=True):
    """Backward of :func:`affine_bn_relu_forward`; returns ``dx, dw, db, dgamma, dbeta`` (``dx``
    None without ``input_grad``)."""
    return _affine_norm_relu_backward(batchnorm_backward_alt, dout, cache, input_grad)


def affine_ln_relu_forward(x, w, b, gamma, beta, ln_param):
    """affine -> layernorm -> ReLU. gamma, beta (M,); ln_param as for ``layernorm_forward``."""
    return _affine_norm_relu_forward(layernorm_forward, x, w, b, gamma, beta, ln_param)


def affine_ln_relu_backward(dout, cache, *, input_grad=True):
    """Backward of :func:`affine_ln_relu_forward`; returns ``dx, dw, db, dgamma, dbeta`` (``dx``
    None without ``input_grad``)."""
    return _affine_norm_relu_backward(layernorm_backward, dout, cache, input_grad)


def _affine_norm_relu_forward(norm_forward, x, w, b, gamma, beta, norm_param):
    """affine -> ``norm_forward`` -> ReLU; the cache is ``(fc_cache, norm_cache, relu_cache)``."""
    a, fc_cache = affine_forward(x, w, b)
    normed, norm_cache = norm_forward(a, gamma, beta, norm_param)
    out, relu_cache = relu_forward(normed)
    return out, (fc_cache, norm_cache, relu_cache)


def _affine_norm_relu_backward(norm_backward, dout, cache, input_grad):
    fc_cache, norm_cache, relu_cache = cache
    dnormed, dgamma, dbeta = norm_backward(relu_backward(dout, relu_cache), norm_cache)
    dx, dw, db = affine_backward(dnormed, fc_cache, input_grad=input_grad)
    return dx, dw, db, dgamma, dbeta


def conv_relu_forward(x, w, b, conv_param):
    """conv -> ReLU. x (N, C, H, W), w (F, C, HH, WW), b (F,); out (N, F, H_out, W_out)."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout, cache):
    """Backward of :func:`conv_relu_forward`; returns ``dx, dw, db``."""
    conv_cache, relu_cache = cache
    return conv_backward_fast(relu_backward(dout, relu_cache), conv_cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """conv -> ReLU -> max pool.

    Computed as conv -> max pool -> ReLU: a window's maximum commutes with the (monotone) ReLU,
    and the gradients are the same too (where the window's maximum is not positive, both orders
    pass no gradient), so the ReLU runs on the pooled, smaller array and its backward pass is a
    gate on the pool's. Where it can, the convolution and the pool run fused, chunk by chunk
    (:mod:`layerwise._layers.conv_pool`). The cache is ``(conv_pool_cache, relu_cache)``;
    ``relu_cache`` holds the pooled values.
    """
    pooled, conv_pool_cache = conv_pool_forward(x, w, b, conv_param, pool_param)
    out, relu_cache = relu_forward(pooled)
    return out, (conv_pool_cache, relu_cache)


def conv_relu_pool_backward(dout, cache, *, input_grad=True):
    """Backward of :func:`conv_relu_pool_forward`; returns ``dx, dw, db`` (``dx`` None without
    ``input_grad``)."""
    func = "conv_relu_pool_backward"
    conv_pool_cache, relu_cache = v.cache_tuple(func, cache, 2)
    if not isinstance(conv_pool_cache, ConvPoolCache):
        raise TypeError(
            f"{func}: cache[0] must be the ConvPoolCache made by conv_relu_pool_forward, got {v.describe(conv_pool_cache)}"
        )
    return conv_pool_relu_backward(dout, relu_cache, conv_pool_cache, input_grad)


def conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param):
    """conv -> spatial batchnorm -> ReLU. gamma, beta (F,). The batchnorm and the ReLU run as one
    layer, :func:`spatial_batchnorm_relu_forward`."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, bn_relu_cache = spatial_batchnorm_relu_forward(a, gamma, beta, bn_param)
    return out, (conv_cache, bn_relu_cache)


def conv_bn_relu_backward(dout, cache, *, input_grad=True):
    """Backward of :func:`conv_bn_relu_forward`; returns ``dx, dw, db, dgamma, dbeta`` (``dx``
    None without ``input_grad``)."""
    conv_cache, bn_relu_cache = v.cache_tuple("conv_bn_relu_backward", cache, 2)
    da, dgamma, dbeta = spatial_batchnorm_relu_backward(dout, bn_relu_cache)
    if input_grad:
        dx, dw, db = conv_backward_fast(da, conv_cache)
    else:
        dx, (dw, db) = None, conv_backward_fast_weights(da, conv_cache)
    return dx, dw, db, dgamma, dbeta
