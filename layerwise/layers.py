"""Every layer as a pair of pure functions (the public front door).

``*_forward(x, params...) -> (out, cache)`` computes the layer; ``*_backward(dout, cache)``
returns the gradient with respect to each input, in the order the forward took them. Outputs and
gradients keep x's dtype. The implementations live in :mod:`layerwise._layers`, one file per concept.
"""

from ._layers.affine import affine_backward, affine_forward, relu_backward, relu_forward
from ._layers.conv_naive import conv_backward_naive, conv_forward_naive
from ._layers.dropout import dropout_backward, dropout_forward
from ._layers.global_pool import (
    global_avg_pool_backward,
    global_avg_pool_forward,
    global_max_pool_backward,
    global_max_pool_forward,
)
from ._layers.losses import softmax_loss, svm_loss
from ._layers.normalization import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)
from ._layers.pool_naive import max_pool_backward_naive, max_pool_forward_naive

__all__ = [
    "affine_forward",
    "affine_backward",
    "relu_forward",
    "relu_backward",
    "softmax_loss",
    "svm_loss",
    "conv_forward_naive",
    "conv_backward_naive",
    "max_pool_forward_naive",
    "max_pool_backward_naive",
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "layernorm_forward",
    "layernorm_backward",
    "spatial_batchnorm_forward",
    "spatial_batchnorm_backward",
    "spatial_groupnorm_forward",
    "spatial_groupnorm_backward",
    "dropout_forward",
    "dropout_backward",
    "global_avg_pool_forward",
    "global_avg_pool_backward",
    "global_max_pool_forward",
    "global_max_pool_backward",
]
