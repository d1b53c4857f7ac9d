"""Helpers shared by the tests: numeric gradients, the table of every forward/backward pair of
:mod:`layerwise.layers` with its inputs, the shapes drawn for the convolution tests, convolution
plans with an algorithm taken away, and a small training run of the command line."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from layerwise._layers import conv_plan
from layerwise.gradient_check import eval_numerical_gradient_array
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
    global_avg_pool_backward,
    global_avg_pool_forward,
    global_max_pool_backward,
    global_max_pool_forward,
    layernorm_backward,
    layernorm_forward,
    max_pool_backward_naive,
    max_pool_forward_naive,
    relu_backward,
    relu_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)


def numeric_grads(forward, args, wrt, dout):
    """Numeric gradients of ``sum(forward(*args)[0] * dout)`` with respect to ``args[i]`` for i in wrt."""
    grads = []
    for i in wrt:

        def f(point, i=i):
            call = list(args)
            call[i] = point
            return forward(*call)[0]

        grads.append(eval_numerical_gradient_array(f, args[i], dout))
    return grads


def as_tuple(grads):
    """Backward functions with one input return a bare array; the others a tuple."""
    return grads if isinstance(grads, tuple) else (grads,)


# --------------------------------------------------------------------------------------------
# Every forward/backward pair of layerwise.layers, with inputs for any float dtype
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


def _global_pool(rng, dtype):
    return [_distinct(rng, (2, 3, 4, 5), dtype)]


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
    "global_avg_pool": Case(global_avg_pool_forward, global_avg_pool_backward, _global_pool, (0,), (SHARP,)),
    "global_max_pool": Case(global_max_pool_forward, global_max_pool_backward, _global_pool, (0,), (SHARP,)),
}


# --------------------------------------------------------------------------------------------
# Shapes for the convolution and pool tests
# --------------------------------------------------------------------------------------------

POOL_2X2 = {"pool_height": 2, "pool_width": 2, "stride": 2}

HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def conv_cases(draw, exact: bool):
    """(x shape, w shape, stride, pad) with the filter fitting the padded input."""
    N, C, F = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, 3))
    HH, WW = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    H = draw(st.integers(max(1, HH - 2 * pad), 9))
    W = draw(st.integers(max(1, WW - 2 * pad), 9))
    if exact:  # grow the input until the stride tiles it, as the naive layer requires
        H += (-(H + 2 * pad - HH)) % stride
        W += (-(W + 2 * pad - WW)) % stride
    return (N, C, H, W), (F, C, HH, WW), stride, pad


def conv_pair(dtype, shapes, seed):
    xs, ws, stride, pad = shapes
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    return x, w, b, {"stride": stride, "pad": pad}



# --------------------------------------------------------------------------------------------
# Convolution plans with an algorithm taken away, to compare the paths
# --------------------------------------------------------------------------------------------


def without(plan, algorithm: str):
    """``plan`` with every pass that ``algorithm`` would compute given to im2col instead."""
    passes = ("forward", "dx", "dw", "dw_only")
    return plan._replace(**{name: "im2col" for name in passes if getattr(plan, name) == algorithm})


def plans_without(monkeypatch, algorithm: str) -> None:
    """Every convolution planned from now on (in this test) computes ``algorithm``'s passes by im2col."""
    real = conv_plan.plan_convolution
    monkeypatch.setattr(conv_plan, "plan_convolution", lambda *args, **kw: without(real(*args, **kw), algorithm))


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------

SMALL = ["--sample", "--num-training", "200", "--num-validation", "50", "--num-test", "100", "--no-progress"]


def train_small(run_dir, *extra):
    """``layerwise train`` on a small part of the embedded sample, seeded, into ``run_dir``."""
    from layerwise.cli import main

    return main(["train", *SMALL, "--run-dir", str(run_dir), "--seed", "0", *extra])
