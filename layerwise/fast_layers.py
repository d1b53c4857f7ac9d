"""Fast convolution and max-pooling layers (the cs231n ``fast_layers`` module).

Same calls, shapes and errors as the naive layers in :mod:`layerwise.layers`. Each convolution
runs by the algorithm its plan names (Winograd, a compiled direct convolution or im2col matrix
products: ``conv_fast_plan`` shows which); pooling is a loop over the few window offsets, with
compiled passes where Numba runs.
``conv_forward_fast`` also accepts geometries the stride does not tile (trailing rows/columns are
dropped, as in ``torch.nn.functional.conv2d``). ``conv_forward_strides`` and
``conv_backward_strides`` are aliases kept for code written against cs231n.
"""

from ._layers.conv_fast import conv_backward_fast, conv_fast_plan, conv_forward_fast
from ._layers.pool_fast import max_pool_backward_fast, max_pool_forward_fast

conv_forward_strides = conv_forward_fast
conv_backward_strides = conv_backward_fast

__all__ = ["conv_forward_fast", "conv_backward_fast", "conv_fast_plan", "max_pool_forward_fast", "max_pool_backward_fast"]
