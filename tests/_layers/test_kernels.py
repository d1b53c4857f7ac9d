"""The optional compiled kernel gives the NumPy path's results to the bit (skipped without Numba)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from layerwise._layers import conv_direct, conv_plan, kernels
from layerwise._layers.geometry import PoolGeometry
from layerwise._layers.pool_fast import first_max_code, pool_into
from tests.helpers import plans_without, without

needs_numba = pytest.mark.skipif(not kernels.available, reason="numba is not installed")


def _grid(kind: str, dtype, rng) -> np.ndarray:
    """A conv-output grid (F, m, H, pitch) whose first 10 columns are the output."""
    grid = rng.standard_normal((3, 4, 8, 13)).astype(dtype)
    if kind == "ties":
        grid = np.round(grid).astype(dtype)
    elif kind == "nonfinite":
        grid[0, 0, :2, :2] = np.nan
        grid[0, 1, 1, 3] = np.nan  # a NaN at offset 3 of its window
        grid[1, 1, 0, :2] = np.inf
        grid[1, 2, 2:4, 2:4] = -np.inf
        grid[2, 3, 5, 4] = np.nan
        grid[2, 0, 4:6, 6:8] = (np.inf, 1.0), (-np.inf, 2.0)  # inf - inf: a NaN sum, and no NaN
    elif kind == "signed zeros":
        grid = np.where(rng.random(grid.shape) < 0.5, -0.0, 0.0).astype(dtype)
    return grid


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["random", "ties", "nonfinite", "signed zeros"])
@pytest.mark.parametrize("width", [10, 11])  # 11: the last column lies outside every window
def test_pool_2x2_code_is_the_numpy_path(dtype, kind, width):
    rng = np.random.default_rng(40)
    grid = _grid(kind, dtype, rng)
    bias = rng.standard_normal(3).astype(dtype)
    g = PoolGeometry(3, 4, 8, width, 2, 2, 2, 4, width // 2)
    images_first = np.empty((4, 3, 4, width // 2), dtype=dtype)
    code = np.empty(images_first.shape, dtype=np.uint8)
    kernels.pool_2x2_code(grid, bias, images_first, code)
    pooled, code = images_first.transpose(1, 0, 2, 3), code.transpose(1, 0, 2, 3)  # the grid's axis order

    biased = grid + bias.reshape(3, 1, 1, 1)
    expected_pooled = np.empty_like(pooled)
    pool_into(biased[..., :width], g, expected_pooled)
    expected_code = first_max_code(biased[..., :width], expected_pooled, g, np.empty(code.shape, np.uint8))
    bits = f"u{np.dtype(dtype).itemsize}"
    nan = np.isnan(expected_pooled)
    assert np.array_equal(np.isnan(pooled), nan)
    np.testing.assert_array_equal(pooled[~nan].view(bits), expected_pooled[~nan].view(bits))
    np.testing.assert_array_equal(code, expected_code)


def test_layerwise_no_numba_turns_the_kernel_off():
    code = "from layerwise._layers import kernels; print(kernels.available)"
    env = {**os.environ, "LAYERWISE_NO_NUMBA": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 4, 8, 10), (3, 4, 9, 11)])  # (9, 11): a row and a column outside every window
def test_scatter_2x2_is_the_numpy_path(dtype, shape):
    from layerwise._layers.masking import select
    from layerwise._layers.pool_fast import scatter_by_code

    rng = np.random.default_rng(41)
    F, m, H, W = shape
    g = PoolGeometry(F, m, H, W, 2, 2, 2, H // 2, W // 2)
    code = rng.integers(0, 4, (F, m, H // 2, W // 2)).astype(np.uint8)
    dout = rng.standard_normal(code.shape).astype(dtype)
    dout[0, 0, 0, :3] = (np.inf, np.nan, -0.0)
    relu = rng.standard_normal(code.shape).astype(dtype)
    relu[0, 0, 0, :3] = 1.0  # those three pass the gate
    relu[1, 1, 1, 1] = np.nan  # NaN does not
    target = np.full((F, m, H, W + 3), 7, dtype=dtype)[..., :W]  # strided, and dirty
    images_first = (a.transpose(1, 0, 2, 3) for a in (code, dout, relu))
    kernels.scatter_2x2(*(np.ascontiguousarray(a) for a in images_first), target)
    expected = np.full_like(target, 7)
    scatter_by_code(code, select(relu > 0, dout, np.empty_like(dout)), g, expected)
    bits = f"u{np.dtype(dtype).itemsize}"
    np.testing.assert_array_equal(target.view(bits), expected.view(bits))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_warm_up_compiles_the_kernels_or_does_nothing(dtype, monkeypatch):
    kernels.warm_up(dtype)
    if kernels.available:
        assert {"pool_2x2_code", "_scatter_2x2", "scatter_add"} <= set(kernels.registry.compiled)
        assert ("_direct_conv" in kernels.registry.compiled) >= (dtype == np.float32)
        assert kernels.loaded()
    monkeypatch.setattr(kernels, "available", False)
    monkeypatch.setattr(kernels.registry, "compiled", {})
    kernels.warm_up(dtype)
    assert kernels.registry.compiled == {}


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs, ws, pad", [
    ((4, 3, 9, 11), (5, 3, 3, 3), 1),
    ((3, 2, 16, 16), (4, 2, 3, 3), 0),  # pad 0: runs spill into the next channel's first pixels
    ((2, 3, 10, 16), (4, 3, 5, 5), 2),
    ((3, 4, 20, 20), (6, 4, 7, 7), 3),
    ((2, 2, 6, 6), (3, 2, 3, 3), 2),  # the grid wider than the input
])
def test_col2im_wide_is_the_numpy_path(dtype, xs, ws, pad, monkeypatch):
    """dx of a stride-1 convolution in the wide column layout, gathered by the kernel or summed by
    NumPy's passes: the same bits, infinities in the upstream gradient included."""
    from layerwise._layers import conv_fast
    from layerwise.fast_layers import conv_backward_fast, conv_forward_fast

    monkeypatch.setattr(conv_plan, "CHUNK_BYTES", 1 << 12)  # several chunks
    plans_without(monkeypatch, "direct")  # float32 dx: the columns' too
    rng = np.random.default_rng(42)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ws, ws[:1]))
    param = {"stride": 1, "pad": pad}
    out, cache = conv_forward_fast(x, w, b, param)
    g = conv_fast.conv_inputs("test", x, w, b, param, exact=False)[3]
    assert cache.plan.columns == "wide" and cache.plan.dx == "im2col"
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout[0, 0, 0, 0] = np.inf
    with np.errstate(invalid="ignore"):  # inf * 0 in dw
        dx_kernel = conv_backward_fast(dout, cache)[0]
        monkeypatch.setattr(kernels, "available", False)
        dx_numpy = conv_backward_fast(dout, cache)[0]
    bits = f"u{np.dtype(dtype).itemsize}"
    np.testing.assert_array_equal(dx_kernel.view(bits), dx_numpy.view(bits))


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32])  # float64 takes the NumPy path (kernels.serves_training)
@pytest.mark.parametrize("xs, ws, stride, pad", [
    ((4, 3, 15, 15), (5, 3, 3, 3), 2, 1),  # the notebook's geometry, small
    ((3, 4, 16, 17), (6, 4, 3, 3), 2, 0),
    ((2, 3, 11, 13), (4, 3, 5, 3), 3, 2),  # non-square filters, stride 3
    ((2, 2, 9, 9), (3, 2, 2, 2), 3, 0),  # stride > filter: pixels no offset reaches
    ((2, 2, 7, 8), (3, 2, 3, 3), 2, 3),  # pad >= stride
    ((3, 5, 6, 7), (4, 5, 1, 1), 1, 0),  # 1x1: compact at stride 1
])
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf * 0 in dw, on the chunks' threads
def test_col2im_compact_is_the_numpy_path(dtype, xs, ws, stride, pad, monkeypatch):
    """dx in the compact column layout, summed by the kernel into phase planes or by NumPy's
    strided slices: the same bits, infinities in the upstream gradient included."""
    from layerwise._layers import conv_fast
    from layerwise.fast_layers import conv_backward_fast, conv_forward_fast

    monkeypatch.setattr(conv_plan, "CHUNK_BYTES", 1 << 12)  # several chunks
    plans_without(monkeypatch, "direct")  # 1x1 float32 dx: the columns' too
    rng = np.random.default_rng(43)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ws, ws[:1]))
    param = {"stride": stride, "pad": pad}
    out, cache = conv_forward_fast(x, w, b, param)
    g = conv_fast.conv_inputs("test", x, w, b, param, exact=False)[3]
    assert cache.plan.columns == "compact" and cache.plan.dx == "im2col"
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout[0, 0, 0, 0], dout[-1, -1, -1, -1] = np.inf, -np.inf
    dx_kernel = conv_backward_fast(dout, cache)[0]
    monkeypatch.setattr(kernels, "available", False)
    dx_numpy = conv_backward_fast(dout, cache)[0]
    bits = f"u{np.dtype(dtype).itemsize}"
    np.testing.assert_array_equal(dx_kernel.view(bits), dx_numpy.view(bits))


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs, ws, pad", [
    ((3, 32, 8, 8), (20, 32, 3, 3), 1),  # even output: NumPy's one strided copy
    ((2, 32, 7, 10), (5, 32, 3, 3), 1),  # odd rows: four cropped copies
    ((2, 40, 9, 9), (3, 40, 3, 3), 0),  # odd rows and columns
    ((3, 64, 6, 5), (7, 64, 3, 3), 1),
])
def test_winograd_kernels_are_the_numpy_path(dtype, xs, ws, pad, monkeypatch):
    """The Winograd forward, dx, dw and db with their transforms made by the kernels or by NumPy:
    the same bits."""
    from layerwise._layers import conv_fast
    from layerwise.fast_layers import conv_backward_fast, conv_forward_fast

    # The same algorithm for dw on both paths (without Numba its threshold is higher).
    monkeypatch.setattr(conv_plan, "WINOGRAD_DW_MIN_CHANNELS_NUMPY", conv_plan.WINOGRAD_DW_MIN_CHANNELS)
    rng = np.random.default_rng(43)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ws, ws[:1]))
    param = {"stride": 1, "pad": pad}
    g = conv_fast.conv_inputs("test", x, w, b, param, exact=False)[3]
    plan = conv_plan.plan_convolution(g, x.dtype)
    assert plan.forward == plan.dx == plan.dw == plan.dw_only == "winograd"

    def run():
        out, cache = conv_forward_fast(x, w, b, param)
        return (out, *conv_backward_fast(np.sin(out), cache))

    compiled = run()
    monkeypatch.setattr(kernels, "available", False)
    bits = f"u{np.dtype(dtype).itemsize}"
    for got, want in zip(compiled, run()):
        np.testing.assert_array_equal(got.view(bits), want.view(bits))


