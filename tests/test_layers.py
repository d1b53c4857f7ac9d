"""Specification of :mod:`layerwise.layers`: every forward/backward pair.

Three parts:

1. the numeric checks printed in the FullyConnectedNets / ConvolutionalNetworks notebooks,
   with the notebook's data, seeds and tolerances;
2. a numeric gradient check in float64 of every backward function, and the behaviour of the
   stateful/stochastic layers (batchnorm running statistics, dropout masks, normalization axes);
3. the dtype policy (float32 in, float32 out; float64 in, float64 out) and "no input is mutated",
   over one table of every forward/backward pair.
"""

from __future__ import annotations

import copy
from typing import Callable, NamedTuple

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from layerwise import layers
from layerwise.gradient_check import eval_numerical_gradient, rel_error
from layerwise.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    conv_backward_naive,
    conv_forward_naive,
    dropout_backward,
    dropout_forward,
    layernorm_backward,
    layernorm_forward,
    max_pool_backward_naive,
    max_pool_forward_naive,
    relu_backward,
    relu_forward,
    softmax_loss,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
    svm_loss,
)

from numeric import numeric_grads  # tests/numeric.py



def as_tuple(grads):
    """Backward functions with one input return a bare array; the others a tuple."""
    return grads if isinstance(grads, tuple) else (grads,)


# --------------------------------------------------------------------------------------------
# 1. The notebook cells
# --------------------------------------------------------------------------------------------


def test_affine_forward_matches_notebook():
    num_inputs, input_shape, output_dim = 2, (4, 5, 6), 3
    input_size = num_inputs * np.prod(input_shape)
    weight_size = output_dim * np.prod(input_shape)
    x = np.linspace(-0.1, 0.5, num=input_size).reshape(num_inputs, *input_shape)
    w = np.linspace(-0.2, 0.3, num=weight_size).reshape(np.prod(input_shape), output_dim)
    b = np.linspace(-0.3, 0.1, num=output_dim)
    out, _ = affine_forward(x, w, b)
    correct_out = np.array([[1.49834967, 1.70660132, 1.91485297], [3.25553199, 3.5141327, 3.77273342]])
    assert out.shape == (2, 3)
    assert rel_error(out, correct_out) < 1e-9


def test_affine_backward_matches_numeric_gradient_notebook():
    np.random.seed(231)
    x = np.random.randn(10, 2, 3)
    w = np.random.randn(6, 5)
    b = np.random.randn(5)
    dout = np.random.randn(10, 5)
    dx_num, dw_num, db_num = numeric_grads(affine_forward, [x, w, b], (0, 1, 2), dout)
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert rel_error(dx_num, dx) < 1e-9
    assert rel_error(dw_num, dw) < 1e-9
    assert rel_error(db_num, db) < 1e-9


def test_relu_forward_matches_notebook():
    x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    out, _ = relu_forward(x)
    correct_out = np.array(
        [
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.04545455, 0.13636364],
            [0.22727273, 0.31818182, 0.40909091, 0.5],
        ]
    )
    # The notebook prints 4.99e-08: correct_out is rounded to 8 digits.
    assert rel_error(out, correct_out) < 1e-7


def test_relu_backward_matches_numeric_gradient_notebook():
    np.random.seed(231)
    x = np.random.randn(10, 10)
    dout = np.random.randn(*x.shape)
    (dx_num,) = numeric_grads(relu_forward, [x], (0,), dout)
    _, cache = relu_forward(x)
    dx = relu_backward(dout, cache)
    assert rel_error(dx_num, dx) < 1e-11


@pytest.fixture
def loss_data():
    """The softmax/SVM cell: 50 examples, 10 classes, scores near zero."""
    np.random.seed(231)
    num_classes, num_inputs = 10, 50
    x = 0.001 * np.random.randn(num_inputs, num_classes)
    y = np.random.randint(num_classes, size=num_inputs)
    return x, y


def test_softmax_loss_matches_notebook(loss_data):
    x, y = loss_data
    dx_num = eval_numerical_gradient(lambda x: softmax_loss(x, y)[0], x, verbose=False)
    loss, dx = softmax_loss(x, y)
    assert isinstance(loss, float)
    assert abs(loss - 2.302545844500738) < 1e-12
    assert rel_error(dx_num, dx) < 1e-8


