"""Compiled col2im of the im2col convolution's backward pass (:mod:`..conv_im2col`): the column
gradients summed back onto the pixels they came from, in the NumPy path's order, for the wide
(stride 1) and the compact (any stride) column layouts."""

from __future__ import annotations

import numpy as np

from .registry import kernel


def _wide_examples(dtype):
    return [(np.zeros((1, 1, 1, 1, 1), dtype=dtype), 1, 0, np.zeros((1, 1, 1, 1), dtype=dtype))]


def _compact_examples(dtype):
    return [(np.zeros((1, 1, 1, 1, 1, 1), dtype=dtype), 2, 0, np.zeros((1, 1, 1, 1), dtype=dtype))]


@kernel(_wide_examples)
def col2im_wide(dcols, pitch, pad, dx):  # pragma: no cover (compiled)
    """dx (m, C, H, W) = the column gradients dcols (C, HH, WW, m, H_out * pitch) of a stride-1
    convolution in :class:`..conv_im2col.Columns`'s wide layout, summed back onto the pixels they came
    from, as the NumPy path sums them: each run ``dcols[c, i, j, n]`` added, in (i, j) order, onto
    a zeroed padded image at ``i * pitch + j``, whose interior is then ``dx[n, c]``. One image
    channel at a time, so the padded image stays in L1 and every addition is a long contiguous run
    (a gather of each pixel's terms, row by row, was slower: 9 runs of W_out per output row rather
    than 9 of H_out * pitch per channel). Runs that reach past the channel's padded image
    (into the next channel's, in the NumPy path's shared buffer) carry only dropped grid columns,
    zeros, which change no sum that starts from +0.0."""
    C, HH, WW, m, Q = dcols.shape
    H, W = dx.shape[2], dx.shape[3]
    padded = np.empty((H + 2 * pad) * pitch + WW, dtype=dx.dtype)
    for n in range(m):
        for c in range(C):
            padded[:] = 0
            for i in range(HH):
                for j in range(WW):
                    # Slices, not indices: a loop over them has no negative-index check, so it vectorises.
                    source, target = dcols[c, i, j, n], padded[i * pitch + j : i * pitch + j + Q]
                    for t in range(Q):
                        target[t] += source[t]
            for y in range(H):
                start = (y + pad) * pitch + pad
                row, out = padded[start : start + W], dx[n, c, y]
                for x in range(W):
                    out[x] = row[x]


@kernel(_compact_examples)
def col2im_compact(dcols, stride, pad, dx):  # pragma: no cover (compiled)
    """dx (m, C, H, W) = the column gradients dcols (C, HH, WW, m, H_out, W_out) of a convolution
    in :class:`..conv_im2col.Columns`'s compact layout (any stride s), summed back onto the pixels they
    came from, as the NumPy path sums them: onto zeros, each offset (i, j) in turn. One image
    channel at a time, into its padded image split into s x s phase planes (plane (a, b) holds the
    padded pixels (s * r + a, s * q + b)): offset (i, j) of output row y lands on the contiguous
    run ``[j // s, j // s + W_out)`` of row ``y + i // s`` of plane (i % s, j % s), where NumPy
    adds a strided slice. Each pixel's terms are added in the same order, so
    the sums are NumPy's to the bit; terms landing on the padding are dropped."""
    C, HH, WW, m, H_out, W_out = dcols.shape
    H, W = dx.shape[2], dx.shape[3]
    s = stride
    rows = max(H_out + (HH - 1) // s, (H + pad - 1) // s + 1)
    cols = max(W_out + (WW - 1) // s, (W + pad - 1) // s + 1)
    planes = np.empty((s, s, rows, cols), dtype=dx.dtype)
    for n in range(m):
        for c in range(C):
            planes[:] = 0
            for i in range(HH):
                for j in range(WW):
                    plane, r0, q0 = planes[i % s, j % s], i // s, j // s
                    for y in range(H_out):
                        # Slices, not indices: a loop over them has no negative-index check, so it vectorises.
                        source, target = dcols[c, i, j, n, y], plane[r0 + y, q0 : q0 + W_out]
                        for x in range(W_out):
                            target[x] += source[x]
            for a in range(s):
                for b in range(s):
                    first = max(0, -((b - pad) // s))  # the plane's columns inside the image
                    stop = min(cols, (W - 1 + pad - b) // s + 1)
                    for r in range(rows):
                        y = s * r + a - pad
                        if 0 <= y < H:
                            plane_row, out = planes[a, b, r], dx[n, c, y]
                            for q in range(first, stop):
                                out[s * q + b - pad] = plane_row[q]
