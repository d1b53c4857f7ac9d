"""Specification of :mod:`layerwise._layers.global_pool`: global average and max pooling.

Values against NumPy's reductions, ties and NaNs (the first maximum takes the gradient), any
spatial size, and bad inputs. Dtypes, input mutation and numeric gradients are checked over the
table of every layer (tests/test_layers.py, tests/test_gradients.py); torch in
tests/test_torch_reference.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.layers import (
    global_avg_pool_backward,
    global_avg_pool_forward,
    global_max_pool_backward,
    global_max_pool_forward,
)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (3, 2, 1, 7), (2, 4, 6, 1)])
def test_forward_is_the_mean_and_the_max_over_both_image_axes(shape):
    x = np.random.default_rng(0).standard_normal(shape)
    avg, _ = global_avg_pool_forward(x)
    top, _ = global_max_pool_forward(x)
    assert avg.shape == top.shape == shape[:2]
    np.testing.assert_allclose(avg, x.mean(axis=(2, 3)), rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(top, x.max(axis=(2, 3)))


def test_avg_backward_spreads_each_derivative_evenly():
    x = np.zeros((2, 3, 2, 5))
    dout = np.arange(6.0).reshape(2, 3)
    _, cache = global_avg_pool_forward(x)
    dx = global_avg_pool_backward(dout, cache)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dx, np.broadcast_to(dout[:, :, None, None] / 10, x.shape))


def test_max_backward_sends_each_derivative_to_the_first_maximum_only():
    x = np.zeros((1, 2, 2, 3))
    x[0, 0] = [[1.0, 5.0, 2.0], [5.0, 0.0, 5.0]]  # three tied maxima: the first in row-major order wins
    # channel 1: all zeros, as after a ReLU: position (0, 0) gets the gradient
    _, cache = global_max_pool_forward(x)
    dx = global_max_pool_backward(np.array([[2.0, 3.0]]), cache)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = 2.0
    expected[0, 1, 0, 0] = 3.0
    np.testing.assert_array_equal(dx, expected)


def test_max_of_a_channel_holding_nan_is_nan_and_its_gradient_goes_to_the_first_nan():
    x = np.ones((1, 1, 2, 2))
    x[0, 0, 1, 0] = x[0, 0, 1, 1] = np.nan
    out, cache = global_max_pool_forward(x)
    assert np.isnan(out[0, 0])
    dx = global_max_pool_backward(np.ones((1, 1)), cache)
    np.testing.assert_array_equal(dx[0, 0], [[0.0, 0.0], [1.0, 0.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_forward_and_backward_stay_float32(dtype):
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 4)).astype(dtype)
    for forward, backward in ((global_avg_pool_forward, global_avg_pool_backward), (global_max_pool_forward, global_max_pool_backward)):
        out, cache = forward(x)
        assert out.dtype == dtype
        assert backward(np.ones((2, 3)), cache).dtype == dtype  # a float64 dout is cast to the layer's dtype


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: global_avg_pool_forward(np.zeros((2, 3, 4))), ValueError,
         "global_avg_pool_forward: x must be a 4-d array of shape (N, C, H, W), got shape (2, 3, 4)"),
        (lambda: global_max_pool_forward(np.zeros((2, 3, 0, 4))), ValueError,
         "global_max_pool_forward: x must have H >= 1 and W >= 1 to pool over, got shape (2, 3, 0, 4)"),
        (lambda: global_max_pool_forward(np.zeros((2, 3, 4, 4), dtype=int)), TypeError,
         "global_max_pool_forward: x must have a floating dtype (float32 or float64), got dtype int64"),
        (lambda: global_avg_pool_backward(np.zeros((2, 4)), global_avg_pool_forward(np.zeros((2, 3, 4, 4)))[1]), ValueError,
         "global_avg_pool_backward: dout must have the shape of the forward output (2, 3), got shape (2, 4)"),
        (lambda: global_max_pool_backward(np.zeros((2, 3)), global_avg_pool_forward(np.zeros((2, 3, 4, 4)))[1]), TypeError,
         "global_max_pool_backward: cache must be the GlobalPoolCache made by global_max_pool_forward"),
        (lambda: global_avg_pool_backward(np.zeros((2, 3)), (1, 2)), TypeError,
         "global_avg_pool_backward: cache must be the 3-tuple returned by the matching forward function"),
    ],
    ids=["ndim", "empty-plane", "integer-x", "dout-shape", "avg-cache-to-max", "cache-tuple"],
)  # fmt: skip
def test_bad_inputs_are_refused_with_a_message(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert str(raised.value).startswith(message), str(raised.value)
