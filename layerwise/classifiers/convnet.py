"""A configurable convolutional network: blocks of conv - norm - ReLU - [pool], a global pool and a classifier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import _validation as v
from .._layers.threads import products_on_layer_threads
from ..layer_utils import BLOCK_NORMALIZATIONS, conv_block_backward, conv_block_forward
from ..layers import (
    affine_backward,
    affine_forward,
    dropout_backward,
    dropout_forward,
    global_avg_pool_backward,
    global_avg_pool_forward,
    global_max_pool_backward,
    global_max_pool_forward,
    softmax_loss,
)
from ._model_checks import model_input
from ._regularization import add_l2
from ._state import ModelState, dropout_param

__all__ = ["ConvNet"]

DEFAULT_BLOCKS = ((32, False), (64, True), (64, False), (128, True), (128, True))

# A layer's initial weight standard deviation from its fan-in, by name (see ConvNet's weight_scale).
_INIT_RULES = {
    "he": lambda fan_in: float(np.sqrt(2.0 / fan_in)),
    "pytorch": lambda fan_in: float(np.sqrt(1.0 / (3.0 * fan_in))),
}
_GLOBAL_POOLS = {
    "max": (global_max_pool_forward, global_max_pool_backward),
    "avg": (global_avg_pool_forward, global_avg_pool_backward),
}
_BLOCK_KEYS = ("filters", "pool", "residual")
_POOL_PARAM = {"pool_height": 2, "pool_width": 2, "stride": 2}


class ConvNet(ModelState):
    """A convolutional network of any depth::

        {conv - [batch/group norm] - relu - [+ input] - [2x2 max pool]} x L - global max/avg pool
        - [dropout] - affine - softmax

    Every convolution has stride 1 and keeps the spatial size (``filter_size`` odd, padding
    ``(filter_size - 1) // 2``); each pool halves it (rounding down).

    Parameters
    ----------
    All keyword only.

    input_dim : tuple (C, H, W)
    blocks : sequence
        One entry per block: ``(num_filters, pool)`` or a dict ``{"filters": int, "pool": bool,
        "residual": bool}`` (``pool`` defaults to False, ``residual`` to the model's).
    filter_size : odd int
        Width and height of every filter.
    normalization : None, 'batchnorm' (spatial batch normalization) or 'groupnorm'
    groups : int
        Groups of the group normalization; must divide every block's number of filters. Recorded
        but unused with another normalization.
    residual : bool
        Every block's default: add the block's input to its output before the pool (an identity
        shortcut), which needs as many filters as input channels; a block where they differ is
        refused.
    global_pool : 'max' or 'avg'
        How the last block's maps become one value per channel.
    dropout_keep : float in (0, 1]
        Probability of keeping a unit of the pooled features; 1 disables dropout.
    num_classes : int
    weight_scale : float >= 0, None, 'he' or 'pytorch'
        Standard deviation of the initial weights, or a rule for each layer's (``fan_in`` = C *
        filter_size**2 for a convolution, the features for the affine layer): None or 'he', He
        initialization, ``sqrt(2 / fan_in)``; 'pytorch', ``sqrt(1 / (3 * fan_in))``, the standard
        deviation of PyTorch's default initialization of its layers (drawn here from a normal
        distribution, where PyTorch draws uniformly). Behind batch normalization the scale of a
        convolution's weights does not change what the network computes, but it sets how far a
        step of gradient descent moves them: the smaller 'pytorch' scale trains faster with the
        best-cnn recipe. Weights are drawn ``W1, ..., W{L+1}`` in order from NumPy's global
        generator; biases and betas start at 0, gammas at 1.
    reg : float >= 0
        L2 strength: the loss gains ``0.5 * reg * sum(W**2)`` over the weights only.
    label_smoothing : float in [0, 1]
        Of the softmax loss (see ``softmax_loss``).
    dtype : np.float32 (default) or np.float64
    seed : int in [0, 2**32) or None
        If given, dropout seeds NumPy's global generator with it and draws the same mask at every
        call (for gradient checks), as :class:`FullyConnectedNet` does.

    Attributes
    ----------
    params : dict of str to ndarray
        For block ``i`` (1-based): ``Wi`` (F_i, C_i, filter_size, filter_size), ``bi`` (F_i,),
        and with normalization ``gammai``, ``betai`` (F_i,); then ``W{L+1}`` (F_L, num_classes)
        and ``b{L+1}`` (num_classes,).
    blocks : list of dict
        The blocks, each with its ``filters``, ``pool`` and ``residual``.
    bn_params : list
        Each block's ``norm_param`` (see ``conv_block_forward``): the ``bn_param`` dicts with
        batchnorm (running statistics included), ``{"groups": groups}`` with groupnorm, None without.
    """

    def __init__(
        self,
        *,
        input_dim=(3, 32, 32),
        blocks=DEFAULT_BLOCKS,
        filter_size: int = 3,
        normalization: str | None = "batchnorm",
        groups: int = 4,
        residual: bool = False,
        global_pool: str = "max",
        dropout_keep: float = 1.0,
        num_classes: int = 10,
        weight_scale: float | None = None,
        reg: float = 0.0,
        label_smoothing: float = 0.0,
        dtype=np.float32,
        seed: int | None = None,
    ):
        owner = type(self).__name__
        if not isinstance(input_dim, (tuple, list)) or len(input_dim) != 3:
            raise ValueError(f"{owner}: input_dim must be a tuple (C, H, W), got {v.describe(input_dim)}")
        C, H, W = (v.int_value(owner, f"input_dim[{i}]", d, minimum=1) for i, d in enumerate(input_dim))
        filter_size = v.int_value(owner, "filter_size", filter_size, minimum=1)
        if filter_size % 2 == 0:
            raise ValueError(f"{owner}: filter_size must be odd, so that the convolutions keep the spatial size, got {filter_size}")
        if normalization not in BLOCK_NORMALIZATIONS:
            raise ValueError(f"{owner}: normalization must be one of {list(BLOCK_NORMALIZATIONS)}, got {v.describe(normalization)}")
        groups = v.int_value(owner, "groups", groups, minimum=1)
        residual = _bool(owner, "residual", residual)
        if global_pool not in _GLOBAL_POOLS:
            raise ValueError(f"{owner}: global_pool must be one of {list(_GLOBAL_POOLS)}, got {v.describe(global_pool)}")
        dropout_keep = v.real_value(owner, "dropout_keep", dropout_keep, low=0.0, high=1.0, low_open=True)
        num_classes = v.int_value(owner, "num_classes", num_classes, minimum=1)
        if weight_scale == "he":
            weight_scale = None
        if weight_scale is not None and not (isinstance(weight_scale, str) and weight_scale in _INIT_RULES):
            if isinstance(weight_scale, str):
                raise ValueError(f"{owner}: weight_scale must be a number >= 0, None, 'he' or 'pytorch', got {weight_scale!r}")
            weight_scale = v.real_value(owner, "weight_scale", weight_scale, low=0.0)
        self.reg = v.real_value(owner, "reg", reg, low=0.0)
        self.label_smoothing = v.real_value(owner, "label_smoothing", label_smoothing, low=0.0, high=1.0)
        self.dtype = v.float_dtype(owner, dtype)
        if seed is not None:
            seed = v.int_value(owner, "seed", seed, minimum=0, maximum=v.MAX_SEED)
        blocks = _checked_blocks(owner, blocks, residual)
        channels, size = C, (H, W)
        for i, block in enumerate(blocks):
            if block["residual"] and block["filters"] != channels:
                raise ValueError(
                    f"{owner}: blocks[{i}] has residual=True, which adds the block's input to its output, but its "
                    f"{block['filters']} filters do not match its {channels} input channels; give it "
                    f"residual=False or {channels} filters"
                )
            if normalization == "groupnorm" and block["filters"] % groups:
                raise ValueError(f"{owner}: groups must divide every block's filters, got groups={groups} and blocks[{i}] with {block['filters']}")
            if block["pool"]:
                if min(size) < 2:
                    raise ValueError(f"{owner}: input_dim {(C, H, W)} is too small for the pool of blocks[{i}] (its input is {size[0]}x{size[1]})")
                size = (size[0] // 2, size[1] // 2)
            channels = block["filters"]

        self.input_dim = (C, H, W)
        self.blocks = blocks
        self.filter_size = filter_size
        self.normalization = normalization
        self.groups = groups
        self.residual = residual
        self.global_pool = global_pool
        self.dropout_keep = dropout_keep
        self.num_classes = num_classes
        self.weight_scale = weight_scale
        self.seed = seed
        self.num_layers = len(blocks) + 1
        self.use_dropout = dropout_keep != 1
        self.conv_param = {"stride": 1, "pad": (filter_size - 1) // 2}

        self.params: dict[str, np.ndarray] = {}
        fan_in_channels = C
        for layer, block in enumerate(blocks, start=1):
            F = block["filters"]
            shape = (F, fan_in_channels, filter_size, filter_size)
            self.params[f"W{layer}"] = self._scale(fan_in_channels * filter_size**2) * np.random.randn(*shape)
            self.params[f"b{layer}"] = np.zeros(F)
            if normalization is not None:
                self.params[f"gamma{layer}"] = np.ones(F)
                self.params[f"beta{layer}"] = np.zeros(F)
            fan_in_channels = F
        last = self.num_layers
        self.params[f"W{last}"] = self._scale(fan_in_channels) * np.random.randn(fan_in_channels, num_classes)
        self.params[f"b{last}"] = np.zeros(num_classes)
        for name, value in self.params.items():
            self.params[name] = value.astype(self.dtype)

        # Per-layer state of the stochastic and normalization layers, passed to them each call.
        self.dropout_param: dict[str, Any] = dropout_param(dropout_keep, seed) if self.use_dropout else {}
        self.bn_params: list[dict[str, Any] | None] = [None] * len(blocks)
        if normalization == "batchnorm":
            self.bn_params = [{"mode": "train"} for _ in blocks]
        elif normalization == "groupnorm":
            self.bn_params = [{"groups": groups} for _ in blocks]

    def _scale(self, fan_in: int) -> float:
        if self.weight_scale is None or isinstance(self.weight_scale, str):
            return _INIT_RULES[self.weight_scale or "he"](fan_in)
        return self.weight_scale

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as JSON-friendly values (to rebuild the model)."""
        return {
            "input_dim": list(self.input_dim),
            "blocks": [dict(block) for block in self.blocks],
            "filter_size": self.filter_size,
            "normalization": self.normalization,
            "groups": self.groups,
            "residual": self.residual,
            "global_pool": self.global_pool,
            "dropout_keep": self.dropout_keep,
            "num_classes": self.num_classes,
            "weight_scale": self.weight_scale,
            "reg": self.reg,
            "label_smoothing": self.label_smoothing,
            "dtype": self.dtype.name,
            "seed": self.seed,
        }

    def _batchnorm_sizes(self) -> list[int]:
        return [block["filters"] for block in self.blocks]

    def loss(self, X: np.ndarray, y: np.ndarray | None = None):
        """Scores, or loss and gradients, for a minibatch.

        Parameters
        ----------
        X : ndarray, shape (N, C, H, W)
            Cast to the model's dtype.
        y : ndarray of int, shape (N,), optional
            Labels. Without them the model runs in test mode (running statistics, no dropout) and
            returns scores.

        Returns
        -------
        scores : ndarray, shape (N, num_classes)
            When ``y`` is None.
        loss, grads : float, dict of str to ndarray
            Otherwise; ``grads[k]`` has the shape and dtype of ``params[k]``.
        """
        with products_on_layer_threads():  # the convolutions run on the layers' threads
            return self._loss(X, y)

    def _loss(self, X: np.ndarray, y: np.ndarray | None):
        owner = f"{type(self).__name__}.loss"
        X = model_input(owner, X, self.input_dim, self.dtype)
        if y is not None:
            v.labels(owner, y, X.shape[0], self.num_classes)
        self._set_mode("test" if y is None else "train")

        p = self.params
        hidden = X
        block_caches = []
        for layer, block in enumerate(self.blocks, start=1):
            hidden, cache = conv_block_forward(
                hidden, p[f"W{layer}"], p[f"b{layer}"], self.conv_param,
                normalization=self.normalization, gamma=p.get(f"gamma{layer}"), beta=p.get(f"beta{layer}"),
                norm_param=self.bn_params[layer - 1], pool_param=_POOL_PARAM if block["pool"] else None,
                residual=block["residual"],
            )  # fmt: skip
            block_caches.append(cache)
        pool_forward, pool_backward = _GLOBAL_POOLS[self.global_pool]
        features, pool_cache = pool_forward(hidden)
        dropout_cache = None
        if self.use_dropout:
            features, dropout_cache = dropout_forward(features, self.dropout_param)
        last = self.num_layers
        scores, scores_cache = affine_forward(features, p[f"W{last}"], p[f"b{last}"])
        if y is None:
            return scores

        loss, dscores = softmax_loss(scores, y, label_smoothing=self.label_smoothing)
        grads: dict[str, np.ndarray] = {}
        dfeatures, grads[f"W{last}"], grads[f"b{last}"] = affine_backward(dscores, scores_cache)
        if dropout_cache is not None:
            dfeatures = dropout_backward(dfeatures, dropout_cache)
        dhidden = pool_backward(dfeatures, pool_cache)
        for layer in range(len(self.blocks), 0, -1):
            # Block 1's input is the data, which needs no gradient.
            dhidden, grads[f"W{layer}"], grads[f"b{layer}"], dgamma, dbeta = conv_block_backward(
                dhidden, block_caches[layer - 1], input_grad=layer > 1
            )
            if self.normalization is not None:
                grads[f"gamma{layer}"], grads[f"beta{layer}"] = dgamma, dbeta
        weights = (f"W{layer}" for layer in range(1, self.num_layers + 1))
        return add_l2(loss, grads, p, self.reg, weights, self.dtype), grads


