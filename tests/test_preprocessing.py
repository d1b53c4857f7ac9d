"""Preprocessing: raw pixels to model input, the training pipeline's bits."""

import numpy as np
import pytest

from layerwise.preprocessing import Preprocessing


def test_apply_gives_the_bits_of_the_training_pipeline():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (5, 3, 4, 4)).astype(np.uint8)
    mean = pixels.astype(np.float32).mean(axis=0)
    by_hand = pixels.astype(np.float32)
    by_hand -= mean  # what `layerwise train` does to its data
    np.testing.assert_array_equal(Preprocessing((3, 4, 4), mean).apply(pixels, np.float32), by_hand)
    out = Preprocessing((3, 4, 4), mean).apply(pixels, np.float64)
    assert out.dtype == np.float64


def test_per_channel_statistics():
    pixels = np.full((2, 3, 2, 2), 100, np.uint8)
    mean = np.array([10.0, 20.0, 30.0]).reshape(3, 1, 1)
    std = np.array([2.0, 4.0, 5.0]).reshape(3, 1, 1)
    out = Preprocessing((3, 2, 2), mean, std).apply(pixels, np.float64)
    np.testing.assert_array_equal(out[0, :, 0, 0], [45.0, 20.0, 14.0])
    assert Preprocessing((3, 2, 2), mean, std).describe() == {
        "input_shape": [3, 2, 2], "pixel_range": [0, 255], "subtract": "channel_mean", "divide": "channel_std",
    }  # fmt: skip


@pytest.mark.parametrize(
    "args,error,message",
    [
        (((3, 4),), ValueError, r"input_shape must be a tuple \(C, H, W\)"),
        (((3, 4, 4), np.zeros((3, 2, 2))), ValueError, r"mean must have shape \(3, 4, 4\) or \(3, 1, 1\)"),
        (((3, 4, 4), None, np.zeros((3, 1, 1))), ValueError, "std must be finite and > 0"),
        (((3, 4, 4), np.zeros((3, 4, 4), np.int64)), TypeError, "mean must have a floating dtype"),
    ],
)
def test_bad_preprocessing_is_refused(args, error, message):
    with pytest.raises(error, match=message):
        Preprocessing(*args)


def test_pixels_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"pixels must have shape \(N, 3, 4, 4\), got shape \(2, 3, 5, 5\)"):
        Preprocessing((3, 4, 4)).apply(np.zeros((2, 3, 5, 5)), np.float32)


@pytest.mark.parametrize("chunk", [1024, 3])  # one pass, and several chunks
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_channel_statistics_are_the_mean_and_std_of_each_channel(monkeypatch, chunk, dtype):
    from layerwise import preprocessing

    monkeypatch.setattr(preprocessing, "_CHUNK", chunk)
    rng = np.random.default_rng(1)
    images = (rng.standard_normal((10, 3, 5, 4)) * [[[20.0]], [[40.0]], [[5.0]]] + 120).clip(0, 255).astype(dtype)
    statistics = Preprocessing.channel_statistics(images)
    as64 = images.astype(np.float64)
    np.testing.assert_allclose(statistics.mean.ravel(), as64.mean(axis=(0, 2, 3)), rtol=1e-13)
    np.testing.assert_allclose(statistics.std.ravel(), as64.std(axis=(0, 2, 3)), rtol=1e-12)
    assert statistics.mean.shape == statistics.std.shape == (3, 1, 1) and statistics.input_shape == (3, 5, 4)
    assert statistics.mean.dtype == statistics.std.dtype == np.float64
    normalised = statistics.apply(images, np.float64)
    np.testing.assert_allclose(normalised.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(normalised.std(axis=(0, 2, 3)), 1.0, rtol=1e-12)
    assert statistics.describe()["subtract"] == "channel_mean" and statistics.describe()["divide"] == "channel_std"


@pytest.mark.parametrize("images, error, message", [
    ([[[[1.0]]]], TypeError, "Preprocessing.channel_statistics: images must be a numeric numpy.ndarray, got [[[[1.0]]]] (list)"),
    (np.zeros((4, 3, 2)), ValueError, "images must be a 4-d array of shape (N, C, H, W), got shape (4, 3, 2)"),
    (np.zeros((0, 3, 2, 2)), ValueError, "images must hold at least one image, got shape (0, 3, 2, 2)"),
    (np.stack([np.full((2, 2, 2), 7.0), np.arange(8.0).reshape(2, 2, 2)], axis=1), ValueError,
     "images have constant channels [0] (std 0)"),
    (np.full((2, 1, 2, 2), np.nan), ValueError, "Preprocessing.channel_statistics: images must be finite"),
])
def test_channel_statistics_refuse_bad_images(images, error, message):
    with pytest.raises(error) as caught:
        Preprocessing.channel_statistics(images)
    assert message in str(caught.value)
