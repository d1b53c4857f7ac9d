"""The fast layers' own threads: the same bits on any number of threads, BLAS held to one thread
while chunks run, errors raised in the caller, and the thread count settings."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import layerwise
from layerwise._layers import threads
from layerwise._layers.affine import matmul
from layerwise._layers.threads import chunks_of, even_parts, for_each_chunk, split_inner


@pytest.fixture(autouse=True)
def default_threads():
    yield
    layerwise.set_num_threads(None)


def _results_on(n_threads: int, compute):
    layerwise.set_num_threads(n_threads)
    return [np.array(a, copy=True) for a in compute()]


def _assert_same_bits_on_1_2_3_threads(compute):
    expected = _results_on(1, compute)
    for n in (2, 3):
        for got, want in zip(_results_on(n, compute), expected):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}"))


@pytest.mark.parametrize("xs, ws, stride, pad", [
    ((11, 3, 32, 32), (8, 3, 7, 7), 1, 3),  # direct forward with Numba (else wide im2col), wide im2col backward
    ((9, 4, 15, 15), (6, 4, 3, 3), 2, 1),  # compact layout
    ((9, 32, 10, 10), (8, 32, 3, 3), 1, 1),  # Winograd forward and dx
    ((5, 64, 6, 7), (8, 64, 3, 3), 1, 1),  # and Winograd dw
])
def test_conv_gives_the_same_bits_on_any_number_of_threads(xs, ws, stride, pad, monkeypatch):
    from layerwise._layers import conv_plan
    from layerwise.fast_layers import conv_backward_fast, conv_forward_fast

    monkeypatch.setattr(conv_plan, "CHUNK_BYTES", 1 << 14)  # many chunks
    monkeypatch.setattr(conv_plan, "WINOGRAD_CHUNK_BYTES", 1 << 14)
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (xs, ws, ws[:1]))
    param = {"stride": stride, "pad": pad}

    def compute():
        out, cache = conv_forward_fast(x, w, b, param)
        return (out, *conv_backward_fast(np.cos(out), cache))

    _assert_same_bits_on_1_2_3_threads(compute)


def test_fused_conv_relu_pool_and_affine_give_the_same_bits_on_any_number_of_threads(monkeypatch):
    from layerwise._layers import conv_plan
    from layerwise.classifiers.cnn import ThreeLayerConvNet

    monkeypatch.setattr(conv_plan, "CHUNK_BYTES", 1 << 16)
    np.random.seed(1)
    model = ThreeLayerConvNet(num_filters=8, hidden_dim=300, weight_scale=1e-2, reg=0.1)
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((12, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, 12)

    def compute():
        loss, grads = model.loss(X, y)
        return (np.array(loss), *(grads[k] for k in sorted(grads)))

    _assert_same_bits_on_1_2_3_threads(compute)


@pytest.mark.parametrize("shape_a, shape_b", [
    ((40, 5000), (5000, 100)),  # rows
    ((5, 5000), (5000, 700)),  # columns
    ((20, 10000), (10000, 100)),  # the inner dimension, four parts summed
])
def test_matmul_splits_and_equals_numpy(shape_a, shape_b, monkeypatch):
    """Inside products_on_layer_threads, split: the product to float32 rounding, the same bits on
    2 and 3 threads. Outside, one BLAS call: numpy's own product, whatever ran before."""
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(shape_a).astype(np.float32), rng.standard_normal(shape_b).astype(np.float32)
    inner_splits = []
    monkeypatch.setattr(threads, "split_inner", lambda *args: inner_splits.append(1) or split_inner(*args))

    def split(a=a):
        with threads.products_on_layer_threads():
            return [matmul(a, b)]

    assert np.array_equal(_results_on(2, lambda: [matmul(a, b)])[0], a @ b)
    assert not inner_splits
    exact = a.astype(np.float64) @ b
    one = _results_on(1, split)[0]
    two = _results_on(2, split)[0]
    assert one.dtype == two.dtype == np.float32
    for got in (one, two):
        np.testing.assert_allclose(got, exact, rtol=1e-4, atol=1e-3)
    assert np.array_equal(_results_on(3, split)[0], two)
    assert np.array_equal(_results_on(2, lambda: split(np.asfortranarray(a)))[0], two)
    assert bool(inner_splits) == (shape_a[1] >= 4 * max(shape_a[0], shape_b[1]))
    assert np.array_equal(_results_on(2, lambda: [matmul(a, b)])[0], a @ b)  # the block left nothing behind


