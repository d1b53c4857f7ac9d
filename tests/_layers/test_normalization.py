"""Specification of :mod:`layerwise._layers.normalization`: batch, layer, spatial batch and group
normalization: the statistics, their axes, the running averages and the two batchnorm backwards
(the numeric gradients are rows of tests/test_gradients.py)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layerwise.gradient_check import rel_error
from layerwise.layers import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_forward,
)


@pytest.fixture
def bn_data():
    """The BatchNormalization notebook's cell: shifted, scaled features of a random two-layer net."""
    rng = np.random.default_rng(231)
    N, D1, D2, D3 = 200, 50, 60, 3
    X = rng.standard_normal((N, D1))
    W1, W2 = rng.standard_normal((D1, D2)), rng.standard_normal((D2, D3))
    return np.maximum(0, X @ W1) @ W2


def test_batchnorm_train_output_has_zero_mean_unit_std_per_feature(bn_data):
    a = bn_data
    assert np.all(np.abs(a.mean(axis=0)) > 1)  # the raw features are far from normalized
    out, _ = batchnorm_forward(a, np.ones(3), np.zeros(3), {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-5)


def test_batchnorm_train_output_applies_gamma_and_beta(bn_data):
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([11.0, 12.0, 13.0])
    out, _ = batchnorm_forward(bn_data, gamma, beta, {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=0), beta, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=0), gamma, rtol=1e-5)


