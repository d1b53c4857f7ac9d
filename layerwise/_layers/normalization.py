"""Batch, layer, spatial batch and group normalization.

All four normalize ``x`` over some axes to zero mean and unit variance, then scale by ``gamma``
and shift by ``beta``; they differ only in the axes. One pair of helpers does the arithmetic:
:func:`_normalize` and :func:`_normalize_backward`, the latter being the simplified closed form
``dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))`` over the normalized axes
(for batch statistics, computed so that dx sums to zero over the batch up to the rounding of its
own values: see there).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from .. import _validation as v


class NormCache(NamedTuple):
    """What every normalization backward needs.

    ``xhat`` is the normalized input, ``inv_std`` is ``1 / sqrt(var + eps)`` (broadcastable to x),
    ``axes`` the axes the statistics were taken over (``None`` when fixed running statistics were
    used, at test time), ``param_axes`` the axes gamma/beta are broadcast over.
    """

    xhat: np.ndarray
    gamma: np.ndarray
    inv_std: np.ndarray
    axes: tuple[int, ...] | None
    param_axes: tuple[int, ...]
    groups: int


def _mean(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``a.mean(axis=axes, keepdims=True)``, the same bits (the sum, then one division by the
    count) without ``np.mean``'s Python-level overhead, which is most of the cost of a batchnorm
    layer at the sizes of a fully-connected net."""
    total = np.add.reduce(a, axis=axes, keepdims=True)
    total /= math.prod(a.shape[axis] for axis in axes)
    return total


