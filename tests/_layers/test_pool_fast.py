"""Specification of :mod:`layerwise._layers.pool_fast`: the fast max pool is the naive layer to the
bit (ties, infinities, NaNs, signed zeros), with and without the compiled kernels, and agrees
with PyTorch; its numeric gradient is a row of tests/test_gradients.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from layerwise._layers.pool_naive import max_pool_backward_naive, max_pool_forward_naive
from layerwise.fast_layers import max_pool_backward_fast, max_pool_forward_fast
from layerwise.gradient_check import rel_error
from layerwise.layers import relu_backward

from tests.helpers import HYPOTHESIS, POOL_2X2


def test_notebook_pool_matches_naive_exactly():
    rng = np.random.default_rng(231)
    x = rng.standard_normal((100, 3, 32, 32))
    param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out_naive, cache_naive = max_pool_forward_naive(x, param)
    out_fast, cache_fast = max_pool_forward_fast(x, param)
    dout = rng.standard_normal(out_naive.shape)
    assert rel_error(out_naive, out_fast) == 0
    assert rel_error(max_pool_backward_naive(dout, cache_naive), max_pool_backward_fast(dout, cache_fast)) == 0


@st.composite
def pool_cases(draw):
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    PH, PW, stride = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    H, W = draw(st.integers(PH, 10)), draw(st.integers(PW, 10))
    ties = draw(st.booleans())
    return (N, C, H, W), {"pool_height": PH, "pool_width": PW, "stride": stride}, ties


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@HYPOTHESIS
@given(case=pool_cases(), seed=st.integers(0, 2**16))
def test_pool_matches_naive(dtype, case, seed):
    shape, param, ties = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    if ties:  # ReLU outputs: many windows whose maximum appears several times
        x = np.maximum(np.round(x), 0).astype(dtype)
    out_n, cache_n = max_pool_forward_naive(x, param)
    out_f, cache_f = max_pool_forward_fast(x, param)
    assert out_f.dtype == dtype and np.array_equal(out_f, out_n)
    dout = rng.standard_normal(out_n.shape).astype(dtype)
    dx_n, dx_f = max_pool_backward_naive(dout, cache_n), max_pool_backward_fast(dout, cache_f)
    assert dx_f.dtype == dtype
    # Overlapping windows add several derivatives; summed in another precision for float32.
    np.testing.assert_allclose(dx_f, dx_n, rtol=0, atol=8 * np.finfo(dtype).eps * (1 + np.abs(dout).sum()))


@pytest.mark.parametrize(
    "x_shape, PH, PW, stride",
    [((4, 3, 32, 32), 2, 2, 2), ((2, 4, 15, 15), 3, 3, 2), ((2, 3, 9, 8), 2, 3, 1), ((2, 2, 11, 7), 3, 2, 3)],
)
def test_pool_matches_torch(x_shape, PH, PW, stride):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = np.maximum(rng.standard_normal(x_shape), 0)  # ties at zero: torch also takes the first max
    out, cache = max_pool_forward_fast(x, {"pool_height": PH, "pool_width": PW, "stride": stride})
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.max_pool2d(xt, (PH, PW), stride)
    dout = rng.standard_normal(out.shape)
    yt.backward(torch.tensor(dout))
    np.testing.assert_array_equal(out, yt.detach().numpy())
    np.testing.assert_allclose(max_pool_backward_fast(dout, cache), xt.grad.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("param", [
    {"pool_height": 2, "pool_width": 2, "stride": 2},  # tiles
    {"pool_height": 2, "pool_width": 2, "stride": 3},  # disjoint, leaves gaps
    {"pool_height": 3, "pool_width": 3, "stride": 2},  # overlaps
])
def test_pool_backward_ignores_nonfinite_derivatives_of_other_windows(dtype, param):
    """An inf/NaN upstream derivative reaches only its window's first maximum, as in the naive layer."""
    x = np.zeros((1, 1, 7, 7), dtype=dtype)  # every window is one tie: its first element wins
    out, cache = max_pool_forward_fast(x, param)
    dout = np.full(out.shape, np.inf, dtype=dtype)
    dout[0, 0, 0, 0] = np.nan
    dx = max_pool_backward_fast(dout, cache)
    _, naive_cache = max_pool_forward_naive(x, param)
    np.testing.assert_array_equal(dx, max_pool_backward_naive(dout, naive_cache))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("param", [
    {"pool_height": 2, "pool_width": 2, "stride": 2},
    {"pool_height": 2, "pool_width": 2, "stride": 3},
    {"pool_height": 3, "pool_width": 3, "stride": 2},
])
def test_max_pool_relu_backward_is_relu_then_pool_backward(dtype, param):
    from layerwise._layers.pool_fast import max_pool_relu_backward
    from layerwise.layers import relu_backward

    rng = np.random.default_rng(15)
    x = np.round(2 * rng.standard_normal((2, 3, 9, 9))).astype(dtype)  # ties and non-positive maxima
    x[0, 0, :3, :3] = np.nan
    out, cache = max_pool_forward_fast(x, param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout[1, 1, 0, 0] = np.inf
    expected = max_pool_backward_fast(relu_backward(dout, out), cache)
    np.testing.assert_array_equal(max_pool_relu_backward(dout, out, cache), expected)
    with pytest.raises(ValueError, match="max_pool_relu_backward: relu_cache"):
        max_pool_relu_backward(dout, out[:1], cache)


CODE_PARAMS = [
    ((3, 4, 8, 10), {"pool_height": 2, "pool_width": 2, "stride": 2}),  # tiles
    ((3, 4, 9, 11), {"pool_height": 2, "pool_width": 2, "stride": 2}),  # leaves a row and a column
    ((3, 4, 11, 10), {"pool_height": 2, "pool_width": 3, "stride": 3}),  # disjoint, with gaps
    ((3, 4, 9, 9), {"pool_height": 3, "pool_width": 3, "stride": 2}),  # overlaps
    ((3, 4, 8, 8), {"pool_height": 4, "pool_width": 2, "stride": 1}),  # overlaps a lot
]


def _pool_input(kind: str, shape, dtype, rng) -> np.ndarray:
    x = rng.standard_normal(shape).astype(dtype)
    if kind == "ties":
        x = np.maximum(np.round(x), 0).astype(dtype)
    elif kind == "nonfinite":
        x[0, 0, :3, :3] = np.nan
        x[0, 1, 1, 1] = np.nan
        x[1, 1, :2, :] = np.inf  # ties of infinities
        x[1, 2, 2:4, 2:4] = -np.inf
        x[2, 2] = -np.inf  # windows of -inf only
        x[2, 3, 1::2, ::3] = np.nan
    elif kind == "signed zeros":  # -0.0 == +0.0: every window is a tie
        x = np.where(rng.random(shape) < 0.5, -0.0, 0.0).astype(dtype)
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, param", CODE_PARAMS)
@pytest.mark.parametrize("kind", ["random", "ties", "nonfinite", "signed zeros"])
@pytest.mark.parametrize("compiled", [False, True])
def test_pool_backward_is_the_naive_layers_to_the_bit(dtype, shape, param, kind, compiled, monkeypatch):
    """The forward records each window's first maximum (a NaN window's first NaN, as np.argmax
    picks) as an index into x; the backward adds the derivatives there in the naive layer's window
    order, so even overlapping windows give the naive result bit for bit, inf and NaN included. A
    cache built by hand as (x, pool_param, out) finds the maxima again and gives the same. So does
    the compiled scatter (where Numba is installed), one image per chunk here."""
    from layerwise._layers import kernels, pool_fast

    if compiled and not kernels.available:
        pytest.skip("numba is not installed")
    if compiled:
        kernels.warm_up(dtype)
    monkeypatch.setattr(kernels, "available", compiled)
    monkeypatch.setattr(pool_fast, "_CHUNK_BYTES", 1)
    monkeypatch.setattr(pool_fast, "_SCATTER_ALONE_BELOW", 0)
    rng = np.random.default_rng(21)
    x = _pool_input(kind, shape, dtype, rng)
    out, cache = max_pool_forward_fast(x, param)
    out_n, naive_cache = max_pool_forward_naive(x, param)
    np.testing.assert_array_equal(out, out_n)
    assert cache.index.shape == out.shape and cache.index.dtype == np.intp
    assert np.array_equal(x.ravel()[cache.index], out, equal_nan=True)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout[0, 2, 0, 0], dout[1, 0, 1, 1], dout[2, 1, 0, 1] = np.inf, np.nan, -np.inf
    bits = f"u{np.dtype(dtype).itemsize}"
    expected = max_pool_backward_naive(dout, naive_cache).view(bits)
    dx = max_pool_backward_fast(dout, cache)
    assert dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_array_equal(dx.view(bits), expected)
    by_hand = max_pool_backward_fast(dout, (x, param, out))
    np.testing.assert_array_equal(by_hand.view(bits), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, param", [case for case in CODE_PARAMS if case[1]["stride"] >= case[1]["pool_height"]])
@pytest.mark.parametrize("kind", ["random", "ties", "nonfinite", "signed zeros"])
def test_scatter_by_code_into_strided_target_equals_the_scatter(dtype, shape, param, kind):
    """The fused pair's backward writes by window offsets into a strided buffer: the same bits."""
    from layerwise._layers.pool_fast import first_max_code, pool_inputs, scatter_by_code

    rng = np.random.default_rng(25)
    x = _pool_input(kind, shape, dtype, rng)
    out, cache = max_pool_forward_fast(x, param)
    g = pool_inputs("test", x, param)[1]
    code = first_max_code(x, out, g, np.empty(out.shape, np.uint8))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout[0, 2, 0, 0], dout[1, 0, 1, 1] = np.inf, np.nan
    buffer = np.full((shape[1], shape[0], shape[2], shape[3] + 3), 7, dtype=dtype)  # (C, N, H, W + 3)
    target = buffer[..., : shape[3]].transpose(1, 0, 2, 3)
    scatter_by_code(code, dout, g, target)
    bits = f"u{np.dtype(dtype).itemsize}"
    np.testing.assert_array_equal(target.view(bits), max_pool_backward_fast(dout, cache).view(bits))
    assert np.all(buffer[..., shape[3] :] == 7)


def test_pool_backward_rejects_a_foreign_index():
    x = np.random.default_rng(23).standard_normal((2, 3, 8, 8)).astype(np.float32)
    out, cache = max_pool_forward_fast(x, POOL_2X2)
    with pytest.raises(TypeError, match="cache.index must be the indices made by max_pool_forward_fast"):
        max_pool_backward_fast(np.ones_like(out), cache._replace(index=cache.index.astype(np.int32)))
