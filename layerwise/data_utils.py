"""CIFAR-10: finding, downloading, safely loading and splitting it, plus a small embedded sample.

The loaders keep the cs231n API: :func:`load_CIFAR_batch` and :func:`load_CIFAR10` return
float64 images of shape (N, 32, 32, 3) and int64 labels; :func:`get_CIFAR10_data` returns the
cs231n train/validation/test split as a dict of (N, 3, 32, 32) arrays with the training mean
image subtracted. Images stay uint8 until the final conversion to the requested dtype, so the
float32 default never builds a float64 copy of the 50,000 training images.

Where the data comes from (:func:`find_cifar10`), first match wins:

1. the ``data_dir`` argument;
2. the ``LAYERWISE_DATA`` environment variable;
3. the cache folder ``$XDG_CACHE_HOME/layerwise`` (default ``~/.cache/layerwise``);
4. a download of https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz into the cache folder,
   MD5-verified, written atomically and extracted safely; the archive is then deleted.

Each of 1-3 may be the archive ``cifar-10-python.tar.gz`` (read member by member, never
extracted), an extracted ``cifar-10-batches-py/`` folder, or a folder holding either. A supplied
archive is checked structurally (members, shapes, label ranges), not by checksum, so re-packed
copies of the data work. Batches are unpickled with a restricted unpickler that only rebuilds
numpy arrays and plain data: a crafted file cannot run code, it raises :class:`CIFAR10FormatError`.

The embedded sample
-------------------
``layerwise/_data/cifar10_sample.npz.xz`` (about 5 MB) holds real CIFAR-10 images so that
training runs offline anywhere (:func:`load_embedded_sample`, :func:`get_embedded_data`). It was
made by ``scripts/make_embedded_sample.py`` from ``cifar-10-python.tar.gz``, whose SHA-256 is
stored in the file, taking only images that are byte-exact copies of the official ones:

- training: the first 190 images of each class, in file order, among training images 0-3,999
  (all in ``data_batch_1``): 1,900 images, stored interleaved by class (position ``10 * j + c``
  holds the ``j``-th image of class ``c``), so every prefix of a multiple of 10 images is
  class-balanced;
- test: test images 0-999 in file order (the cs231n ``num_test=1000`` test set; 103, 89, 100,
  103, 90, 86, 112, 102, 106 and 109 images of classes 0-9).

Images are stored losslessly as uint8 residuals (see ``layerwise/_data/sample_codec.py``); decoding
needs only numpy and the standard library.
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from layerwise import _validation as v
from layerwise._data.cifar_format import (
    TEST_BATCH,
    TRAIN_BATCHES,
    CIFAR10FormatError,
    read_batch_file,
    read_batches,
)
from layerwise._data.cifar_source import ENV_VAR, CIFAR10UnavailableError, as_path, default_cache_dir, find, located
from layerwise._data.sample_codec import SAMPLE_FILE, read_sample
from layerwise._data.splits import check_split_args, split

__all__ = [
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "CLASS_NAMES",
    "CIFAR10FormatError",
    "CIFAR10UnavailableError",
    "cifar10_available",
    "default_cache_dir",
    "find_cifar10",
    "get_CIFAR10_data",
    "get_embedded_data",
    "load_CIFAR10",
    "load_CIFAR_batch",
    "load_embedded_sample",
]

CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
"""The CIFAR-10 class names; label ``k`` is ``CLASS_NAMES[k]``."""

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
"""MD5 of the official archive; only downloads are checked against it."""

_TRAIN_IMAGES = 50_000
_TEST_IMAGES = 10_000

PathLike = str | os.PathLike


# ----------------------------------------------------------------------------- locating the data


def _find(data_dir: PathLike | None, download: bool, func: str) -> Path:
    return find(data_dir, download, func, CIFAR10_URL, CIFAR10_MD5)  # read here: tests patch the MD5


def find_cifar10(data_dir: PathLike | None = None, download: bool = True) -> Path:
    """Resolve where CIFAR-10 comes from, downloading it into the cache folder as a last resort.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        The archive ``cifar-10-python.tar.gz`` (any file name), an extracted
        ``cifar-10-batches-py`` folder, or a folder holding either. When given it must be valid:
        there is no fall-back to the other sources.
    download : bool
        Whether to download the official archive when no other source is found.

    Returns
    -------
    Path
        An archive file or an extracted batches folder, ready for :func:`load_CIFAR10`.

    Raises
    ------
    CIFAR10UnavailableError
        When ``data_dir`` or ``$LAYERWISE_DATA`` names no CIFAR-10 data, or nothing is found and the
        download is disabled, fails or does not match the official MD5. The message says how to
        supply the archive by hand.
    """
    return _find(data_dir, download, "find_cifar10")


def cifar10_available(data_dir: PathLike | None = None) -> bool:
    """Whether :func:`find_cifar10` finds CIFAR-10 without downloading it.

    Cheap: it checks that the files exist, not their contents, so loading can still fail with
    :class:`CIFAR10FormatError` on a damaged archive.
    """
    try:
        _find(data_dir, False, "cifar10_available")
    except CIFAR10UnavailableError:
        return False
    return True


def _read_cifar10(location: Path, func: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The raw data at ``location``: train rows uint8 (N, 3072), labels int64 (N,), test likewise."""
    batches = read_batches(location, TRAIN_BATCHES + (TEST_BATCH,), func)
    x_train = np.concatenate([batches[name][0] for name in TRAIN_BATCHES])
    y_train = np.concatenate([batches[name][1] for name in TRAIN_BATCHES])
    x_test, y_test = batches[TEST_BATCH]
    return x_train, y_train, x_test, y_test