def test_each_chunk_runs_once_with_blas_on_one_thread():
    layerwise.set_num_threads(2)
    seen, blas = [], []
    lock = threading.Lock()

    def work(i, n0, m):
        with lock:
            seen.append((i, n0, m, threading.get_ident()))
            blas.append(threads._blas_threads())

    chunks = [(n0, 3) for n0 in range(0, 60, 3)]
    for_each_chunk(chunks, work)
    assert sorted(s[:3] for s in seen) == [(i, *c) for i, c in enumerate(chunks)]
    assert set(blas) == {1}


@pytest.mark.parametrize("a_leaves_first", [True, False])
def test_overlapping_blas_holds_from_two_threads_keep_it_at_one_then_restore_it(a_leaves_first):
    """Thread A holds, the main thread holds, one leaves, then the other: BLAS stays at one thread
    until both have left, then is back where it was (per-caller limits would leave it at one)."""
    before = threads._blas_threads()
    a_inside, a_may_leave, a_left = threading.Event(), threading.Event(), threading.Event()

    def hold_in_a():
        with threads.one_blas_thread():
            a_inside.set()
            a_may_leave.wait(timeout=30)
        a_left.set()

    a = threading.Thread(target=hold_in_a, daemon=True)
    a.start()
    try:
        a_inside.wait(timeout=30)
        assert threads._blas_threads() == 1
        with threads.one_blas_thread():
            with threads.one_blas_thread():  # nested: no effect
                assert threads._blas_threads() == 1
            if a_leaves_first:
                a_may_leave.set()
                a_left.wait(timeout=30)
            assert threads._blas_threads() == 1
        assert threads._blas_threads() == (before if a_leaves_first else 1)
    finally:
        a_may_leave.set()
        a.join(timeout=30)
    assert threads._blas_threads() == before


def test_winograd_runs_its_own_products_with_blas_on_one_thread(monkeypatch):
    """The filter transform and the dw product run outside the chunks; with BLAS on several
    threads there, its spinning idle threads would take the cores the chunks need."""
    from layerwise._layers import winograd
    from layerwise.fast_layers import conv_backward_fast, conv_forward_fast

    seen = []
    transform = winograd.filter_transform

    def recording_transform(w):
        seen.append(threads._blas_threads())
        return transform(w)

    monkeypatch.setattr(winograd, "filter_transform", recording_transform)
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((4, 64, 6, 6), (8, 64, 3, 3), (8,)))
    before = threads._blas_threads()
    out, cache = conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    conv_backward_fast(out, cache)  # dx by Winograd: the transform again
    assert seen == [1, 1] and threads._blas_threads() == before


def test_a_chunks_error_is_raised_in_the_caller_after_the_others_finish():
    layerwise.set_num_threads(2)
    done = []

    def work(i, n0, m):
        if i == 3:
            raise ValueError("chunk 3 failed")
        done.append(i)

    with pytest.raises(ValueError, match="chunk 3 failed"):
        for_each_chunk([(i, 1) for i in range(8)], work)
    assert sorted(done) == [0, 1, 2, 4, 5, 6, 7]
    for_each_chunk([(0, 1), (1, 1)], lambda i, n0, m: None)  # the pool is usable again


