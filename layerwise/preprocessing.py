"""How raw images become a model's input; saved with a model so that a file alone can predict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validation as v


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
