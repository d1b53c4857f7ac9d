"""The convolution plan: one decision per layer, carried in the cache, printable."""

import numpy as np
import pytest

from layerwise._layers import conv_plan, kernels
from layerwise._layers.geometry import conv_inputs
from layerwise.fast_layers import conv_backward_fast, conv_fast_plan, conv_forward_fast
from layerwise.layer_utils import conv_relu_pool_backward, conv_relu_pool_forward


def _geometry(xs, ws, stride=1, pad=1):
    x, w = np.zeros(xs, np.float32), np.zeros(ws, np.float32)
    return conv_inputs("test", x, w, np.zeros(ws[0], np.float32), {"stride": stride, "pad": pad}, exact=False)[3]


@pytest.mark.parametrize("xs, ws, stride, dtype, compiled, expected", [
    # forward, dx, dw, dw_only, fuses_pool
    ((8, 32, 16, 16), (32, 32, 3, 3), 1, np.float32, True, ("winograd", "winograd", "winograd", "winograd", False)),
    ((8, 32, 16, 16), (32, 32, 3, 3), 1, np.float32, False, ("winograd", "winograd", "im2col", "im2col", False)),
    ((8, 64, 16, 16), (32, 64, 3, 3), 1, np.float64, False, ("winograd", "winograd", "winograd", "winograd", False)),
    ((8, 16, 32, 32), (16, 16, 3, 3), 1, np.float32, True, ("direct", "direct", "direct", "direct", True)),
    ((8, 16, 32, 32), (16, 16, 3, 3), 1, np.float64, True, ("im2col", "im2col", "im2col", "im2col", True)),
    ((8, 3, 32, 32), (32, 3, 7, 7), 1, np.float32, True, ("direct", "direct", "direct", "direct", True)),
    ((8, 3, 32, 32), (32, 3, 7, 7), 1, np.float32, False, ("im2col", "im2col", "im2col", "im2col", True)),
    ((8, 32, 32, 32), (64, 32, 3, 3), 2, np.float32, True, ("im2col per image", "im2col", "im2col", "im2col", True)),
    ((8, 3, 32, 32), (16, 3, 3, 3), 1, np.float64, True, ("im2col per image", "im2col", "im2col", "im2col", True)),
])
def test_the_plan_of_each_kind_of_layer(xs, ws, stride, dtype, compiled, expected):
    plan = conv_plan.plan_convolution(_geometry(xs, ws, stride), dtype, compiled)
    assert (plan.forward, plan.dx, plan.dw, plan.dw_only, plan.fuses_pool) == expected
    assert plan.images_per_chunk >= 1 and plan.columns in ("wide", "compact")


def test_thresholds_are_where_the_table_says():
    assert conv_plan.plan_convolution(_geometry((2, 31, 8, 8), (4, 31, 3, 3)), np.float64).forward != "winograd"
    assert conv_plan.plan_convolution(_geometry((2, 32, 8, 8), (4, 32, 3, 3)), np.float64).forward == "winograd"
    assert conv_plan.plan_convolution(_geometry((2, 63, 8, 8), (4, 63, 3, 3)), np.float64, False).dw_only == "im2col"
    assert conv_plan.plan_convolution(_geometry((2, 64, 8, 8), (4, 64, 3, 3)), np.float64, False).dw_only == "winograd"


def test_the_cache_carries_the_plan_and_the_backward_follows_it(monkeypatch):
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s) for s in ((2, 3, 8, 8), (4, 3, 3, 3), (4,)))
    out, cache = conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    assert cache.plan == conv_fast_plan(x.shape, w.shape, {"stride": 1, "pad": 1}, x.dtype)
    monkeypatch.setattr(conv_plan, "plan_convolution", lambda *a, **k: pytest.fail("the backward planned again"))
    conv_backward_fast(np.ones_like(out), cache)


def test_the_fused_conv_and_pool_plan_once(monkeypatch):
    calls = []
    real = conv_plan.plan_convolution
    monkeypatch.setattr(conv_plan, "plan_convolution", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 3, 8, 8), (4, 3, 3, 3), (4,)))
    out, cache = conv_relu_pool_forward(x, w, b, {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2})
    conv_relu_pool_backward(np.ones_like(out), cache)
    assert calls == [1]


def test_the_plan_prints_what_runs():
    text = str(conv_fast_plan((50, 3, 32, 32), (32, 3, 7, 7), {"stride": 1, "pad": 3}))
    forward = "direct" if kernels.serves(np.float32) else "im2col"
    assert text.startswith(f"forward {forward}; backward dx {forward}")
    assert "images a chunk" in text and "a following pool" in text