@pytest.mark.parametrize("cell", [
    "out, cache = max_pool_forward_fast(x, {'pool_height': 2, 'pool_width': 2, 'stride': 2})\n"
    "max_pool_backward_fast(out, cache)\n",
    "out, cache = conv_forward_fast(x, np.ones((4, 3, 3, 3)), np.ones(4), {'stride': 2, 'pad': 1})\n"
    "conv_backward_fast(out, cache)\n",
])
def test_the_notebooks_speed_cells_load_no_numba(cell):
    """A fresh process's first max_pool_backward_fast, or strided float64 convolution (a notebook's
    timed speed cells) takes the NumPy path rather than paying for loading Numba (after a warm-up
    they take the kernels: see test_pool_backward_is_the_naive_layers_to_the_bit and
    test_col2im_compact_is_the_numpy_path)."""
    code = (
        "import numpy as np\n"
        "from layerwise._layers import kernels\n"
        "from layerwise.fast_layers import conv_backward_fast, conv_forward_fast\n"
        "from layerwise.fast_layers import max_pool_backward_fast, max_pool_forward_fast\n"
        "x = np.random.default_rng(0).standard_normal((2, 3, 8, 8))\n"
        + cell
        + "print(kernels.loaded())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@needs_numba
def test_a_tampered_pool_index_raises_instead_of_writing_out_of_bounds():
    """Compiled code has no bounds checks: an index out of range (a cache changed by hand) must
    raise, as NumPy's scatter does, not write to memory outside dx."""
    from layerwise.fast_layers import max_pool_backward_fast, max_pool_forward_fast

    kernels.warm_up(np.float32)
    x = np.random.default_rng(44).standard_normal((3, 2, 8, 8)).astype(np.float32)
    out, cache = max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    for bad in (10**9, -1):
        index = cache.index.copy()
        index[0, 0, 0, 0] = bad
        with pytest.raises(IndexError, match="cache.index must be the indices made by max_pool_forward_fast"):
            max_pool_backward_fast(np.ones_like(out), cache._replace(index=index))


@needs_numba
def test_a_tampered_conv_pool_code_writes_what_numpy_writes(monkeypatch):
    """An offset no 2x2 window has (a cache changed by hand): the kernel, like NumPy's masked
    copies, writes nothing for it, rather than out of bounds."""
    from layerwise._layers import conv_pool
    from layerwise.layer_utils import conv_relu_pool_backward, conv_relu_pool_forward

    plans_without(monkeypatch, "direct")  # the scatter into im2col's grid, as NumPy's
    rng = np.random.default_rng(45)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 3, 8, 8), (4, 3, 3, 3), (4,)))
    out, cache = conv_relu_pool_forward(x, w, b, {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2})
    code = cache[0].code.copy()
    code[0, 0, 0, :3] = (4, 200, 255)
    tampered = (cache[0]._replace(code=code), cache[1])
    dout = rng.standard_normal(out.shape).astype(np.float32)
    compiled = conv_relu_pool_backward(dout, tampered)
    monkeypatch.setattr(kernels, "available", False)
    for got, want in zip(compiled, conv_relu_pool_backward(dout, tampered)):
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32])  # float64 keeps im2col (see conv_plan.plan_convolution)
@pytest.mark.parametrize("xs, ws, pad", [
    ((5, 3, 9, 11), (4, 3, 3, 3), 1),  # K = 27: taps three at a time
    ((3, 3, 12, 12), (5, 3, 7, 7), 3),  # ThreeLayerConvNet's geometry, small; F = 5: a partial block of four
    ((3, 2, 6, 6), (7, 2, 1, 1), 0),  # 1x1, K = 2: the last two taps alone
    ((2, 4, 5, 8), (3, 4, 2, 3), 0),  # K = 24, no padding: runs read past the last plane, dropped
    ((2, 1, 4, 5), (2, 1, 3, 3), 3),  # pad 3: W_out > W + pad, output wider than the rows' pixels and zeros
    ((4, 31, 7, 6), (9, 31, 3, 3), 2),  # K = 279, C just below Winograd's threshold
])
def test_direct_conv_agrees_with_the_im2col_path(dtype, xs, ws, pad, monkeypatch):
    """The direct convolution against NumPy's im2col product: equal up to rounding, the same
    non-finite outputs where inputs and biases hold inf and NaN, and the same bits again on a
    second call (scratch buffers reused) and on any chunking of the batch."""
    from layerwise._layers import conv_fast
    from layerwise.fast_layers import conv_forward_fast

    rng = np.random.default_rng(44)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ws, ws[:1]))
    param = {"stride": 1, "pad": pad}
    g = conv_fast.conv_inputs("test", x, w, b, param, exact=False)[3]
    assert conv_plan.plan_convolution(g, x.dtype).forward == "direct"
    direct = conv_forward_fast(x, w, b, param)[0]
    bits = f"u{np.dtype(dtype).itemsize}"
    np.testing.assert_array_equal(conv_forward_fast(x, w, b, param)[0].view(bits), direct.view(bits))
    monkeypatch.setattr(conv_direct, "even_parts", lambda size, _: [(n, 1) for n in range(size)])  # an image a call
    np.testing.assert_array_equal(conv_forward_fast(x, w, b, param)[0].view(bits), direct.view(bits))
    plans_without(monkeypatch, "direct")
    im2col = conv_forward_fast(x, w, b, param)[0]
    tolerance = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(direct, im2col, rtol=tolerance, atol=tolerance * np.abs(im2col).max())

    x[0, 0, 1, 1], b[0], b[-1] = np.inf, -np.inf, np.nan
    with np.errstate(invalid="ignore"):
        im2col = conv_forward_fast(x, w, b, param)[0]
        monkeypatch.undo()
        direct = conv_forward_fast(x, w, b, param)[0]
    assert not np.isfinite(im2col).all()
    np.testing.assert_array_equal(np.isnan(direct), np.isnan(im2col))
    np.testing.assert_array_equal(np.isposinf(direct), np.isposinf(im2col))
    np.testing.assert_array_equal(np.isneginf(direct), np.isneginf(im2col))


