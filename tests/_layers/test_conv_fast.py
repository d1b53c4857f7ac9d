"""Specification of :mod:`layerwise._layers.conv_fast`: the fast convolution agrees with the naive
layer, the definition and PyTorch on every geometry (strides, paddings, non-square and non-tiling
shapes), with either chunking; its numeric gradients are rows of tests/test_gradients.py."""

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

from tests.helpers import HYPOTHESIS, conv_pair, conv_cases


def test_notebook_conv_matches_naive(chunking):
    rng = np.random.default_rng(231)
    x = rng.standard_normal((100, 3, 31, 31))
    w = rng.standard_normal((25, 3, 3, 3))
    b = rng.standard_normal(25)
    param = {"stride": 2, "pad": 1}
    out_naive, cache_naive = conv_forward_naive(x, w, b, param)
    out_fast, cache_fast = conv_forward_fast(x, w, b, param)
    dout = rng.standard_normal(out_naive.shape)
    assert rel_error(out_naive, out_fast) < 1e-9
    for naive, fast in zip(conv_backward_naive(dout, cache_naive), conv_backward_fast(dout, cache_fast)):
        assert rel_error(naive, fast) < 1e-9


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, None)])
@HYPOTHESIS
@given(shapes=conv_cases(exact=True), seed=st.integers(0, 2**16), chunk=st.sampled_from([1, 256, 1 << 22]))
def test_conv_matches_naive(dtype, tol, shapes, seed, chunk, monkeypatch):
    monkeypatch.setattr(conv_plan_module, "CHUNK_BYTES", chunk)
    x, w, b, param = conv_pair(dtype, shapes, seed)
    out_n, cache_n = conv_forward_naive(x, w, b, param)
    out_f, cache_f = conv_forward_fast(x, w, b, param)
    dout = np.random.default_rng(seed + 1).standard_normal(out_n.shape).astype(dtype)
    # float32: errors grow with the length of each dot product, so scale eps by it.
    K = w[0].size
    for naive, fast in zip((out_n, *conv_backward_naive(dout, cache_n)), (out_f, *conv_backward_fast(dout, cache_f))):
        assert fast.dtype == dtype and fast.shape == naive.shape
        scale = 1 + np.max(np.abs(naive))
        bound = tol if tol is not None else 50 * np.finfo(dtype).eps * (K + out_n[0, 0].size * out_n.shape[0])
        assert np.max(np.abs(fast - naive)) <= bound * scale


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-4)])
@HYPOTHESIS
@given(shapes=conv_cases(exact=False), seed=st.integers(0, 2**16))
def test_conv_non_tiling_matches_brute_force(dtype, tol, shapes, seed):
    """Geometries the naive layer refuses: compare with the definition, written out once more."""
    x, w, b, param = conv_pair(dtype, shapes, seed)
    out, cache = conv_forward_fast(x, w, b, param)
    s, p = param["stride"], param["pad"]
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (p, p), (p, p)))
    F, _, HH, WW = w.shape
    expected = np.empty(out.shape)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            patch = xp[:, :, i * s : i * s + HH, j * s : j * s + WW]
            expected[:, :, i, j] = np.tensordot(patch, w.astype(np.float64), axes=([1, 2, 3], [1, 2, 3])) + b
    assert out.dtype == dtype
    assert np.max(np.abs(out - expected)) <= tol * (1 + np.max(np.abs(expected)))
    # Backward on such geometries: numeric gradients and PyTorch, below.
    dx, dw, db = conv_backward_fast(np.ones_like(out), cache)
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, b.shape)
    assert dx.dtype == dw.dtype == db.dtype == dtype


TORCH_CONV = [
    ((4, 3, 31, 31), (25, 3, 3, 3), 2, 1),
    ((3, 3, 32, 32), (8, 3, 7, 7), 1, 3),
    ((2, 4, 10, 13), (5, 4, 4, 3), 3, 2),  # non-tiling, non-square
    ((2, 8, 4, 4), (6, 8, 3, 3), 1, 1),
    ((2, 3, 9, 9), (4, 3, 2, 2), 2, 0),  # drops the last row and column
]


@pytest.mark.parametrize("x_shape, w_shape, stride, pad", TORCH_CONV)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_matches_torch(x_shape, w_shape, stride, pad, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, w_shape[:1]))
    out, cache = conv_forward_fast(x, w, b, {"stride": stride, "pad": pad})
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=pad)
    dout = rng.standard_normal(out.shape).astype(dtype)
    yt.backward(torch.tensor(dout))
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for mine, theirs in zip((out, *conv_backward_fast(dout, cache)), (yt, xt.grad, wt.grad, bt.grad)):
        theirs = theirs.detach().numpy()
        assert mine.shape == theirs.shape
        assert np.max(np.abs(mine - theirs)) <= tol * (1 + np.max(np.abs(theirs)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_backward_weights_matches_full_backward(dtype, chunking):
    from layerwise._layers.conv_fast import conv_backward_fast_weights

    x, w, b, param = conv_pair(dtype, ((3, 2, 9, 8), (4, 2, 3, 3), 1, 1), seed=6)
    out, cache = conv_forward_fast(x, w, b, param)
    dout = np.random.default_rng(7).standard_normal(out.shape).astype(dtype)
    _, dw, db = conv_backward_fast(dout, cache)
    dw_only, db_only = conv_backward_fast_weights(dout, cache)
    assert dw_only.dtype == db_only.dtype == dtype
    np.testing.assert_array_equal(dw_only, dw)
    np.testing.assert_array_equal(db_only, db)


@pytest.mark.parametrize("xs, ws, pad", [
    ((2, 3, 32, 32), (4, 3, 7, 7), 3),  # ThreeLayerConvNet: pitch W + pad = 35 for W_out = 32
    ((3, 2, 16, 16), (3, 2, 3, 3), 1),
    ((2, 2, 12, 12), (3, 2, 3, 3), 2),  # pad > WW - 1: pitch W_out
    ((2, 2, 12, 12), (3, 2, 3, 3), 0),  # no padding, pitch W
    ((2, 1, 11, 13), (2, 1, 5, 3), 2),  # non-square
])
def test_wide_layout_matches_naive(xs, ws, pad, chunking):
    x, w, b, param = conv_pair(np.float64, (xs, ws, 1, pad), 11)
    g = conv_fast_module.conv_inputs("test", x, w, b, param, exact=False)[3]
    assert conv_plan_module.column_layout(g) == "wide"
    out_n, cache_n = conv_forward_naive(x, w, b, param)
    out_f, cache_f = conv_forward_fast(x, w, b, param)
    dout = np.random.default_rng(12).standard_normal(out_n.shape)
    assert rel_error(out_n, out_f) < 1e-10
    for naive, fast in zip(conv_backward_naive(dout, cache_n), conv_backward_fast(dout, cache_f)):
        assert rel_error(naive, fast) < 1e-10