def _bool(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be a bool, got {v.describe(value)}")
    return bool(value)


def _checked_blocks(owner: str, blocks: Any, residual: bool) -> list[dict[str, Any]]:
    """``blocks`` as a list of ``{"filters", "pool", "residual"}`` dicts, each entry checked."""
    if isinstance(blocks, (str, Mapping)) or not isinstance(blocks, (tuple, list)) or not blocks:
        raise TypeError(
            f"{owner}: blocks must be a non-empty list of (num_filters, pool) pairs or dicts with 'filters', "
            f"'pool' and 'residual', got {v.describe(blocks)}"
        )
    checked = []
    for i, block in enumerate(blocks):
        name = f"blocks[{i}]"
        if isinstance(block, Mapping):
            unknown = sorted(set(block) - set(_BLOCK_KEYS))
            if unknown or "filters" not in block:
                raise ValueError(f"{owner}: {name} must have the key 'filters' and optionally 'pool' and 'residual', got keys {sorted(block)}")
            filters, pool, block_residual = block["filters"], block.get("pool", False), block.get("residual", residual)
        elif isinstance(block, (tuple, list)) and len(block) == 2:
            (filters, pool), block_residual = block, residual
        else:
            raise TypeError(f"{owner}: {name} must be a (num_filters, pool) pair or a dict, got {v.describe(block)}")
        checked.append({
            "filters": v.int_value(owner, f"{name} filters", filters, minimum=1),
            "pool": _bool(owner, f"{name} pool", pool),
            "residual": _bool(owner, f"{name} residual", block_residual),
        })  # fmt: skip
    return checked
