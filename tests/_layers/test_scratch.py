"""Specification of :mod:`layerwise._layers.scratch`: aligned buffers reused per thread, never
leaking from one call into an earlier call's cache."""

from __future__ import annotations

import numpy as np

from layerwise.fast_layers import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)


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


def test_scratch_arrays_are_aligned_and_reused():
    from layerwise._layers.scratch import scratch

    a = scratch("test.a", (3, 5), np.float32)
    assert a.shape == (3, 5) and a.dtype == np.float32 and a.flags.c_contiguous
    assert a.ctypes.data % 64 == 0
    b = scratch("test.a", (2, 7), np.float64)
    assert np.shares_memory(a, b) or b.nbytes > a.nbytes
    assert not np.shares_memory(scratch("test.b", (3, 5), np.float32), scratch("test.a", (3, 5), np.float32))
