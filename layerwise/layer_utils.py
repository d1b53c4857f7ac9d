"""Sandwich layers: common sequences of layers as one forward/backward pair.

Each forward returns ``(out, cache)`` where cache is the tuple of its parts' caches; each backward
returns the gradient of every input the forward took, in order. Convolutions and pools use the
fast implementations.
"""

from __future__ import annotations

from .fast_layers import conv_backward_fast, conv_forward_fast, max_pool_backward_fast, max_pool_forward_fast
from .layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    relu_backward,
    relu_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
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
]


def affine_relu_forward(x, w, b):
    """affine -> ReLU. x (N, d_1, ..., d_k), w (D, M), b (M,); out (N, M)."""
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout, cache):
    """Backward of :func:`affine_relu_forward`; returns ``dx, dw, db``."""
    fc_cache, relu_cache = cache
    return affine_backward(relu_backward(dout, relu_cache), fc_cache)


def affine_bn_relu_forward(x, w, b, gamma, beta, bn_param):
    """affine -> batchnorm -> ReLU. gamma, beta (M,); bn_param as for ``batchnorm_forward``."""
    a, fc_cache = affine_forward(x, w, b)
    normed, bn_cache = batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(normed)
    return out, (fc_cache, bn_cache, relu_cache)


def affine_bn_relu_backward(dout, cache):
    """Backward of :func:`affine_bn_relu_forward`; returns ``dx, dw, db, dgamma, dbeta``."""
    fc_cache, bn_cache, relu_cache = cache
    dnormed, dgamma, dbeta = batchnorm_backward_alt(relu_backward(dout, relu_cache), bn_cache)
    dx, dw, db = affine_backward(dnormed, fc_cache)
    return dx, dw, db, dgamma, dbeta


def affine_ln_relu_forward(x, w, b, gamma, beta, ln_param):
    """affine -> layernorm -> ReLU. gamma, beta (M,); ln_param as for ``layernorm_forward``."""
    a, fc_cache = affine_forward(x, w, b)
    normed, ln_cache = layernorm_forward(a, gamma, beta, ln_param)
    out, relu_cache = relu_forward(normed)
    return out, (fc_cache, ln_cache, relu_cache)


def affine_ln_relu_backward(dout, cache):
    """Backward of :func:`affine_ln_relu_forward`; returns ``dx, dw, db, dgamma, dbeta``."""
    fc_cache, ln_cache, relu_cache = cache
    dnormed, dgamma, dbeta = layernorm_backward(relu_backward(dout, relu_cache), ln_cache)
    dx, dw, db = affine_backward(dnormed, fc_cache)
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
    """conv -> ReLU -> max pool."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_fast(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout, cache):
    """Backward of :func:`conv_relu_pool_forward`; returns ``dx, dw, db``."""
    conv_cache, relu_cache, pool_cache = cache
    ds = max_pool_backward_fast(dout, pool_cache)
    return conv_backward_fast(relu_backward(ds, relu_cache), conv_cache)


def conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param):
    """conv -> spatial batchnorm -> ReLU. gamma, beta (F,)."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    normed, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(normed)
    return out, (conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(dout, cache):
    """Backward of :func:`conv_bn_relu_forward`; returns ``dx, dw, db, dgamma, dbeta``."""
    conv_cache, bn_cache, relu_cache = cache
    dnormed, dgamma, dbeta = spatial_batchnorm_backward(relu_backward(dout, relu_cache), bn_cache)
    dx, dw, db = conv_backward_fast(dnormed, conv_cache)
    return dx, dw, db, dgamma, dbeta
