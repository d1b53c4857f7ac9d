"""First-order update rules.

Each rule has the signature ``rule(w, dw, config=None) -> (next_w, config)``:

- ``w`` : ndarray, the current weights;
- ``dw`` : ndarray of the same shape, the gradient of the loss with respect to ``w``;
- ``config`` : dict of hyperparameters (learning rate, ...) and of the rule's state (velocity,
  moments, step count). Missing hyperparameters get their defaults; the dict is updated in place
  and returned, so passing it back on the next call carries the state over.

``next_w`` and every state array keep ``w``'s dtype. A name becomes a rule only through
:data:`UPDATE_RULES` / :func:`get_update_rule`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import _validation as v

UpdateRule = Callable[[np.ndarray, np.ndarray, "dict | None"], "tuple[np.ndarray, dict]"]


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: ``w -= learning_rate * dw``.

    config: ``learning_rate`` (default 1e-2).
    """
    w, dw, config = _start("sgd", w, dw, config)
    # w - lr * dw, rounded the same way, with one new array instead of two
    next_w = np.multiply(dw, -config["learning_rate"], dtype=w.dtype)
    next_w += w
    return next_w, config


def sgd_momentum(w, dw, config=None):
    """SGD with momentum: ``v = momentum * v - learning_rate * dw; w += v``.

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9, in [0, 1)), ``velocity`` (state, zeros).
    """
    w, dw, config = _start("sgd_momentum", w, dw, config)
    velocity = _cast(config["momentum"] * config["velocity"] - config["learning_rate"] * dw, w)
    config["velocity"] = velocity
    return _cast(w + velocity, w), config


def rmsprop(w, dw, config=None):
    """RMSProp: a moving average of squared gradients sets a per-parameter learning rate.

    config: ``learning_rate`` (1e-2), ``decay_rate`` (0.99), ``epsilon`` (1e-8), ``cache`` (state).
    """
    w, dw, config = _start("rmsprop", w, dw, config)
    decay = config["decay_rate"]
    cache = _cast(decay * config["cache"] + (1 - decay) * dw * dw, w)
    config["cache"] = cache
    return _cast(w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"]), w), config


def adam(w, dw, config=None):
    """Adam: bias-corrected moving averages of the gradient and its square.

    config: ``learning_rate`` (1e-3), ``beta1`` (0.9), ``beta2`` (0.999), ``epsilon`` (1e-8),
    state ``m``, ``v`` (zeros) and ``t`` (step count, 0; incremented before it is used).
    """
    w, dw, config = _start("adam", w, dw, config)
    t = config.get("t", 0)
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
        raise ValueError(f"adam: config['t'] must be a non-negative int, got {v.describe(t)}")
    t = int(t) + 1
    beta1, beta2 = config["beta1"], config["beta2"]
    m = _cast(beta1 * config["m"] + (1 - beta1) * dw, w)
    second = _cast(beta2 * config["v"] + (1 - beta2) * dw * dw, w)
    m_hat = m / (1 - beta1**t)
    v_hat = second / (1 - beta2**t)
    config.update(m=m, v=second, t=t)
    return _cast(w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"]), w), config


UPDATE_RULES: dict[str, UpdateRule] = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "rmsprop": rmsprop,
    "adam": adam,
}

HYPERPARAMETERS: dict[str, dict[str, float]] = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
    "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
}
"""Each rule's hyperparameters and their defaults: the settings a user may put in its config."""

STATE: dict[str, tuple[str, ...]] = {"sgd": (), "sgd_momentum": ("velocity",), "rmsprop": ("cache",), "adam": ("m", "v")}
"""The state arrays each rule keeps in its config (``adam`` also keeps its step count ``t``)."""

# The valid range of each hyperparameter: (low, high, low_open, high_open).
_RANGES = {
    "learning_rate": (0.0, None, False, False),
    "momentum": (0.0, 1.0, False, True),
    "decay_rate": (0.0, 1.0, False, True),
    "beta1": (0.0, 1.0, False, True),
    "beta2": (0.0, 1.0, False, True),
    "epsilon": (0.0, None, True, False),
}


def get_update_rule(name: str) -> UpdateRule:
    """The update rule registered under ``name``; an unknown name lists the valid ones."""
    if not isinstance(name, str) or name not in UPDATE_RULES:
        raise ValueError(f"update_rule must be one of {sorted(UPDATE_RULES)}, got {v.describe(name)}")
    return UPDATE_RULES[name]


def _start(func: str, w, dw, config):
    """Check the arguments and fill in defaults; the config dict changes only if all is valid."""
    defaults, state = HYPERPARAMETERS[func], STATE[func]
    w = v.float_array(func, "w", w)
    dw = v.float_array(func, "dw", dw)
    v.check_same_shape(func, "dw", dw, "w", w.shape)
    if config is None:
        config = {}
    v.param_dict(func, "config", config)
    values = {}
    for key, default in defaults.items():
        low, high, low_open, high_open = _RANGES[key]
        values[key] = v.real_entry(
            func, "config", config, key, default=default, low=low, high=high, low_open=low_open, high_open=high_open
        )
    for key in state:
        if key in config:
            array = v.float_array(func, f"config[{key!r}]", config[key])
            v.check_same_shape(func, f"config[{key!r}]", array, "w", w.shape)
        else:
            values[key] = np.zeros_like(w)
    config.update(values)
    return w, dw.astype(w.dtype, copy=False), config


def _cast(array: np.ndarray, like: np.ndarray) -> np.ndarray:
    return array.astype(like.dtype, copy=False)
