"""Batched scores and probabilities, and test-time flip averaging."""

import numpy as np
import pytest

from layerwise.classifiers import ConvNet, FullyConnectedNet
from layerwise.inference import class_scores, predict_proba, softmax
from layerwise.preprocessing import Preprocessing


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


def _conv_model():
    np.random.seed(2)
    model = ConvNet(input_dim=(3, 6, 8), blocks=((4, True), (6, False)), normalization=None, dtype=np.float64)
    model.params["b3"] = np.random.randn(10)
    return model


def test_flip_averages_the_scores_of_each_image_and_its_mirror():
    model = _conv_model()
    X = np.random.default_rng(3).standard_normal((7, 3, 6, 8))
    expected = (model.loss(X) + model.loss(X[..., ::-1])) / 2
    np.testing.assert_allclose(class_scores(model, X, batch_size=3, flip=True), expected, rtol=1e-12)
    np.testing.assert_array_equal(class_scores(model, X[..., ::-1], flip=True), class_scores(model, X, flip=True))
    assert not np.allclose(class_scores(model, X), class_scores(model, X, flip=True))
    np.testing.assert_array_equal(class_scores(model, X, flip=False), class_scores(model, X))


def test_flip_of_a_mirror_symmetric_image_changes_nothing():
    model = _conv_model()
    X = np.random.default_rng(4).standard_normal((2, 3, 6, 8))
    X = X + X[..., ::-1]
    np.testing.assert_allclose(class_scores(model, X, flip=True), class_scores(model, X), rtol=1e-12)


def test_predict_proba_with_flip_is_the_softmax_of_the_averaged_scores_after_preprocessing():
    model = _conv_model()
    rng = np.random.default_rng(5)
    mean = rng.uniform(0, 255, (3, 6, 8))
    pixels = rng.integers(0, 256, (4, 3, 6, 8)).astype(np.uint8)
    preprocessing = Preprocessing((3, 6, 8), mean=mean)
    probabilities = predict_proba(model, pixels, preprocessing, flip=True)
    inputs = pixels.astype(np.float64) - mean  # mirrored after the mean is subtracted
    np.testing.assert_allclose(probabilities, softmax(class_scores(model, inputs, flip=True)), rtol=1e-12)
    assert probabilities.dtype == np.float64 and np.allclose(probabilities.sum(axis=1), 1)


def test_flip_needs_images_and_a_bool():
    model = FullyConnectedNet([6], input_dim=5)
    with pytest.raises(ValueError, match=r"class_scores: flip=True mirrors images, so X must have shape \(N, C, H, W\), got shape \(3, 5\)"):
        class_scores(model, np.zeros((3, 5), np.float32), flip=True)
    with pytest.raises(TypeError, match="class_scores: flip must be a bool, got 'yes'"):
        class_scores(model, np.zeros((3, 5), np.float32), flip="yes")
