"""Test-time use of a model: class scores and probabilities for many examples, in batches."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validation as v
from .preprocessing import Preprocessing


def class_scores(model: Any, X: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """``model.loss(X)`` (test mode) over ``X`` in batches of ``batch_size``, to bound memory.

    Returns scores of shape ``(N, num_classes)`` in the model's dtype.
    """
    batch_size = v.int_value("class_scores", "batch_size", batch_size, minimum=1)
    return np.concatenate([model.loss(X[start : start + batch_size]) for start in range(0, len(X), batch_size)])


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``scores`` ``(N, C)``, in their dtype, stable for large scores."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def predict_proba(
    model: Any, X: np.ndarray, preprocessing: Preprocessing | None = None, batch_size: int = 500
) -> np.ndarray:
    """Class probabilities ``(N, num_classes)`` of the examples ``X``.

    Parameters
    ----------
    model : a classifier (``model.loss(X)`` returns scores)
    X : ndarray
        Model inputs, or raw pixels ``(N, C, H, W)`` in [0, 255] when ``preprocessing`` is given.
    preprocessing : Preprocessing, optional
        Applied first (see :func:`layerwise.model_io.load_model`, which returns the one a model
        was trained with).
    batch_size : int
        Examples per forward pass.
    """
    if preprocessing is not None:
        X = preprocessing.apply(X, model.dtype)
    return softmax(class_scores(model, X, batch_size))