def _rows_to_nhwc(rows: np.ndarray) -> np.ndarray:
    return rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


# ----------------------------------------------------------------------------- cs231n loaders


def load_CIFAR_batch(filename: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load one CIFAR-10 batch file (``data_batch_1`` ... ``data_batch_5`` or ``test_batch``).

    Parameters
    ----------
    filename : str or os.PathLike
        An extracted batch file.

    Returns
    -------
    X : np.ndarray of float64, shape (N, 32, 32, 3)
        Pixel values in [0, 255], channels last (red, green, blue). ``N`` is 10,000 for the
        official files, but any consistent batch is accepted.
    Y : np.ndarray of int64, shape (N,)
        Labels in [0, 9]; see :data:`CLASS_NAMES`.

    Raises
    ------
    CIFAR10FormatError
        When the file is truncated, corrupted, unsafe or of the wrong shape; the message names it.
    """
    path = as_path("load_CIFAR_batch", "filename", filename)
    rows, labels = read_batch_file(path, "load_CIFAR_batch")
    return _rows_to_nhwc(rows).astype(np.float64), labels


def load_CIFAR10(root: PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load all of CIFAR-10 as cs231n does: float64 images, channels last.

    Parameters
    ----------
    root : str or os.PathLike
        The ``cifar-10-batches-py`` folder, the ``cifar-10-python.tar.gz`` archive, or a folder
        holding either.

    Returns
    -------
    Xtr : np.ndarray of float64, shape (50000, 32, 32, 3)
        ``data_batch_1`` to ``data_batch_5``, in order.
    Ytr : np.ndarray of int64, shape (50000,)
    Xte : np.ndarray of float64, shape (10000, 32, 32, 3)
        ``test_batch``.
    Yte : np.ndarray of int64, shape (10000,)

    Notes
    -----
    The float64 training images take 1.2 GB; :func:`get_CIFAR10_data` builds float32 arrays
    without this intermediate.
    """
    func = "load_CIFAR10"
    path = as_path(func, "root", root)
    location = located(func, path, "root must be", str(path))
    x_train, y_train, x_test, y_test = _read_cifar10(location, func)
    return (
        _rows_to_nhwc(x_train).astype(np.float64),
        y_train,
        _rows_to_nhwc(x_test).astype(np.float64),
        y_test,
    )


# ----------------------------------------------------------------------------- splits


def get_CIFAR10_data(
    num_training: int = 49000,
    num_validation: int = 1000,
    num_test: int = 1000,
    subtract_mean: bool = True,
    dtype: Any = np.float32,
    data_dir: PathLike | None = None,
    *,
    download: bool = True,
) -> dict[str, np.ndarray]:
    """Load CIFAR-10 and split it exactly as cs231n does, ready for a classifier.

    The training set is training images ``0 .. num_training - 1``, the validation set the next
    ``num_validation`` images (49,000-49,999 by default), the test set the first ``num_test``
    test images. With ``subtract_mean`` the mean image of the *training* set is subtracted from
    all three.

    Parameters
    ----------
    num_training : int
        At least 1; ``num_training + num_validation`` at most 50,000.
    num_validation : int
        At least 0.
    num_test : int
        In [0, 10000].
    subtract_mean : bool
        Whether to subtract the training mean image.
    dtype : np.float32 or np.float64
        Of the returned images; float32 (the default) trains fast, float64 is for gradient checks.
    data_dir : str or os.PathLike, optional
        Where the data is; see :func:`find_cifar10` for the accepted forms and the search order.
    download : bool
        Whether to download the archive when it is found nowhere else.

    Returns
    -------
    dict of str to np.ndarray
        ``X_train`` (num_training, 3, 32, 32), ``X_val`` (num_validation, 3, 32, 32) and
        ``X_test`` (num_test, 3, 32, 32) of ``dtype``; ``y_train``, ``y_val`` and ``y_test`` of
        int64 labels in [0, 9].

    Raises
    ------
    TypeError, ValueError
        For bad arguments, before any data is read.
    CIFAR10UnavailableError
        When the data cannot be found or downloaded.
    CIFAR10FormatError
        When a file is truncated, corrupted, unsafe or of the wrong shape.
    """
    func = "get_CIFAR10_data"
    num_training, num_validation, num_test, dtype = check_split_args(
        func, num_training, num_validation, num_test, subtract_mean, dtype,
        _TRAIN_IMAGES, _TEST_IMAGES, "in CIFAR-10",
    )  # fmt: skip
    location = _find(data_dir, download, func)
    x_train, y_train, x_test, y_test = _read_cifar10(location, func)
    # A re-packed archive may hold fewer images than the official one.
    check_split_args(
        func, num_training, num_validation, num_test, subtract_mean, dtype,
        len(x_train), len(x_test), f"in {location}",
    )  # fmt: skip
    return split(x_train, y_train, x_test, y_test, num_training, num_validation, num_test, subtract_mean, dtype)


# ----------------------------------------------------------------------------- embedded sample


@functools.lru_cache(maxsize=1)
def _embedded() -> dict[str, Any]:
    """The decoded sample, decoded once per process; its arrays are read-only, callers get copies."""
    resource = resources.files("layerwise._data").joinpath(SAMPLE_FILE)
    sample = read_sample(resource.read_bytes(), f"layerwise/_data/{SAMPLE_FILE}")
    for value in sample.values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
    return sample


def load_embedded_sample() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The small real CIFAR-10 subset shipped with the package, as raw uint8 images.

    See the module docstring for how it was selected (1,900 class-balanced training images, the
    first 1,000 test images, all byte-exact copies of the official ones). Needs no network and
    no files outside the package.

    Returns
    -------
    Xtr : np.ndarray of uint8, shape (1900, 32, 32, 3)
        Channels last, like :func:`load_CIFAR10`; interleaved by class, so ``Ytr[:10]`` is
        ``0, 1, ..., 9``.
    Ytr : np.ndarray of int64, shape (1900,)
        190 images of each class.
    Xte : np.ndarray of uint8, shape (1000, 32, 32, 3)
        Test images 0-999 in order.
    Yte : np.ndarray of int64, shape (1000,)
    """
    sample = _embedded()
    return (
        sample["x_train"].transpose(0, 2, 3, 1).copy(),
        sample["y_train"].copy(),
        sample["x_test"].transpose(0, 2, 3, 1).copy(),
        sample["y_test"].copy(),
    )


def get_embedded_data(
    num_training: int | None = None,
    num_validation: int = 100,
    num_test: int | None = None,
    subtract_mean: bool = True,
    dtype: Any = np.float32,
) -> dict[str, np.ndarray]:
    """The embedded sample split like :func:`get_CIFAR10_data`: same keys, shapes and dtypes.

    The training set is the first ``num_training`` embedded training images, the validation set
    the next ``num_validation``, the test set the first ``num_test`` embedded test images. Since
    the training images are interleaved by class, multiples of 10 give class-balanced sets.

    Parameters
    ----------
    num_training : int, optional
        Default: all embedded training images not used for validation (1,800 with the defaults).
    num_validation : int
        Default 100 (10 per class).
    num_test : int, optional
        Default: all 1,000 embedded test images.
    subtract_mean : bool
        Whether to subtract the training mean image.
    dtype : np.float32 or np.float64
        Of the returned images.

    Returns
    -------
    dict of str to np.ndarray
        ``X_train``, ``X_val``, ``X_test`` of shape (n, 3, 32, 32) and ``dtype``; ``y_train``,
        ``y_val``, ``y_test`` of int64.
    """
    func = "get_embedded_data"
    # Check what can be checked before decoding the sample; the counts' upper bounds come after.
    num_validation = v.int_value(func, "num_validation", num_validation, minimum=0)
    if num_training is not None:
        v.int_value(func, "num_training", num_training, minimum=1)
    if num_test is not None:
        v.int_value(func, "num_test", num_test, minimum=0)
    if not isinstance(subtract_mean, (bool, np.bool_)):
        raise TypeError(f"{func}: subtract_mean must be a bool, got {v.describe(subtract_mean)}")
    v.float_dtype(func, dtype)
    sample = _embedded()
    x_train = sample["x_train"].reshape(-1, 3 * 32 * 32)
    x_test = sample["x_test"].reshape(-1, 3 * 32 * 32)
    if num_training is None:
        num_training = len(x_train) - num_validation
        if num_training < 1:
            raise ValueError(
                f"{func}: num_validation must leave at least one of the {len(x_train)} embedded training "
                f"images for training, got {num_validation}"
            )
    if num_test is None:
        num_test = len(x_test)
    num_training, num_validation, num_test, dtype = check_split_args(
        func, num_training, num_validation, num_test, subtract_mean, dtype,
        len(x_train), len(x_test), "in the embedded sample",
    )  # fmt: skip
    return split(
        x_train, sample["y_train"], x_test, sample["y_test"],
        num_training, num_validation, num_test, subtract_mean, dtype,
    )  # fmt: skip
