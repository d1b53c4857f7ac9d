"""Reading image files as RGB pixel arrays: PNG and JPEG (decoded by Pillow) and ``.npy`` arrays."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy")


class ImageError(ValueError):
    """An image file is missing, unreadable, or not an image the caller can use; names the file."""


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The image files named by ``paths``: files as given, folders replaced by their image files
    (:data:`IMAGE_SUFFIXES`, not recursive, sorted by name)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ImageError(f"{path}: the folder holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ImageError(f"{path}: no such file or folder")
    return files


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An RGB image of shape (H, W, 3) and dtype uint8.

    PNG, JPEG and the other formats Pillow reads are converted to RGB (grayscale replicated, alpha
    dropped). A ``.npy`` file (read without pickle) must hold (H, W, 3), (3, H, W) or (H, W)
    values in [0, 255]: uint8, or floats that are rounded.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    if path.suffix.lower() == ".npy":
        return _from_array(path)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            return np.asarray(opened.convert("RGB"))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as error:
        raise ImageError(f"{path}: cannot be read as an image ({error})") from None


def _from_array(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ImageError(f"{path}: cannot be read as a NumPy array ({error})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise ImageError(f"{path}: must hold a numeric array, got dtype {getattr(array, 'dtype', type(array).__name__)}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[0] == 3 and array.shape[2] != 3:
        array = array.transpose(1, 2, 0)
    if array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape:
        raise ImageError(f"{path}: must hold an RGB image of shape (H, W, 3) or (3, H, W), got shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
        raise ImageError(f"{path}: pixel values must lie in [0, 255], got [{array.min()}, {array.max()}]")
    if array.dtype.kind == "f" and array.max() <= 1:
        raise ImageError(f"{path}: pixel values lie in [0, 1]; images are read as [0, 255] values (multiply by 255)")
    return np.rint(array).astype(np.uint8)


def fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` (H, W, 3) uint8 centre-cropped to the aspect ratio height:width, then resized to
    (height, width, 3) with Pillow's bicubic filter (antialiased when shrinking)."""
    from PIL import Image

    rows, cols = image.shape[:2]
    if rows * width > cols * height:  # too tall: crop rows
        keep = max(1, round(cols * height / width))
        top = (rows - keep) // 2
        image = image[top : top + keep]
    elif rows * width < cols * height:
        keep = max(1, round(rows * width / height))
        left = (cols - keep) // 2
        image = image[:, left : left + keep]
    resized = Image.fromarray(np.ascontiguousarray(image)).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(resized)


def load_images(paths: Iterable[str | os.PathLike], size: tuple[int, int], resize: bool = False) -> np.ndarray:
    """Pixels ``(N, 3, height, width)`` of uint8 from image files, in the order given.

    An image of another size is refused with an :class:`ImageError` naming the file and both
    sizes, unless ``resize`` (then :func:`fit` makes it the size).
    """
    height, width = size
    images = []
    for path in paths:
        image = read_image(path)
        if image.shape[:2] != (height, width):
            if not resize:
                raise ImageError(
                    f"{path}: the image is {image.shape[1]}x{image.shape[0]} pixels but the model takes "
                    f"{width}x{height} (width x height); resize=True (--resize on the command line) crops and scales it"
                )
            image = fit(image, height, width)
        images.append(image.transpose(2, 0, 1))
    return np.stack(images) if images else np.zeros((0, 3, height, width), np.uint8)
