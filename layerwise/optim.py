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

import math
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
    t = _next_step("adam", config)
    beta1, beta2 = config["beta1"], config["beta2"]
    m = _cast(beta1 * config["m"] + (1 - beta1) * dw, w)
    second = _cast(beta2 * config["v"] + (1 - beta2) * dw * dw, w)
    m_hat = m / (1 - beta1**t)
    v_hat = second / (1 - beta2**t)
    config.update(m=m, v=second, t=t)
    return _cast(w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"]), w), config


def sgd_nesterov(w, dw, config=None):
    """SGD with Nesterov momentum, as ``torch.optim.SGD(nesterov=True)``, with optional weight decay.

    ::

        g = dw + coupled_weight_decay * w
        momentum_buffer = momentum * momentum_buffer + g
        next_w = w - learning_rate * (g + momentum * momentum_buffer) - learning_rate * weight_decay * w

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9, in [0, 1)), ``weight_decay`` (0),
    ``coupled_weight_decay`` (0), ``momentum_buffer`` (state, zeros).

    The buffer averages gradients, not steps (unlike ``sgd_momentum``'s ``velocity``), so a new
    learning rate takes effect at once, as a schedule expects. The two decays differ:

    - ``coupled_weight_decay`` is PyTorch's SGD ``weight_decay``: ``wd * w`` joins the gradient
      and so the momentum buffer (L2 regularisation of every parameter, biases included). Use it
      to reproduce a PyTorch recipe, e.g. ``SGD(nesterov=True, weight_decay=5e-4)`` is
      ``{"momentum": 0.9, "coupled_weight_decay": 5e-4}``.
    - ``weight_decay`` is decoupled (Loshchilov & Hutter): ``w`` shrinks by
      ``learning_rate * weight_decay * w`` outside the momentum, as in ``adamw``.

    Both differ from a model's ``reg``, which adds ``0.5 * reg * sum(W**2)`` over the weights only
    to the loss.
    """
    w, dw, config = _start("sgd_nesterov", w, dw, config)
    lr, momentum = config["learning_rate"], config["momentum"]
    if config["coupled_weight_decay"]:
        dw = _cast(dw + config["coupled_weight_decay"] * w, w)
    buffer = _cast(momentum * config["momentum_buffer"] + dw, w)
    config["momentum_buffer"] = buffer
    return _cast(_decayed(w, config) - lr * (dw + momentum * buffer), w), config


def adamw(w, dw, config=None):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    ``w`` first shrinks by ``learning_rate * weight_decay * w``, then takes :func:`adam`'s step.

    config: ``learning_rate`` (1e-3), ``beta1`` (0.9), ``beta2`` (0.999), ``epsilon`` (1e-8),
    ``weight_decay`` (1e-2, PyTorch's default), state ``m``, ``v`` (zeros) and ``t`` (step count).
    """
    w, dw, config = _start("adamw", w, dw, config)
    t = _next_step("adamw", config)
    beta1, beta2 = config["beta1"], config["beta2"]
    m = _cast(beta1 * config["m"] + (1 - beta1) * dw, w)
    second = _cast(beta2 * config["v"] + (1 - beta2) * dw * dw, w)
    step_size = config["learning_rate"] / (1 - beta1**t)
    denominator = np.sqrt(second) / math.sqrt(1 - beta2**t) + config["epsilon"]
    config.update(m=m, v=second, t=t)
    return _cast(_decayed(w, config) - step_size * m / denominator, w), config


UPDATE_RULES: dict[str, UpdateRule] = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "rmsprop": rmsprop,
    "adam": adam,
    "sgd_nesterov": sgd_nesterov,
    "adamw": adamw,
}

HYPERPARAMETERS: dict[str, dict[str, float]] = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
    "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
    "sgd_nesterov": {"learning_rate": 1e-2, "momentum": 0.9, "weight_decay": 0.0, "coupled_weight_decay": 0.0},
    "adamw": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "weight_decay": 1e-2},
}
"""Each rule's hyperparameters and their defaults: the settings a user may put in its config."""

STATE: dict[str, tuple[str, ...]] = {
    "sgd": (), "sgd_momentum": ("velocity",), "rmsprop": ("cache",), "adam": ("m", "v"),
    "sgd_nesterov": ("momentum_buffer",), "adamw": ("m", "v"),
}  # fmt: skip
"""The state arrays each rule keeps in its config (``adam`` and ``adamw`` also keep their step count ``t``)."""

# The valid range of each hyperparameter: (low, high, low_open, high_open).
_RANGES = {
    "learning_rate": (0.0, None, False, False),
    "momentum": (0.0, 1.0, False, True),
    "decay_rate": (0.0, 1.0, False, True),
    "beta1": (0.0, 1.0, False, True),
    "beta2": (0.0, 1.0, False, True),
    "epsilon": (0.0, None, True, False),
    "weight_decay": (0.0, None, False, False),
    "coupled_weight_decay": (0.0, None, False, False),
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


def _next_step(func: str, config: dict) -> int:
    """The 1-based number of this step from the config's count ``t`` of the steps taken before."""
    t = config.get("t", 0)
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
        raise ValueError(f"{func}: config['t'] must be a non-negative int, got {v.describe(t)}")
    return int(t) + 1


def _decayed(w: np.ndarray, config: dict) -> np.ndarray:
    """``w`` after decoupled weight decay, ``w - learning_rate * weight_decay * w`` (``w`` itself without)."""
    decay = config["learning_rate"] * config["weight_decay"]
    return _cast(w - decay * w, w) if decay else w


def _cast(array: np.ndarray, like: np.ndarray) -> np.ndarray:
    return array.astype(like.dtype, copy=False)
