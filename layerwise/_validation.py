"""Argument checks shared by every public function.

Every message follows one template, ``"<function>: <argument> must be <expected>, got <actual>"``,
so a user always learns which call, which argument, what was expected and what came. Checks run
at the public boundary, before any state changes; hot inner helpers trust their callers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def describe(value: Any) -> str:
    """A short description of ``value`` for an error message (shape and dtype for arrays)."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, str):
        return repr(value)
    return f"{value!r} ({type(value).__name__})"


def float_array(func: str, name: str, value: Any) -> np.ndarray:
    """Return ``value`` as a floating-point ndarray, or raise ``TypeError``.

    Integer inputs are refused rather than silently upcast: the caller chooses float32 (training)
    or float64 (gradient checks). A swapped byte order is converted to this machine's.
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{func}: {name} must be a numpy.ndarray, got {describe(value)}")
    if value.dtype.kind != "f":
        raise TypeError(
            f"{func}: {name} must have a floating dtype (float32 or float64), got dtype {value.dtype}"
        )
    if not value.dtype.isnative:  # e.g. '>f4' read from a file: the same values, in the order BLAS and Numba take
        return value.astype(value.dtype.newbyteorder("="))
    return value


def float_dtype(func: str, dtype: Any) -> np.dtype:
    """Return ``dtype`` as a ``np.dtype`` if it is float32 or float64, else raise ``TypeError``.

    The one dtype policy for what a caller asks a model or a data loader to produce: float32 (what
    models train in) or float64 (for gradient checks). Other floating dtypes are refused: the
    compiled kernels serve neither float16 nor longdouble, and nothing is tested in them.
    """
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{func}: dtype must be np.float32 or np.float64, got {describe(dtype)}") from None
    if resolved not in (np.float32, np.float64):
        raise TypeError(f"{func}: dtype must be np.float32 or np.float64, got {resolved}")
    return resolved


def param_array(func: str, name: str, value: Any, dtype: np.dtype) -> np.ndarray:
    """Return a numeric parameter (weights, bias, gamma, ...) as an ndarray of ``dtype``.

    Parameters follow the dtype of the data they act on, so a float64 bias never upcasts float32
    activations; integer or boolean parameters (``b = np.array([0, 128])``) are converted.
    """
    array = np.asarray(value) if not isinstance(value, np.ndarray) else value
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{func}: {name} must be a numeric array, got {describe(value)}")
    return array.astype(dtype, copy=False)


def check_ndim(func: str, name: str, array: np.ndarray, ndim: int, layout: str) -> None:
    """Raise ``ValueError`` unless ``array.ndim == ndim``; ``layout`` names the axes, e.g. ``(N, C, H, W)``."""
    if array.ndim != ndim:
        raise ValueError(
            f"{func}: {name} must be a {ndim}-d array of shape {layout}, got shape {array.shape}"
        )


def check_shape(func: str, name: str, array: np.ndarray, expected: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless ``array.shape == expected``."""
    if array.shape != tuple(expected):
        raise ValueError(f"{func}: {name} must have shape {tuple(expected)}, got shape {array.shape}")


def check_same_shape(func: str, name: str, array: np.ndarray, other: str, expected: tuple) -> None:
    """Raise ``ValueError`` unless ``array`` has the shape of the array called ``other``."""
    if array.shape != tuple(expected):
        raise ValueError(
            f"{func}: {name} must have the shape of {other} {tuple(expected)}, got shape {array.shape}"
        )


