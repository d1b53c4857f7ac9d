"""Numeric gradients by centered differences, and the relative error used to compare them.

Every function perturbs ``x`` in place one entry at a time and always restores it, also when
``f`` raises. Use float64 inputs: in float32 a step of 1e-5 is below the resolution of most
values and the estimates are noise.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import _validation as v


def rel_error(x, y) -> float:
    """Maximum elementwise relative error ``|x - y| / max(1e-8, |x| + |y|)``."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"rel_error: x and y must have the same shape, got {x.shape} and {y.shape}")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, verbose: bool = True, h: float = 1e-5) -> np.ndarray:
    """Numeric gradient of a scalar function ``f`` at ``x``.

    Parameters
    ----------
    f : callable
        Takes x (which it may ignore, reading x through a closure instead, as the notebooks do)
        and returns a scalar.
    x : ndarray, any shape, floating
        The point; modified during the call, restored before it returns.
    verbose : bool
        Print each index and its gradient.
    h : float
        Step of the centered difference.

    Returns
    -------
    grad : ndarray, shape of x
    """
    x = _checked_point("eval_numerical_gradient", x, h)
    grad = np.zeros_like(x)
    for ix in np.ndindex(*x.shape):
        fxph, fxmh = _perturbed(f, x, ix, h)
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
    return grad


def eval_numerical_gradient_array(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Numeric gradient of ``sum(f(x) * df)`` at ``x``, for an array-valued ``f``.

    Parameters
    ----------
    f : callable
        Takes x, returns an array of the shape of ``df``.
    x : ndarray, floating
    df : ndarray
        Upstream gradient of f's output.
    h : float

    Returns
    -------
    grad : ndarray, shape of x
    """
    x = _checked_point("eval_numerical_gradient_array", x, h)
    df = np.asarray(df)
    grad = np.zeros_like(x)
    for ix in np.ndindex(*x.shape):
        pos, neg = _perturbed(lambda point: np.array(f(point), copy=True), x, ix, h)
        if pos.shape != df.shape:
            raise ValueError(
                f"eval_numerical_gradient_array: df must have the shape of f(x) {pos.shape}, got shape {df.shape}"
            )
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return grad


def grad_check_sparse(
    f: Callable[[np.ndarray], float], x: np.ndarray, analytic_grad: np.ndarray, num_checks: int = 10, h: float = 1e-5
) -> list[float]:
    """Compare ``analytic_grad`` with the numeric gradient at ``num_checks`` random entries.

    Entries are drawn with NumPy's global generator. Prints one line per entry and returns the
    relative errors.
    """
    x = _checked_point("grad_check_sparse", x, h)
    analytic_grad = np.asarray(analytic_grad)
    v.check_same_shape("grad_check_sparse", "analytic_grad", analytic_grad, "x", x.shape)
    errors = []
    for _ in range(num_checks):
        ix = tuple(int(np.random.randint(size)) for size in x.shape)
        fxph, fxmh = _perturbed(f, x, ix, h)
        numeric = (fxph - fxmh) / (2 * h)
        analytic = analytic_grad[ix]
        error = abs(numeric - analytic) / max(abs(numeric) + abs(analytic), 1e-300)
        print(f"numerical: {numeric:f} analytic: {analytic:f}, relative error: {error:e}")
        errors.append(float(error))
    return errors


def _checked_point(func: str, x: np.ndarray, h: float) -> np.ndarray:
    x = v.float_array(func, "x", x)
    v.real_value(func, "h", h, low=0.0, low_open=True)
    return x


def _perturbed(f: Callable, x: np.ndarray, ix: tuple, h: float):
    """``(f(x + h e_ix), f(x - h e_ix))``, restoring ``x[ix]`` whatever happens."""
    old = x[ix]
    try:
        x[ix] = old + h
        plus = f(x)
        x[ix] = old - h
        minus = f(x)
    finally:
        x[ix] = old
    return plus, minus
