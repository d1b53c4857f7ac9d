"""The non-trainable state of a model (batchnorm running statistics), read and written as arrays.

Every classifier has ``get_state() -> dict[str, ndarray]`` and ``set_state(state)`` beside its
``params``: together they are everything its test-time scores depend on. Models without such
state return an empty dict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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


def running_statistics(bn_params: Sequence[dict], sizes: Sequence[int], dtype: np.dtype) -> dict[str, np.ndarray]:
    """``running_mean{i}`` and ``running_var{i}`` of batchnorm layer ``i`` (from 1), the arrays in
    ``bn_params[i - 1]`` themselves, or zeros of ``sizes[i - 1]`` before its first training step
    (what the layer would use)."""
    state: dict[str, np.ndarray] = {}
    for layer, (bn_param, size) in enumerate(zip(bn_params, sizes), start=1):
        for key in ("running_mean", "running_var"):
            value = bn_param.get(key)
            state[f"{key}{layer}"] = np.zeros(size, dtype) if value is None else value
    return state


def set_running_statistics(bn_params: Sequence[dict], state: Mapping[str, np.ndarray]) -> None:
    """Put the arrays of a :func:`running_statistics` dict (checked by the caller) into ``bn_params``."""
    for layer, bn_param in enumerate(bn_params, start=1):
        for key in ("running_mean", "running_var"):
            bn_param[key] = state[f"{key}{layer}"]


def dropout_param(keep: float, seed: int | None) -> dict[str, Any]:
    """A model's dropout ``param`` dict: train mode, keep probability ``keep``, and ``seed`` if given."""
    param: dict[str, Any] = {"mode": "train", "p": keep}
    if seed is not None:
        param["seed"] = seed
    return param


class ModelState:
    """The state methods of a model with optional dropout (``use_dropout``, ``dropout_param``) and
    normalization layers (``normalization``, ``bn_params``, which hold the batchnorm layers'
    running statistics); the model gives each batchnorm layer's width by ``_batchnorm_sizes()``."""

    def _set_mode(self, mode: str) -> None:
        """Put the dropout and batchnorm layers in ``'train'`` or ``'test'`` mode."""
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        if self.normalization == "batchnorm":
            for bn_param in self.bn_params:
                bn_param["mode"] = mode

    def get_state(self) -> dict[str, np.ndarray]:
        """The arrays besides ``params`` that test-time scores depend on.

        With batchnorm, ``running_mean{i}`` and ``running_var{i}`` of normalized layer ``i`` (from
        1), shape ``(width,)`` (zeros until the first training step, as the layer would use);
        otherwise empty. The arrays are the model's own, not copies.
        """
        if self.normalization != "batchnorm":
            return {}
        return running_statistics(self.bn_params, self._batchnorm_sizes(), self.dtype)

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Replace the state :meth:`get_state` returns with copies of ``state``'s arrays, which
        must have the same names, shapes and dtypes (checked before anything changes)."""
        state = checked_state(f"{type(self).__name__}.set_state", state, self.get_state())
        if self.normalization == "batchnorm":
            set_running_statistics(self.bn_params, state)