def upstream(func: str, dout: Any, expected_shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Check an upstream gradient ``dout`` against the forward output's shape; return it cast to
    the layer's ``dtype``."""
    dout = float_array(func, "dout", dout)
    check_same_shape(func, "dout", dout, "the forward output", expected_shape)
    return dout.astype(dtype, copy=False)


def param_dict(func: str, name: str, value: Any) -> Mapping:
    """Raise ``TypeError`` unless ``value`` is a dict-like of parameters (``conv_param``, ...)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{func}: {name} must be a dict, got {describe(value)}")
    return value


def int_entry(
    func: str,
    dict_name: str,
    params: Mapping,
    key: str,
    *,
    minimum: int,
    maximum: int | None = None,
    default: int | None = None,
) -> int:
    """Read an integer entry ``minimum <= params[key] <= maximum`` (``default`` when absent, if given)."""
    if key not in params:
        if default is None:
            raise ValueError(f"{func}: {dict_name} must contain {key!r}, got keys {sorted(params)}")
        return default
    return int_value(func, f"{dict_name}[{key!r}]", params[key], minimum=minimum, maximum=maximum)


def int_value(func: str, name: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    """Check that ``value`` is an integer ``>= minimum`` (and ``<= maximum`` if given; bools
    refused) and return it as int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{func}: {name} must be an int, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{func}: {name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{func}: {name} must be <= {maximum}, got {value}")
    return int(value)


# np.random.seed takes 32-bit seeds
MAX_SEED = 2**32 - 1


def real_entry(
    func: str,
    dict_name: str,
    params: Mapping,
    key: str,
    *,
    default: float | None = None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Read a real entry of a parameter dict, checked against the interval ``[low, high]``.

    ``low_open``/``high_open`` make that end of the interval exclusive.
    """
    if key not in params:
        if default is None:
            raise ValueError(f"{func}: {dict_name} must contain {key!r}, got keys {sorted(params)}")
        return default
    return real_value(
        func, f"{dict_name}[{key!r}]", params[key], low=low, high=high, low_open=low_open, high_open=high_open
    )


def real_value(
    func: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Check that ``value`` is a finite real number in the given interval and return it as float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{func}: {name} must be a real number, got {describe(value)}")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not np.isfinite(value) or below or above:
        interval = (
            ("(" if low_open else "[")
            + ("-inf" if low is None else f"{low:g}")
            + ", "
            + ("inf" if high is None else f"{high:g}")
            + (")" if high_open else "]")
        )
        raise ValueError(f"{func}: {name} must be a finite number in {interval}, got {value!r}")
    return value


def mode_entry(func: str, dict_name: str, params: Mapping) -> str:
    """Read the required ``'mode'`` entry, which must be ``'train'`` or ``'test'``."""
    if "mode" not in params:
        raise ValueError(f"{func}: {dict_name} must contain 'mode' ('train' or 'test'), got keys {sorted(params)}")
    mode = params["mode"]
    if mode not in ("train", "test"):
        raise ValueError(f"{func}: {dict_name}['mode'] must be 'train' or 'test', got {describe(mode)}")
    return mode


def labels(func: str, y: Any, num_samples: int, num_classes: int) -> np.ndarray:
    """Check integer class labels: shape ``(num_samples,)``, values in ``[0, num_classes)``."""
    if not isinstance(y, np.ndarray):
        raise TypeError(f"{func}: y must be a numpy.ndarray of integer labels, got {describe(y)}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{func}: y must have an integer dtype, got dtype {y.dtype}")
    if y.shape != (num_samples,):
        raise ValueError(f"{func}: y must have shape ({num_samples},) to match x, got shape {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"{func}: y must hold labels in [0, {num_classes - 1}], got values in [{y.min()}, {y.max()}]"
        )
    return y


def cache_tuple(func: str, cache: Any, length: int) -> tuple:
    """Raise ``TypeError`` unless ``cache`` is a tuple of ``length`` items, as the forward pass made it."""
    if not isinstance(cache, tuple) or len(cache) != length:
        raise TypeError(
            f"{func}: cache must be the {length}-tuple returned by the matching forward function, "
            f"got {describe(cache) if not isinstance(cache, tuple) else f'a tuple of {len(cache)} items'}"
        )
    return cache


SOLVER_DATA_KEYS = ("X_train", "y_train", "X_val", "y_val")


def solver_model(model: Any):
    """A model the Solver can train: a dict ``params`` and a method ``loss``."""
    params = getattr(model, "params", None)
    if not isinstance(params, dict) or not callable(getattr(model, "loss", None)):
        raise TypeError(
            f"Solver: model must have a dict 'params' and a method 'loss(X, y=None)', got {type(model).__name__}"
        )
    return model


def solver_data(data: Any):
    """The Solver's ``data`` dict checked: ``(X_train, y_train, X_val, y_val)``."""
    param_dict("Solver", "data", data)
    missing = [key for key in SOLVER_DATA_KEYS if key not in data]
    if missing:
        raise ValueError(f"Solver: data must contain {list(SOLVER_DATA_KEYS)}, missing {missing}")
    X_train, y_train = labelled_split("Solver", "data['X_train']", "data['y_train']", data["X_train"], data["y_train"])
    X_val, y_val = labelled_split("Solver", "data['X_val']", "data['y_val']", data["X_val"], data["y_val"])
    if X_train.shape[1:] != X_val.shape[1:]:
        raise ValueError(
            f"Solver: data['X_val'] must have the example shape of data['X_train'] {X_train.shape[1:]}, "
            f"got {X_val.shape[1:]}"
        )
    return X_train, y_train, X_val, y_val


def labelled_split(func: str, x_name: str, y_name: str, X: Any, y: Any):
    """X (N, ...) finite numbers and y (N,) non-negative integer labels, checked; returned as given."""
    if not isinstance(X, np.ndarray) or X.dtype.kind not in "fiu":
        raise TypeError(f"{func}: {x_name} must be a numeric numpy.ndarray, got {describe(X)}")
    if X.ndim < 2 or X.shape[0] < 1:
        raise ValueError(f"{func}: {x_name} must have shape (N, ...) with N >= 1, got shape {X.shape}")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise ValueError(f"{func}: {x_name} must be finite, got {int(np.count_nonzero(~np.isfinite(X)))} NaN or inf values")
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu":
        raise TypeError(f"{func}: {y_name} must be a numpy.ndarray of integer labels, got {describe(y)}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"{func}: {y_name} must have shape ({X.shape[0]},) to match {x_name}, got shape {y.shape}")
    if y.size and y.min() < 0:
        raise ValueError(f"{func}: {y_name} must hold non-negative class labels, got minimum {y.min()}")
    return X, y
