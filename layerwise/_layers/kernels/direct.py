"""Compiled direct stride-1 convolution (:mod:`..conv_direct`), without im2col columns: the forward
pass and the weight and bias gradients, multiply-adds fused. They sum in their own order, not
im2col's (the tests compare them up to rounding); every element's order depends only on the
shapes, not on the chunking or the thread. The layers hand them float32 alone."""

from __future__ import annotations

import numpy as np

from .registry import kernel


def _taps() -> np.ndarray:
    taps = np.zeros(1, dtype=np.intp)
    taps.flags.writeable = False  # as conv_direct caches them: a read-only array is another signature
    return taps


def _conv_examples(dtype):
    if dtype != np.float32:  # the only dtype the plan's direct convolutions hand it
        return []
    padded, w4, acc = np.zeros((1, 5), dtype=dtype), np.zeros((4, 1), dtype=dtype), np.zeros((4, 4), dtype=dtype)
    out = np.zeros((1, 1, 2, 2), dtype=dtype)
    return [(padded, w4, _taps(), w4[0], False, acc, out), (padded, w4, _taps(), np.zeros(1, dtype=dtype), True, acc, out)]


def _weight_grads_examples(dtype):
    if dtype != np.float32:
        return []
    padded, dgrid = np.zeros((1, 5), dtype=dtype), np.zeros((1, 4, 2, 2), dtype=dtype)
    return [(padded, dgrid, _taps(), np.zeros((4, 1), dtype=dtype), np.zeros(4, dtype=dtype))]


def direct_conv(padded, w4, taps, bias, acc, out) -> None:
    """:func:`_direct_conv`: ``out`` (m, F, H_out, W_out) gets the bias ``bias`` (F,) added; with
    ``bias`` None, ``out`` is (F, m, H_out, W_out), filters first as :func:`.pool.pool_2x2_code`
    reads it, without the bias."""
    if bias is None:  # any (F,) array of the dtype stands in, unread: one compiled signature
        _direct_conv(padded, w4, taps, w4[0], False, acc, out)
    else:
        _direct_conv(padded, w4, taps, bias, True, acc, out)


@kernel(_conv_examples, fastmath={"contract"})
def _direct_conv(padded, w4, taps, bias, has_bias, acc, out):  # pragma: no cover (compiled)
    """out (m, F, H_out, W_out) = the stride-1 convolution of the m zero-padded images ``padded``
    (m, C * Hp * R + WW) by the filters w4 (F4, K) (rows (c, i, j) as ``w.reshape(F, K)``; F4 >= F
    a multiple of 4, the rows past F ignored), plus bias (F,); without ``has_bias``, out is (F, m,
    H_out, W_out) and gets the convolution alone.

    Each image is in :class:`..conv_im2col.Columns`'s wide layout (see ``conv_direct._direct_padded``):
    C planes of Hp rows ``R`` wide, each row ``pad`` zeros then the ``W`` pixels, so the zeros of
    the next row pad this one on the right, then ``WW`` zeros. Output position (y, x) with filter
    offset (c, i, j) then reads ``padded[n, taps[t] + y * R + x]``, ``taps[t] = c * Hp * R + i * R +
    j``: for one tap, the whole output grid (H_out rows of R, the last R - W_out of each dropped)
    is one contiguous run. Four filters' grids, ``acc`` (4, H_out * R), are summed at once, three
    taps a pass: each pass reads three runs and adds their weighted sum into the four
    accumulators, a loop LLVM vectorises with the weights in registers. Every output element is
    the same sum in the same order whatever the chunking or the thread."""
    m = padded.shape[0]
    F4, K = w4.shape
    F = out.shape[1] if has_bias else out.shape[0]
    H_out, W_out = out.shape[2], out.shape[3]
    L = acc.shape[1]
    R = L // H_out
    K3 = K - K % 3
    for n in range(m):
        image = padded[n]
        for f0 in range(0, F4, 4):
            a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
            a0[:] = 0
            a1[:] = 0
            a2[:] = 0
            a3[:] = 0
            for t in range(0, K3, 3):
                s0 = image[taps[t] : taps[t] + L]
                s1 = image[taps[t + 1] : taps[t + 1] + L]
                s2 = image[taps[t + 2] : taps[t + 2] + L]
                p0, p1, p2 = w4[f0, t], w4[f0, t + 1], w4[f0, t + 2]
                q0, q1, q2 = w4[f0 + 1, t], w4[f0 + 1, t + 1], w4[f0 + 1, t + 2]
                r0, r1, r2 = w4[f0 + 2, t], w4[f0 + 2, t + 1], w4[f0 + 2, t + 2]
                u0, u1, u2 = w4[f0 + 3, t], w4[f0 + 3, t + 1], w4[f0 + 3, t + 2]
                for q in range(L):
                    v0, v1, v2 = s0[q], s1[q], s2[q]
                    a0[q] += p0 * v0 + p1 * v1 + p2 * v2
                    a1[q] += q0 * v0 + q1 * v1 + q2 * v2
                    a2[q] += r0 * v0 + r1 * v1 + r2 * v2
                    a3[q] += u0 * v0 + u1 * v1 + u2 * v2
            for t in range(K3, K):  # the last one or two taps
                s0 = image[taps[t] : taps[t] + L]
                p0, q0, r0, u0 = w4[f0, t], w4[f0 + 1, t], w4[f0 + 2, t], w4[f0 + 3, t]
                for q in range(L):
                    v0 = s0[q]
                    a0[q] += p0 * v0
                    a1[q] += q0 * v0
                    a2[q] += r0 * v0
                    a3[q] += u0 * v0
            for k in range(min(4, F - f0)):
                grid = acc[k]
                if has_bias:
                    b = bias[f0 + k]
                    for y in range(H_out):
                        target, source = out[n, f0 + k, y], grid[y * R : y * R + W_out]
                        for e in range(W_out):
                            target[e] = source[e] + b
                else:
                    for y in range(H_out):
                        target, source = out[f0 + k, n, y], grid[y * R : y * R + W_out]
                        for e in range(W_out):
                            target[e] = source[e]


