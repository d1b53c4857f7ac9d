"""RandomCropFlip: true crops and flips (against a loop over images), dtype, seeds, state, bad inputs."""

import json

import numpy as np
import pytest

from layerwise.augmentation import RandomCropFlip


def _batch(shape=(16, 3, 8, 10), dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _candidates(image, pad, mode):
    """Every crop (and its mirror image) of one padded image, by offsets: the obviously-right reference."""
    C, H, W = image.shape
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad)), mode=mode)
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, dy : dy + H, dx : dx + W]
            yield (dy, dx, False), crop
            yield (dy, dx, True), crop[:, :, ::-1]


@pytest.mark.parametrize("mode", ["reflect", "edge", "constant"])
@pytest.mark.parametrize("pad", [0, 1, 4])
def test_every_output_is_a_crop_of_its_own_padded_image_flipped_or_not(mode, pad):
    x = _batch()
    out = RandomCropFlip(pad=pad, mode=mode, seed=1)(x)
    assert out.shape == x.shape
    seen = set()
    for image, result in zip(x, out):
        matches = [key for key, crop in _candidates(image, pad, mode) if np.array_equal(crop, result)]
        assert matches, "not a crop of its padded image"
        seen.update(key[2] for key in matches)
    assert seen == {False, True}  # 16 images: both flipped and unflipped ones occur


def test_the_draws_follow_the_documented_order():
    x = _batch(shape=(5, 2, 6, 6))
    out = RandomCropFlip(pad=2, seed=7)(x)
    rng = np.random.default_rng(7)
    dy, dx, flips = rng.integers(0, 5, 5), rng.integers(0, 5, 5), rng.integers(0, 2, 5)
    for n in range(5):
        expected = dict(_candidates(x[n], 2, "reflect"))[(dy[n], dx[n], bool(flips[n]))]
        np.testing.assert_array_equal(out[n], expected)


