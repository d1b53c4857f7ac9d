"""Specification of :mod:`layerwise._layers.affine`: the affine and ReLU layers (their numeric gradients
are rows of tests/test_gradients.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layerwise.gradient_check import rel_error
from layerwise.layers import affine_backward, affine_forward, relu_forward


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_affine_backward_without_input_grad_matches_full_backward(dtype):
    from layerwise.layers import affine_backward, affine_forward

    rng = np.random.default_rng(8)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((4, 2, 3), (6, 5), (5,)))
    out, cache = affine_forward(x, w, b)
    dout = rng.standard_normal(out.shape).astype(dtype)
    _, dw, db = affine_backward(dout, cache)
    no_dx, *weights = affine_backward(dout, cache, input_grad=False)
    assert no_dx is None
    for mine, full in zip(weights, (dw, db)):
        assert mine.dtype == dtype
        np.testing.assert_array_equal(mine, full)