@needs_numba
@pytest.mark.parametrize("xs, ws, pad", [
    ((5, 3, 9, 11), (4, 3, 3, 3), 1),  # K = 27; dx: F = 4 input planes, C = 3 outputs (one partial block)
    ((3, 3, 12, 12), (5, 3, 7, 7), 3),  # ThreeLayerConvNet's geometry, small
    ((3, 2, 6, 6), (7, 2, 1, 1), 0),  # 1x1
    ((2, 4, 5, 8), (3, 4, 2, 3), 0),  # non-square filters: dx by the columns, dw direct
    ((2, 1, 4, 5), (2, 1, 3, 3), 3),  # pad 3 = HH: dx by the columns, dw direct
    ((17, 6, 7, 6), (9, 6, 3, 3), 2),  # 17 images: chunks of 1 and 2 in the weight gradients
])
def test_direct_backward_agrees_with_the_im2col_path(xs, ws, pad, monkeypatch):
    """dx, dw and db by the direct kernels against im2col's: equal up to rounding, the same on a
    second call (scratch reused), and the same non-finite entries where dout holds inf."""
    from layerwise._layers import conv_fast
    from layerwise.fast_layers import conv_backward_fast, conv_forward_fast

    rng = np.random.default_rng(46)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (xs, ws, ws[:1]))
    param = {"stride": 1, "pad": pad}
    out, cache = conv_forward_fast(x, w, b, param)
    g = conv_fast.conv_inputs("test", x, w, b, param, exact=False)[3]
    assert cache.plan.dw == "direct" or cache.plan.dw_only == "direct"
    dout = rng.standard_normal(out.shape).astype(np.float32)
    direct = conv_backward_fast(dout, cache)
    for again, first in zip(conv_backward_fast(dout, cache), direct):
        np.testing.assert_array_equal(again.view(np.uint32), first.view(np.uint32))
    by_columns = cache._replace(plan=without(cache.plan, "direct"))
    im2col = conv_backward_fast(dout, by_columns)
    for mine, theirs in zip(direct, im2col):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())

    dout[0, 0, 0, 0] = np.inf
    with np.errstate(invalid="ignore"):
        im2col = conv_backward_fast(dout, by_columns)
        direct = conv_backward_fast(dout, cache)
    for mine, theirs in zip(direct, im2col):
        np.testing.assert_array_equal(np.isnan(mine), np.isnan(theirs))
        np.testing.assert_array_equal(np.isinf(mine), np.isinf(theirs))