def test_flip_false_only_crops_and_pad_zero_only_flips():
    x = _batch()
    out = RandomCropFlip(pad=0, flip=True, seed=2)(x)
    for image, result in zip(x, out):
        assert np.array_equal(result, image) or np.array_equal(result, image[:, :, ::-1])
    cropped = RandomCropFlip(pad=3, flip=False, seed=2)(x)
    for image, result in zip(x, cropped):
        assert any(np.array_equal(crop, result) for (_, _, flipped), crop in _candidates(image, 3, "reflect") if not flipped)
    np.testing.assert_array_equal(RandomCropFlip(pad=0, flip=False, seed=2)(x), x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_dtype_is_kept_and_the_input_is_not_written(dtype):
    x = (_batch(dtype=np.float64) * 50 + 100).astype(dtype)
    before = x.copy()
    out = RandomCropFlip(seed=0)(x)
    assert out.dtype == dtype and out.shape == x.shape
    np.testing.assert_array_equal(x, before)
    x.setflags(write=False)  # read-only data (shared memory) is fine
    RandomCropFlip(seed=0)(x)


def test_same_seed_same_bits_and_a_resumed_generator_continues_the_stream():
    x = _batch()
    first, second = RandomCropFlip(seed=3), RandomCropFlip(seed=3)
    np.testing.assert_array_equal(first(x), second(x))
    assert not np.array_equal(first(x), RandomCropFlip(seed=4)(x))
    state = json.loads(json.dumps(first.get_state()))  # survives a checkpoint's JSON
    expected = [first(x) for _ in range(3)]
    restored = RandomCropFlip(seed=99)
    restored.set_state(state)
    for batch in expected:
        np.testing.assert_array_equal(restored(x), batch)


def test_without_a_seed_it_draws_from_numpys_global_generator():
    x = _batch()
    np.random.seed(5)
    first = RandomCropFlip()(x)
    np.random.seed(5)
    np.testing.assert_array_equal(RandomCropFlip()(x), first)
    assert RandomCropFlip().get_state() is None
    RandomCropFlip().set_state(None)


BAD = [
    (lambda: RandomCropFlip(pad=-1), ValueError, "RandomCropFlip: pad must be >= 0, got -1"),
    (lambda: RandomCropFlip(pad=2.0), TypeError, "RandomCropFlip: pad must be an int, got 2.0 (float)"),
    (lambda: RandomCropFlip(flip="yes"), TypeError, "RandomCropFlip: flip must be a bool, got 'yes'"),
    (lambda: RandomCropFlip(mode="zeros"), ValueError, "RandomCropFlip: mode must be one of ['reflect', 'edge', 'constant'], got 'zeros'"),
    (lambda: RandomCropFlip(seed=-3), ValueError, "RandomCropFlip: seed must be >= 0, got -3"),
    (lambda: RandomCropFlip(seed=0)(np.zeros((3, 8, 8))), ValueError,
     "RandomCropFlip: x must be a 4-d array of shape (N, C, H, W), got shape (3, 8, 8)"),
    (lambda: RandomCropFlip(seed=0)([[[[1.0]]]]), TypeError, "RandomCropFlip: x must be a numeric numpy.ndarray, got [[[[1.0]]]] (list)"),
    (lambda: RandomCropFlip(seed=0)(np.zeros((1, 1, 2, 2), dtype=bool)), TypeError, "x must be a numeric numpy.ndarray"),
    (lambda: RandomCropFlip(pad=4, seed=0)(np.zeros((2, 3, 4, 8))), ValueError,
     "RandomCropFlip: pad must be smaller than the image's height and width to reflect, got pad=4 for shape (2, 3, 4, 8)"),
    (lambda: RandomCropFlip(seed=0).set_state({"bit_generator": "MT19937"}), ValueError,
     "RandomCropFlip.set_state: state must be the dict get_state returns for a PCG64 generator"),
    (lambda: RandomCropFlip(seed=0).set_state({"bit_generator": "PCG64", "state": {}}), ValueError,
     "RandomCropFlip.set_state: state is not a valid PCG64 state"),
    (lambda: RandomCropFlip().set_state(RandomCropFlip(seed=0).get_state()), ValueError,
     "RandomCropFlip.set_state: this augmentation draws from NumPy's global generator (seed=None); state must be None"),
]


@pytest.mark.parametrize("call, error, message", BAD)
def test_bad_inputs_are_refused_naming_the_argument(call, error, message):
    with pytest.raises(error) as caught:
        call()
    assert message in str(caught.value)


def test_a_bad_state_leaves_the_generator_as_it_was():
    x = _batch()
    augment, twin = RandomCropFlip(seed=8), RandomCropFlip(seed=8)
    with pytest.raises(ValueError):
        augment.set_state({"bit_generator": "PCG64", "state": {"state": "x"}})
    np.testing.assert_array_equal(augment(x), twin(x))


def test_the_padding_of_the_first_call_is_not_kept_between_calls():
    # Batches of another image size in between: nothing of the first batch's shape is cached.
    augment = RandomCropFlip(pad=1, seed=0)
    assert augment(_batch(shape=(2, 1, 4, 4))).shape == (2, 1, 4, 4)
    assert augment(_batch(shape=(3, 2, 5, 7))).shape == (3, 2, 5, 7)
    assert repr(augment) == "RandomCropFlip(pad=1, flip=True, mode='reflect', seed=0)"


def test_make_augmentation_builds_the_named_recipe():
    from layerwise.augmentation import make_augmentation

    assert make_augmentation(None, 3) is None
    augment = make_augmentation("crop-flip", 3)
    assert repr(augment) == "RandomCropFlip(pad=4, flip=True, mode='reflect', seed=3)"
    with pytest.raises(ValueError, match=r"make_augmentation: name must be one of \['crop-flip'\] or None, got 'cutout'"):
        make_augmentation("cutout", 3)
