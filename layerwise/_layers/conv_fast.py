"""The fast convolution layer: each pass by the algorithm its plan names.

:func:`conv_forward_fast` checks its inputs, makes the layer's plan (:mod:`.conv_plan`) and runs
the forward pass it names: Winograd F(2x2, 3x3) (:mod:`.winograd`), a direct convolution
(:mod:`.conv_direct`, float32 with the compiled kernels) or im2col products (:mod:`.conv_im2col`).
The plan rides in the cache; :func:`conv_backward_fast` and :func:`conv_backward_fast_weights`
run the passes it names for ``dx`` and ``dw``/``db``, and :mod:`.conv_pool` reads it too.

Unlike :func:`~layerwise._layers.conv_naive.conv_forward_naive`, any geometry is accepted: when the
stride does not tile the padded input, the trailing rows/columns no filter position covers are
dropped (``H_out = 1 + (H + 2*pad - HH) // stride``), as in ``torch.nn.functional.conv2d``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import _validation as v
from . import conv_plan as planning
from .conv_direct import direct_dx, direct_forward, direct_weight_grads
from .conv_im2col import im2col_backward, im2col_forward, im2col_forward_per_image
from .conv_plan import ConvPlan
from .geometry import conv_inputs
from .winograd import winograd_dx, winograd_forward, winograd_weight_grads


class ConvFastCache(NamedTuple):
    """What :func:`conv_backward_fast` needs: the forward inputs (``w``, ``b`` in ``x.dtype``) and
    the layer's plan."""

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray
    conv_param: dict
    plan: ConvPlan


def conv_forward_fast(x: np.ndarray, w: Any, b: Any, conv_param: dict) -> tuple[np.ndarray, ConvFastCache]:
    """Forward pass of a convolutional layer.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Input images, float32 or float64; the output and all gradients keep this dtype.
    w : ndarray, shape (F, C, HH, WW)
        Filter weights (cast to ``x.dtype``).
    b : ndarray, shape (F,)
        Biases (cast to ``x.dtype``).
    conv_param : dict
        ``'stride'`` (>= 1) and ``'pad'`` (zeros on every side of H and W, >= 0).

    Returns
    -------
    out : ndarray, shape (N, F, H_out, W_out), C-contiguous
        ``H_out = 1 + (H + 2*pad - HH) // stride``, likewise ``W_out``; positions the stride does
        not reach are dropped, as in ``torch.nn.functional.conv2d``.
    cache : ConvFastCache
        ``(x, w, b, conv_param, plan)`` for :func:`conv_backward_fast`.

    Notes
    -----
    The algorithm of each pass is the layer's :class:`~.conv_plan.ConvPlan` (see
    :func:`conv_fast_plan`): Winograd F(2x2, 3x3), a direct convolution (float32, compiled), or
    im2col products. Their results differ from one another only by rounding; the plan rides in
    the cache, so the backward pass follows it.
    """
    x, w, b, g = conv_inputs("conv_forward_fast", x, w, b, conv_param, exact=False)
    plan = planning.plan_convolution(g, x.dtype)
    out = np.empty((g.N, g.F, g.H_out, g.W_out), dtype=x.dtype)
    if plan.forward == "winograd":
        winograd_forward(x, w, b, g, out)
    elif plan.forward == "direct":
        direct_forward(x, w, g, b, out)
    elif plan.forward == "im2col per image":
        im2col_forward_per_image(x, w, b, g, out)
    else:
        bias = b.reshape(1, g.F, 1, 1)

        def copy_out(n0: int, m: int, grid: np.ndarray) -> None:
            np.add(grid[..., : g.W_out].transpose(1, 0, 2, 3), bias, out=out[n0 : n0 + m])

        im2col_forward(x, w, g, plan, copy_out)
    return out, ConvFastCache(x, w, b, dict(conv_param), plan)


def conv_fast_plan(x_shape: tuple, w_shape: tuple, conv_param: dict, dtype: Any = np.float32) -> ConvPlan:
    """The plan :func:`conv_forward_fast` follows for inputs of these shapes and dtype (to see
    which algorithm computes each pass: ``print(conv_fast_plan((50, 3, 32, 32), (32, 3, 7, 7),
    {"stride": 1, "pad": 3}))``)."""
    x = np.broadcast_to(np.dtype(dtype).type(0), tuple(x_shape))
    w = np.broadcast_to(np.dtype(dtype).type(0), tuple(w_shape))
    g = conv_inputs("conv_fast_plan", x, w, np.zeros(w.shape[0], dtype), conv_param, exact=False)[3]
    return planning.plan_convolution(g, dtype)


def conv_backward_fast(dout: np.ndarray, cache: ConvFastCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv_forward_fast`.

    Parameters
    ----------
    dout : ndarray, shape (N, F, H_out, W_out)
        Upstream derivatives (cast to the layer's dtype).
    cache : ConvFastCache
        As returned by :func:`conv_forward_fast`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dw : ndarray, shape (F, C, HH, WW)
    db : ndarray, shape (F,)

    Notes
    -----
    ``dx`` and ``dw``/``db`` are computed as the cache's plan says (:class:`~.conv_plan.ConvPlan`).
    """
    dx, dw, db = _backward("conv_backward_fast", dout, cache, input_grad=True)
    return dx, dw, db


def conv_backward_fast_weights(dout: np.ndarray, cache: ConvFastCache) -> tuple[np.ndarray, np.ndarray]:
    """:func:`conv_backward_fast` without ``dx``, for a network's first layer, whose input needs no
    gradient (PyTorch likewise skips it for inputs that do not require grad): about half the work.

    Returns
    -------
    dw : ndarray, shape (F, C, HH, WW)
    db : ndarray, shape (F,)
    """
    _, dw, db = _backward("conv_backward_fast_weights", dout, cache, input_grad=False)
    return dw, db



def _backward(func: str, dout, cache: ConvFastCache, *, input_grad: bool):
    """``(dx or None, dw, db)`` of the convolution cached in ``cache``, for upstream gradient ``dout``."""
    x, w, b, conv_param, plan = v.cache_tuple(func, cache, 5)
    x, w, b, g = conv_inputs(func, x, w, b, conv_param, exact=False)
    dout = v.upstream(func, dout, (g.N, g.F, g.H_out, g.W_out), x.dtype)

    def fill(n0: int, m: int, target: np.ndarray) -> None:
        np.copyto(target, dout[n0 : n0 + m].transpose(1, 0, 2, 3))

    weights = plan.dw if input_grad else plan.dw_only
    if weights == "winograd":
        dw, db = winograd_weight_grads(x, dout, g)
    elif weights == "direct":
        dw, db = direct_weight_grads(x, g, fill)
    elif not input_grad or plan.dx != "im2col":
        dw, db = im2col_backward(x, w, g, plan, fill, input_grad=False)[1:]
    else:  # the chunks that make dw make dx too
        return im2col_backward(x, w, g, plan, fill, input_grad=True)
    if not input_grad:
        return None, dw, db
    return (winograd_dx(dout, w, g) if plan.dx == "winograd" else direct_dx(dout, w, g)), dw, db
