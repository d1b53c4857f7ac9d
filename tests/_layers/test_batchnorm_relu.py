"""The fused spatial batchnorm + ReLU (layerwise._layers.batchnorm_relu).

float64 composes the two layers (their bits; the numeric gradient check is in tests/test_gradients.py);
float32 with Numba runs the compiled passes, checked here against the float64 composition.
"""

from __future__ import annotations

import numpy as np
import pytest

import layerwise
from layerwise._layers import kernels
from layerwise.layer_utils import spatial_batchnorm_relu_backward, spatial_batchnorm_relu_forward
from layerwise.layers import relu_backward, relu_forward, spatial_batchnorm_backward, spatial_batchnorm_forward

needs_numba = pytest.mark.skipif(not kernels.available, reason="numba is not installed")


def _inputs(shape=(6, 5, 7, 9), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3 + 2
    C = shape[1]
    return x, rng.standard_normal(C), rng.standard_normal(C), rng.standard_normal(shape)


def _composed(x, gamma, beta, bn_param, dout):
    normed, bn_cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    out, relu_cache = relu_forward(normed)
    return (out, *spatial_batchnorm_backward(relu_backward(dout, relu_cache), bn_cache))


def _fused(x, gamma, beta, bn_param, dout):
    out, cache = spatial_batchnorm_relu_forward(x, gamma, beta, bn_param)
    return (out, *spatial_batchnorm_relu_backward(dout, cache))


def test_float64_gives_the_composition_bits():
    x, gamma, beta, dout = _inputs()
    fused_param, composed_param = {"mode": "train"}, {"mode": "train"}
    for got, expected in zip(_fused(x, gamma, beta, fused_param, dout), _composed(x, gamma, beta, composed_param, dout)):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(fused_param["running_var"], composed_param["running_var"])


@needs_numba
@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("shape", [(6, 5, 7, 9), (1, 3, 1, 1), (4, 8, 2, 2)])
def test_float32_compiled_passes_match_the_float64_composition(shape, mode):
    x, gamma, beta, dout = _inputs(shape, seed=len(shape) + shape[1])
    C = shape[1]
    running = {"running_mean": np.linspace(-1, 1, C), "running_var": np.linspace(0.5, 2, C)}
    param64 = {"mode": mode, **running}
    param32 = {"mode": mode, **{k: a.astype(np.float32) for k, a in running.items()}}
    expected = _composed(x, gamma, beta, param64, dout)
    got = _fused(*(a.astype(np.float32) for a in (x, gamma, beta)), param32, dout.astype(np.float32))
    for name, g, e in zip(("out", "dx", "dgamma", "dbeta"), got, expected):
        assert g.dtype == np.float32 and g.shape == e.shape, name
        scale = max(1.0, float(np.abs(e).max()))
        np.testing.assert_allclose(g, e, rtol=2e-4, atol=2e-5 * scale, err_msg=name)
    for key in running:
        np.testing.assert_allclose(param32[key], param64[key], rtol=1e-5, atol=1e-6)
        assert param32[key].dtype == np.float32


@needs_numba
def test_float32_bits_do_not_depend_on_the_thread_count():
    x, gamma, beta, dout = (a.astype(np.float32) for a in _inputs((8, 6, 9, 9), seed=3))
    results = []
    try:
        for threads in (1, 2, 1):
            layerwise.set_num_threads(threads)
            results.append(_fused(x, gamma, beta, {"mode": "train"}, dout))
    finally:
        layerwise.set_num_threads(None)
    for later in results[1:]:
        for a, b in zip(results[0], later):
            np.testing.assert_array_equal(a, b)


@needs_numba
def test_float32_nan_propagates_and_closed_units_pass_no_gradient():
    x, gamma, beta, dout = (a.astype(np.float32) for a in _inputs((2, 2, 3, 3), seed=4))
    out, cache = spatial_batchnorm_relu_forward(x, gamma, beta, {"mode": "test"})
    closed = out == 0
    dx, _, _ = spatial_batchnorm_relu_backward(dout, cache)
    assert np.all(dx[closed] == 0) and closed.any()
    x[0, 0, 0, 0] = np.nan
    out, _ = spatial_batchnorm_relu_forward(x, gamma, beta, {"mode": "test"})
    assert np.isnan(out[0, 0, 0, 0]) and np.isfinite(out[1]).all()


def test_bad_inputs_are_refused_before_bn_param_changes():
    x, gamma, beta, _ = (a.astype(np.float32) for a in _inputs((2, 3, 4, 4)))
    bn_param = {"mode": "train"}
    with pytest.raises(ValueError, match="gamma"):
        spatial_batchnorm_relu_forward(x, gamma[:2], beta, bn_param)
    with pytest.raises(ValueError, match=r"x must be 4-dimensional|\(N, C, H, W\)"):
        spatial_batchnorm_relu_forward(x[0], gamma, beta, bn_param)
    assert bn_param == {"mode": "train"}
    _, cache = spatial_batchnorm_relu_forward(x, gamma, beta, bn_param)
    with pytest.raises(ValueError, match="dout"):
        spatial_batchnorm_relu_backward(np.ones((2, 3, 4, 5), np.float32), cache)
    with pytest.raises(TypeError, match="BatchnormReluCache"):
        spatial_batchnorm_relu_backward(np.ones((2, 3, 4, 4), np.float32), (1, 2))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the mean of nothing
def test_empty_maps_take_the_composed_path_in_float32_too():
    x = np.zeros((2, 3, 0, 4), np.float32)
    out, cache = spatial_batchnorm_relu_forward(x, np.ones(3, np.float32), np.zeros(3, np.float32), {"mode": "train"})
    assert out.shape == x.shape and out.dtype == np.float32 and cache.parts is not None
    dx, dgamma, dbeta = spatial_batchnorm_relu_backward(np.zeros_like(out), cache)
    assert dx.shape == x.shape and dgamma.shape == dbeta.shape == (3,)