def test_batchnorm_uses_default_eps_1e5_and_biased_variance():
    rng = np.random.default_rng(1)
    x = 3e-3 * rng.standard_normal((8, 3))  # variance ~1e-5, so eps changes the output a lot
    out, _ = batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    expected = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-10)
    out_eps, _ = batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train", "eps": 1e-8})
    np.testing.assert_allclose(out_eps, (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-8), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_writes_running_stats_with_default_momentum_09(dtype):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((10, 4)) * 2 + 5).astype(dtype)
    bn_param = {"mode": "train"}
    batchnorm_forward(x, np.ones(4), np.zeros(4), bn_param)
    for key, stat in (("running_mean", x.mean(axis=0)), ("running_var", x.var(axis=0))):
        assert bn_param[key].shape == (4,)
        assert bn_param[key].dtype == dtype
        # Starting from zeros: 0.9 * 0 + 0.1 * batch statistic.
        np.testing.assert_allclose(bn_param[key], 0.1 * stat, rtol=1e-5)
    previous = {k: bn_param[k].copy() for k in ("running_mean", "running_var")}
    x2 = (rng.standard_normal((10, 4)) - 1).astype(dtype)
    batchnorm_forward(x2, np.ones(4), np.zeros(4), bn_param)
    np.testing.assert_allclose(bn_param["running_mean"], 0.9 * previous["running_mean"] + 0.1 * x2.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn_param["running_var"], 0.9 * previous["running_var"] + 0.1 * x2.var(axis=0), rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spatial_batchnorm_writes_per_channel_running_stats(dtype):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((3, 4, 2, 5)) * 2 + 5).astype(dtype)
    bn_param = {"mode": "train"}
    spatial_batchnorm_forward(x, np.ones(4), np.zeros(4), bn_param)
    assert bn_param["running_mean"].shape == bn_param["running_var"].shape == (4,)
    assert bn_param["running_mean"].dtype == bn_param["running_var"].dtype == dtype
    np.testing.assert_allclose(bn_param["running_mean"], 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(bn_param["running_var"], 0.1 * x.var(axis=(0, 2, 3)), rtol=1e-5)


def test_batchnorm_respects_a_given_momentum():
    x = np.arange(12.0).reshape(4, 3)
    bn_param = {"mode": "train", "momentum": 0.5, "running_mean": np.ones(3), "running_var": np.ones(3)}
    batchnorm_forward(x, np.ones(3), np.zeros(3), bn_param)
    np.testing.assert_allclose(bn_param["running_mean"], 0.5 + 0.5 * x.mean(axis=0))
    np.testing.assert_allclose(bn_param["running_var"], 0.5 + 0.5 * x.var(axis=0))


def test_batchnorm_running_averages_make_test_mode_normalize():
    """After many train steps on batches from one distribution, test mode normalizes new data."""
    rng = np.random.default_rng(3)
    mu, sigma = np.array([5.0, -3.0, 0.5]), np.array([2.0, 0.5, 4.0])
    gamma, beta = np.array([1.0, 2.0, 0.5]), np.array([11.0, -12.0, 13.0])
    bn_param = {"mode": "train"}
    for _ in range(100):
        batchnorm_forward(mu + sigma * rng.standard_normal((64, 3)), gamma, beta, bn_param)
    assert np.all(np.abs(bn_param["running_mean"] - mu) < 0.1 * sigma)
    np.testing.assert_allclose(bn_param["running_var"], sigma**2, rtol=0.15)
    bn_param["mode"] = "test"
    out, _ = batchnorm_forward(mu + sigma * rng.standard_normal((4000, 3)), gamma, beta, bn_param)
    assert np.all(np.abs(out.mean(axis=0) - beta) < 0.1 * gamma)
    np.testing.assert_allclose(out.std(axis=0), gamma, rtol=0.1)


def test_batchnorm_test_mode_is_per_example_and_leaves_running_stats_alone():
    rng = np.random.default_rng(4)
    running_mean, running_var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    bn_param = {"mode": "test", "running_mean": running_mean.copy(), "running_var": running_var.copy()}
    x = rng.standard_normal((5, 3))
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    out, _ = batchnorm_forward(x, gamma, beta, bn_param)
    np.testing.assert_allclose(out, gamma * (x - running_mean) / np.sqrt(running_var + 1e-5) + beta, rtol=1e-12)
    single, _ = batchnorm_forward(x[:1], gamma, beta, bn_param)
    np.testing.assert_allclose(single, out[:1], rtol=1e-12)
    np.testing.assert_array_equal(bn_param["running_mean"], running_mean)
    np.testing.assert_array_equal(bn_param["running_var"], running_var)


def test_batchnorm_backward_and_alt_agree_notebook():
    np.random.seed(231)
    N, D = 100, 500
    x = 5 * np.random.randn(N, D) + 12
    gamma, beta = np.random.randn(D), np.random.randn(D)
    dout = np.random.randn(N, D)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx1, dgamma1, dbeta1 = batchnorm_backward(dout, cache)
    dx2, dgamma2, dbeta2 = batchnorm_backward_alt(dout, cache)
    assert rel_error(dx1, dx2) < 1e-12
    assert rel_error(dgamma1, dgamma2) < 1e-12
    assert rel_error(dbeta1, dbeta2) < 1e-12


@settings(max_examples=25, deadline=None)
@given(N=st.integers(2, 9), D=st.integers(1, 7), seed=st.integers(0, 2**32 - 1))
def test_batchnorm_backward_and_alt_agree_on_any_shape(N, D, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D)) * rng.uniform(0.1, 10) + rng.uniform(-5, 5)
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dout = rng.standard_normal((N, D))
    for a, b in zip(batchnorm_backward(dout, cache), batchnorm_backward_alt(dout, cache)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from([(2, 15), (2, 1), (3, 7), (17, 5), (128, 100), (2, 3, 2, 2), (8, 4, 3, 5)]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_batchnorm_dx_sums_to_zero_over_the_batch_up_to_its_own_rounding(shape, dtype, seed):
    # The true dx sums to exactly 0 over the statistics axes, so a bias just before batchnorm has
    # a zero gradient; the notebooks' gradient check of that bias (numeric gradient 0) only prints
    # their 1e-8..1e-10 when the computed sum is at the rounding of dx's own values.
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * rng.uniform(0.01, 10) + rng.uniform(-5, 5)).astype(dtype)
    C = shape[1]
    gamma, beta = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    if len(shape) == 2:
        forward, backward, axes = batchnorm_forward, batchnorm_backward_alt, (0,)
    else:
        forward, backward, axes = spatial_batchnorm_forward, spatial_batchnorm_backward, (0, 2, 3)
    _, cache = forward(x, gamma, beta, {"mode": "train"})
    dx = backward(dout, cache)[0]
    count = np.prod([shape[axis] for axis in axes])
    remainder = np.abs(dx.sum(axis=axes, dtype=np.float64))
    assert np.all(remainder <= count * np.finfo(dtype).eps * np.abs(dx).max())


def test_layernorm_normalizes_each_example_over_its_features(bn_data):
    a = bn_data.T  # (3, 200): three examples of 200 features
    out, _ = layernorm_forward(a, np.ones(200), np.zeros(200), {})
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=1), 1, atol=1e-5)
    gamma, beta = np.full(200, 3.0), np.full(200, 5.0)
    out, _ = layernorm_forward(a, gamma, beta, {})
    np.testing.assert_allclose(out.mean(axis=1), 5, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=1), 3, rtol=1e-5)


