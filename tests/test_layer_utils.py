"""Specification of :mod:`layerwise.layer_utils`: the "sandwich" layers.

The notebook cells' forward passes (affine_relu, conv_relu_pool, conv_relu), and the composition:
each sandwich equals its layers called one after the other, in outputs and gradients (conv_block,
a convolutional network's block, in every variant and to the bit). Every
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
    conv_block_backward,
    conv_block_forward,
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from layerwise.layers import (
    affine_forward,
    batchnorm_forward,
    layernorm_forward,
    relu_backward,
    relu_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)



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



# --- conv_block: conv - [norm] - relu - [+ x] - [pool] -----------------------------------------------

BLOCK_VARIANTS = [
    (normalization, pool, residual)
    for normalization in (None, "batchnorm", "groupnorm")
    for pool in (False, True)
    for residual in (False, True)
]


def _block_inputs(rng, dtype=np.float64, ties=False):
    x, w, b = rng.standard_normal((3, 4, 6, 8)), rng.standard_normal((4, 4, 3, 3)), rng.standard_normal(4)
    if ties:  # integer values: many windows with a repeated or non-positive maximum
        x, w, b = np.round(2 * x), np.round(w), np.round(b)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    return [a.astype(dtype) for a in (x, w, b, gamma, beta)]


def _norm_param(normalization):
    return {None: None, "batchnorm": {"mode": "train"}, "groupnorm": {"groups": 2}}[normalization]


def _block_by_layers(x, w, b, gamma, beta, normalization, pool, residual, dout):
    """conv -> norm -> relu -> [+ x] -> [pool] with the layers one after the other, and its gradients."""
    conv_param, pool_param = {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2}
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    if normalization == "batchnorm":
        a, norm_cache = spatial_batchnorm_forward(a, gamma, beta, {"mode": "train"})
    elif normalization == "groupnorm":
        a, norm_cache = spatial_groupnorm_forward(a, gamma.reshape(1, -1, 1, 1), beta.reshape(1, -1, 1, 1), 2, {})
    s, relu_cache = relu_forward(a)
    if residual:
        s = s + x
    out = s
    if pool:
        out, pool_cache = max_pool_forward_fast(s, pool_param)
    ds = max_pool_backward_fast(dout, pool_cache) if pool else dout
    da = relu_backward(ds, relu_cache)
    dgamma = dbeta = None
    if normalization == "batchnorm":
        da, dgamma, dbeta = spatial_batchnorm_backward(da, norm_cache)
    elif normalization == "groupnorm":
        da, dgamma, dbeta = spatial_groupnorm_backward(da, norm_cache)
        dgamma, dbeta = dgamma.reshape(-1), dbeta.reshape(-1)
    dx, dw, db = conv_backward_fast(da, conv_cache)
    if residual:
        dx = dx + ds
    return out, (dx, dw, db, dgamma, dbeta)


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("normalization, pool, residual", BLOCK_VARIANTS)
def test_conv_block_equals_the_layers_in_order(normalization, pool, residual, ties):
    """Whatever order the block runs its parts in (the pool before the ReLU, fused with the
    convolution), outputs and gradients are those of conv -> norm -> relu -> [+ x] -> [pool]."""
    rng = np.random.default_rng(21)
    x, w, b, gamma, beta = _block_inputs(rng, ties=ties)
    norm = {} if normalization is None else {"gamma": gamma, "beta": beta, "norm_param": _norm_param(normalization)}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2} if pool else None
    out, cache = conv_block_forward(
        x, w, b, {"stride": 1, "pad": 1}, normalization=normalization, pool_param=pool_param, residual=residual, **norm
    )
    dout = rng.standard_normal(out.shape)
    expected_out, expected_grads = _block_by_layers(x, w, b, gamma, beta, normalization, pool, residual, dout)
    np.testing.assert_array_equal(out, expected_out)
    grads = conv_block_backward(dout, cache)
    for name, mine, theirs in zip(("dx", "dw", "db", "dgamma", "dbeta"), grads, expected_grads):
        if theirs is None:
            assert mine is None, name
        else:
            np.testing.assert_array_equal(mine, theirs, err_msg=name)
    no_dx = conv_block_backward(dout, cache, input_grad=False)
    assert no_dx[0] is None
    for name, mine, theirs in zip(("dw", "db", "dgamma", "dbeta"), no_dx[1:], grads[1:]):
        if theirs is not None:
            np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("normalization, pool, residual", BLOCK_VARIANTS)
def test_conv_block_in_float32_agrees_with_the_layers_in_order_in_float64(normalization, pool, residual):
    """float32 takes the compiled passes where Numba runs (the fused batchnorm + ReLU among them):
    the same results up to float32 rounding."""
    rng = np.random.default_rng(23)
    x, w, b, gamma, beta = _block_inputs(rng)
    norm = {} if normalization is None else {"norm_param": _norm_param(normalization)}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2} if pool else None
    as32 = [a.astype(np.float32) for a in (x, w, b, gamma, beta)]
    if normalization is not None:
        norm.update(gamma=as32[3], beta=as32[4])
    out, cache = conv_block_forward(
        *as32[:3], {"stride": 1, "pad": 1}, normalization=normalization, pool_param=pool_param, residual=residual, **norm
    )
    dout = rng.standard_normal(out.shape)
    expected_out, expected_grads = _block_by_layers(*(a.astype(np.float64) for a in as32), normalization, pool, residual, dout)
    np.testing.assert_allclose(out, expected_out, rtol=1e-4, atol=1e-4)
    for name, mine, theirs in zip(("dx", "dw", "db", "dgamma", "dbeta"), conv_block_backward(dout.astype(np.float32), cache), expected_grads):
        if theirs is not None:
            scale = max(1.0, float(np.abs(theirs).max()))
            np.testing.assert_allclose(mine, theirs, rtol=1e-3, atol=1e-4 * scale, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("normalization, pool, residual", BLOCK_VARIANTS)
def test_conv_block_keeps_the_input_dtype(normalization, pool, residual, dtype):
    x, w, b, gamma, beta = _block_inputs(np.random.default_rng(22), dtype)
    norm = {} if normalization is None else {"gamma": gamma, "beta": beta, "norm_param": _norm_param(normalization)}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2} if pool else None
    out, cache = conv_block_forward(
        x, w, b, {"stride": 1, "pad": 1}, normalization=normalization, pool_param=pool_param, residual=residual, **norm
    )
    assert out.dtype == dtype
    for grad in conv_block_backward(np.ones(out.shape), cache):
        assert grad is None or grad.dtype == dtype


def test_conv_block_updates_the_running_statistics_as_spatial_batchnorm_does():
    x, w, b, gamma, beta = _block_inputs(np.random.default_rng(23))
    bn_param, reference = {"mode": "train"}, {"mode": "train"}
    conv_block_forward(x, w, b, {"stride": 1, "pad": 1}, normalization="batchnorm", gamma=gamma, beta=beta, norm_param=bn_param)
    spatial_batchnorm_forward(conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})[0], gamma, beta, reference)
    for key in ("running_mean", "running_var"):
        np.testing.assert_array_equal(bn_param[key], reference[key])


def _block_call(**changes):
    x, w, b, gamma, beta = _block_inputs(np.random.default_rng(24))
    arguments = {"normalization": "batchnorm", "gamma": gamma, "beta": beta, "norm_param": {"mode": "train"}}
    arguments.update(changes)
    conv_param = arguments.pop("conv_param", {"stride": 1, "pad": 1})
    return conv_block_forward(arguments.pop("x", x), arguments.pop("w", w), b, conv_param, **arguments)


@pytest.mark.parametrize(
    "changes, error, message",
    [
        ({"normalization": "layernorm"}, ValueError,
         "conv_block_forward: normalization must be one of [None, 'batchnorm', 'groupnorm'], got 'layernorm'"),
        ({"residual": 1}, TypeError, "conv_block_forward: residual must be a bool, got 1 (int)"),
        ({"residual": True, "conv_param": {"stride": 2, "pad": 1}}, ValueError,
         "conv_block_forward: residual=True adds x to the convolution's output, which must then have x's shape (3, 4, 6, 8), "
         "got (3, 4, 3, 4)"),
        ({"normalization": None}, TypeError, "conv_block_forward: gamma must be None without normalization"),
        ({"gamma": np.ones(3)}, ValueError, "conv_block_forward: gamma must have shape (4,), got shape (3,)"),
        ({"normalization": "groupnorm", "norm_param": {}}, ValueError,
         "conv_block_forward: norm_param must contain 'groups', got keys []"),
        ({"normalization": "groupnorm", "norm_param": {"groups": 3}}, ValueError,
         "spatial_groupnorm_forward: G must divide the number of channels C=4, got G=3"),
        ({"pool_param": {"pool_height": 2, "pool_width": 2}}, ValueError,
         "conv_block_forward: pool_param must contain 'stride'"),
        ({"norm_param": {}}, ValueError, "spatial_batchnorm_forward: bn_param must contain 'mode'"),
    ],
    ids=["normalization", "residual-type", "residual-shape", "gamma-without-norm", "gamma-shape", "groups-missing",
         "groups-divide", "pool-param", "bn-mode"],
)  # fmt: skip
def test_conv_block_refuses_bad_arguments(changes, error, message):
    with pytest.raises(error) as raised:
        _block_call(**changes)
    assert str(raised.value).startswith(message), str(raised.value)


def test_a_bad_pool_param_leaves_the_running_statistics_unchanged():
    bn_param = {"mode": "train"}
    with pytest.raises(ValueError):
        _block_call(norm_param=bn_param, pool_param={"pool_height": 9, "pool_width": 2, "stride": 2})
    assert bn_param == {"mode": "train"}


def test_conv_block_backward_refuses_another_cache():
    x, w, b, *_ = _block_inputs(np.random.default_rng(25))
    _, cache = conv_relu_forward(x, w, b, {"stride": 1, "pad": 1})
    with pytest.raises(TypeError, match="conv_block_backward: cache must be the 7-tuple"):
        conv_block_backward(np.zeros((3, 4, 6, 8)), cache)
