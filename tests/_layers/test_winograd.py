"""Specification of :mod:`layerwise._layers.winograd`: the Winograd F(2x2, 3x3) forward, dx and dw agree
with the naive layer and the im2col path, and the rule that picks them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import layerwise._layers.conv_fast as conv_fast_module
import layerwise._layers.conv_plan as conv_plan_module
from layerwise._layers.conv_naive import conv_backward_naive, conv_forward_naive
from layerwise.fast_layers import conv_backward_fast, conv_forward_fast
from layerwise.gradient_check import rel_error

from tests.helpers import HYPOTHESIS, conv_pair


def _plan(g, dtype=np.float32):
    """The plan conv_forward_fast makes for geometry ``g``."""
    return conv_plan_module.plan_convolution(g, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("xs, F, pad", [
    ((2, 5, 8, 8), 3, 1),  # even output
    ((2, 4, 7, 9), 4, 1),  # odd output height
    ((1, 3, 6, 5), 2, 0),  # batch 1, odd width, no padding
    ((3, 2, 5, 6), 5, 2),  # pad 2
    ((1, 1, 3, 3), 1, 0),  # a single output pixel
    ((2, 3, 1, 4), 2, 2),  # fewer rows than the filter, padded up
])
def test_winograd_matches_naive(dtype, xs, F, pad, monkeypatch):
    monkeypatch.setattr(conv_plan_module, "WINOGRAD_MIN_CHANNELS", 1)
    x, w, b, param = conv_pair(dtype, (xs, (F, xs[1], 3, 3), 1, pad), 21)
    g = conv_fast_module.conv_inputs("test", x, w, b, param, exact=False)[3]
    assert _plan(g).forward == "winograd"
    out_n, _ = conv_forward_naive(x, w, b, param)
    out_f, cache = conv_forward_fast(x, w, b, param)
    assert out_f.dtype == dtype and out_f.shape == out_n.shape and out_f.flags.c_contiguous
    assert isinstance(cache, conv_fast_module.ConvFastCache) and cache.x is x
    scale = 1 + np.max(np.abs(out_n))
    bound = 1e-12 if dtype == np.float64 else 50 * np.finfo(dtype).eps * 9 * xs[1]
    assert np.max(np.abs(out_f - out_n)) <= bound * scale


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("xs, F, pad", [
    ((3, 32, 8, 8), 8, 1),  # at the threshold
    ((2, 48, 7, 6), 16, 1),  # odd height, above it
    ((1, 64, 5, 5), 4, 0),
    ((2, 40, 4, 3), 6, 2),
])
def test_winograd_large_channels_matches_im2col_and_naive(dtype, tol, xs, F, pad, monkeypatch):
    x, w, b, param = conv_pair(dtype, (xs, (F, xs[1], 3, 3), 1, pad), 22)
    out_w, cache = conv_forward_fast(x, w, b, param)
    monkeypatch.setattr(conv_plan_module, "WINOGRAD_MIN_CHANNELS", 10**9)
    out_i, _ = conv_forward_fast(x, w, b, param)
    out_n, _ = conv_forward_naive(x, w, b, param)
    assert out_w.dtype == dtype
    assert rel_error(out_w.astype(np.float64), out_n) < tol or np.max(np.abs(out_w - out_n)) < tol * np.max(np.abs(out_n))
    assert np.max(np.abs(out_w - out_i)) <= tol * np.max(np.abs(out_n))
    # The backward pass (im2col) is unchanged by which forward path ran.
    dout = np.random.default_rng(23).standard_normal(out_w.shape).astype(dtype)
    for a, c in zip(conv_backward_fast(dout, cache), conv_backward_fast(dout, conv_forward_fast(x, w, b, param)[1])):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("xs, ws, stride, expected", [
    ((1, 32, 8, 8), (4, 32, 3, 3), 1, True),
    ((1, 31, 8, 8), (4, 31, 3, 3), 1, False),  # below the channel threshold
    ((1, 64, 8, 8), (4, 64, 3, 3), 2, False),  # strided
    ((1, 64, 8, 8), (4, 64, 5, 5), 1, False),  # not 3x3
    ((1, 64, 8, 8), (4, 64, 3, 1), 1, False),
])
def test_winograd_dispatch_rule(xs, ws, stride, expected, monkeypatch):
    x, w, b, param = conv_pair(np.float32, (xs, ws, stride, 1), 24)
    g = conv_fast_module.conv_inputs("test", x, w, b, param, exact=False)[3]
    assert conv_plan_module.WINOGRAD_MIN_CHANNELS == 32
    assert (_plan(g).forward == "winograd") is expected
    calls = []
    monkeypatch.setattr(conv_fast_module, "winograd_forward", lambda *a: calls.append(1) or a[-1].fill(0))
    conv_forward_fast(x, w, b, param)
    assert bool(calls) is expected


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@HYPOTHESIS
@given(
    N=st.integers(1, 3), C=st.integers(1, 4), F=st.integers(1, 3), H=st.integers(1, 9), W=st.integers(1, 9),
    pad=st.integers(0, 3), seed=st.integers(0, 2**16), chunk=st.sampled_from([1, 1 << 20]),
)
def test_winograd_matches_naive_on_random_shapes(dtype, N, C, F, H, W, pad, seed, chunk, monkeypatch):
    if H + 2 * pad < 3 or W + 2 * pad < 3:
        return
    monkeypatch.setattr(conv_plan_module, "WINOGRAD_MIN_CHANNELS", 1)
    import layerwise._layers.winograd as winograd_module

    monkeypatch.setattr(conv_plan_module, "WINOGRAD_CHUNK_BYTES", chunk)
    x, w, b, param = conv_pair(dtype, ((N, C, H, W), (F, C, 3, 3), 1, pad), seed)
    out_n, _ = conv_forward_naive(x, w, b, param)
    out_f, _ = conv_forward_fast(x, w, b, param)
    scale = 1 + np.max(np.abs(out_n))
    bound = 1e-12 if dtype == np.float64 else 50 * np.finfo(dtype).eps * 9 * C
    assert np.max(np.abs(out_f - out_n)) <= bound * scale


def _winograd_dx_case(dtype, xs, F, pad, seed):
    x, w, b, param = conv_pair(dtype, (xs, (F, xs[1], 3, 3), 1, pad), seed)
    out_n, cache_n = conv_forward_naive(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), param)
    dout = np.random.default_rng(seed + 1).standard_normal(out_n.shape)
    return x, w, b, param, dout, conv_backward_naive(dout, cache_n)


def _fan_in(xs, F, pad):
    """Most terms in one sum of the backward pass: dx's 9*F, or dw's and db's N*H_out*W_out."""
    N, _, H, W = xs
    return max(9 * F, N * (H + 2 * pad - 2) * (W + 2 * pad - 2))


