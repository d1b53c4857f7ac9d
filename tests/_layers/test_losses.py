"""Specification of :mod:`layerwise._layers.losses`: softmax and SVM losses are means over the batch,
stable, keep the score dtype (their numeric gradients are rows of tests/test_gradients.py)."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.layers import softmax_loss, svm_loss


@pytest.fixture
def loss_data():
    """The softmax/SVM cell: 50 examples, 10 classes, scores near zero."""
    np.random.seed(231)
    num_classes, num_inputs = 10, 50
    x = 0.001 * np.random.randn(num_inputs, num_classes)
    y = np.random.randint(num_classes, size=num_inputs)
    return x, y


def test_softmax_loss_matches_notebook(loss_data):
    x, y = loss_data
    loss, _ = softmax_loss(x, y)
    assert isinstance(loss, float)
    assert abs(loss - 2.302545844500738) < 1e-12


def test_svm_loss_matches_notebook(loss_data):
    x, y = loss_data
    loss, _ = svm_loss(x, y)
    assert isinstance(loss, float)
    assert abs(loss - 9.0) < 0.01  # scores ~0: each of the 9 wrong classes costs a margin of ~1


def test_losses_are_means_over_the_batch(loss_data):
    x, y = loss_data
    for loss_fn in (softmax_loss, svm_loss):
        loss, dx = loss_fn(x, y)
        doubled_loss, doubled_dx = loss_fn(np.concatenate([x, x]), np.concatenate([y, y]))
        assert doubled_loss == pytest.approx(loss, rel=1e-12)
        np.testing.assert_allclose(doubled_dx[: len(x)], dx / 2, rtol=1e-12)


def test_softmax_loss_is_stable_for_huge_scores():
    x = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]])
    loss, dx = softmax_loss(x, np.array([0, 1]))
    assert np.isfinite(loss) and np.all(np.isfinite(dx))
    assert loss == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss])
def test_losses_keep_the_score_dtype(loss_fn, dtype):
    x = np.random.default_rng(12).standard_normal((5, 4)).astype(dtype)
    loss, dx = loss_fn(x, np.array([0, 1, 2, 3, 0]))
    assert isinstance(loss, float)
    assert dx.dtype == dtype


@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss])
def test_losses_do_not_mutate_their_inputs(loss_fn):
    x = np.random.default_rng(15).standard_normal((5, 4))
    y = np.array([0, 1, 2, 3, 0])
    x_saved, y_saved = x.copy(), y.copy()
    loss_fn(x, y)
    np.testing.assert_array_equal(x, x_saved)
    np.testing.assert_array_equal(y, y_saved)
