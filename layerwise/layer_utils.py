"""Sandwich layers: common sequences of layers as one forward/backward pair.

Each forward returns ``(out, cache)`` where cache is the tuple of its parts' caches; each backward
returns the gradient of every input the forward took, in order. Convolutions and pools use the
fast implementations.

The models' first layer needs no gradient for its input (the data): the backward passes that end
in an affine layer, :func:`conv_relu_pool_backward` and :func:`conv_block_backward` take
``input_grad=False`` to skip computing ``dx`` and return ``None`` in its place.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import _validation as v
from ._layers.batchnorm_relu import BatchnormReluCache, spatial_batchnorm_relu_backward, spatial_batchnorm_relu_forward
from ._layers.conv_fast import conv_backward_fast_weights
from ._layers.conv_pool import ConvPoolCache, conv_pool_forward, conv_pool_relu_backward
from ._layers.geometry import conv_inputs, pool_inputs
from ._layers.normalization import NormCache
from ._layers.pool_fast import PoolFastCache, max_pool_relu_backward
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
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
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
    "conv_block_forward",
    "conv_block_backward",
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


BLOCK_NORMALIZATIONS = (None, "batchnorm", "groupnorm")
"""The normalizations :func:`conv_block_forward` takes."""


class ConvBlockCache(NamedTuple):
    """What :func:`conv_block_backward` needs.

    ``conv`` is the convolution's cache, or, where the convolution, pool and ReLU ran fused
    (:func:`conv_relu_pool_forward`), that sandwich's cache (``relu`` is then None). ``norm`` is
    the normalization's cache: with batchnorm, that of :func:`spatial_batchnorm_relu_forward`,
    which ran the ReLU too (``relu`` None). ``relu`` is the ReLU's input; ``pool`` the pool's
    cache (None without a pool, or when fused);
    ``pool_before_relu`` says the pool ran on the normalized values, the ReLU after it.
    """

    conv: Any
    norm: NormCache | BatchnormReluCache | None
    relu: np.ndarray | None
    pool: PoolFastCache | None
    normalization: str | None
    residual: bool
    pool_before_relu: bool


def conv_block_forward(
    x, w, b, conv_param, *, normalization=None, gamma=None, beta=None, norm_param=None, pool_param=None, residual=False
):
    """conv -> [spatial batchnorm | group norm] -> ReLU -> [+ x] -> [max pool]: one block of a
    convolutional network, the one function every such block of a model goes through.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (F, C, HH, WW)
    b : ndarray, shape (F,)
    conv_param : dict
        As for ``conv_forward_fast``.
    normalization : None, 'batchnorm' or 'groupnorm', keyword only
    gamma, beta : ndarray, shape (F,), keyword only
        Scale and shift of the normalization (None without one).
    norm_param : dict, keyword only
        batchnorm: the ``bn_param`` of ``spatial_batchnorm_forward`` (``'mode'``, running
        statistics updated in place); groupnorm: ``'groups'`` (G, which must divide F) and
        optionally ``'eps'``. None without normalization.
    pool_param : dict or None, keyword only
        As for ``max_pool_forward_fast``; None: no pool.
    residual : bool, keyword only
        Add ``x`` to the ReLU's output (an identity shortcut, before the pool): the convolution
        must keep x's shape (F == C, stride 1, same padding).

    Returns
    -------
    out : ndarray, shape (N, F, H_out, W_out)
        H_out, W_out: the convolution's output size, divided by the pool if there is one.
    cache : ConvBlockCache

    Notes
    -----
    With batchnorm, the batchnorm and the ReLU run as one layer
    (:func:`spatial_batchnorm_relu_forward`), the pool after them. Otherwise, without the shortcut,
    the pool runs before the ReLU: a window's maximum commutes with the monotone ReLU, and so do
    the gradients (see :func:`conv_relu_pool_forward`), so the results are those of the order
    above, with the ReLU on the pooled, smaller array; without a normalization the convolution
    and the pool then run fused (:func:`conv_relu_pool_forward`).
    Every argument is checked before ``norm_param``'s running statistics change.
    """
    func = "conv_block_forward"
    if normalization not in BLOCK_NORMALIZATIONS:
        raise ValueError(f"{func}: normalization must be one of {list(BLOCK_NORMALIZATIONS)}, got {v.describe(normalization)}")
    if not isinstance(residual, (bool, np.bool_)):
        raise TypeError(f"{func}: residual must be a bool, got {v.describe(residual)}")
    x, w, b, g = conv_inputs(func, x, w, b, conv_param, exact=False)
    conv_shape = (g.N, g.F, g.H_out, g.W_out)
    if pool_param is not None:
        pool_inputs(func, np.broadcast_to(x.dtype.type(0), conv_shape), pool_param)
    if residual and conv_shape != x.shape:
        raise ValueError(
            f"{func}: residual=True adds x to the convolution's output, which must then have x's shape "
            f"{x.shape}, got {conv_shape} (w.shape={w.shape}, conv_param={conv_param})"
        )
    if normalization is None:
        for name, value in (("gamma", gamma), ("beta", beta), ("norm_param", norm_param)):
            if value is not None:
                raise TypeError(f"{func}: {name} must be None without normalization, got {v.describe(value)}")
    else:
        gamma, beta = (v.param_array(func, name, value, x.dtype) for name, value in (("gamma", gamma), ("beta", beta)))
        v.check_shape(func, "gamma", gamma, (g.F,))
        v.check_shape(func, "beta", beta, (g.F,))
        norm_param = v.param_dict(func, "norm_param", norm_param)

    if normalization == "batchnorm":  # batchnorm and ReLU fused, full size, then the pool
        a, conv_cache = conv_forward_fast(x, w, b, conv_param)
        out, norm_cache = spatial_batchnorm_relu_forward(a, gamma, beta, norm_param)
        if residual:
            out = out + conv_cache.x  # a new array: the cache keeps out as the ReLU's gate
        pool_cache = None
        if pool_param is not None:
            out, pool_cache = max_pool_forward_fast(out, pool_param)
        return out, ConvBlockCache(conv_cache, norm_cache, None, pool_cache, normalization, bool(residual), False)
    pool_before_relu = pool_param is not None and not residual
    if normalization is None and pool_before_relu:
        out, fused = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
        return out, ConvBlockCache(fused, None, None, None, None, False, True)
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    norm_cache = None
    if normalization == "groupnorm":
        groups = v.int_entry(func, "norm_param", norm_param, "groups", minimum=1)
        a, norm_cache = spatial_groupnorm_forward(a, gamma.reshape(1, -1, 1, 1), beta.reshape(1, -1, 1, 1), groups, norm_param)
    pool_cache = None
    if pool_before_relu:
        a, pool_cache = max_pool_forward_fast(a, pool_param)
    out, relu_cache = relu_forward(a)
    if residual:
        out += conv_cache.x  # out is the ReLU's own new array
    if pool_param is not None and not pool_before_relu:
        out, pool_cache = max_pool_forward_fast(out, pool_param)
    return out, ConvBlockCache(conv_cache, norm_cache, relu_cache, pool_cache, normalization, bool(residual), pool_before_relu)


def conv_block_backward(dout, cache, *, input_grad=True):
    """Backward of :func:`conv_block_forward`.

    Parameters
    ----------
    dout : ndarray, shape of the block's output
    cache : ConvBlockCache
    input_grad : bool, keyword only
        False skips ``dx`` (a network's first block, whose input is the data).

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), or None without ``input_grad``
    dw : ndarray, shape (F, C, HH, WW)
    db : ndarray, shape (F,)
    dgamma, dbeta : ndarray, shape (F,), or None without normalization
    """
    func = "conv_block_backward"
    conv_cache, norm_cache, relu_cache, pool_cache, normalization, residual, pool_before_relu = v.cache_tuple(func, cache, 7)
    if not isinstance(cache, ConvBlockCache):
        raise TypeError(f"{func}: cache must be the ConvBlockCache made by conv_block_forward, got {v.describe(cache)}")
    dgamma = dbeta = None
    if isinstance(norm_cache, BatchnormReluCache):  # batchnorm and ReLU ran fused, the pool after them
        if pool_cache is not None:
            dout = max_pool_backward_fast(dout, pool_cache)
        elif residual:  # dout is added to dx below: the shortcut keeps x's shape
            dout = v.upstream(func, dout, conv_cache.x.shape, conv_cache.x.dtype)
        da, dgamma, dbeta = spatial_batchnorm_relu_backward(dout, norm_cache)
    elif relu_cache is None:  # conv, pool and ReLU ran fused
        return (*conv_relu_pool_backward(dout, conv_cache, input_grad=input_grad), None, None)
    else:
        if pool_before_relu:
            da = max_pool_relu_backward(dout, relu_cache, pool_cache)
        else:
            if pool_cache is not None:
                dout = max_pool_backward_fast(dout, pool_cache)
            else:
                dout = v.upstream(func, dout, relu_cache.shape, relu_cache.dtype)
            da = relu_backward(dout, relu_cache)
        if normalization == "groupnorm":
            da, dgamma, dbeta = spatial_groupnorm_backward(da, norm_cache)
            dgamma, dbeta = dgamma.reshape(-1), dbeta.reshape(-1)
    if not input_grad:
        return (None, *conv_backward_fast_weights(da, conv_cache), dgamma, dbeta)
    dx, dw, db = conv_backward_fast(da, conv_cache)
    if residual:
        dx += dout  # the shortcut's share: the gradient that reached the ReLU's output
    return dx, dw, db, dgamma, dbeta
