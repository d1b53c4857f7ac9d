"""Specification of :mod:`layerwise.layer_utils`: the "sandwich" layers.

The notebook cells (affine_relu, conv_relu_pool, conv_relu) with their seeds and tolerances, then
a numeric check of every gradient the normalized sandwiches return, and the composition: each
sandwich equals its layers called one after the other.
"""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.fast_layers import conv_forward_fast, max_pool_forward_fast
from layerwise.gradient_check import rel_error
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

from numeric import numeric_grads  # tests/numeric.py



def test_affine_relu_matches_numeric_gradient_notebook():
    np.random.seed(231)
    x = np.random.randn(2, 3, 4)
    w = np.random.randn(12, 10)
    b = np.random.randn(10)
    dout = np.random.randn(2, 10)
    out, cache = affine_relu_forward(x, w, b)
    dx, dw, db = affine_relu_backward(dout, cache)
    dx_num, dw_num, db_num = numeric_grads(affine_relu_forward, [x, w, b], (0, 1, 2), dout)
    np.testing.assert_array_equal(out, np.maximum(0, x.reshape(2, 12) @ w + b))
    assert rel_error(dx_num, dx) < 1e-9
    assert rel_error(dw_num, dw) < 1e-9
    assert rel_error(db_num, db) < 1e-9


def test_conv_relu_pool_matches_numeric_gradient_notebook():
    np.random.seed(231)
    x = np.random.randn(2, 3, 16, 16)
    w = np.random.randn(3, 3, 3, 3)
    b = np.random.randn(3)
    dout = np.random.randn(2, 3, 8, 8)
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    assert out.shape == (2, 3, 8, 8)
    dx, dw, db = conv_relu_pool_backward(dout, cache)
    forward = lambda x, w, b: conv_relu_pool_forward(x, w, b, conv_param, pool_param)  # noqa: E731
    dx_num, dw_num, db_num = numeric_grads(forward, [x, w, b], (0, 1, 2), dout)
    # The notebook's tolerance, with its seed: no near-tie in a pool window falls within h here.
    assert rel_error(dx_num, dx) < 1e-8  # notebook: 9.59e-09
    assert rel_error(dw_num, dw) < 1e-8  # notebook: 5.80e-09
    assert rel_error(db_num, db) < 1e-8  # notebook: 1.01e-09


def test_conv_relu_matches_numeric_gradient_notebook():
    np.random.seed(231)
    x = np.random.randn(2, 3, 8, 8)
    w = np.random.randn(3, 3, 3, 3)
    b = np.random.randn(3)
    dout = np.random.randn(2, 3, 8, 8)
    conv_param = {"stride": 1, "pad": 1}
    out, cache = conv_relu_forward(x, w, b, conv_param)
    assert out.shape == (2, 3, 8, 8) and np.all(out >= 0)
    dx, dw, db = conv_relu_backward(dout, cache)
    forward = lambda x, w, b: conv_relu_forward(x, w, b, conv_param)  # noqa: E731
    dx_num, dw_num, db_num = numeric_grads(forward, [x, w, b], (0, 1, 2), dout)
    assert rel_error(dx_num, dx) < 1e-8
    assert rel_error(dw_num, dw) < 1e-8
    assert rel_error(db_num, db) < 1e-8


# --- the normalized sandwiches: every returned gradient ------------------------------------------


def _affine_bn_relu(rng):
    x = rng.standard_normal((5, 2, 3))
    w, b = rng.standard_normal((6, 4)), rng.standard_normal(4)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    bn_param = {"mode": "train"}
    return affine_bn_relu_forward, affine_bn_relu_backward, [x, w, b, gamma, beta, bn_param]


def _affine_ln_relu(rng):
    x = rng.standard_normal((3, 7))
    w, b = rng.standard_normal((7, 5)), rng.standard_normal(5)
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    return affine_ln_relu_forward, affine_ln_relu_backward, [x, w, b, gamma, beta, {}]


def _conv_bn_relu(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    return conv_bn_relu_forward, conv_bn_relu_backward, [x, w, b, gamma, beta, {"stride": 1, "pad": 1}, {"mode": "train"}]


NORMALIZED = {"affine_bn_relu": _affine_bn_relu, "affine_ln_relu": _affine_ln_relu, "conv_bn_relu": _conv_bn_relu}


@pytest.mark.parametrize("name", sorted(NORMALIZED))
def test_normalized_sandwich_matches_numeric_gradient(name):
    forward, backward, args = NORMALIZED[name](np.random.default_rng(231))
    out, cache = forward(*args)
    dout = np.random.default_rng(0).standard_normal(out.shape)
    grads = backward(dout, cache)
    assert len(grads) == 5  # dx, dw, db, dgamma, dbeta
    expected = numeric_grads(forward, args, range(5), dout)
    for i, label in enumerate(["dx", "dw", "db", "dgamma", "dbeta"]):
        assert grads[i].shape == args[i].shape, label
        assert grads[i].dtype == np.float64, label
        if label == "db" and name != "affine_ln_relu":
            # A bias before batch norm is cancelled by the mean subtraction: its gradient is 0.
            np.testing.assert_allclose(grads[i], 0, atol=1e-12)
            np.testing.assert_allclose(expected[i], 0, atol=1e-8)
            continue
        err = rel_error(expected[i], grads[i])
        assert err < 1e-6, f"{label}: rel error {err:.2e}"


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
