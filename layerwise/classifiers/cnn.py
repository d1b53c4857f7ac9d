"""A small convolutional network, built from the fast layers."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _validation as v
from .. import fast_layers, layer_utils, layers
from ..fast_layers import *  # noqa: F401,F403  (re-exported for the notebooks)
from ..layer_utils import *  # noqa: F401,F403
from ..layer_utils import affine_relu_backward, affine_relu_forward, conv_relu_pool_backward, conv_relu_pool_forward
from ..layers import *  # noqa: F401,F403
from .._layers.threads import products_on_layer_threads
from ..layers import affine_backward, affine_forward, softmax_loss
from ._model_checks import model_input
from ._regularization import add_l2
from ._state import checked_state

__all__ = ["ThreeLayerConvNet", *layers.__all__, *fast_layers.__all__, *layer_utils.__all__]


class ThreeLayerConvNet:
    """conv - relu - 2x2 max pool - affine - relu - affine - softmax.

    The convolution keeps the spatial size for odd filter sizes (stride 1, pad
    ``(filter_size - 1) // 2``); the pool halves it.

    Parameters
    ----------
    input_dim : tuple (C, H, W)
    num_filters : int
    filter_size : int
        Width and height of each filter.
    hidden_dim : int
        Units of the hidden affine layer.
    num_classes : int
    weight_scale : float
        Standard deviation of the initial weights, drawn ``W1, W2, W3`` in that order.
    reg : float
        L2 strength, ``0.5 * reg * sum(W**2)`` over ``W1, W2, W3``.
    dtype : np.float32 (default) or np.float64

    Attributes
    ----------
    params : dict
        ``W1`` (F, C, filter_size, filter_size), ``b1`` (F,), ``W2`` (F * H_pool * W_pool, hidden_dim),
        ``b2``, ``W3`` (hidden_dim, num_classes), ``b3``.
    """

    def __init__(
        self,
        input_dim=(3, 32, 32),
        num_filters: int = 32,
        filter_size: int = 7,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
        dtype=np.float32,
    ):
        owner = type(self).__name__
        if not isinstance(input_dim, (tuple, list)) or len(input_dim) != 3:
            raise ValueError(f"{owner}: input_dim must be a tuple (C, H, W), got {v.describe(input_dim)}")
        C, H, W = (v.int_value(owner, f"input_dim[{i}]", d, minimum=1) for i, d in enumerate(input_dim))
        num_filters = v.int_value(owner, "num_filters", num_filters, minimum=1)
        filter_size = v.int_value(owner, "filter_size", filter_size, minimum=1)
        hidden_dim = v.int_value(owner, "hidden_dim", hidden_dim, minimum=1)
        num_classes = v.int_value(owner, "num_classes", num_classes, minimum=1)
        weight_scale = v.real_value(owner, "weight_scale", weight_scale, low=0.0)
        self.reg = v.real_value(owner, "reg", reg, low=0.0)
        self.dtype = v.float_dtype(owner, dtype)

        self.input_dim = (C, H, W)
        self.num_filters = num_filters
        self.filter_size = filter_size
        self.hidden_dim = hidden_dim
        self.num_classes = num_classes
        self.weight_scale = weight_scale
        self.conv_param = {"stride": 1, "pad": (filter_size - 1) // 2}
        self.pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        conv_h = H + 2 * self.conv_param["pad"] - filter_size + 1
        conv_w = W + 2 * self.conv_param["pad"] - filter_size + 1
        if conv_h < 2 or conv_w < 2:
            raise ValueError(
                f"{owner}: input_dim {self.input_dim} is too small for filter_size {filter_size} "
                f"followed by a 2x2 pool"
            )
        pooled = num_filters * (conv_h // 2) * (conv_w // 2)

        self.params = {
            "W1": weight_scale * np.random.randn(num_filters, C, filter_size, filter_size),
            "b1": np.zeros(num_filters),
            "W2": weight_scale * np.random.randn(pooled, hidden_dim),
            "b2": np.zeros(hidden_dim),
            "W3": weight_scale * np.random.randn(hidden_dim, num_classes),
            "b3": np.zeros(num_classes),
        }
        for name, value in self.params.items():
            self.params[name] = value.astype(self.dtype)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as JSON-friendly values (to rebuild the model)."""
        return {
            "input_dim": list(self.input_dim),
            "num_filters": self.num_filters,
            "filter_size": self.filter_size,
            "hidden_dim": self.hidden_dim,
            "num_classes": self.num_classes,
            "weight_scale": self.weight_scale,
            "reg": self.reg,
            "dtype": self.dtype.name,
        }

    def get_state(self) -> dict[str, np.ndarray]:
        """The arrays besides ``params`` that test-time scores depend on: none for this model."""
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Accepts only the empty state :meth:`get_state` returns."""
        checked_state(f"{type(self).__name__}.set_state", state, {})

    def loss(self, X: np.ndarray, y: np.ndarray | None = None):
        """Scores, or loss and gradients, for a minibatch.

        Parameters
        ----------
        X : ndarray, shape (N, C, H, W)
            Cast to the model's dtype.
        y : ndarray of int, shape (N,), optional

        Returns
        -------
        scores : ndarray, shape (N, num_classes)
            When ``y`` is None.
        loss, grads : float, dict of str to ndarray
            Otherwise.
        """
        with products_on_layer_threads():  # the convolutions run on the layers' threads
            return self._loss(X, y)

    def _loss(self, X: np.ndarray, y: np.ndarray | None):
        owner = f"{type(self).__name__}.loss"
        X = model_input(owner, X, self.input_dim, self.dtype)
        if y is not None:
            v.labels(owner, y, X.shape[0], self.num_classes)
        p = self.params
        pooled, pool_cache = conv_relu_pool_forward(X, p["W1"], p["b1"], self.conv_param, self.pool_param)
        hidden, hidden_cache = affine_relu_forward(pooled, p["W2"], p["b2"])
        scores, scores_cache = affine_forward(hidden, p["W3"], p["b3"])
        if y is None:
            return scores

        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dhidden, grads["W3"], grads["b3"] = affine_backward(dscores, scores_cache)
        dpooled, grads["W2"], grads["b2"] = affine_relu_backward(dhidden, hidden_cache)
        _, grads["W1"], grads["b1"] = conv_relu_pool_backward(dpooled, pool_cache, input_grad=False)
        return add_l2(loss, grads, p, self.reg, ("W1", "W2", "W3"), self.dtype), grads
