"""The fast convolution and max-pool layers agree with the naive references, PyTorch and numeric
gradients, on every geometry (strides, paddings, non-square and non-tiling shapes, overlapping
pools), keep the input dtype and refuse bad input with the naive layers' messages."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import layerwise._layers.conv_fast as conv_fast_module
import layerwise._layers.conv_plan as conv_plan_module
from layerwise._layers.conv_naive import conv_backward_naive, conv_forward_naive
from layerwise._layers.pool_naive import max_pool_backward_naive, max_pool_forward_naive
from layerwise.fast_layers import (
    conv_backward_fast,
    conv_backward_strides,
    conv_forward_fast,
    conv_forward_strides,
    max_pool_backward_fast,
    max_pool_forward_fast,
)

HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _plan(g, dtype=np.float32):
    """The plan conv_forward_fast makes for geometry ``g``."""
    return conv_plan_module.plan_convolution(g, dtype)


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """cs231n's relative error: max |a - b| / max(1e-8, |a| + |b|)."""
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def numeric_gradient(f, x: np.ndarray, df: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of ``sum(f(x) * df)`` with respect to ``x`` (float64)."""
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + h
        plus = np.sum(f(x) * df)
        flat[k] = old - h
        minus = np.sum(f(x) * df)
        flat[k] = old
        gflat[k] = (plus - minus) / (2 * h)
    return grad


@pytest.fixture(params=[1 << 22, 1], ids=["one-chunk", "chunk-per-image"])
def chunking(request, monkeypatch):
    """Run conv tests both with the default chunking and with one image per chunk."""
    monkeypatch.setattr(conv_plan_module, "CHUNK_BYTES", request.param)


# --- the notebook's checks -------------------------------------------------------------------


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


def test_notebook_pool_matches_naive_exactly():
    rng = np.random.default_rng(231)
    x = rng.standard_normal((100, 3, 32, 32))
    param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out_naive, cache_naive = max_pool_forward_naive(x, param)
    out_fast, cache_fast = max_pool_forward_fast(x, param)
    dout = rng.standard_normal(out_naive.shape)
    assert rel_error(out_naive, out_fast) == 0
    assert rel_error(max_pool_backward_naive(dout, cache_naive), max_pool_backward_fast(dout, cache_fast)) == 0


def test_cs231n_aliases():
    assert conv_forward_strides is conv_forward_fast
    assert conv_backward_strides is conv_backward_fast


# --- agreement with the naive layers on many shapes -----------------------------------------


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


def _conv_pair(dtype, shapes, seed):
    xs, ws, stride, pad = shapes
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    return x, w, b, {"stride": stride, "pad": pad}


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, None)])
@HYPOTHESIS
@given(shapes=conv_cases(exact=True), seed=st.integers(0, 2**16), chunk=st.sampled_from([1, 256, 1 << 22]))
def test_conv_matches_naive(dtype, tol, shapes, seed, chunk, monkeypatch):
    monkeypatch.setattr(conv_plan_module, "CHUNK_BYTES", chunk)
    x, w, b, param = _conv_pair(dtype, shapes, seed)
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


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-4)])
@HYPOTHESIS
@given(shapes=conv_cases(exact=False), seed=st.integers(0, 2**16))
def test_conv_non_tiling_matches_brute_force(dtype, tol, shapes, seed):
    """Geometries the naive layer refuses: compare with the definition, written out once more."""
    x, w, b, param = _conv_pair(dtype, shapes, seed)
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


# --- numeric gradients -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, pad",
    [
        ((2, 3, 5, 6), (3, 3, 3, 3), 1, 1),
        ((2, 2, 8, 6), (3, 2, 3, 2), 2, 1),  # non-square filter, stride does not tile
        ((1, 2, 7, 7), (2, 2, 4, 4), 3, 2),  # filter larger than stride, non-tiling
        ((2, 1, 5, 5), (2, 1, 1, 1), 2, 0),
    ],
)
def test_conv_backward_numeric(x_shape, w_shape, stride, pad, chunking):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    param = {"stride": stride, "pad": pad}
    out, cache = conv_forward_fast(x, w, b, param)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward_fast(dout, cache)
    assert rel_error(dx, numeric_gradient(lambda a: conv_forward_fast(a, w, b, param)[0], x, dout)) < 1e-7
    assert rel_error(dw, numeric_gradient(lambda a: conv_forward_fast(x, a, b, param)[0], w, dout)) < 1e-7
    assert rel_error(db, numeric_gradient(lambda a: conv_forward_fast(x, w, a, param)[0], b, dout)) < 1e-7


@pytest.mark.parametrize(
    "x_shape, PH, PW, stride",
    [((2, 3, 8, 8), 2, 2, 2), ((2, 2, 7, 9), 3, 2, 2), ((1, 2, 7, 7), 3, 3, 1), ((2, 1, 9, 6), 2, 3, 3)],
)
def test_pool_backward_numeric(x_shape, PH, PW, stride):
    # Distinct values a few h apart: finite differences never cross a tie.
    x = np.random.default_rng(1).permutation(np.prod(x_shape)).reshape(x_shape) * 0.01
    param = {"pool_height": PH, "pool_width": PW, "stride": stride}
    out, cache = max_pool_forward_fast(x, param)
    dout = np.random.default_rng(2).standard_normal(out.shape)
    numeric = numeric_gradient(lambda a: max_pool_forward_fast(a, param)[0], x, dout)
    assert rel_error(max_pool_backward_fast(dout, cache), numeric) < 1e-7


# --- dtype and purity ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_inputs_untouched(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3))  # float64 weights must not upcast float32 activations
    b = rng.standard_normal(4)
    originals = [a.copy() for a in (x, w, b)]
    out, cache = conv_forward_fast(x, w, b, {"stride": 2, "pad": 1})
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout_copy = dout.copy()
    grads = conv_backward_fast(dout, cache)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    pooled, pcache = max_pool_forward_fast(x, {"pool_height": 3, "pool_width": 2, "stride": 2})
    pdout = rng.standard_normal(pooled.shape).astype(dtype)
    assert pooled.dtype == dtype and max_pool_backward_fast(pdout, pcache).dtype == dtype
    for before, after in zip(originals, (x, w, b)):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(dout, dout_copy)


def test_caches_are_named_tuples():
    x = np.zeros((1, 1, 4, 4))
    _, cache = conv_forward_fast(x, np.zeros((1, 1, 3, 3)), np.zeros(1), {"stride": 1, "pad": 1})
    assert cache.x is x and cache.conv_param == {"stride": 1, "pad": 1}
    _, pcache = max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    assert pcache.x is x and pcache.out.shape == (1, 1, 2, 2)


# --- bad input: the naive layers' messages ---------------------------------------------------

BAD_CONV = [
    (np.zeros((2, 4, 8, 8)), np.zeros((5, 3, 3, 3)), np.zeros(5), {"stride": 1, "pad": 1},
     ValueError, "x has 4 channels but w expects 3"),
    (np.zeros((2, 3, 4, 4)), np.zeros((5, 3, 7, 7)), np.zeros(5), {"stride": 1, "pad": 0},
     ValueError, "filter of size 7x7 does not fit the padded input of size 4x4"),
    (np.zeros((2, 3, 8, 8)), np.zeros((5, 3, 3, 3)), np.zeros(5), {"stride": 0, "pad": 1},
     ValueError, "conv_param['stride'] must be >= 1, got 0"),
    (np.zeros((2, 3, 8, 8)), np.zeros((5, 3, 3, 3)), np.zeros(5), {"stride": 1.5, "pad": 1},
     TypeError, "conv_param['stride'] must be an int"),
    (np.zeros((2, 3, 8, 8), dtype=int), np.zeros((5, 3, 3, 3)), np.zeros(5), {"stride": 1, "pad": 1},
     TypeError, "x must have a floating dtype"),
    (np.zeros((2, 3, 8, 8)), np.zeros((5, 3, 3, 3)), np.zeros(4), {"stride": 1, "pad": 1},
     ValueError, "b must have shape (5,)"),
]


@pytest.mark.parametrize("x, w, b, param, error, message", BAD_CONV)
def test_conv_bad_input(x, w, b, param, error, message):
    with pytest.raises(error) as fast:
        conv_forward_fast(x, w, b, param)
    with pytest.raises(error) as naive:
        conv_forward_naive(x, w, b, param)
    assert message in str(fast.value)
    assert str(fast.value).replace("conv_forward_fast", "conv_forward_naive") == str(naive.value)


BAD_POOL = [
    (np.zeros((2, 3, 4, 4)), {"pool_height": 5, "pool_width": 2, "stride": 2}, ValueError,
     "pool window 5x2 must fit the input of size 4x4"),
    (np.zeros((2, 3, 4, 4)), {"pool_height": 2, "pool_width": 2, "stride": -1}, ValueError,
     "pool_param['stride'] must be >= 1, got -1"),
    (np.zeros((2, 3, 4, 4)), {"pool_height": 2, "stride": 2}, ValueError, "must contain 'pool_width'"),
    (np.zeros((3, 4, 4)), {"pool_height": 2, "pool_width": 2, "stride": 2}, ValueError, "x must be a 4-d array"),
]


@pytest.mark.parametrize("x, param, error, message", BAD_POOL)
def test_pool_bad_input(x, param, error, message):
    with pytest.raises(error) as fast:
        max_pool_forward_fast(x, param)
    with pytest.raises(error) as naive:
        max_pool_forward_naive(x, param)
    assert message in str(fast.value)
    assert str(fast.value).replace("max_pool_forward_fast", "max_pool_forward_naive") == str(naive.value)


def test_backward_checks_dout_shape():
    x = np.zeros((2, 3, 8, 8))
    _, cache = conv_forward_fast(x, np.zeros((4, 3, 3, 3)), np.zeros(4), {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match="dout must have the shape of the forward output"):
        conv_backward_fast(np.zeros((2, 4, 7, 7)), cache)
    _, pcache = max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(ValueError, match="dout must have the shape of the forward output"):
        max_pool_backward_fast(np.zeros((2, 3, 3, 4)), pcache)
    with pytest.raises(TypeError, match="cache must be the 3-tuple"):
        max_pool_backward_fast(np.zeros((2, 3, 4, 4)), cache)


# --- PyTorch, where installed ------------------------------------------------------------------

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


# --- paths for a network's first layer and the fused sandwich ---------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_backward_weights_matches_full_backward(dtype, chunking):
    from layerwise._layers.conv_fast import conv_backward_fast_weights

    x, w, b, param = _conv_pair(dtype, ((3, 2, 9, 8), (4, 2, 3, 3), 1, 1), seed=6)
    out, cache = conv_forward_fast(x, w, b, param)
    dout = np.random.default_rng(7).standard_normal(out.shape).astype(dtype)
    _, dw, db = conv_backward_fast(dout, cache)
    dw_only, db_only = conv_backward_fast_weights(dout, cache)
    assert dw_only.dtype == db_only.dtype == dtype
    np.testing.assert_array_equal(dw_only, dw)
    np.testing.assert_array_equal(db_only, db)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_affine_backward_weights_matches_full_backward(dtype):
    from layerwise._layers.affine import affine_backward_weights
    from layerwise.layers import affine_backward, affine_forward

    rng = np.random.default_rng(8)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((4, 2, 3), (6, 5), (5,)))
    out, cache = affine_forward(x, w, b)
    dout = rng.standard_normal(out.shape).astype(dtype)
    _, dw, db = affine_backward(dout, cache)
    for mine, full in zip(affine_backward_weights(dout, cache), (dw, db)):
        assert mine.dtype == dtype
        np.testing.assert_array_equal(mine, full)


@pytest.mark.parametrize("ties", [False, True])
def test_conv_relu_pool_equals_the_layers_in_order(ties):
    """The sandwich pools before its ReLU; outputs and gradients equal conv -> relu -> pool's."""
    from layerwise.layer_utils import (
        _conv_relu_pool_backward,
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
    dx, dw, db = _conv_relu_pool_backward(dout, cache, input_grad=False)
    assert dx is None
    np.testing.assert_array_equal(dw, expected_grads[1])
    np.testing.assert_array_equal(db, expected_grads[2])


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


def test_select_is_where_without_branches():
    from layerwise._layers.masking import select

    rng = np.random.default_rng(10)
    for dtype in (np.float32, np.float64):
        values = rng.standard_normal((5, 6)).astype(dtype)
        values[0, :3] = [np.inf, -np.inf, np.nan]
        mask = rng.random((5, 6)) < 0.5
        mask[0, :3] = False
        out = np.empty((5, 12), dtype=dtype)[:, ::2]  # a strided target
        result = select(mask, values, out)
        assert result is out
        np.testing.assert_array_equal(out, np.where(mask, values, 0))
        assert not np.signbit(out[~mask]).any()


# --- scratch buffers, the wide layout and the fused ReLU-pool backward -----------------------


@pytest.mark.parametrize("xs, ws, pad", [
    ((2, 3, 32, 32), (4, 3, 7, 7), 3),  # ThreeLayerConvNet: pitch W + pad = 35 for W_out = 32
    ((3, 2, 16, 16), (3, 2, 3, 3), 1),
    ((2, 2, 12, 12), (3, 2, 3, 3), 2),  # pad > WW - 1: pitch W_out
    ((2, 2, 12, 12), (3, 2, 3, 3), 0),  # no padding, pitch W
    ((2, 1, 11, 13), (2, 1, 5, 3), 2),  # non-square
])
def test_wide_layout_matches_naive(xs, ws, pad, chunking):
    x, w, b, param = _conv_pair(np.float64, (xs, ws, 1, pad), 11)
    g = conv_fast_module.conv_inputs("test", x, w, b, param, exact=False)[3]
    assert conv_plan_module.column_layout(g) == "wide"
    out_n, cache_n = conv_forward_naive(x, w, b, param)
    out_f, cache_f = conv_forward_fast(x, w, b, param)
    dout = np.random.default_rng(12).standard_normal(out_n.shape)
    assert rel_error(out_n, out_f) < 1e-10
    for naive, fast in zip(conv_backward_naive(dout, cache_n), conv_backward_fast(dout, cache_f)):
        assert rel_error(naive, fast) < 1e-10


def test_reused_scratch_does_not_leak_between_calls():
    """Scratch buffers are reused, but a cache from an earlier call still gives its own gradients."""
    rng = np.random.default_rng(13)
    conv_param, pool_param = {"stride": 1, "pad": 3}, {"pool_height": 2, "pool_width": 2, "stride": 2}
    x1, x2 = rng.standard_normal((2, 4, 3, 32, 32)).astype(np.float32)
    w, b = rng.standard_normal((8, 3, 7, 7)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    out1, cache1 = conv_forward_fast(x1, w, b, conv_param)
    expected_out1 = out1.copy()
    dout = rng.standard_normal(out1.shape).astype(np.float32)
    expected = conv_backward_fast(dout, cache1)
    pooled1, pool_cache1 = max_pool_forward_fast(out1, pool_param)
    dpooled = rng.standard_normal(pooled1.shape).astype(np.float32)
    expected_pool = max_pool_backward_fast(dpooled, pool_cache1)
    # Other calls, of other shapes, in between: they reuse (and overwrite) every scratch buffer.
    out2, cache2 = conv_forward_fast(x2[:, :2, :20], w[:, :2], b, {"stride": 1, "pad": 1})
    conv_backward_fast(np.ones_like(out2), cache2)
    pooled2, pool_cache2 = max_pool_forward_fast(out2, pool_param)
    max_pool_backward_fast(np.ones_like(pooled2), pool_cache2)
    np.testing.assert_array_equal(out1, expected_out1)
    for again, first in zip(conv_backward_fast(dout, cache1), expected):
        np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(max_pool_backward_fast(dpooled, pool_cache1), expected_pool)


def test_conv_in_threads_matches_one_thread():
    """Each thread has its own scratch buffers, so concurrent calls do not corrupt each other."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(14)
    param = {"stride": 1, "pad": 3}
    inputs = [rng.standard_normal((3, 3, 32, 32)).astype(np.float32) for _ in range(8)]
    w, b = rng.standard_normal((8, 3, 7, 7)).astype(np.float32), rng.standard_normal(8).astype(np.float32)

    def run(x):
        out, cache = conv_forward_fast(x, w, b, param)
        return (out, *conv_backward_fast(out, cache))

    expected = [run(x) for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, inputs * 3))
    for got, want in zip(results, expected * 3):
        for a, c in zip(got, want):
            np.testing.assert_array_equal(a, c)


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


def test_scratch_arrays_are_aligned_and_reused():
    from layerwise._layers.scratch import scratch

    a = scratch("test.a", (3, 5), np.float32)
    assert a.shape == (3, 5) and a.dtype == np.float32 and a.flags.c_contiguous
    assert a.ctypes.data % 64 == 0
    b = scratch("test.a", (2, 7), np.float64)
    assert np.shares_memory(a, b) or b.nbytes > a.nbytes
    assert not np.shares_memory(scratch("test.b", (3, 5), np.float32), scratch("test.a", (3, 5), np.float32))


# --- the conv -> pool pair fused chunk by chunk (layerwise._layers.conv_pool) -----------------

POOL_2X2 = {"pool_height": 2, "pool_width": 2, "stride": 2}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties_in", [None, 0, 4])
@pytest.mark.parametrize("pool_param", [POOL_2X2, {"pool_height": 2, "pool_width": 3, "stride": 3}])
@pytest.mark.parametrize("compiled", [False, True])
def test_fused_conv_relu_pool_equals_unfused(dtype, ties_in, pool_param, compiled, chunking, monkeypatch):
    """The fused chunk-by-chunk passes give the layers' own results, bit for bit, ties included
    (one image of integer values: the windows' first maxima must be the same), with the compiled
    pool kernel (where Numba is installed) and without it."""
    from layerwise._layers import kernels

    if compiled and not kernels.available:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(kernels, "available", compiled)
    from layerwise._layers.conv_fast import conv_backward_fast_weights
    from layerwise._layers.pool_fast import max_pool_relu_backward
    from layerwise.layer_utils import (
        _conv_relu_pool_backward,
        conv_relu_pool_backward,
        conv_relu_pool_forward,
    )
    from layerwise.layers import relu_forward

    rng = np.random.default_rng(18)
    x = rng.standard_normal((5, 3, 12, 13)).astype(dtype)
    w, b = rng.standard_normal((4, 3, 3, 3)).astype(dtype), rng.standard_normal(4).astype(dtype)
    if ties_in is not None:
        x[ties_in] = np.round(x[ties_in])
        w, b = np.round(2 * w), np.round(b)  # integer conv outputs: ties in image ties_in
    conv_param = {"stride": 1, "pad": 1}
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    pooled, pool_cache = max_pool_forward_fast(a, pool_param)
    expected_out, relu_cache = relu_forward(pooled)
    out, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    assert cache[0].code is not None  # the fused path
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(cache[1], relu_cache)

    dout = rng.standard_normal(out.shape).astype(dtype)
    da = max_pool_relu_backward(dout, relu_cache, pool_cache)
    expected = conv_backward_fast(da, conv_cache)
    for mine, theirs in zip(conv_relu_pool_backward(dout, cache), expected):
        assert mine.dtype == dtype
        np.testing.assert_array_equal(mine, theirs)
    dx, dw, db = _conv_relu_pool_backward(dout, cache, input_grad=False)
    assert dx is None
    for mine, theirs in zip((dw, db), conv_backward_fast_weights(da, conv_cache)):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("xs, ws, pool_param", [
    ((2, 32, 8, 8), (4, 32, 3, 3), POOL_2X2),  # a Winograd convolution
    ((2, 3, 9, 9), (4, 3, 3, 3), {"pool_height": 3, "pool_width": 3, "stride": 2}),  # overlapping windows
])
def test_conv_relu_pool_runs_the_layers_in_turn_where_it_cannot_fuse(xs, ws, pool_param):
    from layerwise.layer_utils import conv_relu_pool_backward, conv_relu_pool_forward
    from layerwise.layers import relu_backward, relu_forward

    rng = np.random.default_rng(24)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    conv_param = {"stride": 1, "pad": 1}
    out, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    assert cache[0].code is None and cache[0].pool is not None
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    pooled, pool_cache = max_pool_forward_fast(a, pool_param)
    expected, relu_cache = relu_forward(pooled)
    np.testing.assert_array_equal(out, expected)
    dout = rng.standard_normal(out.shape)
    grads = conv_backward_fast(max_pool_backward_fast(relu_backward(dout, relu_cache), pool_cache), conv_cache)
    for mine, theirs in zip(conv_relu_pool_backward(dout, cache), grads):
        np.testing.assert_array_equal(mine, theirs)


def test_fused_conv_relu_pool_caches_survive_other_calls():
    """The fused passes reuse scratch buffers; an earlier cache still gives its own gradients."""
    from layerwise.layer_utils import conv_relu_pool_backward, conv_relu_pool_forward

    rng = np.random.default_rng(19)
    x1 = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    w, b = rng.standard_normal((8, 3, 7, 7)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    out1, cache1 = conv_relu_pool_forward(x1, w, b, {"stride": 1, "pad": 3}, POOL_2X2)
    expected_out1 = out1.copy()
    dout = rng.standard_normal(out1.shape).astype(np.float32)
    expected = [g.copy() for g in conv_relu_pool_backward(dout, cache1)]
    x2 = rng.standard_normal((3, 2, 20, 20)).astype(np.float32)
    out2, cache2 = conv_relu_pool_forward(x2, w[:, :2, :3, :3], b, {"stride": 1, "pad": 1}, POOL_2X2)
    conv_relu_pool_backward(np.ones_like(out2), cache2)
    np.testing.assert_array_equal(out1, expected_out1)
    for again, first in zip(conv_relu_pool_backward(dout, cache1), expected):
        np.testing.assert_array_equal(again, first)


def test_conv_relu_pool_backward_names_a_cache_it_did_not_make():
    from layerwise.layer_utils import conv_relu_pool_backward, conv_relu_pool_forward

    rng = np.random.default_rng(26)
    x, w, b = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, cache = conv_relu_pool_forward(x, w, b, {"stride": 1, "pad": 1}, POOL_2X2)
    for bad, message in [
        ((cache[0],), "conv_relu_pool_backward: cache must be the 2-tuple returned by the matching forward function, got a tuple of 1 items"),
        (None, "conv_relu_pool_backward: cache must be the 2-tuple returned by the matching forward function, got None"),
        ((cache[1], cache[0]), "conv_relu_pool_backward: cache[0] must be the ConvPoolCache made by conv_relu_pool_forward, got"),
    ]:
        with pytest.raises(TypeError) as error:
            conv_relu_pool_backward(out, bad)
        assert str(error.value).startswith(message)


def test_fused_conv_relu_pool_backward_reports_bad_gradients_as_unfused():
    """A dout or ReLU cache of the wrong shape gets the message the unfused layers give."""
    from layerwise._layers.pool_fast import max_pool_relu_backward
    from layerwise.layer_utils import conv_relu_pool_backward, conv_relu_pool_forward

    rng = np.random.default_rng(20)
    x = rng.standard_normal((2, 3, 8, 8))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, cache = conv_relu_pool_forward(x, w, b, {"stride": 1, "pad": 1}, POOL_2X2)
    _, pool_cache = max_pool_forward_fast(conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})[0], POOL_2X2)
    for dout, relu_cache in [(out[:1], cache[1]), (out, cache[1][:, :2])]:
        with pytest.raises(ValueError) as unfused:
            max_pool_relu_backward(dout, relu_cache, pool_cache)
        with pytest.raises(ValueError) as fused:
            conv_relu_pool_backward(dout, (cache[0], relu_cache))
        assert str(fused.value) == str(unfused.value)


# --- the standalone pool: recorded first maxima, scattered in the naive layer's order -----------

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


# --- the Winograd F(2x2, 3x3) path of conv_forward_fast ---------------------------------------


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
    x, w, b, param = _conv_pair(dtype, (xs, (F, xs[1], 3, 3), 1, pad), 21)
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
    x, w, b, param = _conv_pair(dtype, (xs, (F, xs[1], 3, 3), 1, pad), 22)
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
    x, w, b, param = _conv_pair(np.float32, (xs, ws, stride, 1), 24)
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

    monkeypatch.setattr(winograd_module, "_CHUNK_BYTES", chunk)
    x, w, b, param = _conv_pair(dtype, ((N, C, H, W), (F, C, 3, 3), 1, pad), seed)
    out_n, _ = conv_forward_naive(x, w, b, param)
    out_f, _ = conv_forward_fast(x, w, b, param)
    scale = 1 + np.max(np.abs(out_n))
    bound = 1e-12 if dtype == np.float64 else 50 * np.finfo(dtype).eps * 9 * C
    assert np.max(np.abs(out_f - out_n)) <= bound * scale


# --- dx of conv_backward_fast by the Winograd forward ------------------------------------------


def _winograd_dx_case(dtype, xs, F, pad, seed):
    x, w, b, param = _conv_pair(dtype, (xs, (F, xs[1], 3, 3), 1, pad), seed)
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
    x, w, b, param = _conv_pair(np.float32, (xs, ws, stride, pad), 34)
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
    monkeypatch.setattr(winograd_module, "_CHUNK_BYTES", chunk)
    x, w, b, param, dout, grads_n = _winograd_dx_case(dtype, (N, C, H, W), F, pad, seed)
    _, cache = conv_forward_fast(x, w, b, param)
    if path == "dx":
        grads = conv_backward_fast(dout.astype(dtype), cache)
    else:
        grads, grads_n = conv_fast_module.conv_backward_fast_weights(dout.astype(dtype), cache), grads_n[1:]
    _assert_backward_close(grads, grads_n, dtype, _fan_in((N, C, H, W), F, pad))


# --- dw and db of conv_backward_fast by Winograd ----------------------------------------------


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
    x, w, b, param = _conv_pair(np.float32, (xs, ws, stride, 1), 37)
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
