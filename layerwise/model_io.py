"""Saving a trained model and loading it back, as data (``.npz`` + ``.json``), never as code.

A saved model records its class name (one of :data:`layerwise.classifiers.MODELS`), its
constructor arguments (``model.get_config()``), its parameters, and any extra arrays and
metadata the caller adds (the command line stores the training mean image and the data
settings). Loading rebuilds the model from the registry and verifies every parameter's name,
shape and dtype before anything is returned.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from . import checkpoint
from .checkpoint import CheckpointError


def save_model(
    path: str | os.PathLike,
    model: Any,
    meta: Mapping[str, Any] | None = None,
    extra_arrays: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Write ``model`` to ``path.npz`` + ``path.json`` atomically.

    ``model`` must be one of the registered classifiers (it needs ``get_config()``).
    """
    from .classifiers import MODELS

    name = type(model).__name__
    if name not in MODELS or not hasattr(model, "get_config"):
        raise TypeError(f"save_model: model must be one of {sorted(MODELS)}, got {name}")
    arrays = {f"params/{key}": value for key, value in model.params.items()}
    arrays.update({f"extra/{key}": value for key, value in (extra_arrays or {}).items()})
    document = {"model": name, "config": model.get_config(), "meta": dict(meta or {})}
    checkpoint.save(path, arrays, document)


def load_model(path: str | os.PathLike):
    """Read a model written by :func:`save_model`.

    Returns
    -------
    model : the rebuilt classifier, with the saved parameters
    meta : dict
        The metadata given to :func:`save_model`.
    extra_arrays : dict of str to ndarray

    Raises
    ------
    CheckpointError
        If a file is missing or corrupted, the class is unknown, the configuration is invalid, or
        any parameter is missing, unexpected, or of the wrong shape or dtype.
    """
    from .classifiers import MODELS

    arrays, document = checkpoint.load(path)
    name, config = document.get("model"), document.get("config")
    if name not in MODELS:
        raise CheckpointError(f"model {path}: unknown model class {name!r}; known ones are {sorted(MODELS)}")
    if not isinstance(config, dict):
        raise CheckpointError(f"model {path}: the 'config' entry must be a dict of constructor arguments")
    state = np.random.get_state()  # building a model draws weights; the caller's generator must not move
    try:
        model = MODELS[name](**config)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"model {path}: its config cannot build a {name}: {error}") from None
    finally:
        np.random.set_state(state)
    saved = {key[len("params/"):] for key in arrays if key.startswith("params/")}
    expected = set(model.params)
    if saved != expected:
        raise CheckpointError(
            f"model {path}: parameters {sorted(saved)} do not match those of a {name} with this config {sorted(expected)}"
        )
    for key, value in model.params.items():
        stored = arrays[f"params/{key}"]
        if stored.shape != value.shape or stored.dtype != value.dtype:
            raise CheckpointError(
                f"model {path}: parameter {key!r} must have shape {value.shape} and dtype {value.dtype}, "
                f"got shape {stored.shape} and dtype {stored.dtype}"
            )
    model.params = {key: arrays[f"params/{key}"] for key in model.params}
    extras = {key[len("extra/"):]: value for key, value in arrays.items() if key.startswith("extra/")}
    return model, dict(document.get("meta") or {}), extras
