"""Specification of :mod:`layerwise._layers.conv_naive`: the notebook's forward cells and the
definition on any shape (the numeric gradients are rows of tests/test_gradients.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from layerwise.gradient_check import rel_error
from layerwise.layers import conv_forward_naive


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
