"""Compiled passes of the fused spatial batchnorm + ReLU (:mod:`..batchnorm_relu`).

Every array is (N, C, S) (S the pixels of one channel map) and each call handles the channels
``c0 <= c < c1``; a channel's sums run over the whole batch in one fixed order, in float64, so a
channel's results do not depend on how the channels were shared between threads. The layers hand
them float32 alone."""

from __future__ import annotations

import numpy as np

from .registry import kernel


def _float32_only(make):
    def examples(dtype):
        if dtype != np.float32:  # the only dtype the fused layer hands them
            return []
        x = np.zeros((1, 1, 1), dtype=dtype)
        per_channel = np.zeros(1, dtype=np.float64)
        return [make(x, per_channel)]

    return examples


@kernel(_float32_only(lambda x, c: (x, 0, 1, c, c)), fastmath={"reassoc", "contract"})
def channel_moments(x, c0, c1, mean, var):  # pragma: no cover (compiled)
    """mean[c], var[c] (float64) = the mean and the biased variance of ``x[:, c, :]``.

    One pass of sums and sums of squares in float64: a float32 input's ``E[x^2] - E[x]^2`` in
    float64 loses about 1e-16 times ``mean^2 / var`` relatively, far below float32's rounding."""
    N, _, S = x.shape
    count = N * S
    for c in range(c0, c1):
        total = 0.0
        squares = 0.0
        for n in range(N):
            row = x[n, c]
            for i in range(S):
                value = np.float64(row[i])
                total += value
                squares += value * value
        m = total / count
        mean[c] = m
        var[c] = max(squares / count - m * m, 0.0)


@kernel(_float32_only(lambda x, c: (x, c, c, 0, 1, x)), fastmath={"contract"})
def scale_shift_relu(x, scale, shift, c0, c1, out):  # pragma: no cover (compiled)
    """out[:, c] = max(x[:, c] * scale[c] + shift[c], 0), the multiply-add fused; a NaN stays NaN."""
    N, _, S = x.shape
    for c in range(c0, c1):
        k = np.float32(scale[c])
        b = np.float32(shift[c])
        for n in range(N):
            row, out_row = x[n, c], out[n, c]
            for i in range(S):
                y = row[i] * k + b
                out_row[i] = y if not y <= 0 else np.float32(0.0)


@kernel(_float32_only(lambda x, c: (x, x, x, c, c, 0, 1, c, c)), fastmath={"reassoc", "contract"})
def gated_sums(dout, out, x, mean, inv_std, c0, c1, dbeta, dgamma):  # pragma: no cover (compiled)
    """dbeta[c] = sum of g, dgamma[c] = sum of g * xhat over ``[:, c, :]`` (float64), where g is
    dout where the ReLU was open (``out > 0``), else 0, and ``xhat = (x - mean) * inv_std``."""
    N, _, S = x.shape
    for c in range(c0, c1):
        m = np.float32(mean[c])
        k = np.float32(inv_std[c])
        total = 0.0
        weighted = 0.0
        for n in range(N):
            d_row, o_row, x_row = dout[n, c], out[n, c], x[n, c]
            for i in range(S):
                g = d_row[i] if o_row[i] > 0 else np.float32(0.0)
                total += np.float64(g)
                weighted += np.float64(g * ((x_row[i] - m) * k))
        dbeta[c] = total
        dgamma[c] = weighted


@kernel(_float32_only(lambda x, c: (x, x, x, c, c, c, c, c, 0, 1, x)), fastmath={"contract"})
def gated_input_grad(dout, out, x, mean, inv_std, scale, mean_g, mean_gx, c0, c1, dx):  # pragma: no cover (compiled)
    """dx[:, c] = scale[c] * (g - mean_g[c] - xhat * mean_gx[c]), with g and xhat as in
    :func:`gated_sums`: batchnorm's input gradient through the ReLU's gate, given ``scale = gamma *
    inv_std``, ``mean_g`` the mean of g and ``mean_gx`` that of ``g * xhat`` over the channel."""
    N, _, S = x.shape
    for c in range(c0, c1):
        m = np.float32(mean[c])
        k = np.float32(inv_std[c])
        a = np.float32(scale[c])
        shift = np.float32(mean_g[c])
        slope = np.float32(mean_gx[c])
        for n in range(N):
            d_row, o_row, x_row, dx_row = dout[n, c], out[n, c], x[n, c], dx[n, c]
            for i in range(S):
                g = d_row[i] if o_row[i] > 0 else np.float32(0.0)
                xhat = (x_row[i] - m) * k
                dx_row[i] = a * (g - shift - xhat * slope)
