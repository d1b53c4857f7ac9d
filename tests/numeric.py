"""Test helper shared by the layer tests: numeric gradients of a forward function's arguments."""

from layerwise.gradient_check import eval_numerical_gradient_array


def numeric_grads(forward, args, wrt, dout):
    """Numeric gradients of ``sum(forward(*args)[0] * dout)`` with respect to ``args[i]`` for i in wrt."""
    grads = []
    for i in wrt:

        def f(point, i=i):
            call = list(args)
            call[i] = point
            return forward(*call)[0]

        grads.append(eval_numerical_gradient_array(f, args[i], dout))
    return grads
