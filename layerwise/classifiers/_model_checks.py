"""Constructor and input checks shared by the models."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _validation as v


def model_input(owner: str, X: Any, feature_shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Check a minibatch ``X`` of shape ``(N, *feature_shape)`` (any shape with that many values per
    example for fully-connected nets) and return it in the model's dtype."""
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{owner}: X must be a numpy.ndarray, got {v.describe(X)}")
    if X.dtype.kind not in "fiu":
        raise TypeError(f"{owner}: X must be a numeric array, got dtype {X.dtype}")
    if X.ndim < 1 or X.shape[0] < 1:
        raise ValueError(f"{owner}: X must hold at least one example, got shape {X.shape}")
    if len(feature_shape) == 1:
        features = math.prod(X.shape[1:])
        if features != feature_shape[0]:
            raise ValueError(
                f"{owner}: X must have {feature_shape[0]} values per example (input_dim), "
                f"got shape {X.shape} ({features} per example)"
            )
    elif X.shape[1:] != tuple(feature_shape):
        raise ValueError(f"{owner}: X must have shape (N, {', '.join(map(str, feature_shape))}), got shape {X.shape}")
    return X.astype(dtype, copy=False)
