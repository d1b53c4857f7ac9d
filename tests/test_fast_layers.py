"""Specification of :mod:`layerwise.fast_layers`, the front door of the fast layers: the cs231n
aliases, dtype kept and inputs untouched, named-tuple caches, and bad input refused with the
naive layers' messages (per algorithm: tests/_layers/test_conv_fast.py, test_pool_fast.py, ...)."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise._layers.conv_naive import conv_forward_naive
from layerwise._layers.pool_naive import max_pool_forward_naive
from layerwise.fast_layers import (
    conv_backward_fast,
    conv_backward_strides,
    conv_forward_fast,
    conv_forward_strides,
    max_pool_backward_fast,
    max_pool_forward_fast,
)


def test_cs231n_aliases():
    assert conv_forward_strides is conv_forward_fast
    assert conv_backward_strides is conv_backward_fast


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_inputs_untouched(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3))  # float64 weights must not upcast float32 activations
    b = rng.standard_normal(4)
    originals = [a.copy() for a in (x, w, b)]
    out, cache = conv_forward_fast(x, w, b, {"stride": 2, "pad": 1})
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout_copy = dout.copy()
    grads = conv_backward_fast(dout, cache)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    pooled, pcache = max_pool_forward_fast(x, {"pool_height": 3, "pool_width": 2, "stride": 2})
    pdout = rng.standard_normal(pooled.shape).astype(dtype)
    assert pooled.dtype == dtype and max_pool_backward_fast(pdout, pcache).dtype == dtype
    for before, after in zip(originals, (x, w, b)):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(dout, dout_copy)


def test_caches_are_named_tuples():
    x = np.zeros((1, 1, 4, 4))
    _, cache = conv_forward_fast(x, np.zeros((1, 1, 3, 3)), np.zeros(1), {"stride": 1, "pad": 1})
    assert cache.x is x and cache.conv_param == {"stride": 1, "pad": 1}
    _, pcache = max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    assert pcache.x is x and pcache.out.shape == (1, 1, 2, 2)


BAD_CONV = [
    (np.zeros((2, 4, 8, 8)), np.zeros((5, 3, 3, 3)), np.zeros(5), {"stride": 1, "pad": 1},
     ValueError, "x has 4 channels but w expects 3"),
    (np.zeros((2, 3, 4, 4)), np.zeros((5, 3, 7, 7)), np.zeros(5), {"stride": 1, "pad": 0},
     ValueError, "filter of size 7x7 does not fit the padded input of size 4x4"),
    (np.zeros((2, 3, 8, 8)), np.zeros((5, 3, 3, 3)), np.zeros(5), {"stride": 0, "pad": 1},
     ValueError, "conv_param['stride'] must be >= 1, got 0"),
    (np.zeros((2, 3, 8, 8)), np.zeros((5, 3, 3, 3)), np.zeros(5), {"stride": 1.5, "pad": 1},
     TypeError, "conv_param['stride'] must be an int"),
    (np.zeros((2, 3, 8, 8), dtype=int), np.zeros((5, 3, 3, 3)), np.zeros(5), {"stride": 1, "pad": 1},
     TypeError, "x must have a floating dtype"),
    (np.zeros((2, 3, 8, 8)), np.zeros((5, 3, 3, 3)), np.zeros(4), {"stride": 1, "pad": 1},
     ValueError, "b must have shape (5,)"),
]


@pytest.mark.parametrize("x, w, b, param, error, message", BAD_CONV)
def test_conv_bad_input(x, w, b, param, error, message):
    with pytest.raises(error) as fast:
        conv_forward_fast(x, w, b, param)
    with pytest.raises(error) as naive:
        conv_forward_naive(x, w, b, param)
    assert message in str(fast.value)
    assert str(fast.value).replace("conv_forward_fast", "conv_forward_naive") == str(naive.value)


BAD_POOL = [
    (np.zeros((2, 3, 4, 4)), {"pool_height": 5, "pool_width": 2, "stride": 2}, ValueError,
     "pool window 5x2 must fit the input of size 4x4"),
    (np.zeros((2, 3, 4, 4)), {"pool_height": 2, "pool_width": 2, "stride": -1}, ValueError,
     "pool_param['stride'] must be >= 1, got -1"),
    (np.zeros((2, 3, 4, 4)), {"pool_height": 2, "stride": 2}, ValueError, "must contain 'pool_width'"),
    (np.zeros((3, 4, 4)), {"pool_height": 2, "pool_width": 2, "stride": 2}, ValueError, "x must be a 4-d array"),
]


@pytest.mark.parametrize("x, param, error, message", BAD_POOL)
def test_pool_bad_input(x, param, error, message):
    with pytest.raises(error) as fast:
        max_pool_forward_fast(x, param)
    with pytest.raises(error) as naive:
        max_pool_forward_naive(x, param)
    assert message in str(fast.value)
    assert str(fast.value).replace("max_pool_forward_fast", "max_pool_forward_naive") == str(naive.value)


def test_backward_checks_dout_shape():
    x = np.zeros((2, 3, 8, 8))
    _, cache = conv_forward_fast(x, np.zeros((4, 3, 3, 3)), np.zeros(4), {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match="dout must have the shape of the forward output"):
        conv_backward_fast(np.zeros((2, 4, 7, 7)), cache)
    _, pcache = max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(ValueError, match="dout must have the shape of the forward output"):
        max_pool_backward_fast(np.zeros((2, 3, 3, 4)), pcache)
    with pytest.raises(TypeError, match="cache must be the 3-tuple"):
        max_pool_backward_fast(np.zeros((2, 3, 4, 4)), cache)