@kernel(_weight_grads_examples, fastmath=("contract", "reassoc"))
def direct_weight_grads(padded, dgrid, taps, dw, db):  # pragma: no cover (compiled)
    """dw (F4, K) and db (F4,) = the weight and bias gradients of the stride-1 convolution of the
    m zero-padded images ``padded`` (:func:`_direct_conv`'s layout), for the upstream gradient
    dgrid (m, F4, H_out, R): each image's in :func:`_direct_conv`'s wide output grid (rows ``R``
    wide, zeros in the last ``R - W_out`` columns of each and in the filters past F). ``dw[f, t]``
    is the dot product of ``dgrid[n, f]`` with tap t's run of the padded image (the run that made
    output f in the forward pass), summed over the images; four filters by three taps at a time,
    twelve dot products in one pass over the runs, each summed in vector lanes. The sums' order
    depends only on the shapes, not on the thread."""
    m = padded.shape[0]
    F4, K = dw.shape
    L = dgrid.shape[2] * dgrid.shape[3]
    K3 = K - K % 3
    zero = dw.dtype.type(0)
    dw[:] = 0
    db[:] = 0
    for n in range(m):
        image = padded[n]
        for f0 in range(0, F4, 4):
            d0, d1 = dgrid[n, f0].reshape(L), dgrid[n, f0 + 1].reshape(L)
            d2, d3 = dgrid[n, f0 + 2].reshape(L), dgrid[n, f0 + 3].reshape(L)
            for t in range(0, K3, 3):
                s0 = image[taps[t] : taps[t] + L]
                s1 = image[taps[t + 1] : taps[t + 1] + L]
                s2 = image[taps[t + 2] : taps[t + 2] + L]
                a00 = a01 = a02 = a10 = a11 = a12 = a20 = a21 = a22 = a30 = a31 = a32 = zero
                for q in range(L):
                    v0, v1, v2 = s0[q], s1[q], s2[q]
                    e0, e1, e2, e3 = d0[q], d1[q], d2[q], d3[q]
                    a00 += e0 * v0
                    a01 += e0 * v1
                    a02 += e0 * v2
                    a10 += e1 * v0
                    a11 += e1 * v1
                    a12 += e1 * v2
                    a20 += e2 * v0
                    a21 += e2 * v1
                    a22 += e2 * v2
                    a30 += e3 * v0
                    a31 += e3 * v1
                    a32 += e3 * v2
                dw[f0, t] += a00
                dw[f0, t + 1] += a01
                dw[f0, t + 2] += a02
                dw[f0 + 1, t] += a10
                dw[f0 + 1, t + 1] += a11
                dw[f0 + 1, t + 2] += a12
                dw[f0 + 2, t] += a20
                dw[f0 + 2, t + 1] += a21
                dw[f0 + 2, t + 2] += a22
                dw[f0 + 3, t] += a30
                dw[f0 + 3, t + 1] += a31
                dw[f0 + 3, t + 2] += a32
            for t in range(K3, K):  # the last one or two taps
                s0 = image[taps[t] : taps[t] + L]
                a0 = a1 = a2 = a3 = zero
                for q in range(L):
                    v0 = s0[q]
                    a0 += d0[q] * v0
                    a1 += d1[q] * v0
                    a2 += d2[q] * v0
                    a3 += d3[q] * v0
                dw[f0, t] += a0
                dw[f0 + 1, t] += a1
                dw[f0 + 2, t] += a2
                dw[f0 + 3, t] += a3
            b0 = b1 = b2 = b3 = zero
            for q in range(L):
                b0 += d0[q]
                b1 += d1[q]
                b2 += d2[q]
                b3 += d3[q]
            db[f0] += b0
            db[f0 + 1] += b1
            db[f0 + 2] += b2
            db[f0 + 3] += b3
