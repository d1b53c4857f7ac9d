"""The L2 penalty every model adds to its loss."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def add_l2(loss: float, grads: dict[str, np.ndarray], params: dict[str, np.ndarray], reg: float,
           names: Iterable[str], dtype: np.dtype) -> float:  # fmt: skip
    """``loss + 0.5 * reg * sum(W**2)`` over the weights ``names``, each one's gradient gaining
    ``reg * W`` in place. With ``reg = 0`` nothing is added (the terms would be zeros)."""
    if reg:
        for name in names:
            W = params[name]
            loss += 0.5 * reg * float(np.sum(W * W))
            grads[name] += dtype.type(reg) * W
    return loss
