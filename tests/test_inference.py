"""Batched scores and probabilities."""

import numpy as np

from layerwise.classifiers import FullyConnectedNet
from layerwise.inference import class_scores, predict_proba, softmax


def test_batched_scores_are_the_whole_batchs():
    np.random.seed(0)
    model = FullyConnectedNet([6], input_dim=5, normalization="batchnorm", dtype=np.float64)
    X = np.random.randn(23, 5)
    np.testing.assert_allclose(class_scores(model, X, batch_size=4), model.loss(X), rtol=1e-12)


def test_softmax_is_stable_and_keeps_the_dtype():
    scores = np.array([[1000.0, 1000.0], [0.0, -1000.0]], np.float32)
    probabilities = softmax(scores)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, [[0.5, 0.5], [1.0, 0.0]])


def test_predict_proba_rows_sum_to_one():
    np.random.seed(1)
    model = FullyConnectedNet([6], input_dim=5)
    probabilities = predict_proba(model, np.random.randn(7, 5).astype(np.float32))
    assert probabilities.shape == (7, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-6)
