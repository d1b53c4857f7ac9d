"""Specification of :mod:`layerwise.layer_utils`: the "sandwich" layers.

The notebook cells' forward passes (affine_relu, conv_relu_pool, conv_relu), and the composition:
each sandwich equals its layers called one after the other, in outputs and gradients. Every
gradient a sandwich returns is checked numerically in tests/test_gradients.py, with the notebook
cells' seeds and tolerances.
"""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.fast_layers import conv_backward_fast, conv_forward_fast, max_pool_backward_fast, max_pool_forward_fast
from layerwise.layer_utils import (
    affine_bn_relu_backward,
    affine_bn_relu_forward,
    affine_ln_relu_backward,
    affine_ln_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from layerwise.layers import affine_forward, batchnorm_forward, layernorm_forward, spatial_batchnorm_forward



def test_affine_relu_forward_matches_notebook():
    np.random.seed(231)
    x = np.random.randn(2, 3, 4)
    w = np.random.randn(12, 10)
    b = np.random.randn(10)
    out, _ = affine_relu_forward(x, w, b)
    np.testing.assert_array_equal(out, np.maximum(0, x.reshape(2, 12) @ w + b))


def test_conv_relu_pool_forward_shape_matches_notebook():
    np.random.seed(231)
    x = np.random.randn(2, 3, 16, 16)
    w = np.random.randn(3, 3, 3, 3)
    b = np.random.randn(3)
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, _ = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    assert out.shape == (2, 3, 8, 8)


def test_conv_relu_forward_matches_notebook():
    np.random.seed(231)
    x = np.random.randn(2, 3, 8, 8)
    w = np.random.randn(3, 3, 3, 3)
    b = np.random.randn(3)
    out, _ = conv_relu_forward(x, w, b, {"stride": 1, "pad": 1})
    assert out.shape == (2, 3, 8, 8) and np.all(out >= 0)


def test_affine_bn_relu_is_the_composition_and_updates_running_stats():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((6, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    bn_param, reference_param = {"mode": "train"}, {"mode": "train"}
    out, _ = affine_bn_relu_forward(x, w, b, gamma, beta, bn_param)
    a, _ = affine_forward(x, w, b)
    normed, _ = batchnorm_forward(a, gamma, beta, reference_param)
    np.testing.assert_allclose(out, np.maximum(0, normed), rtol=1e-12)
    np.testing.assert_allclose(bn_param["running_mean"], reference_param["running_mean"], rtol=1e-12)
    np.testing.assert_allclose(bn_param["running_var"], reference_param["running_var"], rtol=1e-12)


def test_affine_ln_relu_is_the_composition():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((6, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    out, _ = affine_ln_relu_forward(x, w, b, gamma, beta, {})
    normed, _ = layernorm_forward(affine_forward(x, w, b)[0], gamma, beta, {})
    np.testing.assert_allclose(out, np.maximum(0, normed), rtol=1e-12)


def test_conv_sandwiches_are_the_composition():
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    conv, _ = conv_forward_fast(x, w, b, conv_param)
    np.testing.assert_allclose(conv_relu_forward(x, w, b, conv_param)[0], np.maximum(0, conv), rtol=1e-12)
    pooled, _ = max_pool_forward_fast(np.maximum(0, conv), pool_param)
    np.testing.assert_allclose(conv_relu_pool_forward(x, w, b, conv_param, pool_param)[0], pooled, rtol=1e-12)
    normed, _ = spatial_batchnorm_forward(conv, gamma, beta, {"mode": "train"})
    out, _ = conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, {"mode": "train"})
    np.testing.assert_allclose(out, np.maximum(0, normed), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sandwiches_keep_the_input_dtype(dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 6)).astype(dtype)
    w, b = rng.standard_normal((4, 3, 3, 3)).astype(dtype), rng.standard_normal(4).astype(dtype)
    gamma, beta = np.ones(4, dtype=dtype), np.zeros(4, dtype=dtype)
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    cases = [
        (conv_relu_forward, conv_relu_backward, (x, w, b, conv_param)),
        (conv_relu_pool_forward, conv_relu_pool_backward, (x, w, b, conv_param, pool_param)),
        (conv_bn_relu_forward, conv_bn_relu_backward, (x, w, b, gamma, beta, conv_param, {"mode": "train"})),
    ]
    flat = x.reshape(2, -1)
    fw, fb = rng.standard_normal((flat.shape[1], 4)).astype(dtype), rng.standard_normal(4).astype(dtype)
    cases += [
        (affine_relu_forward, affine_relu_backward, (flat, fw, fb)),
        (affine_bn_relu_forward, affine_bn_relu_backward, (flat, fw, fb, gamma, beta, {"mode": "train"})),
        (affine_ln_relu_forward, affine_ln_relu_backward, (flat, fw, fb, gamma, beta, {})),
    ]
    for forward, backward, args in cases:
        out, cache = forward(*args)
        assert out.dtype == dtype, forward.__name__
        for grad in backward(np.ones_like(out), cache):
            assert grad.dtype == dtype, backward.__name__


@pytest.mark.parametrize("ties", [False, True])
def test_conv_relu_pool_equals_the_layers_in_order(ties):
    """The sandwich pools before its ReLU; outputs and gradients equal conv -> relu -> pool's."""
    from layerwise.layer_utils import (
        conv_relu_pool_backward,
        conv_relu_pool_forward,
    )
    from layerwise.layers import relu_backward, relu_forward

    rng = np.random.default_rng(9)
    x, w, b = rng.standard_normal((3, 2, 8, 8)), rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    if ties:  # integer values: many windows with a repeated or non-positive maximum
        x, w, b = np.round(2 * x), np.round(w), np.round(b)
    conv_param, pool_param = {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2}
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    expected, pool_cache = max_pool_forward_fast(s, pool_param)
    out, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    np.testing.assert_array_equal(out, expected)
    dout = rng.standard_normal(out.shape)
    ds = max_pool_backward_fast(dout, pool_cache)
    expected_grads = conv_backward_fast(relu_backward(ds, relu_cache), conv_cache)
    for mine, theirs in zip(conv_relu_pool_backward(dout, cache), expected_grads):
        np.testing.assert_array_equal(mine, theirs)
    dx, dw, db = conv_relu_pool_backward(dout, cache, input_grad=False)
    assert dx is None
    np.testing.assert_array_equal(dw, expected_grads[1])
    np.testing.assert_array_equal(db, expected_grads[2])