def _normalize(x: np.ndarray, axes: tuple[int, ...], eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    mean = _mean(x, axes)
    centered = x - mean
    var = _mean(np.square(centered), axes)
    inv_std = 1.0 / np.sqrt(var + x.dtype.type(eps))
    centered *= inv_std  # now xhat
    return centered, inv_std, mean, var


def _normalize_backward(
    dxhat: np.ndarray, cache: NormCache, batch_means: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """dx = ``inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))`` over ``cache.axes``.

    ``dxhat`` is overwritten (callers pass an array of their own). ``batch_means``, for batch
    statistics (normalized over the axes gamma is shared along), is ``(mean(dxhat),
    mean(dxhat * xhat))`` in keepdims shapes, which the caller has from dbeta and dgamma.

    With batch statistics dx is centered once more at the end. The true dx then sums to exactly
    zero over the batch, so the gradient of a bias just before the normalization (an affine
    layer's ``db``, that sum) is exactly zero; the last centering keeps the computed sum at the
    rounding of dx's own values. Without it the sum is the rounding of the larger terms that
    cancel, times ``inv_std`` (up to 1e5 times larger on random inputs), and the notebooks'
    gradient check of such a bias, whose numeric gradient is 0, prints ~1e-7 where they expect
    1e-8 to 1e-10. The two means it reuses pay for that pass. Layer and group norm have no such
    bias, and skip it.
    """
    if cache.axes is None:  # fixed statistics: a plain elementwise affine map
        return dxhat * cache.inv_std
    axes = cache.axes
    if batch_means is None:
        dx = cache.xhat * _mean(dxhat * cache.xhat, axes)
        np.subtract(dxhat - _mean(dxhat, axes), dx, out=dx)
    else:
        mean_dxhat, mean_dxhat_xhat = batch_means
        dx = cache.xhat * mean_dxhat_xhat
        dxhat -= mean_dxhat
        np.subtract(dxhat, dx, out=dx)
        dx -= _mean(dx, axes)  # zero in exact arithmetic: removes the rounding remainder
    return np.multiply(cache.inv_std, dx, out=dx)


def _scale_params(func: str, x: np.ndarray, gamma: Any, beta: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    gamma = v.param_array(func, "gamma", gamma, x.dtype)
    beta = v.param_array(func, "beta", beta, x.dtype)
    v.check_shape(func, "gamma", gamma, shape)
    v.check_shape(func, "beta", beta, shape)
    return gamma, beta


def _eps(func: str, dict_name: str, params: dict) -> float:
    return v.real_entry(func, dict_name, params, "eps", default=1e-5, low=0.0, low_open=True)


class BatchnormSettings(NamedTuple):
    """``bn_param`` read and checked: its mode, eps, momentum and running statistics, shape (C,)."""

    mode: str
    eps: float
    momentum: float
    running_mean: np.ndarray
    running_var: np.ndarray


def batchnorm_settings(func: str, x: np.ndarray, bn_param: dict, C: int) -> BatchnormSettings:
    """Check ``bn_param`` for a batchnorm of C features over x; missing running statistics are zeros."""
    bn_param = v.param_dict(func, "bn_param", bn_param)
    mode = v.mode_entry(func, "bn_param", bn_param)
    eps = _eps(func, "bn_param", bn_param)
    momentum = v.real_entry(func, "bn_param", bn_param, "momentum", default=0.9, low=0.0, high=1.0)
    running = []
    for key in ("running_mean", "running_var"):
        value = bn_param.get(key)
        if value is None:
            value = np.zeros(C, dtype=x.dtype)
        else:
            value = v.float_array(func, f"bn_param[{key!r}]", value)
            v.check_shape(func, f"bn_param[{key!r}]", value, (C,))
        running.append(value)
    if mode == "train" and x.shape[0] < 1:
        raise ValueError(f"{func}: x must hold at least one example in train mode, got shape {x.shape}")
    return BatchnormSettings(mode, eps, momentum, *running)


def update_running_statistics(
    bn_param: dict, settings: BatchnormSettings, mean: np.ndarray, var: np.ndarray, dtype: np.dtype
) -> None:
    """Move ``bn_param``'s running statistics towards the batch's ``mean`` and ``var`` (C,).
    Called only after every check passed: bn_param is the one documented mutable input."""
    momentum = settings.momentum
    bn_param["running_mean"] = (momentum * settings.running_mean + (1 - momentum) * mean).astype(dtype)
    bn_param["running_var"] = (momentum * settings.running_var + (1 - momentum) * var).astype(dtype)


def keep_running_statistics(bn_param: dict, settings: BatchnormSettings) -> None:
    """In test mode, record the (zero) running statistics a bn_param without them was used with."""
    bn_param.setdefault("running_mean", settings.running_mean)
    bn_param.setdefault("running_var", settings.running_var)


def _batch_statistics(
    func: str, x: np.ndarray, bn_param: dict, axes: tuple[int, ...], stats_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...] | None]:
    """Normalize x with batch statistics (train) or running ones (test); update bn_param in train mode.

    Returns ``xhat``, ``inv_std`` and the axes the statistics came from (``None`` in test mode).
    """
    C = stats_shape[0]
    settings = batchnorm_settings(func, x, bn_param, C)
    keepdims_shape = tuple(1 if axis in axes else size for axis, size in enumerate(x.shape))
    if settings.mode == "train":
        xhat, inv_std, mean, var = _normalize(x, axes, settings.eps)
        update_running_statistics(bn_param, settings, mean.reshape(C), var.reshape(C), x.dtype)
        return xhat, inv_std, axes
    mean = settings.running_mean.astype(x.dtype, copy=False).reshape(keepdims_shape)
    var = settings.running_var.astype(x.dtype, copy=False).reshape(keepdims_shape)
    inv_std = 1.0 / np.sqrt(var + x.dtype.type(settings.eps))
    keep_running_statistics(bn_param, settings)
    return (x - mean) * inv_std, inv_std, None


def batchnorm_forward(x: np.ndarray, gamma: Any, beta: Any, bn_param: dict) -> tuple[np.ndarray, NormCache]:
    """Forward pass of batch normalization over the batch axis.

    In train mode each feature is normalized with the minibatch mean and (biased) variance, and
    the running statistics are updated in ``bn_param``::

        running_mean = momentum * running_mean + (1 - momentum) * sample_mean

    In test mode the running statistics are used instead.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    gamma, beta : ndarray, shape (D,)
        Scale and shift.
    bn_param : dict
        ``'mode'`` (``'train'`` or ``'test'``, required), ``'eps'`` (default 1e-5), ``'momentum'``
        (default 0.9), ``'running_mean'``/``'running_var'`` (shape (D,), zeros when absent; written
        back into this dict: the one documented exception to "layers do not mutate their inputs").

    Returns
    -------
    out : ndarray, shape (N, D)
    cache : NormCache
    """
    func = "batchnorm_forward"
    x = v.float_array(func, "x", x)
    v.check_ndim(func, "x", x, 2, "(N, D)")
    gamma, beta = _scale_params(func, x, gamma, beta, (x.shape[1],))
    xhat, inv_std, axes = _batch_statistics(func, x, bn_param, (0,), (x.shape[1],))
    return gamma * xhat + beta, NormCache(xhat, gamma, inv_std, axes, (0,), 1)


def batchnorm_backward(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`batchnorm_forward`, step by step through the computation graph.

    Kept beside :func:`batchnorm_backward_alt` (the simplified closed form) as its slower,
    obviously-traceable twin; both give the same result.

    Returns
    -------
    dx : ndarray, shape (N, D)
    dgamma, dbeta : ndarray, shape (D,)
    """
    xhat, gamma, inv_std, axes, _, _ = v.cache_tuple("batchnorm_backward", cache, 6)
    dout = v.upstream("batchnorm_backward", dout, xhat.shape, xhat.dtype)
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    if axes is None:
        return dxhat * inv_std, dgamma, dbeta
    N = xhat.shape[0]
    centered = xhat / inv_std  # x - mean
    # xhat = centered * inv_std, inv_std = (var + eps) ** -0.5, var = mean(centered ** 2)
    dinv_std = np.sum(dxhat * centered, axis=0)
    dvar = dinv_std * -0.5 * inv_std**3
    dcentered = dxhat * inv_std + dvar * 2.0 * centered / N
    dmean = -np.sum(dcentered, axis=0)
    dx = dcentered + dmean / N
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`batchnorm_forward` in the simplified closed form (faster).

    Returns
    -------
    dx : ndarray, shape (N, D)
    dgamma, dbeta : ndarray, shape (D,)
    """
    return _norm_backward("batchnorm_backward_alt", dout, cache)


def layernorm_forward(x: np.ndarray, gamma: Any, beta: Any, ln_param: dict) -> tuple[np.ndarray, NormCache]:
    """Forward pass of layer normalization: each example is normalized over its D features.

    Behaves the same in train and test mode, and keeps no running statistics.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    gamma, beta : ndarray, shape (D,)
    ln_param : dict
        ``'eps'`` (default 1e-5); any other key (such as ``'mode'``) is ignored.

    Returns
    -------
    out : ndarray, shape (N, D)
    cache : NormCache
    """
    func = "layernorm_forward"
    x = v.float_array(func, "x", x)
    v.check_ndim(func, "x", x, 2, "(N, D)")
    gamma, beta = _scale_params(func, x, gamma, beta, (x.shape[1],))
    eps = _eps(func, "ln_param", v.param_dict(func, "ln_param", ln_param))
    xhat, inv_std, _, _ = _normalize(x, (1,), eps)
    return gamma * xhat + beta, NormCache(xhat, gamma, inv_std, (1,), (0,), 1)


def layernorm_backward(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`layernorm_forward`.

    Returns
    -------
    dx : ndarray, shape (N, D)
    dgamma, dbeta : ndarray, shape (D,)
    """
    return _norm_backward("layernorm_backward", dout, cache)


def spatial_batchnorm_forward(x: np.ndarray, gamma: Any, beta: Any, bn_param: dict) -> tuple[np.ndarray, NormCache]:
    """Forward pass of spatial batch normalization: per channel, over the batch and both image axes.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    gamma, beta : ndarray, shape (C,)
    bn_param : dict
        As for :func:`batchnorm_forward`; running statistics have shape (C,).

    Returns
    -------
    out : ndarray, shape (N, C, H, W)
    cache : NormCache
    """
    func = "spatial_batchnorm_forward"
    x = v.float_array(func, "x", x)
    v.check_ndim(func, "x", x, 4, "(N, C, H, W)")
    C = x.shape[1]
    gamma, beta = _scale_params(func, x, gamma, beta, (C,))
    xhat, inv_std, axes = _batch_statistics(func, x, bn_param, (0, 2, 3), (C,))
    out = gamma.reshape(1, C, 1, 1) * xhat + beta.reshape(1, C, 1, 1)
    return out, NormCache(xhat, gamma.reshape(1, C, 1, 1), inv_std, axes, (0, 2, 3), 1)


def spatial_batchnorm_backward(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`spatial_batchnorm_forward`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dgamma, dbeta : ndarray, shape (C,)
    """
    dx, dgamma, dbeta = _norm_backward("spatial_batchnorm_backward", dout, cache)
    return dx, dgamma.reshape(-1), dbeta.reshape(-1)


def spatial_groupnorm_forward(
    x: np.ndarray, gamma: Any, beta: Any, G: int, gn_param: dict
) -> tuple[np.ndarray, NormCache]:
    """Forward pass of group normalization: each example's C channels are split into G groups
    of C // G channels, each normalized over its channels and both image axes.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    gamma, beta : ndarray, shape (1, C, 1, 1)
    G : int
        Number of groups; must divide C.
    gn_param : dict
        ``'eps'`` (default 1e-5).

    Returns
    -------
    out : ndarray, shape (N, C, H, W)
    cache : NormCache
    """
    func = "spatial_groupnorm_forward"
    x = v.float_array(func, "x", x)
    v.check_ndim(func, "x", x, 4, "(N, C, H, W)")
    N, C, H, W = x.shape
    gamma, beta = _scale_params(func, x, gamma, beta, (1, C, 1, 1))
    G = v.int_value(func, "G", G, minimum=1)
    if C % G:
        raise ValueError(f"{func}: G must divide the number of channels C={C}, got G={G}")
    eps = _eps(func, "gn_param", v.param_dict(func, "gn_param", gn_param))
    grouped_xhat, inv_std, _, _ = _normalize(x.reshape(N, G, C // G, H, W), (2, 3, 4), eps)
    xhat = grouped_xhat.reshape(N, C, H, W)
    out = gamma * xhat + beta
    return out, NormCache(grouped_xhat, gamma, inv_std, (2, 3, 4), (0, 2, 3), G)


def spatial_groupnorm_backward(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`spatial_groupnorm_forward`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dgamma, dbeta : ndarray, shape (1, C, 1, 1)
    """
    func = "spatial_groupnorm_backward"
    grouped_xhat, gamma, inv_std, axes, param_axes, G = v.cache_tuple(func, cache, 6)
    N, _, Cg, H, W = grouped_xhat.shape
    shape = (N, G * Cg, H, W)
    dout = v.upstream(func, dout, shape, grouped_xhat.dtype)
    xhat = grouped_xhat.reshape(shape)
    dbeta = dout.sum(axis=param_axes, keepdims=True)
    dgamma = np.sum(dout * xhat, axis=param_axes, keepdims=True)
    dxhat = (dout * gamma).reshape(grouped_xhat.shape)
    dx = _normalize_backward(dxhat, cache).reshape(shape)
    return dx, dgamma, dbeta


def _norm_backward(func: str, dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shared backward of the normalizations whose statistics axes live in x's own shape."""
    xhat, gamma, _, axes, param_axes, _ = v.cache_tuple(func, cache, 6)
    dout = v.upstream(func, dout, xhat.shape, xhat.dtype)
    dbeta = np.add.reduce(dout, axis=param_axes, keepdims=True)
    dgamma = np.add.reduce(dout * xhat, axis=param_axes, keepdims=True)
    batch_means = None
    if axes == param_axes:  # batch statistics: gamma is constant over the normalized axes
        count = xhat.dtype.type(math.prod(xhat.shape[axis] for axis in axes))
        batch_means = (gamma * dbeta / count, gamma * dgamma / count)  # mean(dxhat), mean(dxhat * xhat)
    dx = _normalize_backward(dout * gamma, cache, batch_means)
    shape = tuple(size for axis, size in enumerate(xhat.shape) if axis not in param_axes)
    return dx, dgamma.reshape(shape), dbeta.reshape(shape)
