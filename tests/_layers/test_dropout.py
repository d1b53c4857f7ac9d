"""Specification of :mod:`layerwise._layers.dropout`: ``p`` is the keep probability, the seeded mask
and the global generator as the course leaves it (the numeric gradient is a row of
tests/test_gradients.py)."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.layers import dropout_backward, dropout_forward


@pytest.mark.parametrize("p", [0.25, 0.4, 0.7])
def test_dropout_keeps_the_mean_and_drops_a_fraction_1_minus_p(p):
    """``p`` is the probability of KEEPING a unit (inverted dropout scales the kept ones by 1/p)."""
    np.random.seed(231)
    x = np.random.randn(300, 300) + 10
    out_train, _ = dropout_forward(x, {"mode": "train", "p": p})
    out_test, _ = dropout_forward(x, {"mode": "test", "p": p})
    assert abs(out_train.mean() - x.mean()) < 0.03 * x.mean()
    assert abs(out_test.mean() - x.mean()) < 1e-12
    assert abs(np.mean(out_train == 0) - (1 - p)) < 0.01
    assert np.mean(out_test == 0) == 0
    kept = out_train != 0
    np.testing.assert_allclose(out_train[kept], x[kept] / p, rtol=1e-12)


def test_dropout_test_mode_is_the_identity_and_its_backward_too():
    x = np.random.default_rng(6).standard_normal((4, 5))
    out, cache = dropout_forward(x, {"mode": "test", "p": 0.3})
    np.testing.assert_array_equal(out, x)
    dout = np.random.default_rng(7).standard_normal((4, 5))
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)


def test_dropout_p_1_keeps_everything():
    x = np.random.default_rng(8).standard_normal((20, 20))
    out, _ = dropout_forward(x, {"mode": "train", "p": 1.0})
    np.testing.assert_array_equal(out, x)


def test_dropout_with_seed_draws_the_same_mask_each_call():
    x = np.ones((30, 40))
    np.random.seed(0)
    out1, cache1 = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 123})
    np.random.rand(7)  # whatever was drawn in between does not matter
    out2, cache2 = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 123})
    np.testing.assert_array_equal(out1, out2)
    assert 0 < np.mean(out1 == 0) < 1
    other, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 124})
    assert not np.array_equal(other, out1)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_dropout_with_seed_leaves_the_global_generator_where_the_course_does(mode):
    # A behaviour change (it used to draw from a private generator and leave the global one
    # alone): the course's dropout_forward calls np.random.seed(seed) whenever the seed is
    # given, in either mode, then draws the mask with np.random.rand, and the notebooks' later
    # unseeded draws, hence their printed numbers, depend on where that leaves the generator.
    x = np.ones((3, 4))
    np.random.seed(0)
    dropout_forward(x, {"mode": mode, "p": 0.5, "seed": 123})
    after = np.random.rand(5)
    np.random.seed(123)
    if mode == "train":
        keep = np.random.rand(3, 4) < 0.5
    np.testing.assert_array_equal(after, np.random.rand(5))
    if mode == "train":
        out, _ = dropout_forward(x, {"mode": mode, "p": 0.5, "seed": 123})
        np.testing.assert_array_equal(out, keep / 0.5)


def test_dropout_without_seed_uses_the_global_generator():
    x = np.ones((30, 40))
    np.random.seed(231)
    out1, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    out2, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    np.random.seed(231)
    again, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    assert not np.array_equal(out1, out2)  # the global generator moved on
    np.testing.assert_array_equal(again, out1)  # np.random.seed reproduces the notebook
