"""Specification of :mod:`layerwise._layers.losses`: softmax and SVM losses are means over the batch,
stable, keep the score dtype (their numeric gradients are rows of tests/test_gradients.py); the
softmax loss's label smoothing (torch's in tests/test_torch_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.gradient_check import eval_numerical_gradient, rel_error
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


# --- label smoothing -------------------------------------------------------------------------------


def test_label_smoothing_zero_is_the_plain_loss_to_the_bit(loss_data):
    x, y = loss_data
    for dtype in (np.float32, np.float64):
        plain, plain_dx = softmax_loss(x.astype(dtype), y)
        smoothed, smoothed_dx = softmax_loss(x.astype(dtype), y, label_smoothing=0.0)
        assert smoothed == plain
        np.testing.assert_array_equal(smoothed_dx, plain_dx)


@pytest.mark.parametrize("label_smoothing", [0.1, 0.5, 1.0])
def test_label_smoothing_is_cross_entropy_against_the_smoothed_target(label_smoothing):
    rng = np.random.default_rng(3)
    N, C = 6, 4
    x, y = 2 * rng.standard_normal((N, C)), rng.integers(C, size=N)
    target = np.full((N, C), label_smoothing / C)
    target[np.arange(N), y] += 1 - label_smoothing
    probs = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    loss, dx = softmax_loss(x, y, label_smoothing=label_smoothing)
    assert loss == pytest.approx(-(target * np.log(probs)).sum(axis=1).mean(), rel=1e-12)
    np.testing.assert_allclose(dx, (probs - target) / N, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("label_smoothing", [0.05, 0.1, 0.3])
def test_label_smoothing_gradient_matches_the_numeric_gradient(loss_data, label_smoothing):
    x, y = loss_data
    _, dx = softmax_loss(x, y, label_smoothing=label_smoothing)
    # h = 1e-4: the loss is smooth, and a larger step keeps the rounding of its sum out of the estimate.
    numeric = eval_numerical_gradient(lambda x: softmax_loss(x, y, label_smoothing=label_smoothing)[0], x, verbose=False, h=1e-4)
    assert rel_error(numeric, dx) < 1e-8


def test_label_smoothing_keeps_the_score_dtype():
    x = np.random.default_rng(4).standard_normal((5, 3)).astype(np.float32)
    loss, dx = softmax_loss(x, np.array([0, 1, 2, 0, 1]), label_smoothing=0.2)
    assert isinstance(loss, float) and dx.dtype == np.float32


@pytest.mark.parametrize(
    "value, error, message",
    [
        (-0.1, ValueError, "softmax_loss: label_smoothing must be a finite number in [0, 1], got -0.1"),
        (1.5, ValueError, "softmax_loss: label_smoothing must be a finite number in [0, 1], got 1.5"),
        ("0.1", TypeError, "softmax_loss: label_smoothing must be a real number, got '0.1'"),
    ],
)
def test_bad_label_smoothing_is_refused(value, error, message):
    with pytest.raises(error) as raised:
        softmax_loss(np.zeros((2, 3)), np.array([0, 1]), label_smoothing=value)
    assert str(raised.value) == message


def test_label_smoothing_is_keyword_only():
    with pytest.raises(TypeError):
        softmax_loss(np.zeros((2, 3)), np.array([0, 1]), 0.1)
