"""Test-time use of a model: class scores and probabilities for many examples, in batches."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validation as v
from .preprocessing import Preprocessing


def class_scores(model: Any, X: np.ndarray, batch_size: int = 500, *, flip: bool = False) -> np.ndarray:
    """``model.loss(X)`` (test mode) over ``X`` in batches of ``batch_size``, to bound memory.

    Parameters
    ----------
    model : a classifier (``model.loss(X)`` returns scores)
    X : ndarray, shape (N, ...); (N, C, H, W) with ``flip``
    batch_size : int
    flip : bool, keyword only
        Test-time flip averaging: the mean of the scores of each image and of its mirror image
        ``X[..., ::-1]`` (left-right). The scores (logits), not the probabilities, are averaged,
        so :func:`predict_proba` is the softmax of these scores and both rank classes alike.

    Returns
    -------
    scores : ndarray, shape (N, num_classes), in the model's dtype
    """
    batch_size = v.int_value("class_scores", "batch_size", batch_size, minimum=1)
    if not isinstance(flip, (bool, np.bool_)):
        raise TypeError(f"class_scores: flip must be a bool, got {v.describe(flip)}")
    if flip and np.ndim(X) != 4:
        raise ValueError(f"class_scores: flip=True mirrors images, so X must have shape (N, C, H, W), got shape {np.shape(X)}")
    batches = []
    for start in range(0, len(X), batch_size):
        batch = X[start : start + batch_size]
        scores = model.loss(batch)
        if flip:
            scores = scores + model.loss(np.ascontiguousarray(batch[..., ::-1]))
            scores *= scores.dtype.type(0.5)
        batches.append(scores)
    return np.concatenate(batches)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``scores`` ``(N, C)``, in their dtype, stable for large scores."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def predict_proba(
    model: Any, X: np.ndarray, preprocessing: Preprocessing | None = None, batch_size: int = 500, *, flip: bool = False
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
    flip : bool, keyword only
        The softmax of the scores averaged over each image and its mirror image (see
        :func:`class_scores`), mirrored after the preprocessing.
    """
    if preprocessing is not None:
        X = preprocessing.apply(X, model.dtype)
    return softmax(class_scores(model, X, batch_size, flip=flip))
