"""Convolution, written as the definition: one dot product per (image, filter, output position).

Slow on purpose: it is the reference every fast kernel is tested against.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import _validation as v
from .geometry import ConvGeometry, conv_inputs


class ConvCache(NamedTuple):
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray
    conv_param: dict


def conv_forward_naive(x: np.ndarray, w: Any, b: Any, conv_param: dict) -> tuple[np.ndarray, ConvCache]:
    """Forward pass of a convolutional layer, by loops.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Input images (float32 or float64; the output has this dtype).
    w : ndarray, shape (F, C, HH, WW)
        Filter weights.
    b : ndarray, shape (F,)
        Biases.
    conv_param : dict
        ``'stride'`` (pixels between neighbouring receptive fields, >= 1) and ``'pad'`` (zeros
        added on every side of H and W, >= 0). ``(H + 2*pad - HH)`` and ``(W + 2*pad - WW)`` must
        be divisible by the stride.

    Returns
    -------
    out : ndarray, shape (N, F, H_out, W_out)
        ``H_out = 1 + (H + 2*pad - HH) // stride``, likewise ``W_out``.
    cache : ConvCache
        ``(x, w, b, conv_param)`` for :func:`conv_backward_naive`.
    """
    x, w, b, g = conv_inputs("conv_forward_naive", x, w, b, conv_param, exact=True)
    x_pad = np.pad(x, ((0, 0), (0, 0), (g.pad, g.pad), (g.pad, g.pad)))
    out = np.empty((g.N, g.F, g.H_out, g.W_out), dtype=x.dtype)
    for n in range(g.N):
        for f in range(g.F):
            for i in range(g.H_out):
                for j in range(g.W_out):
                    window = _window(x_pad[n], g, i, j)
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out, ConvCache(x, w, b, dict(conv_param))


def conv_backward_naive(dout: np.ndarray, cache: ConvCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv_forward_naive`.

    Parameters
    ----------
    dout : ndarray, shape (N, F, H_out, W_out)
        Upstream derivatives.
    cache : ConvCache
        As returned by :func:`conv_forward_naive`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dw : ndarray, shape (F, C, HH, WW)
    db : ndarray, shape (F,)
    """
    x, w, b, conv_param = v.cache_tuple("conv_backward_naive", cache, 4)
    _, _, _, g = conv_inputs("conv_backward_naive", x, w, b, conv_param, exact=True)
    dout = v.upstream("conv_backward_naive", dout, (g.N, g.F, g.H_out, g.W_out), x.dtype)
    x_pad = np.pad(x, ((0, 0), (0, 0), (g.pad, g.pad), (g.pad, g.pad)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    for n in range(g.N):
        for i in range(g.H_out):
            for j in range(g.W_out):
                upstream_ij = dout[n, :, i, j]  # (F,): one derivative per filter
                _window(dx_pad[n], g, i, j)[...] += np.tensordot(upstream_ij, w, axes=1)
                dw += upstream_ij[:, None, None, None] * _window(x_pad[n], g, i, j)
    db = dout.sum(axis=(0, 2, 3))
    dx = dx_pad[:, :, g.pad : g.pad + g.H, g.pad : g.pad + g.W]
    return np.ascontiguousarray(dx), dw, db


def _window(image: np.ndarray, g: ConvGeometry, i: int, j: int) -> np.ndarray:
    """The (C, HH, WW) receptive field of output position (i, j) in one padded image (a view)."""
    top, left = i * g.stride, j * g.stride
    return image[:, top : top + g.HH, left : left + g.WW]
