"""The lossless encoding of the embedded CIFAR-10 sample (``cifar10_sample.npz.xz``).

Images are stored as residuals that compress far better than raw pixels, so more real images fit
in the size budget:

1. channel decorrelation: the planes stored are ``R - G``, ``G`` and ``B - G``;
2. a 2-d difference in each plane: ``r[i, j] = c[i, j] - c[i, j-1] - c[i-1, j] + c[i-1, j-1]``
   (the "gradient" predictor ``left + up - upleft``, missing neighbours read as 0).

All arithmetic is modulo 256 in uint8, so decoding is two cumulative sums and two additions,
exact and vectorized. The residual arrays, labels and provenance are written as an uncompressed
``.npz`` (loadable with ``allow_pickle=False``) compressed with xz (:mod:`lzma`, preset 9e),
which compresses these residuals better than the zlib of ``np.savez_compressed``.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np

SAMPLE_FILE = "cifar10_sample.npz.xz"
CODEC = "cifar10-sample-v1: planes R-G, G, B-G; 2-d difference; uint8 modulo 256; npz in xz"
_ARRAY_KEYS = ("x_train", "y_train", "train_index", "x_test", "y_test", "test_index")


def encode_images(images: np.ndarray) -> np.ndarray:
    """Encode uint8 images of shape (n, 3, 32, 32) into uint8 residuals of the same shape."""
    wide = images.astype(np.int16)
    planes = wide.copy()
    planes[:, 0] -= wide[:, 1]
    planes[:, 2] -= wide[:, 1]
    residual = np.diff(planes, axis=-1, prepend=0)
    residual = np.diff(residual, axis=-2, prepend=0)
    return (residual & 0xFF).astype(np.uint8)


def decode_images(residuals: np.ndarray) -> np.ndarray:
    """Invert :func:`encode_images`: uint8 residuals (n, 3, 32, 32) to uint8 images (n, 3, 32, 32)."""
    # uint8 cumulative sums wrap modulo 256, exactly undoing the modulo-256 differences.
    planes = np.cumsum(np.cumsum(residuals, axis=-2, dtype=np.uint8), axis=-1, dtype=np.uint8)
    images = planes.copy()
    images[:, 0] += planes[:, 1]
    images[:, 2] += planes[:, 1]
    return images


def write_sample(arrays: dict[str, np.ndarray]) -> bytes:
    """Serialize the sample: an uncompressed npz with fixed timestamps, xz-compressed (byte-reproducible)."""
    import lzma

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asarray(array), allow_pickle=False)
    return lzma.compress(buffer.getvalue(), format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME)


def read_sample(payload: bytes, source: str) -> dict[str, Any]:
    """Decompress, check and decode the sample written by :func:`write_sample`.

    Returns
    -------
    dict
        ``x_train`` uint8 (n_train, 3, 32, 32), ``y_train`` int64 (n_train,), ``train_index`` int64
        (n_train,), ``x_test`` uint8 (n_test, 3, 32, 32), ``y_test`` int64 (n_test,),
        ``test_index`` int64 (n_test,), and the strings ``codec`` and ``source_sha256``.

    Raises
    ------
    ValueError
        When the file is damaged or was written with another codec.
    """
    try:
        import lzma
    except ImportError as err:  # pragma: no cover - Python built without liblzma
        raise ImportError(
            f"reading {source} needs the standard-library module lzma, which this Python was built without"
        ) from err
    try:
        with np.load(io.BytesIO(lzma.decompress(payload)), allow_pickle=False) as npz:
            stored = {name: npz[name] for name in npz.files}
    except (lzma.LZMAError, OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{source} must be the embedded CIFAR-10 sample, but it is damaged ({err})") from err
    missing = [key for key in (*_ARRAY_KEYS, "codec", "source_sha256") if key not in stored]
    if missing:
        raise ValueError(f"{source} must hold the arrays {list(_ARRAY_KEYS)}, got none for {missing}")
    if str(stored["codec"]) != CODEC:
        raise ValueError(f"{source} must use the codec {CODEC!r}, got {str(stored['codec'])!r}")
    sample: dict[str, Any] = {"codec": str(stored["codec"]), "source_sha256": str(stored["source_sha256"])}
    for split in ("train", "test"):
        residuals, labels, index = stored[f"x_{split}"], stored[f"y_{split}"], stored[f"{split}_index"]
        n = len(labels)
        if residuals.dtype != np.uint8 or residuals.shape != (n, 3, 32, 32) or index.shape != (n,):
            raise ValueError(
                f"{source} must hold x_{split} of shape ({n}, 3, 32, 32) and dtype uint8 with {n} labels, "
                f"got shape {residuals.shape} and dtype {residuals.dtype}"
            )
        if n and (labels.min() < 0 or labels.max() > 9):
            raise ValueError(f"{source} must hold y_{split} in [0, 9], got [{labels.min()}, {labels.max()}]")
        sample[f"x_{split}"] = decode_images(residuals)
        sample[f"y_{split}"] = labels.astype(np.int64)
        sample[f"{split}_index"] = index.astype(np.int64)
    return sample
