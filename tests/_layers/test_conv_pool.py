"""Specification of :mod:`layerwise._layers.conv_pool`: the conv -> pool pair fused chunk by chunk
gives the unfused layers' results bit for bit, falls back to them where it cannot fuse, and names
bad caches and gradients as the unfused layers do."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.fast_layers import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from layerwise.layers import relu_backward, relu_forward

from tests.helpers import POOL_2X2




@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties_in", [None, 0, 4])
@pytest.mark.parametrize("pool_param", [POOL_2X2, {"pool_height": 2, "pool_width": 3, "stride": 3}])
@pytest.mark.parametrize("compiled", [False, True])
def test_fused_conv_relu_pool_equals_unfused(dtype, ties_in, pool_param, compiled, chunking, monkeypatch):
    """The fused chunk-by-chunk passes give the layers' own results, bit for bit, ties included
    (one image of integer values: the windows' first maxima must be the same), with the compiled
    pool kernel (where Numba is installed) and without it."""
    from layerwise._layers import kernels

    if compiled and not kernels.available:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(kernels, "available", compiled)
    from layerwise._layers.conv_fast import conv_backward_fast_weights
    from layerwise._layers.pool_fast import max_pool_relu_backward
    from layerwise.layer_utils import (
        conv_relu_pool_backward,
        conv_relu_pool_forward,
    )
    from layerwise.layers import relu_forward

    rng = np.random.default_rng(18)
    x = rng.standard_normal((5, 3, 12, 13)).astype(dtype)
    w, b = rng.standard_normal((4, 3, 3, 3)).astype(dtype), rng.standard_normal(4).astype(dtype)
    if ties_in is not None:
        x[ties_in] = np.round(x[ties_in])
        w, b = np.round(2 * w), np.round(b)  # integer conv outputs: ties in image ties_in
    conv_param = {"stride": 1, "pad": 1}
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    pooled, pool_cache = max_pool_forward_fast(a, pool_param)
    expected_out, relu_cache = relu_forward(pooled)
    out, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    assert cache[0].code is not None  # the fused path
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(cache[1], relu_cache)

    dout = rng.standard_normal(out.shape).astype(dtype)
    da = max_pool_relu_backward(dout, relu_cache, pool_cache)
    expected = conv_backward_fast(da, conv_cache)
    for mine, theirs in zip(conv_relu_pool_backward(dout, cache), expected):
        assert mine.dtype == dtype
        np.testing.assert_array_equal(mine, theirs)
    dx, dw, db = conv_relu_pool_backward(dout, cache, input_grad=False)
    assert dx is None
    for mine, theirs in zip((dw, db), conv_backward_fast_weights(da, conv_cache)):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("xs, ws, pool_param", [
    ((2, 32, 8, 8), (4, 32, 3, 3), POOL_2X2),  # a Winograd convolution
    ((2, 3, 9, 9), (4, 3, 3, 3), {"pool_height": 3, "pool_width": 3, "stride": 2}),  # overlapping windows
])
def test_conv_relu_pool_runs_the_layers_in_turn_where_it_cannot_fuse(xs, ws, pool_param):
    from layerwise.layer_utils import conv_relu_pool_backward, conv_relu_pool_forward
    from layerwise.layers import relu_backward, relu_forward

    rng = np.random.default_rng(24)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    conv_param = {"stride": 1, "pad": 1}
    out, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    assert cache[0].code is None and cache[0].pool is not None
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    pooled, pool_cache = max_pool_forward_fast(a, pool_param)
    expected, relu_cache = relu_forward(pooled)
    np.testing.assert_array_equal(out, expected)
    dout = rng.standard_normal(out.shape)
    grads = conv_backward_fast(max_pool_backward_fast(relu_backward(dout, relu_cache), pool_cache), conv_cache)
    for mine, theirs in zip(conv_relu_pool_backward(dout, cache), grads):
        np.testing.assert_array_equal(mine, theirs)


def test_fused_conv_relu_pool_caches_survive_other_calls():
    """The fused passes reuse scratch buffers; an earlier cache still gives its own gradients."""
    from layerwise.layer_utils import conv_relu_pool_backward, conv_relu_pool_forward

    rng = np.random.default_rng(19)
    x1 = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    w, b = rng.standard_normal((8, 3, 7, 7)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    out1, cache1 = conv_relu_pool_forward(x1, w, b, {"stride": 1, "pad": 3}, POOL_2X2)
    expected_out1 = out1.copy()
    dout = rng.standard_normal(out1.shape).astype(np.float32)
    expected = [g.copy() for g in conv_relu_pool_backward(dout, cache1)]
    x2 = rng.standard_normal((3, 2, 20, 20)).astype(np.float32)
    out2, cache2 = conv_relu_pool_forward(x2, w[:, :2, :3, :3], b, {"stride": 1, "pad": 1}, POOL_2X2)
    conv_relu_pool_backward(np.ones_like(out2), cache2)
    np.testing.assert_array_equal(out1, expected_out1)
    for again, first in zip(conv_relu_pool_backward(dout, cache1), expected):
        np.testing.assert_array_equal(again, first)


def test_conv_relu_pool_backward_names_a_cache_it_did_not_make():
    from layerwise.layer_utils import conv_relu_pool_backward, conv_relu_pool_forward

    rng = np.random.default_rng(26)
    x, w, b = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, cache = conv_relu_pool_forward(x, w, b, {"stride": 1, "pad": 1}, POOL_2X2)
    for bad, message in [
        ((cache[0],), "conv_relu_pool_backward: cache must be the 2-tuple returned by the matching forward function, got a tuple of 1 items"),
        (None, "conv_relu_pool_backward: cache must be the 2-tuple returned by the matching forward function, got None"),
        ((cache[1], cache[0]), "conv_relu_pool_backward: cache[0] must be the ConvPoolCache made by conv_relu_pool_forward, got"),
    ]:
        with pytest.raises(TypeError) as error:
            conv_relu_pool_backward(out, bad)
        assert str(error.value).startswith(message)


def test_fused_conv_relu_pool_backward_reports_bad_gradients_as_unfused():
    """A dout or ReLU cache of the wrong shape gets the message the unfused layers give."""
    from layerwise._layers.pool_fast import max_pool_relu_backward
    from layerwise.layer_utils import conv_relu_pool_backward, conv_relu_pool_forward

    rng = np.random.default_rng(20)
    x = rng.standard_normal((2, 3, 8, 8))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, cache = conv_relu_pool_forward(x, w, b, {"stride": 1, "pad": 1}, POOL_2X2)
    _, pool_cache = max_pool_forward_fast(conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})[0], POOL_2X2)
    for dout, relu_cache in [(out[:1], cache[1]), (out, cache[1][:, :2])]:
        with pytest.raises(ValueError) as unfused:
            max_pool_relu_backward(dout, relu_cache, pool_cache)
        with pytest.raises(ValueError) as fused:
            conv_relu_pool_backward(dout, (cache[0], relu_cache))
        assert str(fused.value) == str(unfused.value)
