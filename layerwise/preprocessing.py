"""How raw images become a model's input; saved with a model so that a file alone can predict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validation as v

_CHUNK = 1024  # images per pass of channel_statistics: a float64 chunk of CIFAR-10 is 25 MB


@dataclass(frozen=True)
class Preprocessing:
    """Raw pixels to model input: ``(pixels - mean) / std``, computed in the model's dtype.

    Parameters
    ----------
    input_shape : tuple (C, H, W)
        The shape of one image the model expects (CIFAR-10: ``(3, 32, 32)``).
    mean : ndarray or None
        Subtracted from every image: the training set's mean image, shape ``(C, H, W)``, or
        per-channel means, shape ``(C, 1, 1)``.
    std : ndarray or None
        Per-channel standard deviations, shape ``(C, 1, 1)``, dividing after the mean is subtracted.

    Raw pixels are RGB values in [0, 255] (as CIFAR-10 stores them), shape ``(N, C, H, W)``.
    """

    input_shape: tuple[int, int, int]
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def __post_init__(self):
        owner = "Preprocessing"
        shape = self.input_shape
        if not isinstance(shape, (tuple, list)) or len(shape) != 3:
            raise ValueError(f"{owner}: input_shape must be a tuple (C, H, W), got {v.describe(shape)}")
        shape = tuple(v.int_value(owner, f"input_shape[{i}]", size, minimum=1) for i, size in enumerate(shape))
        object.__setattr__(self, "input_shape", shape)
        channels = (shape[0], 1, 1)
        for name, allowed in (("mean", (shape, channels)), ("std", (channels,))):
            value = getattr(self, name)
            if value is None:
                continue
            value = v.float_array(owner, name, value)
            if value.shape not in allowed:
                raise ValueError(f"{owner}: {name} must have shape {' or '.join(map(str, allowed))}, got shape {value.shape}")
            if not np.isfinite(value).all() or (name == "std" and not (value > 0).all()):
                raise ValueError(f"{owner}: {name} must be finite{' and > 0' if name == 'std' else ''}")
            object.__setattr__(self, name, value)

    @classmethod
    def channel_statistics(cls, images: np.ndarray) -> "Preprocessing":
        """Per-channel normalisation from training images: their mean and standard deviation per channel.

        Parameters
        ----------
        images : ndarray, shape (N, C, H, W)
            Raw training pixels (any numeric dtype), or pixels less a constant.

        Returns
        -------
        Preprocessing
            ``mean`` and ``std`` of shape ``(C, 1, 1)``, float64: over every image and pixel of each
            channel, the population standard deviation (``ddof=0``, as ``torchvision``'s usual
            CIFAR-10 constants).

        Both passes accumulate in float64 over chunks of images, so no float64 copy of a large
        set is made.
        """
        func = "Preprocessing.channel_statistics"
        if not isinstance(images, np.ndarray) or images.dtype.kind not in "fiu":
            raise TypeError(f"{func}: images must be a numeric numpy.ndarray, got {v.describe(images)}")
        v.check_ndim(func, "images", images, 4, "(N, C, H, W)")
        if images.shape[0] < 1:
            raise ValueError(f"{func}: images must hold at least one image, got shape {images.shape}")
        count = images.shape[0] * images.shape[2] * images.shape[3]
        chunks = [images[start : start + _CHUNK] for start in range(0, images.shape[0], _CHUNK)]
        mean = sum(chunk.sum(axis=(0, 2, 3), dtype=np.float64) for chunk in chunks) / count
        centred = mean.reshape(-1, 1, 1)
        variance = sum((np.square(chunk - centred)).sum(axis=(0, 2, 3)) for chunk in chunks) / count
        std = np.sqrt(variance)
        if not np.isfinite(mean).all() or not np.isfinite(std).all():
            raise ValueError(f"{func}: images must be finite")
        if not (std > 0).all():
            raise ValueError(f"{func}: images have constant channels {np.flatnonzero(std == 0).tolist()} (std 0), which cannot be scaled to unit variance")
        return cls(images.shape[1:], mean=centred, std=std.reshape(-1, 1, 1))

    def apply(self, pixels: np.ndarray, dtype: Any) -> np.ndarray:
        """Model input of ``dtype`` from raw ``pixels`` of shape ``(N, *input_shape)`` (a new array)."""
        if not isinstance(pixels, np.ndarray) or pixels.dtype.kind not in "fiu":
            raise TypeError(f"Preprocessing.apply: pixels must be a numeric numpy.ndarray, got {v.describe(pixels)}")
        if pixels.ndim != 4 or pixels.shape[1:] != self.input_shape:
            raise ValueError(
                f"Preprocessing.apply: pixels must have shape (N, {', '.join(map(str, self.input_shape))}), got shape {pixels.shape}"
            )
        dtype = np.dtype(dtype)
        x = pixels.astype(dtype)
        if self.mean is not None:
            x -= self.mean.astype(dtype, copy=False)
        if self.std is not None:
            x /= self.std.astype(dtype, copy=False)
        return x

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ("mean", "std") if getattr(self, name) is not None}

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description (the arrays themselves are stored beside it)."""
        return {
            "input_shape": list(self.input_shape),
            "pixel_range": [0, 255],
            "subtract": None if self.mean is None else ("mean_image" if self.mean.shape == self.input_shape else "channel_mean"),
            "divide": None if self.std is None else "channel_std",
        }
