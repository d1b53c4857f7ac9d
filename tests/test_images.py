"""Image files to pixel arrays: PNG, JPEG, .npy, folders, sizes."""

import numpy as np
import pytest
from PIL import Image

from layerwise.images import ImageError, expand_paths, fit, load_images, read_image


def _image(height=6, width=5):
    return (np.arange(height * width * 3) * 7 % 256).astype(np.uint8).reshape(height, width, 3)


def test_png_and_npy_read_back_the_same_pixels(tmp_path):
    image = _image()
    Image.fromarray(image).save(tmp_path / "a.png")
    np.save(tmp_path / "hwc.npy", image)
    np.save(tmp_path / "chw.npy", image.transpose(2, 0, 1).astype(np.float32))
    for name in ("a.png", "hwc.npy", "chw.npy"):
        read = read_image(tmp_path / name)
        assert read.dtype == np.uint8
        np.testing.assert_array_equal(read, image)


def test_grayscale_and_alpha_become_rgb(tmp_path):
    Image.fromarray(np.full((4, 4), 9, np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(np.full((4, 4, 4), 9, np.uint8)).save(tmp_path / "rgba.png")
    np.save(tmp_path / "gray.npy", np.full((4, 4), 9, np.uint8))
    for name in ("gray.png", "rgba.png", "gray.npy"):
        np.testing.assert_array_equal(read_image(tmp_path / name), np.full((4, 4, 3), 9, np.uint8))


def test_jpeg_is_decoded_close_to_its_source(tmp_path):
    image = np.full((16, 16, 3), (200, 40, 90), np.uint8)
    Image.fromarray(image).save(tmp_path / "a.jpg", quality=95)
    assert np.abs(read_image(tmp_path / "a.jpg").astype(int) - image).max() <= 3


@pytest.mark.parametrize(
    "content,message",
    [
        (b"not an image", "cannot be read as an image"),
        (None, "no such file"),
    ],
)
def test_unreadable_files_are_named(tmp_path, content, message):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=f"bad.png: {message}"):
        read_image(path)


@pytest.mark.parametrize(
    "array,message",
    [
        (np.zeros((4, 4, 2), np.uint8), r"shape \(H, W, 3\) or \(3, H, W\), got shape \(4, 4, 2\)"),
        (np.full((4, 4, 3), 300.0), r"must lie in \[0, 255\]"),
        (np.full((4, 4, 3), 0.5), r"lie in \[0, 1\]"),
        (np.array(["a"]), "numeric array"),
    ],
)
def test_bad_arrays_are_refused(tmp_path, array, message):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(ImageError, match=message):
        read_image(tmp_path / "x.npy")


def test_pickled_npy_files_are_refused_without_running_them(tmp_path):
    np.save(tmp_path / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ImageError, match="cannot be read as a NumPy array"):
        read_image(tmp_path / "x.npy")


def test_folders_expand_to_their_images_sorted(tmp_path):
    for name in ("b.png", "a.jpg", "c.npy", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in expand_paths([tmp_path])] == ["a.jpg", "b.png", "c.npy"]
    assert expand_paths([tmp_path / "notes.txt"]) == [tmp_path / "notes.txt"]  # a file named is taken as is
    with pytest.raises(ImageError, match="holds no image files"):
        expand_paths([tmp_path / "sub"])
    with pytest.raises(ImageError, match="no such file or folder"):
        expand_paths([tmp_path / "missing"])


def test_other_sizes_are_refused_unless_resized(tmp_path):
    np.save(tmp_path / "small.npy", _image(6, 5))
    with pytest.raises(ImageError, match=r"small.npy: the image is 5x6 pixels but the model takes 4x4"):
        load_images([tmp_path / "small.npy"], (4, 4))
    pixels = load_images([tmp_path / "small.npy"], (4, 4), resize=True)
    assert pixels.shape == (1, 3, 4, 4) and pixels.dtype == np.uint8


def test_fit_crops_to_the_aspect_ratio_before_scaling():
    image = np.zeros((10, 30, 3), np.uint8)
    image[:, 10:20] = 255  # the centre square is white, the sides black
    np.testing.assert_array_equal(fit(image, 5, 5), np.full((5, 5, 3), 255, np.uint8))
    assert fit(image, 3, 9).shape == (3, 9, 3)
