"""Specification of :mod:`layerwise._layers.pool_naive`: the notebook's forward cell, ties and the
definition on any shape (the numeric gradients are rows of tests/test_gradients.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from layerwise.gradient_check import rel_error
from layerwise.layers import max_pool_backward_naive, max_pool_forward_naive


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


def test_max_pool_backward_naive_gives_ties_to_the_first_maximum():
    x = np.zeros((1, 1, 2, 2))  # one window, four equal maxima
    _, cache = max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    dx = max_pool_backward_naive(np.array([[[[3.0]]]]), cache)
    np.testing.assert_array_equal(dx, [[[[3.0, 0.0], [0.0, 0.0]]]])


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