def test_layernorm_does_not_depend_on_other_examples_nor_mode():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 4)) * 3 + 1
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    out, _ = layernorm_forward(x, gamma, beta, {})
    single, _ = layernorm_forward(x[2:3], gamma, beta, {"mode": "test"})
    np.testing.assert_allclose(single, out[2:3], rtol=1e-12)
    mean, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    np.testing.assert_allclose(out, gamma * (x - mean) / np.sqrt(var + 1e-5) + beta, rtol=1e-12)


def test_spatial_batchnorm_normalizes_each_channel_over_n_h_w():
    np.random.seed(231)
    N, C, H, W = 2, 3, 4, 5
    x = 4 * np.random.randn(N, C, H, W) + 10
    out, _ = spatial_batchnorm_forward(x, np.ones(C), np.zeros(C), {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-5)
    gamma, beta = np.array([3.0, 4.0, 5.0]), np.array([6.0, 7.0, 8.0])
    out, _ = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), beta, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), gamma, rtol=1e-5)


@settings(max_examples=20, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)).filter(
        lambda s: s[0] * s[2] * s[3] > 1
    ),
    mode=st.sampled_from(["train", "test"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_spatial_batchnorm_is_batchnorm_over_pixels(shape, mode, seed):
    rng = np.random.default_rng(seed)
    N, C, H, W = shape
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    stats = {"running_mean": rng.standard_normal(C), "running_var": rng.uniform(0.5, 2, C)}
    spatial_param, flat_param = {"mode": mode, **stats}, {"mode": mode, **copy.deepcopy(stats)}
    out, cache = spatial_batchnorm_forward(x, gamma, beta, spatial_param)
    flat = x.transpose(0, 2, 3, 1).reshape(-1, C)
    flat_out, flat_cache = batchnorm_forward(flat, gamma, beta, flat_param)
    np.testing.assert_allclose(out, flat_out.reshape(N, H, W, C).transpose(0, 3, 1, 2), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(spatial_param["running_mean"], flat_param["running_mean"], rtol=1e-10)
    np.testing.assert_allclose(spatial_param["running_var"], flat_param["running_var"], rtol=1e-10)
    dout = rng.standard_normal(shape)
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    fdx, fdgamma, fdbeta = batchnorm_backward_alt(dout.transpose(0, 2, 3, 1).reshape(-1, C), flat_cache)
    np.testing.assert_allclose(dx, fdx.reshape(N, H, W, C).transpose(0, 3, 1, 2), rtol=1e-8, atol=1e-10)
    assert dgamma.shape == dbeta.shape == (C,)
    np.testing.assert_allclose(dgamma, fdgamma, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dbeta, fdbeta, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("G", [1, 2, 3, 6])
def test_spatial_groupnorm_normalizes_each_group_of_each_example(G):
    rng = np.random.default_rng(9)
    N, C, H, W = 2, 6, 4, 5
    x = rng.standard_normal((N, C, H, W)) * rng.uniform(1, 5, (1, C, 1, 1)) + rng.uniform(-5, 5, (1, C, 1, 1))
    out, _ = spatial_groupnorm_forward(x, np.ones((1, C, 1, 1)), np.zeros((1, C, 1, 1)), G, {})
    grouped = out.reshape(N, G, C // G, H, W)
    np.testing.assert_allclose(grouped.mean(axis=(2, 3, 4)), 0, atol=1e-10)
    np.testing.assert_allclose(grouped.std(axis=(2, 3, 4)), 1, atol=1e-5)
    # Reference: normalize each group explicitly, then per-channel gamma/beta.
    gamma, beta = rng.standard_normal((1, C, 1, 1)), rng.standard_normal((1, C, 1, 1))
    out, _ = spatial_groupnorm_forward(x, gamma, beta, G, {})
    xg = x.reshape(N, G, -1)
    xhat = ((xg - xg.mean(axis=2, keepdims=True)) / np.sqrt(xg.var(axis=2, keepdims=True) + 1e-5)).reshape(x.shape)
    np.testing.assert_allclose(out, gamma * xhat + beta, rtol=1e-10, atol=1e-12)


def test_spatial_groupnorm_with_one_group_is_layernorm_over_c_h_w():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 4, 2, 5)) * 3 + 1
    out, _ = spatial_groupnorm_forward(x, np.ones((1, 4, 1, 1)), np.zeros((1, 4, 1, 1)), 1, {})
    flat, _ = layernorm_forward(x.reshape(3, -1), np.ones(40), np.zeros(40), {})
    np.testing.assert_allclose(out, flat.reshape(x.shape), rtol=1e-10, atol=1e-12)