def test_float64_convolutions_keep_the_im2col_product():
    """Gradient checks run in float64: their forward passes keep the summation order whose numeric
    estimates the notebook quotes."""
    from layerwise._layers import conv_fast

    x, w, b = np.zeros((2, 3, 8, 8)), np.zeros((4, 3, 3, 3)), np.zeros(4)
    g = conv_fast.conv_inputs("test", x, w, b, {"stride": 1, "pad": 1}, exact=False)[3]
    assert conv_plan.plan_convolution(g, np.float64).forward != "direct"
    assert (conv_plan.plan_convolution(g, np.float32).forward == "direct") == kernels.serves(np.float32)


@pytest.mark.parametrize("dtype", [">f4", ">f8", "float16"])
@pytest.mark.parametrize("xs, ws", [
    ((2, 32, 8, 8), (6, 32, 3, 3)),  # Winograd forward and dx
    ((2, 64, 6, 6), (5, 64, 3, 3)),  # Winograd dw too
    ((2, 3, 9, 9), (4, 3, 3, 3)),  # im2col, wide columns
])
def test_dtypes_numba_cannot_compile_take_the_numpy_path(dtype, xs, ws):
    """A swapped byte order or float16 (which Numba does not compile) runs through the NumPy path,
    conv, fused conv + pool and pool alike, instead of failing in a kernel. A swapped byte order
    gives the values the kernels give for the same arrays in native order; float16 gives its
    precision's approximation of float64."""
    from layerwise.fast_layers import conv_backward_fast, conv_forward_fast, max_pool_backward_fast, max_pool_forward_fast
    from layerwise.layer_utils import conv_relu_pool_backward, conv_relu_pool_forward

    kernels.warm_up(np.float32)  # Numba loaded, as after any native convolution
    rng = np.random.default_rng(45)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ws, ws[:1]))
    conv, pool = {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2}

    def upstream(like):  # the same values whatever the dtype
        return np.cos(np.arange(like.size)).reshape(like.shape).astype(np.float16).astype(like.dtype)

    def run(x, w, b):
        out, cache = conv_forward_fast(x, w, b, conv)
        grads = conv_backward_fast(upstream(out), cache)
        pooled, pool_cache = conv_relu_pool_forward(x, w, b, conv, pool)
        fused = conv_relu_pool_backward(upstream(pooled), pool_cache)
        p, p_cache = max_pool_forward_fast(x, pool)
        return (out, *grads, pooled, *fused, p, max_pool_backward_fast(upstream(p), p_cache))

    results = run(x, w, b)
    for got in results:
        assert got.dtype.newbyteorder("=") == np.dtype(dtype).newbyteorder("=")  # its precision
    if dtype == "float16":
        want = conv_forward_fast(*(a.astype(np.float64) for a in (x, w, b)), conv)[0]
        np.testing.assert_allclose(results[0].astype(np.float64), want, rtol=0, atol=1e-2 * np.abs(want).max())
        return
    native = run(*(a.astype(a.dtype.newbyteorder("=")) for a in (x, w, b)))
    for got, want in zip(results, native):
        np.testing.assert_array_equal(got, want)
