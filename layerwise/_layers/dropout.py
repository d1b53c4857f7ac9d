"""Inverted dropout."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _validation as v


class DropoutCache(NamedTuple):
    dropout_param: dict
    mask: np.ndarray | None


def dropout_forward(x: np.ndarray, dropout_param: dict) -> tuple[np.ndarray, DropoutCache]:
    """Forward pass of inverted dropout.

    In train mode each unit is kept with probability ``p`` and the kept ones are scaled by
    ``1 / p``, so the expected output equals x and test mode is the identity.

    Parameters
    ----------
    x : ndarray, any shape
    dropout_param : dict
        ``'mode'`` (``'train'`` or ``'test'``, required), ``'p'`` (probability of KEEPING a unit,
        in (0, 1], required), ``'seed'`` (optional int in [0, 2**32): the same mask on every call
        with that seed, for gradient checks).

    Returns
    -------
    out : ndarray, same shape and dtype as x
    cache : DropoutCache
        ``(dropout_param, mask)``; mask is ``None`` in test mode.

    Notes
    -----
    The mask is ``np.random.rand(*x.shape) < p``, drawn from NumPy's global generator. With a
    ``'seed'`` the global generator is first seeded with it, in train and test mode alike, exactly
    as the course's ``dropout_forward`` does: it is then left where the course leaves it, so the
    unseeded draws that follow in a notebook (the next model's weights, say) and the numbers it
    prints are the course's. (A private generator would leave the global one untouched, and the
    Dropout notebook's third gradient-check model would print another loss.)
    """
    func = "dropout_forward"
    x = v.float_array(func, "x", x)
    dropout_param = v.param_dict(func, "dropout_param", dropout_param)
    mode = v.mode_entry(func, "dropout_param", dropout_param)
    p = v.real_entry(func, "dropout_param", dropout_param, "p", low=0.0, high=1.0, low_open=True)
    if dropout_param.get("seed") is not None:
        np.random.seed(v.int_entry(func, "dropout_param", dropout_param, "seed", minimum=0, maximum=v.MAX_SEED))
    if mode == "test":
        return x.copy(), DropoutCache(dict(dropout_param), None)
    keep = np.random.rand(*x.shape) < p
    # 1 / p rounded once to x's dtype: in float64 the course's mask, bit for bit
    mask = np.multiply(keep, x.dtype.type(1 / p), dtype=x.dtype)
    return x * mask, DropoutCache(dict(dropout_param), mask)


def dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """Backward pass of :func:`dropout_forward`.

    Returns
    -------
    dx : ndarray, shape of dout
    """
    dropout_param, mask = v.cache_tuple("dropout_backward", cache, 2)
    if mask is None:
        return v.float_array("dropout_backward", "dout", dout).copy()
    return v.upstream("dropout_backward", dout, mask.shape, mask.dtype) * mask
