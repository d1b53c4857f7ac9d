"""layerwise: a modular NumPy deep-learning library for image classification.

Every layer is a pair of pure functions, ``*_forward(x, ...) -> (out, cache)`` and
``*_backward(dout, cache) -> grads``; models compose them and return ``(loss, grads)``; a
:class:`~layerwise.solver.Solver` trains any model with pluggable update rules. The public
modules mirror the cs231n notebooks: ``layers``, ``fast_layers``, ``layer_utils``,
``classifiers.fc_net``, ``classifiers.cnn``, ``optim``, ``solver``, ``gradient_check``,
``data_utils`` and ``vis_utils``.
"""

__version__ = "0.1.0"

from ._layers.threads import get_num_threads, set_num_threads

__all__ = ["get_num_threads", "set_num_threads"]
