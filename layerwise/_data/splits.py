"""The cs231n train/validation/test split of CIFAR-10 rows, and the checks of its arguments."""

from __future__ import annotations

from typing import Any

import numpy as np

from layerwise import _validation as v


def check_split_args(
    func: str,
    num_training: Any,
    num_validation: Any,
    num_test: Any,
    subtract_mean: Any,
    dtype: Any,
    max_train: int,
    max_test: int,
    where: str,
) -> tuple[int, int, int, np.dtype]:
    """Check the split arguments against ``max_train``/``max_test`` images (``where`` names them)."""
    num_training = v.int_value(func, "num_training", num_training, minimum=1)
    num_validation = v.int_value(func, "num_validation", num_validation, minimum=0)
    num_test = v.int_value(func, "num_test", num_test, minimum=0)
    if num_training + num_validation > max_train:
        raise ValueError(
            f"{func}: num_training + num_validation must be <= {max_train} (the training images {where}), "
            f"got {num_training} + {num_validation} = {num_training + num_validation}"
        )
    if num_test > max_test:
        raise ValueError(f"{func}: num_test must be <= {max_test} (the test images {where}), got {num_test}")
    if not isinstance(subtract_mean, (bool, np.bool_)):
        raise TypeError(f"{func}: subtract_mean must be a bool, got {v.describe(subtract_mean)}")
    return num_training, num_validation, num_test, v.float_dtype(func, dtype)


def split(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    num_training: int,
    num_validation: int,
    num_test: int,
    subtract_mean: bool,
    dtype: np.dtype,
) -> dict[str, np.ndarray]:
    """The cs231n split of uint8 rows (N, 3072) into a dict of NCHW ``dtype`` arrays."""
    stop = num_training + num_validation
    parts = {
        "train": (x_train[:num_training], y_train[:num_training]),
        "val": (x_train[num_training:stop], y_train[num_training:stop]),
        "test": (x_test[:num_test], y_test[:num_test]),
    }
    mean_image = None
    if subtract_mean:
        # Accumulate in float64 without materializing a float64 copy of the images.
        mean_image = parts["train"][0].mean(axis=0, dtype=np.float64).reshape(3, 32, 32).astype(dtype)
    data: dict[str, np.ndarray] = {}
    for name, (rows, labels) in parts.items():
        images = rows.reshape(-1, 3, 32, 32).astype(dtype)
        if mean_image is not None:
            images -= mean_image
        data[f"X_{name}"] = images
        data[f"y_{name}"] = labels.astype(np.int64)  # a copy, so no view keeps all 50,000 labels alive
    return data
