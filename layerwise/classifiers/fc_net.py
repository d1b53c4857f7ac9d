"""Fully-connected networks of any depth, built from the layers of :mod:`layerwise.layers`.

``from layerwise.classifiers.fc_net import *`` also brings every layer and sandwich layer, as the
notebooks expect.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _validation as v
from .. import layer_utils, layers
from ..layer_utils import *  # noqa: F401,F403  (re-exported for the notebooks)
from ..layers import *  # noqa: F401,F403
from ..layer_utils import (
    affine_bn_relu_backward,
    affine_bn_relu_forward,
    affine_ln_relu_backward,
    affine_ln_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
)
from ..layers import affine_backward, affine_forward, dropout_backward, dropout_forward, softmax_loss
from ._model_checks import model_input
from ._regularization import add_l2
from ._state import ModelState, dropout_param

__all__ = ["TwoLayerNet", "FullyConnectedNet", *layers.__all__, *layer_utils.__all__]

_NORMALIZATIONS = (None, "batchnorm", "layernorm")


class FullyConnectedNet(ModelState):
    """A fully-connected network with any number of hidden layers, softmax loss and L2 regularization.

    Architecture, for L = len(hidden_dims) + 1 layers::

        {affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax

    Parameters
    ----------
    hidden_dims : list of int
        Size of each hidden layer.
    input_dim : int
        Values per input example (``3*32*32`` for CIFAR-10); inputs of any shape
        ``(N, d_1, ..., d_k)`` with that many values are flattened.
    num_classes : int
    dropout_keep_ratio : float in (0, 1], default 1
        Probability of keeping a unit; 1 disables dropout.
    normalization : None, 'batchnorm' or 'layernorm'
    reg : float >= 0
        L2 strength: the loss gains ``0.5 * reg * sum(W**2)`` over the weights only.
    weight_scale : float >= 0
        Weights are drawn as ``weight_scale * randn(fan_in, fan_out)``, layer by layer from
        NumPy's global generator; biases and betas start at 0, gammas at 1.
    dtype : np.float32 or np.float64
        Every parameter and computation uses this dtype (float64 for gradient checks).
    seed : int in [0, 2**32) or None
        If given, dropout seeds NumPy's global generator with it and draws the same mask at every
        call (for gradient checks), as the course's network does.
    dropout : float in (0, 1], keyword only
        The 2018-2020 course editions' name of ``dropout_keep_ratio``: also the probability of
        *keeping* a unit (before 2018 ``dropout`` meant dropping one; see docs/compatibility.md).
        Giving both names is refused.

    Attributes
    ----------
    params : dict of str to ndarray
        ``W1, b1, gamma1, beta1, ..., WL, bL`` (gamma/beta only with normalization).
    """

    def __init__(
        self,
        hidden_dims,
        input_dim: int = 3 * 32 * 32,
        num_classes: int = 10,
        dropout_keep_ratio: float | None = None,
        normalization: str | None = None,
        reg: float = 0.0,
        weight_scale: float = 1e-2,
        dtype=np.float32,
        seed: int | None = None,
        *,
        dropout: float | None = None,
    ):
        owner = type(self).__name__
        dropout_keep_ratio = _keep_ratio(owner, dropout_keep_ratio, dropout)
        if isinstance(hidden_dims, (int, np.integer)) or not hasattr(hidden_dims, "__iter__"):
            raise TypeError(f"{owner}: hidden_dims must be a list of positive ints, got {v.describe(hidden_dims)}")
        hidden_dims = [v.int_value(owner, f"hidden_dims[{i}]", h, minimum=1) for i, h in enumerate(hidden_dims)]
        input_dim = v.int_value(owner, "input_dim", input_dim, minimum=1)
        num_classes = v.int_value(owner, "num_classes", num_classes, minimum=1)
        if normalization not in _NORMALIZATIONS:
            raise ValueError(f"{owner}: normalization must be one of {list(_NORMALIZATIONS)}, got {v.describe(normalization)}")
        self.reg = v.real_value(owner, "reg", reg, low=0.0)
        weight_scale = v.real_value(owner, "weight_scale", weight_scale, low=0.0)
        self.dtype = v.float_dtype(owner, dtype)
        if seed is not None:
            seed = v.int_value(owner, "seed", seed, minimum=0, maximum=v.MAX_SEED)

        self.hidden_dims = hidden_dims
        self.input_dim = input_dim
        self.num_classes = num_classes
        self.dropout_keep_ratio = dropout_keep_ratio
        self.weight_scale = weight_scale
        self.seed = seed
        self.normalization = normalization
        self.use_dropout = dropout_keep_ratio != 1
        self.num_layers = 1 + len(hidden_dims)

        self.params: dict[str, np.ndarray] = {}
        dims = [input_dim, *hidden_dims, num_classes]
        for layer in range(1, self.num_layers + 1):
            fan_in, fan_out = dims[layer - 1], dims[layer]
            self.params[f"W{layer}"] = weight_scale * np.random.randn(fan_in, fan_out)
            self.params[f"b{layer}"] = np.zeros(fan_out)
            if normalization is not None and layer < self.num_layers:
                self.params[f"gamma{layer}"] = np.ones(fan_out)
                self.params[f"beta{layer}"] = np.zeros(fan_out)
        for name, value in self.params.items():
            self.params[name] = value.astype(self.dtype)

        # Per-layer state of the stochastic and normalization layers, passed to them each call.
        self.dropout_param: dict[str, Any] = dropout_param(dropout_keep_ratio, seed) if self.use_dropout else {}
        self.bn_params: list[dict[str, Any]] = []
        if normalization == "batchnorm":
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]
        elif normalization == "layernorm":
            self.bn_params = [{} for _ in range(self.num_layers - 1)]

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as JSON-friendly values (to rebuild the model)."""
        return {
            "hidden_dims": list(self.hidden_dims),
            "input_dim": self.input_dim,
            "num_classes": self.num_classes,
            "dropout_keep_ratio": self.dropout_keep_ratio,
            "normalization": self.normalization,
            "reg": self.reg,
            "weight_scale": self.weight_scale,
            "dtype": self.dtype.name,
            "seed": self.seed,
        }

    def _batchnorm_sizes(self) -> list[int]:
        return list(self.hidden_dims)

    def loss(self, X: np.ndarray, y: np.ndarray | None = None):
        """Scores, or loss and gradients, for a minibatch.

        Parameters
        ----------
        X : ndarray, shape (N, d_1, ..., d_k)
            Inputs; cast to the model's dtype.
        y : ndarray of int, shape (N,), optional
            Labels. Without them the model runs in test mode and returns scores.

        Returns
        -------
        scores : ndarray, shape (N, num_classes)
            When ``y`` is None.
        loss, grads : float, dict of str to ndarray
            Otherwise; ``grads[k]`` has the shape and dtype of ``params[k]``.
        """
        owner = f"{type(self).__name__}.loss"
        X = model_input(owner, X, (self.input_dim,), self.dtype)
        if y is not None:
            v.labels(owner, y, X.shape[0], self.num_classes)
        self._set_mode("test" if y is None else "train")

        hidden = X
        caches = []
        for layer in range(1, self.num_layers):
            hidden, cache = self._hidden_forward(layer, hidden)
            caches.append(cache)
        last = self.num_layers
        scores, last_cache = affine_forward(hidden, self.params[f"W{last}"], self.params[f"b{last}"])
        if y is None:
            return scores

        loss, dscores = softmax_loss(scores, y)
        grads: dict[str, np.ndarray] = {}
        # Layer 1's input is the data, which needs no gradient.
        dhidden, grads[f"W{last}"], grads[f"b{last}"] = affine_backward(dscores, last_cache, input_grad=last > 1)
        for layer in range(self.num_layers - 1, 0, -1):
            dhidden = self._hidden_backward(layer, dhidden, caches[layer - 1], grads)
        weights = (f"W{layer}" for layer in range(1, self.num_layers + 1))
        return add_l2(loss, grads, self.params, self.reg, weights, self.dtype), grads

    def _hidden_forward(self, layer: int, x: np.ndarray):
        """affine - [norm] - relu - [dropout] for hidden layer ``layer`` (1-based)."""
        W, b = self.params[f"W{layer}"], self.params[f"b{layer}"]
        if self.normalization is None:
            out, cache = affine_relu_forward(x, W, b)
        else:
            gamma, beta = self.params[f"gamma{layer}"], self.params[f"beta{layer}"]
            sandwich = affine_bn_relu_forward if self.normalization == "batchnorm" else affine_ln_relu_forward
            out, cache = sandwich(x, W, b, gamma, beta, self.bn_params[layer - 1])
        dropout_cache = None
        if self.use_dropout:
            out, dropout_cache = dropout_forward(out, self.dropout_param)
        return out, (cache, dropout_cache)

    def _hidden_backward(self, layer: int, dout: np.ndarray, cache, grads: dict) -> np.ndarray | None:
        """Backward of :meth:`_hidden_forward`: fills ``grads``, returns dx (None for layer 1)."""
        sandwich_cache, dropout_cache = cache
        if dropout_cache is not None:
            dout = dropout_backward(dout, dropout_cache)
        input_grad = layer > 1
        if self.normalization is None:
            dx, grads[f"W{layer}"], grads[f"b{layer}"] = affine_relu_backward(dout, sandwich_cache, input_grad=input_grad)
        else:
            backward = affine_bn_relu_backward if self.normalization == "batchnorm" else affine_ln_relu_backward
            dx, grads[f"W{layer}"], grads[f"b{layer}"], grads[f"gamma{layer}"], grads[f"beta{layer}"] = backward(
                dout, sandwich_cache, input_grad=input_grad
            )
        return dx


def _keep_ratio(owner: str, dropout_keep_ratio: Any, dropout: Any) -> float:
    """The keep probability from either of its names (``dropout``: 2018-2020 editions), checked."""
    if dropout is None:
        name, value = "dropout_keep_ratio", 1 if dropout_keep_ratio is None else dropout_keep_ratio
    elif dropout_keep_ratio is None:
        name, value = "dropout", dropout
    else:
        raise TypeError(
            f"{owner}: give the keep probability once, as dropout_keep_ratio or as dropout (its name in "
            f"the 2018-2020 editions), got dropout_keep_ratio={dropout_keep_ratio!r} and dropout={dropout!r}"
        )
    return v.real_value(owner, name, value, low=0.0, high=1.0, low_open=True)


class TwoLayerNet(FullyConnectedNet):
    """A two-layer fully-connected net: affine - relu - affine - softmax.

    Parameters
    ----------
    input_dim, hidden_dim, num_classes : int
    weight_scale : float
        Standard deviation of the initial weights (``W1``, then ``W2``, from NumPy's global generator).
    reg : float
        L2 strength, applied as ``0.5 * reg * sum(W**2)`` to ``W1`` and ``W2``.
    dtype : np.float64 (default) or np.float32

    Attributes
    ----------
    params : dict
        ``W1`` (input_dim, hidden_dim), ``b1`` (hidden_dim,), ``W2`` (hidden_dim, num_classes),
        ``b2`` (num_classes,).
    """

    def __init__(
        self,
        input_dim: int = 3 * 32 * 32,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
        dtype=np.float64,
    ):
        v.int_value(type(self).__name__, "hidden_dim", hidden_dim, minimum=1)
        super().__init__(
            [hidden_dim], input_dim=input_dim, num_classes=num_classes, reg=reg, weight_scale=weight_scale, dtype=dtype
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "input_dim": self.input_dim,
            "hidden_dim": self.hidden_dims[0],
            "num_classes": self.num_classes,
            "weight_scale": self.weight_scale,
            "reg": self.reg,
            "dtype": self.dtype.name,
        }