def _assert_backward_close(grads, grads_n, dtype, fan_in):
    bound = 1e-12 if dtype == np.float64 else 50 * np.finfo(dtype).eps * fan_in
    for got, ref in zip(grads, grads_n):
        assert got.dtype == dtype and got.shape == ref.shape and got.flags.c_contiguous
        assert np.max(np.abs(got - ref)) <= bound * (1 + np.max(np.abs(ref)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("xs, F, pad", [
    ((2, 5, 8, 8), 3, 1),  # even sizes
    ((2, 4, 7, 9), 4, 1),  # odd height
    ((1, 3, 6, 5), 2, 0),  # batch 1, odd width, no padding
    ((3, 2, 5, 6), 5, 2),  # pad 2: the dx convolution is unpadded
    ((1, 1, 3, 3), 1, 0),  # a single output pixel
    ((2, 3, 1, 4), 2, 2),  # fewer rows than the filter, padded up
    ((2, 3, 2, 2), 6, 1),
    ((1, 2, 9, 1), 3, 1),  # one column
])
def test_winograd_dx_matches_naive(dtype, xs, F, pad, monkeypatch):
    monkeypatch.setattr(conv_plan_module, "WINOGRAD_DX_MIN_CHANNELS", 1)
    x, w, b, param, dout, grads_n = _winograd_dx_case(dtype, xs, F, pad, 31)
    g = conv_fast_module.conv_inputs("test", x, w, b, param, exact=False)[3]
    assert _plan(g).dx == "winograd"
    _, cache = conv_forward_fast(x, w, b, param)
    grads = conv_backward_fast(dout.astype(dtype), cache)
    _assert_backward_close(grads, grads_n, dtype, _fan_in(xs, F, pad))


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("xs, F, pad", [
    ((3, 32, 8, 8), 8, 1),  # at the threshold
    ((2, 31, 6, 6), 40, 1),  # just below it: im2col
    ((2, 48, 7, 6), 16, 1),  # odd height, above it
    ((1, 64, 5, 5), 4, 0),
    ((2, 40, 4, 3), 33, 2),
])
def test_winograd_dx_large_channels_matches_im2col_and_naive(dtype, tol, xs, F, pad, monkeypatch):
    x, w, b, param, dout, grads_n = _winograd_dx_case(dtype, xs, F, pad, 32)
    dout = dout.astype(dtype)
    _, cache = conv_forward_fast(x, w, b, param)
    grads = conv_backward_fast(dout, cache)
    g = conv_fast_module.conv_inputs("test", x, w, b, param, exact=False)[3]
    dw_by_winograd = _plan(g, x.dtype).dw_only == "winograd"
    monkeypatch.setattr(conv_plan_module, "WINOGRAD_DX_MIN_CHANNELS", 10**9)
    _set_dw_threshold(monkeypatch, 10**9)
    grads_i = conv_backward_fast(dout, cache)
    for got, im2col, ref in zip(grads, grads_i, grads_n):
        assert got.dtype == dtype
        assert np.max(np.abs(got - ref)) <= tol * np.max(np.abs(ref))
        assert np.max(np.abs(got - im2col)) <= tol * np.max(np.abs(ref))
    if not dw_by_winograd:  # dw and db come from the same im2col chunks either way
        np.testing.assert_array_equal(grads[1], grads_i[1])
        np.testing.assert_array_equal(grads[2], grads_i[2])


@pytest.mark.parametrize("xs, ws, stride, pad, expected", [
    ((1, 32, 8, 8), (4, 32, 3, 3), 1, 1, True),
    ((1, 32, 8, 8), (2, 32, 3, 3), 1, 0, True),  # few filters: F does not matter
    ((1, 32, 8, 8), (4, 32, 3, 3), 1, 2, True),
    ((1, 32, 8, 8), (4, 32, 3, 3), 1, 3, False),  # the dx convolution would need padding -1
    ((1, 31, 8, 8), (64, 31, 3, 3), 1, 1, False),  # below the channel threshold, however many filters
    ((1, 64, 8, 8), (4, 64, 3, 3), 2, 1, False),  # strided
    ((1, 64, 8, 8), (4, 64, 5, 5), 1, 1, False),  # not 3x3
    ((1, 64, 8, 8), (4, 64, 3, 1), 1, 1, False),
])
def test_winograd_dx_dispatch_rule(xs, ws, stride, pad, expected, monkeypatch):
    x, w, b, param = conv_pair(np.float32, (xs, ws, stride, pad), 34)
    g = conv_fast_module.conv_inputs("test", x, w, b, param, exact=False)[3]
    assert conv_plan_module.WINOGRAD_DX_MIN_CHANNELS == 32
    assert (_plan(g).dx == "winograd") is expected
    out, cache = conv_forward_fast(x, w, b, param)
    calls = []
    real = conv_fast_module.winograd_dx
    monkeypatch.setattr(conv_fast_module, "winograd_dx", lambda *a: calls.append(1) or real(*a))
    conv_backward_fast(np.ones_like(out), cache)
    assert bool(calls) is expected
    # Only conv_backward_fast takes it: the fused and the weights-only backward never make dx this way.
    calls.clear()
    conv_fast_module.conv_backward_fast_weights(np.ones_like(out), cache)
    assert not calls


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("path", ["dx", "dw"])
@HYPOTHESIS
@given(
    N=st.integers(1, 3), C=st.integers(1, 4), F=st.integers(1, 4), H=st.integers(1, 9), W=st.integers(1, 9),
    pad=st.integers(0, 3), seed=st.integers(0, 2**16), chunk=st.sampled_from([1, 1 << 20]),
)
def test_winograd_backward_matches_naive_on_random_shapes(dtype, path, N, C, F, H, W, pad, seed, chunk, monkeypatch):
    """dx by Winograd (conv_backward_fast), or dw and db by Winograd (conv_backward_fast_weights)."""
    if H + 2 * pad < 3 or W + 2 * pad < 3:
        return
    import layerwise._layers.winograd as winograd_module

    if path == "dx":
        monkeypatch.setattr(conv_plan_module, "WINOGRAD_DX_MIN_CHANNELS", 1)
    else:
        _set_dw_threshold(monkeypatch, 1)
    monkeypatch.setattr(conv_plan_module, "WINOGRAD_CHUNK_BYTES", chunk)
    x, w, b, param, dout, grads_n = _winograd_dx_case(dtype, (N, C, H, W), F, pad, seed)
    _, cache = conv_forward_fast(x, w, b, param)
    if path == "dx":
        grads = conv_backward_fast(dout.astype(dtype), cache)
    else:
        grads, grads_n = conv_fast_module.conv_backward_fast_weights(dout.astype(dtype), cache), grads_n[1:]
    _assert_backward_close(grads, grads_n, dtype, _fan_in((N, C, H, W), F, pad))


def _set_dw_threshold(monkeypatch, channels: int) -> None:
    """Both dw thresholds (with Numba's transforms and without) set to ``channels``."""
    monkeypatch.setattr(conv_plan_module, "WINOGRAD_DW_MIN_CHANNELS", channels)
    monkeypatch.setattr(conv_plan_module, "WINOGRAD_DW_MIN_CHANNELS_NUMPY", channels)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("input_grad", [True, False])
@pytest.mark.parametrize("xs, F, pad", [
    ((2, 5, 8, 8), 3, 1),
    ((2, 4, 7, 9), 4, 1),  # odd sizes: the last tile row and column are half outside
    ((1, 3, 6, 5), 2, 0),
    ((3, 2, 5, 6), 5, 2),
    ((2, 3, 4, 4), 2, 3),  # pad 3: dw by Winograd, dx by im2col (and so dw too)
    ((1, 1, 3, 3), 1, 0),
    ((2, 3, 1, 4), 2, 2),
])
def test_winograd_dw_matches_naive(dtype, input_grad, xs, F, pad, monkeypatch):
    _set_dw_threshold(monkeypatch, 1)
    x, w, b, param, dout, grads_n = _winograd_dx_case(dtype, xs, F, pad, 36)
    g = conv_fast_module.conv_inputs("test", x, w, b, param, exact=False)[3]
    assert _plan(g, x.dtype).dw_only == "winograd"
    _, cache = conv_forward_fast(x, w, b, param)
    if input_grad:
        grads = conv_backward_fast(dout.astype(dtype), cache)
    else:
        grads = conv_fast_module.conv_backward_fast_weights(dout.astype(dtype), cache)
        grads_n = grads_n[1:]
    _assert_backward_close(grads, grads_n, dtype, _fan_in(xs, F, pad))


@pytest.mark.parametrize("xs, ws, stride, expected", [
    ((1, 32, 8, 8), (4, 32, 3, 3), 1, True),  # with Numba's transforms; without, from 64
    ((1, 64, 8, 8), (4, 64, 3, 3), 1, True),
    ((1, 31, 8, 8), (128, 31, 3, 3), 1, False),  # below the channel threshold
    ((1, 64, 8, 8), (4, 64, 3, 3), 2, False),  # strided
    ((1, 64, 8, 8), (4, 64, 5, 5), 1, False),  # not 3x3
])
def test_winograd_dw_dispatch_rule(xs, ws, stride, expected):
    x, w, b, param = conv_pair(np.float32, (xs, ws, stride, 1), 37)
    g = conv_fast_module.conv_inputs("test", x, w, b, param, exact=False)[3]
    assert conv_plan_module.WINOGRAD_DW_MIN_CHANNELS == 32
    assert conv_plan_module.WINOGRAD_DW_MIN_CHANNELS_NUMPY == 64
    compiled = conv_plan_module.kernels.serves(x.dtype)
    assert (_plan(g, x.dtype).dw_only == "winograd") is (expected and (compiled or xs[1] >= 64))


def test_winograd_filter_transform_is_g_w_gt():
    from layerwise._layers.winograd import _G, filter_transform

    w = np.random.default_rng(35).standard_normal((5, 3, 3, 3))
    u = filter_transform(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # strided input, as for dx
    expected = (_G @ w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3) @ _G.T).transpose(2, 3, 1, 0).reshape(16, 5, 3)
    np.testing.assert_allclose(u, expected, rtol=0, atol=1e-14)