def test_a_call_from_inside_a_chunk_runs_in_that_thread():
    layerwise.set_num_threads(2)
    inner = []

    def work(i, n0, m):
        me = threading.get_ident()
        for_each_chunk([(0, 1), (1, 1)], lambda j, a, b: inner.append(threading.get_ident() == me))

    for_each_chunk([(0, 1), (1, 1)], work)
    assert inner == [True] * 4


def test_thread_count_settings(monkeypatch):
    layerwise.set_num_threads(3)
    assert layerwise.get_num_threads() == 3
    for bad in (0, -1, 2.0, True, "2"):
        with pytest.raises(ValueError, match="set_num_threads: threads must be an int >= 1 or None, got"):
            layerwise.set_num_threads(bad)
    assert layerwise.get_num_threads() == 3  # a refused setting changes nothing
    layerwise.set_num_threads(np.int64(2))
    assert layerwise.get_num_threads() == 2 and type(layerwise.get_num_threads()) is int
    monkeypatch.setenv("LAYERWISE_NUM_THREADS", "5")
    layerwise.set_num_threads(None)
    assert layerwise.get_num_threads() == 5
    monkeypatch.setenv("LAYERWISE_NUM_THREADS", "many")
    layerwise.set_num_threads(None)
    with pytest.raises(ValueError, match="LAYERWISE_NUM_THREADS must be an int >= 1, got 'many'"):
        layerwise.get_num_threads()
    monkeypatch.delenv("LAYERWISE_NUM_THREADS")
    layerwise.set_num_threads(None)
    assert 1 <= layerwise.get_num_threads() <= threads._blas_threads()


@pytest.mark.parametrize("input_grad", [True, False])
def test_grouping_chunks_changes_no_bit(input_grad, monkeypatch):
    """Chunks handed out one at a time or in groups sharing one output grid: the same results."""
    from layerwise._layers import conv_plan
    from layerwise.layer_utils import conv_relu_pool_backward, conv_relu_pool_forward

    monkeypatch.setattr(conv_plan, "CHUNK_BYTES", 1 << 15)
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((10, 3, 16, 16), (6, 3, 5, 5), (6,)))
    params = ({"stride": 1, "pad": 2}, {"pool_height": 2, "pool_width": 2, "stride": 2})

    def compute():
        out, cache = conv_relu_pool_forward(x, w, b, *params)
        return (out, *(g for g in conv_relu_pool_backward(np.sin(out), cache, input_grad=input_grad) if g is not None))

    results = []
    for group_bytes in (1, 1 << 14, 1 << 30):
        monkeypatch.setattr(conv_plan, "GROUP_BYTES", group_bytes)
        results.append(_results_on(2, compute))
    for other in results[1:]:
        for got, want in zip(other, results[0]):
            np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("size, n_parts", [(50, 8), (128, 8), (3, 8), (10, 3), (7, 1), (0, 4)])
def test_even_parts_cover_the_range_in_runs_one_apart(size, n_parts):
    parts = even_parts(size, n_parts)
    assert len(parts) == min(n_parts, size)
    covered = [i for start, count in parts for i in range(start, start + count)]
    assert covered == list(range(size))  # in order, each index once
    counts = [count for _, count in parts]
    assert all(count > 0 for count in counts) and (not counts or max(counts) - min(counts) <= 1)
    assert counts == sorted(counts, reverse=True)


@pytest.mark.parametrize("total, item_bytes, chunk_bytes, expected", [
    (10, 100, 300, [(0, 3), (3, 3), (6, 3), (9, 1)]),  # the last run shorter
    (4, 100, 50, [(0, 1), (1, 1), (2, 1), (3, 1)]),  # an item larger than a chunk: one per chunk
    (5, 0, 64, [(0, 5)]),  # empty items: one run
    (0, 100, 300, []),
])
def test_chunks_of_cuts_a_batch_into_runs_of_about_chunk_bytes(total, item_bytes, chunk_bytes, expected):
    assert chunks_of(total, item_bytes, chunk_bytes) == expected
