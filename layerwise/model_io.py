"""Saving a trained model and loading it back, as data (``.npz`` + ``.json``), never as code.

A model file holds everything inference needs: the class name (one of
:data:`layerwise.classifiers.MODELS`), its constructor arguments (``model.get_config()``), its
parameters, its state (``model.get_state()``: batchnorm running statistics), the preprocessing
that turns raw pixels into its input, and the class names. Loading rebuilds the model from the
registry and verifies every array's name, shape and dtype before anything is returned, so a
loaded model gives the same test-time scores, bit for bit, as the model that was saved.

Files written before this format (no ``model_format`` entry) are read when they hold all a model
needs, and refused when the model has running statistics they did not record.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from . import checkpoint
from .checkpoint import CheckpointError
from .inference import predict_proba
from .preprocessing import Preprocessing

MODEL_FORMAT = 2


class SavedModel(NamedTuple):
    """What :func:`load_model` returns."""

    model: Any
    """The rebuilt classifier, with its saved parameters and state."""
    preprocessing: Preprocessing | None
    """How raw pixels become its input (None when it was saved without)."""
    class_names: list[str]
    """``class_names[k]`` is the name of class ``k``."""
    meta: dict
    """The metadata given to :func:`save_model`."""

    def predict_proba(self, images: np.ndarray, batch_size: int = 500, *, flip: bool = False) -> np.ndarray:
        """Class probabilities ``(N, num_classes)`` of raw images ``(N, C, H, W)`` in [0, 255]
        (of model inputs when the model has no preprocessing); ``flip`` as for
        :func:`layerwise.inference.predict_proba`."""
        return predict_proba(self.model, images, self.preprocessing, batch_size, flip=flip)


def save_model(
    path: str | os.PathLike,
    model: Any,
    *,
    preprocessing: Preprocessing | None = None,
    class_names: Sequence[str] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> None:
    """Write ``model`` to ``path.npz`` + ``path.json`` atomically.

    Parameters
    ----------
    model : one of the registered classifiers
    preprocessing : Preprocessing, optional
        How raw images become the model's input (the command line records the training mean).
    class_names : list of str, optional
        One per class; default ``"0"``, ``"1"``, ...
    meta : dict, optional
        JSON-serialisable metadata, returned as is by :func:`load_model`.
    """
    from .classifiers import MODELS

    name = type(model).__name__
    if name not in MODELS or not hasattr(model, "get_config"):
        raise TypeError(f"save_model: model must be one of {sorted(MODELS)}, got {name}")
    if preprocessing is not None and not isinstance(preprocessing, Preprocessing):
        raise TypeError(f"save_model: preprocessing must be a Preprocessing or None, got {type(preprocessing).__name__}")
    class_names = _checked_class_names("save_model", class_names, model.num_classes)
    arrays = {f"params/{key}": value for key, value in model.params.items()}
    arrays.update({f"state/{key}": value for key, value in model.get_state().items()})
    document = {
        "model": name,
        "model_format": MODEL_FORMAT,
        "config": model.get_config(),
        "class_names": class_names,
        "preprocessing": None,
        "meta": dict(meta or {}),
    }
    if preprocessing is not None:
        arrays.update({f"preprocessing/{key}": value for key, value in preprocessing.to_arrays().items()})
        document["preprocessing"] = preprocessing.describe()
    checkpoint.save(path, arrays, document)


def load_model(path: str | os.PathLike) -> SavedModel:
    """Read a model written by :func:`save_model`.

    Raises
    ------
    CheckpointError
        If a file is missing or corrupted, the format or class is unknown, the configuration is
        invalid, any array is missing, unexpected, or of the wrong shape or dtype, or the file
        predates running statistics and the model needs them.
    """
    from .classifiers import MODELS

    arrays, document = checkpoint.load(path)
    name, config = document.get("model"), document.get("config")
    if name not in MODELS:
        raise CheckpointError(f"model {path}: unknown model class {name!r}; known ones are {sorted(MODELS)}")
    if not isinstance(config, dict):
        raise CheckpointError(f"model {path}: the 'config' entry must be a dict of constructor arguments")
    version = document.get("model_format", 1)
    if version not in (1, MODEL_FORMAT):
        raise CheckpointError(f"model {path}: model_format {version!r} is not supported (this layerwise reads 1 and {MODEL_FORMAT})")
    state = np.random.get_state()  # building a model draws weights; the caller's generator must not move
    try:
        model = MODELS[name](**config)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"model {path}: its config cannot build a {name}: {error}") from None
    finally:
        np.random.set_state(state)
    groups = _grouped(path, arrays, ("params", "state", "preprocessing") if version == MODEL_FORMAT else ("params", "extra"))
    if version == 1 and model.get_state():
        raise CheckpointError(
            f"model {path}: was saved by an older layerwise that did not record the batchnorm running "
            f"statistics this {name} needs, so its predictions would be wrong; train the model again"
        )
    _set_arrays(path, model, groups["params"], groups.get("state", {}))
    meta = document.get("meta") or {}
    if version == 1:
        mean = groups["extra"].get("mean_image")
        preprocessing = None if mean is None else _preprocessing(path, {"input_shape": list(mean.shape)}, {"mean": mean})
        class_names = meta.get("class_names")
    else:
        described = document.get("preprocessing")
        preprocessing = None if described is None else _preprocessing(path, described, groups["preprocessing"])
        class_names = document.get("class_names")
    try:
        class_names = _checked_class_names("load_model", class_names, model.num_classes)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"model {path}: {error}") from None
    return SavedModel(model, preprocessing, class_names, dict(meta))


def _grouped(path, arrays: Mapping[str, np.ndarray], groups: tuple[str, ...]) -> dict[str, dict[str, np.ndarray]]:
    """``{"params": {"W1": ...}, ...}`` from names ``group/key``; an unknown group is an error."""
    grouped: dict[str, dict[str, np.ndarray]] = {group: {} for group in groups}
    for full_name, value in arrays.items():
        group, _, key = full_name.partition("/")
        if group not in grouped or not key:
            raise CheckpointError(f"model {path}: unexpected array {full_name!r} (groups: {list(groups)})")
        grouped[group][key] = value
    return grouped


def _set_arrays(path, model, params: dict[str, np.ndarray], state: dict[str, np.ndarray]) -> None:
    name = type(model).__name__
    if set(params) != set(model.params):
        raise CheckpointError(
            f"model {path}: parameters {sorted(params)} do not match those of a {name} with this config {sorted(model.params)}"
        )
    for key, value in model.params.items():
        stored = params[key]
        if stored.shape != value.shape or stored.dtype != value.dtype:
            raise CheckpointError(
                f"model {path}: parameter {key!r} must have shape {value.shape} and dtype {value.dtype}, "
                f"got shape {stored.shape} and dtype {stored.dtype}"
            )
    try:
        model.set_state(state)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"model {path}: {error}") from None
    model.params = {key: params[key] for key in model.params}


def _preprocessing(path, described: Any, arrays: Mapping[str, np.ndarray]) -> Preprocessing:
    if not isinstance(described, dict) or "input_shape" not in described:
        raise CheckpointError(f"model {path}: the 'preprocessing' entry must be a dict with an 'input_shape'")
    unknown = sorted(set(arrays) - {"mean", "std"})
    if unknown:
        raise CheckpointError(f"model {path}: unexpected preprocessing arrays {unknown}")
    try:
        return Preprocessing(tuple(described["input_shape"]), arrays.get("mean"), arrays.get("std"))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"model {path}: {error}") from None


def _checked_class_names(func: str, class_names: Any, num_classes: int) -> list[str]:
    if class_names is None:
        return [str(k) for k in range(num_classes)]
    if not isinstance(class_names, (list, tuple)) or not all(isinstance(name, str) for name in class_names):
        raise TypeError(f"{func}: class_names must be a list of str, got {class_names!r}")
    if len(class_names) != num_classes:
        raise ValueError(f"{func}: class_names must hold {num_classes} names (num_classes), got {len(class_names)}")
    return list(class_names)
