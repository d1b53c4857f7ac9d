"""Classification losses: softmax cross-entropy and multiclass SVM (hinge).

Both are means over the batch and return the gradient with respect to the scores.
"""

from __future__ import annotations

import numpy as np

from .. import _validation as v


def _loss_inputs(func: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = v.float_array(func, "x", x)
    v.check_ndim(func, "x", x, 2, "(N, C)")
    y = v.labels(func, y, x.shape[0], x.shape[1])
    if x.shape[0] == 0:
        raise ValueError(f"{func}: x must hold at least one example, got shape {x.shape}")
    return x, y


def softmax_loss(x: np.ndarray, y: np.ndarray, *, label_smoothing: float = 0.0) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy loss, averaged over the batch.

    Parameters
    ----------
    x : ndarray, shape (N, C)
        Class scores; ``x[i, j]`` is the score of class j for example i.
    y : ndarray of int, shape (N,)
        Labels, ``0 <= y[i] < C``.
    label_smoothing : float in [0, 1], keyword only
        The target of example i is ``(1 - label_smoothing) * onehot(y[i]) + label_smoothing / C``
        instead of ``onehot(y[i])``, as in ``torch.nn.functional.cross_entropy``; 0 (the default)
        is the plain loss, to the bit.

    Returns
    -------
    loss : float
    dx : ndarray, shape (N, C), dtype of x
        ``(softmax(x) - target) / N``.
    """
    func = "softmax_loss"
    label_smoothing = v.real_value(func, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    x, y = _loss_inputs(func, x, y)
    N, C = x.shape
    shifted = x - x.max(axis=1, keepdims=True)  # exp never overflows
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(N)
    dx = np.exp(log_probs)
    if label_smoothing == 0:
        loss = -log_probs[rows, y].mean()
        dx[rows, y] -= 1
    else:
        uniform = label_smoothing / C
        loss = -((1 - label_smoothing) * log_probs[rows, y] + uniform * log_probs.sum(axis=1)).mean()
        dx -= x.dtype.type(uniform)
        dx[rows, y] -= x.dtype.type(1 - label_smoothing)
    dx /= N
    return float(loss), dx


def svm_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Multiclass SVM (hinge) loss with margin 1, averaged over the batch.

    Parameters
    ----------
    x : ndarray, shape (N, C)
    y : ndarray of int, shape (N,)

    Returns
    -------
    loss : float
    dx : ndarray, shape (N, C), dtype of x
    """
    x, y = _loss_inputs("svm_loss", x, y)
    N = x.shape[0]
    rows = np.arange(N)
    margins = np.maximum(0, x - x[rows, y][:, None] + 1)
    margins[rows, y] = 0
    loss = margins.sum() / N
    dx = (margins > 0).astype(x.dtype)
    dx[rows, y] -= dx.sum(axis=1)
    dx /= N
    return float(loss), dx
