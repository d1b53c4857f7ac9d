"""Selecting values by a boolean mask without branches."""

from __future__ import annotations

import numpy as np

from .scratch import scratch


def select(mask: np.ndarray, values: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write ``np.where(mask, values, 0)`` into ``out`` (any strides) and return it.

    The result is exact, as with ``np.where`` (``values`` that are inf or NaN where the mask is
    False give +0, unlike ``values * mask``), but computed as a bitwise AND of each value's bits with
    an all-ones or all-zeros word: NumPy's masked loops branch on every element and run several
    times slower on the unpredictable masks of ReLU and max pooling.

    Parameters
    ----------
    mask : ndarray of bool, broadcastable to ``values``
    values : ndarray of float32 or float64
    out : ndarray, shape and dtype of ``values``
    """
    bits = np.dtype(f"i{values.dtype.itemsize}")
    words = scratch("masking.words", np.broadcast_shapes(mask.shape, values.shape), bits)
    np.copyto(words, mask)  # True -> 1, False -> 0
    np.negative(words, out=words)  # True -> all ones, False -> 0
    np.bitwise_and(values.view(bits), words, out=out.view(bits))
    return out