def test_svm_loss_matches_notebook(loss_data):
    x, y = loss_data
    dx_num = eval_numerical_gradient(lambda x: svm_loss(x, y)[0], x, verbose=False)
    loss, dx = svm_loss(x, y)
    assert isinstance(loss, float)
    assert abs(loss - 9.0) < 0.01  # scores ~0: each of the 9 wrong classes costs a margin of ~1
    assert rel_error(dx_num, dx) < 1e-8


def test_losses_are_means_over_the_batch(loss_data):
    x, y = loss_data
    for loss_fn in (softmax_loss, svm_loss):
        loss, dx = loss_fn(x, y)
        doubled_loss, doubled_dx = loss_fn(np.concatenate([x, x]), np.concatenate([y, y]))
        assert doubled_loss == pytest.approx(loss, rel=1e-12)
        np.testing.assert_allclose(doubled_dx[: len(x)], dx / 2, rtol=1e-12)


def test_softmax_loss_is_stable_for_huge_scores():
    x = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]])
    loss, dx = softmax_loss(x, np.array([0, 1]))
    assert np.isfinite(loss) and np.all(np.isfinite(dx))
    assert loss == pytest.approx(0.0, abs=1e-12)


def test_conv_forward_naive_matches_notebook():
    x_shape, w_shape = (2, 3, 4, 4), (3, 3, 4, 4)
    x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
    w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    correct_out = np.array(
        [
            [
                [[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
                [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
                [[0.50813986, 0.54309974], [0.64082444, 0.67101435]],
            ],
            [
                [[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
                [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
                [[2.36270298, 2.36904306], [2.38090835, 2.38247847]],
            ],
        ]
    )
    assert out.shape == correct_out.shape
    assert rel_error(out, correct_out) < 1e-7


def test_conv_forward_naive_image_processing_filters():
    """The notebook's 'aside': a grayscale filter and a horizontal-edge filter, integer biases."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(2, 3, 6, 6))
    w = np.zeros((2, 3, 3, 3))
    w[0, 0, 1, 1], w[0, 1, 1, 1], w[0, 2, 1, 1] = 0.3, 0.6, 0.1
    w[1, 2] = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
    b = np.array([0, 128])  # integer biases are accepted
    out, _ = conv_forward_naive(x, w, b, {"stride": 1, "pad": 1})
    assert out.dtype == np.float64
    np.testing.assert_allclose(out[:, 0], 0.3 * x[:, 0] + 0.6 * x[:, 1] + 0.1 * x[:, 2], rtol=1e-12)
    blue = np.pad(x[:, 2], ((0, 0), (1, 1), (1, 1)))
    above = blue[:, :-2, :-2] + 2 * blue[:, :-2, 1:-1] + blue[:, :-2, 2:]
    below = blue[:, 2:, :-2] + 2 * blue[:, 2:, 1:-1] + blue[:, 2:, 2:]
    np.testing.assert_allclose(out[:, 1], above - below + 128, rtol=1e-12)


def test_conv_backward_naive_matches_numeric_gradient_notebook():
    np.random.seed(231)
    x = np.random.randn(4, 3, 5, 5)
    w = np.random.randn(2, 3, 3, 3)
    b = np.random.randn(2)
    dout = np.random.randn(4, 2, 5, 5)
    conv_param = {"stride": 1, "pad": 1}
    forward = lambda x, w, b: conv_forward_naive(x, w, b, conv_param)  # noqa: E731
    dx_num, dw_num, db_num = numeric_grads(forward, [x, w, b], (0, 1, 2), dout)
    _, cache = conv_forward_naive(x, w, b, conv_param)
    dx, dw, db = conv_backward_naive(dout, cache)
    # The notebook prints dx error 1.159803161159293e-08 for this very data ("around e-8 or
    # less"): the centered difference's own error, reproduced here to the last digit. 1e-8
    # would reject the notebook's reference output, so dx gets 2e-8.
    assert rel_error(dx, dx_num) < 2e-8
    assert rel_error(dw, dw_num) < 1e-8
    assert rel_error(db, db_num) < 1e-8


def test_max_pool_forward_naive_matches_notebook():
    x_shape = (2, 3, 4, 4)
    x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
    out, _ = max_pool_forward_naive(x, {"pool_width": 2, "pool_height": 2, "stride": 2})
    correct_out = np.array(
        [
            [
                [[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
                [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
                [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]],
            ],
            [
                [[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
                [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
                [[0.32631579, 0.34105263], [0.38526316, 0.4]],
            ],
        ]
    )
    assert rel_error(out, correct_out) < 1e-7


def test_max_pool_backward_naive_matches_numeric_gradient_notebook():
    np.random.seed(231)
    x = np.random.randn(3, 2, 8, 8)
    dout = np.random.randn(3, 2, 4, 4)
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    (dx_num,) = numeric_grads(lambda x: max_pool_forward_naive(x, pool_param), [x], (0,), dout)
    _, cache = max_pool_forward_naive(x, pool_param)
    dx = max_pool_backward_naive(dout, cache)
    assert rel_error(dx, dx_num) < 1e-11


def test_max_pool_backward_naive_gives_ties_to_the_first_maximum():
    x = np.zeros((1, 1, 2, 2))  # one window, four equal maxima
    _, cache = max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    dx = max_pool_backward_naive(np.array([[[[3.0]]]]), cache)
    np.testing.assert_array_equal(dx, [[[[3.0, 0.0], [0.0, 0.0]]]])


# --------------------------------------------------------------------------------------------
# 2. Numeric gradient check of every backward function (float64)
# --------------------------------------------------------------------------------------------


class Case(NamedTuple):
    """One forward/backward pair: ``setup(rng, dtype)`` gives the forward's arguments.

    ``wrt`` are the argument positions the backward returns gradients for, in order; ``tol`` the
    largest relative error accepted against the numeric gradient, per returned gradient.
    """

    forward: Callable
    backward: Callable
    setup: Callable
    wrt: tuple
    tol: tuple


def _affine(rng, dtype):
    x, w, b = rng.standard_normal((4, 2, 3)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    return [x.astype(dtype), w.astype(dtype), b.astype(dtype)]


def _relu(rng, dtype):
    return [rng.standard_normal((4, 6)).astype(dtype)]


def _conv(rng, dtype):
    # Non-square input and filter, stride 2 and padding: (5 + 2 - 3) and (7 + 2 - 3) divide by 2.
    return [
        rng.standard_normal((2, 3, 5, 7)).astype(dtype),
        rng.standard_normal((2, 3, 3, 3)).astype(dtype),
        rng.standard_normal(2).astype(dtype),
        {"stride": 2, "pad": 1},
    ]


def _conv_rect(rng, dtype):
    return [
        rng.standard_normal((2, 2, 6, 5)).astype(dtype),
        rng.standard_normal((3, 2, 2, 3)).astype(dtype),
        rng.standard_normal(3).astype(dtype),
        {"stride": 1, "pad": 0},
    ]


def _distinct(rng, shape, dtype):
    """Values at least 0.01 apart: a max pool's numeric gradient is wrong wherever two entries of
    a window lie within the step h of each other, and normal draws do that now and then."""
    return (0.01 * rng.permutation(int(np.prod(shape))).reshape(shape) - 0.5).astype(dtype)


def _pool_overlapping(rng, dtype):
    return [_distinct(rng, (2, 2, 5, 5), dtype), {"pool_height": 3, "pool_width": 3, "stride": 2}]


def _pool_rect(rng, dtype):
    # 2x3 windows with stride 2 overlap by one column and leave the last column of width 8 uncovered.
    return [_distinct(rng, (2, 3, 4, 8), dtype), {"pool_height": 2, "pool_width": 3, "stride": 2}]


def _norm_params(rng, dtype, shape):
    return rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)


def _batchnorm_train(rng, dtype):
    x = (3 * rng.standard_normal((6, 4)) + 2).astype(dtype)
    return [x, *_norm_params(rng, dtype, 4), {"mode": "train"}]


def _batchnorm_test(rng, dtype):
    x = (3 * rng.standard_normal((6, 4)) + 2).astype(dtype)
    bn_param = {
        "mode": "test",
        "running_mean": rng.standard_normal(4).astype(dtype),
        "running_var": rng.uniform(0.5, 2.0, 4).astype(dtype),
    }
    return [x, *_norm_params(rng, dtype, 4), bn_param]


def _layernorm(rng, dtype):
    x = (3 * rng.standard_normal((4, 6)) + 2).astype(dtype)
    return [x, *_norm_params(rng, dtype, 6), {}]


def _spatial_batchnorm_train(rng, dtype):
    x = (2 * rng.standard_normal((2, 3, 4, 5)) + 1).astype(dtype)
    return [x, *_norm_params(rng, dtype, 3), {"mode": "train"}]


def _spatial_batchnorm_test(rng, dtype):
    x = (2 * rng.standard_normal((2, 3, 4, 5)) + 1).astype(dtype)
    bn_param = {
        "mode": "test",
        "running_mean": rng.standard_normal(3).astype(dtype),
        "running_var": rng.uniform(0.5, 2.0, 3).astype(dtype),
    }
    return [x, *_norm_params(rng, dtype, 3), bn_param]


def _groupnorm(G):
    def setup(rng, dtype):
        x = (2 * rng.standard_normal((2, 6, 3, 4)) + 1).astype(dtype)
        return [x, *_norm_params(rng, dtype, (1, 6, 1, 1)), G, {}]

    return setup


def _dropout_train(rng, dtype):
    return [(rng.standard_normal((6, 7)) + 3).astype(dtype), {"mode": "train", "p": 0.6, "seed": 123}]


def _dropout_test(rng, dtype):
    return [(rng.standard_normal((6, 7)) + 3).astype(dtype), {"mode": "test", "p": 0.6}]


# Tolerances on the relative error (a wrong rule gives 1e-3 to 1): rel_error is a maximum over
# entries, and the numeric estimate of a small entry carries the rounding of the whole sum
# ``sum(out * dout)``, so x-gradients through batch statistics or strided convolutions are the
# noisiest (worst seen over 15 seeds: ~1e-6 for group norm, ~5e-7 for conv dx).
SHARP = 1e-8  # elementwise maps and fixed-statistics normalizations (worst seen ~4e-10)
LINEAR = 1e-7  # affine (worst seen ~2e-8)
CONV = 5e-6
NORM_DX = 1e-5

CASES = {
    "affine": Case(affine_forward, affine_backward, _affine, (0, 1, 2), (LINEAR,) * 3),
    "relu": Case(relu_forward, relu_backward, _relu, (0,), (SHARP,)),
    "conv_naive-stride2-pad1": Case(conv_forward_naive, conv_backward_naive, _conv, (0, 1, 2), (CONV,) * 3),
    "conv_naive-2x3-filter": Case(conv_forward_naive, conv_backward_naive, _conv_rect, (0, 1, 2), (CONV,) * 3),
    "max_pool_naive-overlapping": Case(max_pool_forward_naive, max_pool_backward_naive, _pool_overlapping, (0,), (SHARP,)),
    "max_pool_naive-2x3-window": Case(max_pool_forward_naive, max_pool_backward_naive, _pool_rect, (0,), (SHARP,)),
    "batchnorm-train": Case(batchnorm_forward, batchnorm_backward, _batchnorm_train, (0, 1, 2), (NORM_DX, SHARP, SHARP)),
    "batchnorm_alt-train": Case(batchnorm_forward, batchnorm_backward_alt, _batchnorm_train, (0, 1, 2), (NORM_DX, SHARP, SHARP)),
    "batchnorm-test": Case(batchnorm_forward, batchnorm_backward, _batchnorm_test, (0, 1, 2), (SHARP,) * 3),
    "batchnorm_alt-test": Case(batchnorm_forward, batchnorm_backward_alt, _batchnorm_test, (0, 1, 2), (SHARP,) * 3),
    "layernorm": Case(layernorm_forward, layernorm_backward, _layernorm, (0, 1, 2), (NORM_DX, SHARP, SHARP)),
    "spatial_batchnorm-train": Case(
        spatial_batchnorm_forward, spatial_batchnorm_backward, _spatial_batchnorm_train, (0, 1, 2), (NORM_DX, SHARP, SHARP)
    ),
    "spatial_batchnorm-test": Case(
        spatial_batchnorm_forward, spatial_batchnorm_backward, _spatial_batchnorm_test, (0, 1, 2), (SHARP,) * 3
    ),
    "spatial_groupnorm-G1": Case(
        spatial_groupnorm_forward, spatial_groupnorm_backward, _groupnorm(1), (0, 1, 2), (NORM_DX, SHARP, SHARP)
    ),
    "spatial_groupnorm-G2": Case(
        spatial_groupnorm_forward, spatial_groupnorm_backward, _groupnorm(2), (0, 1, 2), (NORM_DX, SHARP, SHARP)
    ),
    "spatial_groupnorm-G=C": Case(
        spatial_groupnorm_forward, spatial_groupnorm_backward, _groupnorm(6), (0, 1, 2), (NORM_DX, SHARP, SHARP)
    ),
    "dropout-train-seeded": Case(dropout_forward, dropout_backward, _dropout_train, (0,), (SHARP,)),
    "dropout-test": Case(dropout_forward, dropout_backward, _dropout_test, (0,), (SHARP,)),
}


def test_every_backward_function_has_a_gradient_check():
    public_backwards = {name for name in layers.__all__ if "_backward" in name}
    checked = {case.backward.__name__ for case in CASES.values()}
    assert public_backwards <= checked, f"no numeric gradient check for {sorted(public_backwards - checked)}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_matches_numeric_gradient(name):
    case = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    args = case.setup(rng, np.float64)
    out, cache = case.forward(*args)
    dout = rng.standard_normal(out.shape)
    grads = as_tuple(case.backward(dout, cache))
    assert len(grads) == len(case.wrt)
    expected = numeric_grads(case.forward, args, case.wrt, dout)
    for i, grad, num, tol in zip(case.wrt, grads, expected, case.tol):
        assert grad.shape == np.shape(args[i]), f"gradient {i} has the wrong shape"
        assert rel_error(num, grad) < tol, f"gradient of argument {i}: rel error {rel_error(num, grad):.2e}"


# --- batch normalization ---------------------------------------------------------------------


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


def test_batchnorm_backward_matches_numeric_gradient_notebook():
    np.random.seed(231)
    N, D = 4, 5
    x = 5 * np.random.randn(N, D) + 12
    gamma, beta = np.random.randn(D), np.random.randn(D)
    dout = np.random.randn(N, D)
    bn_param = {"mode": "train"}
    forward = lambda x, g, b: batchnorm_forward(x, g, b, bn_param)  # noqa: E731
    dx_num, dgamma_num, dbeta_num = numeric_grads(forward, [x, gamma, beta], (0, 1, 2), dout)
    _, cache = batchnorm_forward(x, gamma, beta, bn_param)
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        dx, dgamma, dbeta = backward(dout, cache)
        assert rel_error(dx_num, dx) < 1e-8  # notebook: 1.7e-09
        assert rel_error(dgamma_num, dgamma) < 1e-10
        assert rel_error(dbeta_num, dbeta) < 1e-10


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


# --- layer normalization ---------------------------------------------------------------------


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


def test_layernorm_backward_matches_numeric_gradient_notebook():
    np.random.seed(231)
    N, D = 4, 5
    x = 5 * np.random.randn(N, D) + 12
    gamma, beta = np.random.randn(D), np.random.randn(D)
    dout = np.random.randn(N, D)
    ln_param = {}
    forward = lambda x, g, b: layernorm_forward(x, g, b, ln_param)  # noqa: E731
    dx_num, dgamma_num, dbeta_num = numeric_grads(forward, [x, gamma, beta], (0, 1, 2), dout)
    _, cache = layernorm_forward(x, gamma, beta, ln_param)
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    assert rel_error(dx_num, dx) < 1e-8
    assert rel_error(dgamma_num, dgamma) < 1e-10
    assert rel_error(dbeta_num, dbeta) < 1e-10


# --- dropout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.25, 0.4, 0.7])
def test_dropout_keeps_the_mean_and_drops_a_fraction_1_minus_p(p):
    """``p`` is the probability of KEEPING a unit (inverted dropout scales the kept ones by 1/p)."""
    np.random.seed(231)
    x = np.random.randn(300, 300) + 10
    out_train, _ = dropout_forward(x, {"mode": "train", "p": p})
    out_test, _ = dropout_forward(x, {"mode": "test", "p": p})
    assert abs(out_train.mean() - x.mean()) < 0.03 * x.mean()
    assert abs(out_test.mean() - x.mean()) < 1e-12
    assert abs(np.mean(out_train == 0) - (1 - p)) < 0.01
    assert np.mean(out_test == 0) == 0
    kept = out_train != 0
    np.testing.assert_allclose(out_train[kept], x[kept] / p, rtol=1e-12)


def test_dropout_test_mode_is_the_identity_and_its_backward_too():
    x = np.random.default_rng(6).standard_normal((4, 5))
    out, cache = dropout_forward(x, {"mode": "test", "p": 0.3})
    np.testing.assert_array_equal(out, x)
    dout = np.random.default_rng(7).standard_normal((4, 5))
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)


def test_dropout_p_1_keeps_everything():
    x = np.random.default_rng(8).standard_normal((20, 20))
    out, _ = dropout_forward(x, {"mode": "train", "p": 1.0})
    np.testing.assert_array_equal(out, x)


def test_dropout_with_seed_draws_the_same_mask_each_call():
    x = np.ones((30, 40))
    np.random.seed(0)
    out1, cache1 = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 123})
    np.random.rand(7)  # whatever was drawn in between does not matter
    out2, cache2 = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 123})
    np.testing.assert_array_equal(out1, out2)
    assert 0 < np.mean(out1 == 0) < 1
    other, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 124})
    assert not np.array_equal(other, out1)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_dropout_with_seed_leaves_the_global_generator_where_the_course_does(mode):
    # A behaviour change (it used to draw from a private generator and leave the global one
    # alone): the course's dropout_forward calls np.random.seed(seed) whenever the seed is
    # given, in either mode, then draws the mask with np.random.rand, and the notebooks' later
    # unseeded draws, hence their printed numbers, depend on where that leaves the generator.
    x = np.ones((3, 4))
    np.random.seed(0)
    dropout_forward(x, {"mode": mode, "p": 0.5, "seed": 123})
    after = np.random.rand(5)
    np.random.seed(123)
    if mode == "train":
        keep = np.random.rand(3, 4) < 0.5
    np.testing.assert_array_equal(after, np.random.rand(5))
    if mode == "train":
        out, _ = dropout_forward(x, {"mode": mode, "p": 0.5, "seed": 123})
        np.testing.assert_array_equal(out, keep / 0.5)


def test_dropout_without_seed_uses_the_global_generator():
    x = np.ones((30, 40))
    np.random.seed(231)
    out1, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    out2, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    np.random.seed(231)
    again, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    assert not np.array_equal(out1, out2)  # the global generator moved on
    np.testing.assert_array_equal(again, out1)  # np.random.seed reproduces the notebook


def test_dropout_backward_matches_numeric_gradient_notebook():
    np.random.seed(231)
    x = np.random.randn(10, 10) + 10
    dout = np.random.randn(*x.shape)
    dropout_param = {"mode": "train", "p": 0.2, "seed": 123}
    _, cache = dropout_forward(x, dropout_param)
    dx = dropout_backward(dout, cache)
    (dx_num,) = numeric_grads(lambda x: dropout_forward(x, dropout_param), [x], (0,), dout)
    assert rel_error(dx, dx_num) < 1e-10  # notebook: 5.45e-11


# --- spatial batch normalization and group normalization --------------------------------------


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


def test_spatial_batchnorm_backward_matches_numeric_gradient_notebook():
    np.random.seed(231)
    N, C, H, W = 2, 3, 4, 5
    x = 5 * np.random.randn(N, C, H, W) + 12
    gamma, beta = np.random.randn(C), np.random.randn(C)
    dout = np.random.randn(N, C, H, W)
    bn_param = {"mode": "train"}
    forward = lambda x, g, b: spatial_batchnorm_forward(x, g, b, bn_param)  # noqa: E731
    dx_num, dgamma_num, dbeta_num = numeric_grads(forward, [x, gamma, beta], (0, 1, 2), dout)
    _, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    assert rel_error(dx_num, dx) < 1e-6  # notebook: 2.8e-07 (x ~ 12 +- 5 makes the numeric estimate noisy)
    assert rel_error(dgamma_num, dgamma) < 1e-10
    assert rel_error(dbeta_num, dbeta) < 1e-10


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


@pytest.mark.parametrize("G", [1, 2, 6])
def test_spatial_groupnorm_backward_matches_numeric_gradient_notebook(G):
    np.random.seed(231)
    N, C, H, W = 2, 6, 4, 5
    x = 5 * np.random.randn(N, C, H, W) + 12
    gamma, beta = np.random.randn(1, C, 1, 1), np.random.randn(1, C, 1, 1)
    dout = np.random.randn(N, C, H, W)
    gn_param = {}
    forward = lambda x, g, b: spatial_groupnorm_forward(x, g, b, G, gn_param)  # noqa: E731
    dx_num, dgamma_num, dbeta_num = numeric_grads(forward, [x, gamma, beta], (0, 1, 2), dout)
    _, cache = spatial_groupnorm_forward(x, gamma, beta, G, gn_param)
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    assert dgamma.shape == dbeta.shape == (1, C, 1, 1)
    assert rel_error(dx_num, dx) < 1e-6  # the notebook's data (x ~ 12 +- 5) limits the numeric estimate
    assert rel_error(dgamma_num, dgamma) < 1e-8
    assert rel_error(dbeta_num, dbeta) < 1e-8


# --------------------------------------------------------------------------------------------
# 3. dtype policy and no mutation, over every forward/backward pair
# --------------------------------------------------------------------------------------------


def _arrays(args):
    return [(i, a) for i, a in enumerate(args) if isinstance(a, np.ndarray)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_outputs_and_gradients_keep_the_input_dtype(name, dtype):
    case = CASES[name]
    rng = np.random.default_rng(11)
    args = case.setup(rng, dtype)
    out, cache = case.forward(*args)
    assert out.dtype == dtype
    grads = as_tuple(case.backward(rng.standard_normal(out.shape).astype(dtype), cache))
    for i, grad in zip(case.wrt, grads):
        assert grad.dtype == dtype, f"gradient of argument {i} is {grad.dtype}"


def _to_float32(arg):
    if isinstance(arg, np.ndarray):
        return arg.astype(np.float32)
    if isinstance(arg, dict):
        return {k: _to_float32(v) for k, v in arg.items()}
    return arg


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_results_agree_with_float64(name):
    """float32 is computed in float32, not just cast at the end: it agrees with float64 to ~1e-7."""
    case = CASES[name]
    args64 = case.setup(np.random.default_rng(17), np.float64)
    args32 = [_to_float32(a) for a in args64]
    out64, cache64 = case.forward(*args64)
    out32, cache32 = case.forward(*args32)
    dout = np.random.default_rng(18).standard_normal(out64.shape)
    pairs = [(out32, out64)] + list(
        zip(as_tuple(case.backward(dout.astype(np.float32), cache32)), as_tuple(case.backward(dout, cache64)))
    )
    for low, high in pairs:
        assert low.dtype == np.float32
        assert np.max(np.abs(low - high)) <= 1e-5 * np.max(np.abs(high)) + 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss])
def test_losses_keep_the_score_dtype(loss_fn, dtype):
    x = np.random.default_rng(12).standard_normal((5, 4)).astype(dtype)
    loss, dx = loss_fn(x, np.array([0, 1, 2, 3, 0]))
    assert isinstance(loss, float)
    assert dx.dtype == dtype


@pytest.mark.parametrize(
    "forward, args",
    [
        (
            affine_forward,
            lambda rng: (rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((3, 4)), rng.standard_normal(4)),
        ),
        (
            conv_forward_naive,
            lambda rng: (
                rng.standard_normal((1, 2, 4, 4)).astype(np.float32),
                rng.standard_normal((3, 2, 3, 3)),
                rng.standard_normal(3),
                {"stride": 1, "pad": 1},
            ),
        ),
        (
            batchnorm_forward,
            lambda rng: (rng.standard_normal((4, 3)).astype(np.float32), np.ones(3), np.zeros(3), {"mode": "train"}),
        ),
        (layernorm_forward, lambda rng: (rng.standard_normal((4, 3)).astype(np.float32), np.ones(3), np.zeros(3), {})),
    ],
    ids=["affine", "conv_naive", "batchnorm", "layernorm"],
)
def test_float64_parameters_do_not_upcast_float32_activations(forward, args):
    out, _ = forward(*args(np.random.default_rng(13)))
    assert out.dtype == np.float32


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_backward_do_not_mutate_their_inputs(name):
    case = CASES[name]
    rng = np.random.default_rng(14)
    args = case.setup(rng, np.float64)
    saved = copy.deepcopy(args)
    out, cache = case.forward(*args)
    dout = rng.standard_normal(out.shape)
    dout_saved = dout.copy()
    for i, a in _arrays(args):
        np.testing.assert_array_equal(a, saved[i], err_msg=f"forward changed argument {i}")
    out_saved = out.copy()
    case.backward(dout, cache)
    case.backward(dout, cache)  # a second backward must see the same cache
    np.testing.assert_array_equal(dout, dout_saved, err_msg="backward changed dout")
    np.testing.assert_array_equal(out, out_saved, err_msg="backward changed the forward output")
    for i, a in _arrays(args):
        np.testing.assert_array_equal(a, saved[i], err_msg=f"backward changed argument {i}")
    for i, a in enumerate(args):
        if isinstance(a, dict):
            # bn_param's running statistics are the one documented mutable input.
            for key in set(saved[i]) - {"running_mean", "running_var"}:
                assert a[key] == saved[i][key], f"{key!r} of argument {i} changed"


@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss])
def test_losses_do_not_mutate_their_inputs(loss_fn):
    x = np.random.default_rng(15).standard_normal((5, 4))
    y = np.array([0, 1, 2, 3, 0])
    x_saved, y_saved = x.copy(), y.copy()
    loss_fn(x, y)
    np.testing.assert_array_equal(x, x_saved)
    np.testing.assert_array_equal(y, y_saved)


def test_backward_twice_gives_the_same_gradients():
    """Caches are not consumed: a backward can be replayed (gradient checks rely on it)."""
    for name in ("batchnorm-train", "spatial_groupnorm-G2", "conv_naive-stride2-pad1", "dropout-train-seeded"):
        case = CASES[name]
        rng = np.random.default_rng(16)
        args = case.setup(rng, np.float64)
        out, cache = case.forward(*args)
        dout = rng.standard_normal(out.shape)
        first = as_tuple(case.backward(dout, cache))
        second = as_tuple(case.backward(dout, cache))
        for a, b in zip(first, second):
            np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------------
# Shapes (property-based)
# --------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    N=st.integers(1, 3),
    C=st.integers(1, 3),
    F=st.integers(1, 3),
    HH=st.integers(1, 4),
    WW=st.integers(1, 4),
    stride=st.integers(1, 3),
    pad=st.integers(0, 2),
    extra_h=st.integers(0, 2),
    extra_w=st.integers(0, 2),
)
def test_conv_forward_naive_output_shape_and_definition(N, C, F, HH, WW, stride, pad, extra_h, extra_w):
    # Build H, W so that the filters tile the padded input exactly, as the naive layer requires.
    H = max(1, HH - 2 * pad + stride * extra_h)
    W = max(1, WW - 2 * pad + stride * extra_w)
    assume(H + 2 * pad >= HH and W + 2 * pad >= WW)
    assume((H + 2 * pad - HH) % stride == 0 and (W + 2 * pad - WW) % stride == 0)
    rng = np.random.default_rng(N * 1000 + HH * 100 + WW * 10 + stride)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((F, C, HH, WW)), rng.standard_normal(F)
    out, _ = conv_forward_naive(x, w, b, {"stride": stride, "pad": pad})
    H_out, W_out = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
    assert out.shape == (N, F, H_out, W_out)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    i, j = H_out - 1, W_out - 1  # the last output position, computed by hand
    window = xp[:, :, i * stride : i * stride + HH, j * stride : j * stride + WW]
    expected = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    np.testing.assert_allclose(out[:, :, i, j], expected, rtol=1e-10, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    N=st.integers(1, 2),
    C=st.integers(1, 3),
    H=st.integers(1, 7),
    W=st.integers(1, 7),
    PH=st.integers(1, 3),
    PW=st.integers(1, 3),
    stride=st.integers(1, 3),
)
def test_max_pool_forward_naive_shape_and_values(N, C, H, W, PH, PW, stride):
    assume(PH <= H and PW <= W)
    x = np.random.default_rng(H * 10 + W).standard_normal((N, C, H, W))
    out, cache = max_pool_forward_naive(x, {"pool_height": PH, "pool_width": PW, "stride": stride})
    H_out, W_out = 1 + (H - PH) // stride, 1 + (W - PW) // stride
    assert out.shape == (N, C, H_out, W_out)
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * stride : i * stride + PH, j * stride : j * stride + PW]
            np.testing.assert_array_equal(out[:, :, i, j], window.max(axis=(2, 3)))
    # Every upstream derivative lands on exactly one input pixel: the totals agree.
    dout = np.random.default_rng(0).standard_normal(out.shape)
    dx = max_pool_backward_naive(dout, cache)
    np.testing.assert_allclose(dx.sum(axis=(2, 3)), dout.sum(axis=(2, 3)), rtol=1e-10, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    N=st.integers(1, 4),
    dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    M=st.integers(1, 5),
)
def test_affine_forward_flattens_any_example_shape(N, dims, M):
    rng = np.random.default_rng(N + M)
    x = rng.standard_normal((N, *dims))
    D = int(np.prod(dims))
    w, b = rng.standard_normal((D, M)), rng.standard_normal(M)
    out, cache = affine_forward(x, w, b)
    np.testing.assert_allclose(out, x.reshape(N, D) @ w + b, rtol=1e-12)
    dx, dw, db = affine_backward(np.ones((N, M)), cache)
    assert dx.shape == x.shape and dw.shape == (D, M) and db.shape == (M,)
