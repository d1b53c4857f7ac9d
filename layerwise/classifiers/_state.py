"""The non-trainable state of a model (batchnorm running statistics), read and written as arrays.

Every classifier has ``get_state() -> dict[str, ndarray]`` and ``set_state(state)`` beside its
``params``: together they are everything its test-time scores depend on. Models without such
state return an empty dict.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def checked_state(owner: str, state: Any, expected: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Copies of ``state``'s arrays after checking that its names, shapes and dtypes are those of
    ``expected``; raises ValueError/TypeError naming the first difference, before anything changes."""
    if not isinstance(state, Mapping):
        raise TypeError(f"{owner}: state must be a dict of arrays, got {type(state).__name__}")
    if set(state) != set(expected):
        raise ValueError(f"{owner}: state must hold exactly {sorted(expected)}, got {sorted(state)}")
    copies = {}
    for name, reference in expected.items():
        value = state[name]
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{owner}: state[{name!r}] must be a numpy.ndarray, got {type(value).__name__}")
        if value.shape != reference.shape or value.dtype != reference.dtype:
            raise ValueError(
                f"{owner}: state[{name!r}] must have shape {reference.shape} and dtype {reference.dtype}, "
                f"got shape {value.shape} and dtype {value.dtype}"
            )
        copies[name] = value.copy()
    return copies
