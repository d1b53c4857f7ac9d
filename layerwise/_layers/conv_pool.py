"""A convolution followed by a max pool and a ReLU, fused chunk by chunk where the layers allow.

``layer_utils.conv_relu_pool_forward`` computes conv -> ReLU -> pool as conv -> pool -> ReLU (a
window's maximum commutes with the monotone ReLU, and so do the gradients: where a window's
maximum is not positive, both orders pass nothing back). The conv -> pool part is fused here when
the convolution's plan allows it (no Winograd pass) and the pool windows do not overlap:

* forward: each chunk's convolution output is pooled, bias added, while it is still in cache
  (:func:`~.conv_im2col.im2col_forward`, or :func:`~.conv_direct.direct_forward` where the plan
  names that path), and each window's first-maximum offset is recorded (one
  byte a window); for 2x2 windows by a compiled kernel of :mod:`.kernels` when Numba is there.
  The whole-batch convolution output is never made: that saves writing it, reading it back, and
  the page faults of a fresh array of that size every step.
* backward: the ReLU-gated gradient is written by those offsets straight into each chunk's
  gradient buffer of the convolution (:func:`~.conv_im2col.im2col_backward`, or
  :func:`~.conv_direct.direct_weight_grads` for a first layer, whose dx is not needed), with no
  whole-batch ``da`` either (for 2x2 windows, with Numba, by the other kernel of :mod:`.kernels`).
  Where the plan makes dx a direct convolution of ``da`` (:class:`~.conv_plan.ConvPlan`),
  ``da`` is made whole and the convolution's own backward pass runs.

The results are those of the layers run one after the other, to the bit: the same maxima (of the
same biased outputs), the same first maximum of each window, the same gradient sums. Other
geometries (Winograd convolutions, overlapping windows) run the layers one after the other.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _validation as v
from . import conv_plan as planning
from . import kernels
from .conv_direct import direct_forward, direct_weight_grads
from .conv_fast import ConvFastCache, conv_backward_fast, conv_backward_fast_weights, conv_forward_fast
from .conv_im2col import im2col_backward, im2col_forward
from .geometry import conv_inputs, pool_inputs
from .masking import select
from .pool_fast import (
    PoolFastCache,
    code_dtype,
    first_max_code,
    max_pool_forward_fast,
    max_pool_relu_backward,
    pool_into,
    scatter_by_code,
)
from .scratch import scratch


class ConvPoolCache(NamedTuple):
    """What :func:`conv_pool_relu_backward` needs.

    ``pooled`` and ``code`` (each window's first-maximum offset, as made by
    :func:`~.pool_fast.first_max_code`) where the pair was fused, ``pool`` (the pool's own cache)
    where it was not.
    """

    conv: ConvFastCache
    pool_param: dict
    pooled: np.ndarray | None = None
    code: np.ndarray | None = None
    pool: PoolFastCache | None = None


def conv_pool_forward(x, w, b, conv_param: dict, pool_param: dict) -> tuple[np.ndarray, ConvPoolCache]:
    """``max_pool_forward_fast(conv_forward_fast(x, w, b, conv_param)[0], pool_param)[0]`` and a
    cache for :func:`conv_pool_relu_backward`; arguments are checked as the two layers check them."""
    x, w, b, g = conv_inputs("conv_forward_fast", x, w, b, conv_param, exact=False)
    plan = planning.plan_convolution(g, x.dtype)
    conv_cache = ConvFastCache(x, w, b, dict(conv_param), plan)
    conv_out = np.broadcast_to(x.dtype.type(0), (g.N, g.F, g.H_out, g.W_out))  # its shape, for the checks
    pg = pool_inputs("max_pool_forward_fast", conv_out, pool_param)[1]
    if not plan.fuses_pool or pg.stride < max(pg.PH, pg.PW):
        a, conv_cache = conv_forward_fast(x, w, b, conv_param)
        pooled, pool_cache = max_pool_forward_fast(a, pool_param)
        return pooled, ConvPoolCache(conv_cache, dict(pool_param), pool=pool_cache)

    pooled = np.empty((pg.N, pg.C, pg.H_out, pg.W_out), dtype=x.dtype)
    code = np.empty(pooled.shape, dtype=code_dtype(pg))
    bias = b.reshape(g.F, 1)
    compiled = _compiled_2x2(pg, x.dtype)

    def pool_chunk(n0: int, m: int, grid: np.ndarray) -> None:
        # grid (F, m, H_out, Wg): the bias is added as the unfused layer adds it (in one contiguous
        # pass, or by the kernel as it reads). Windows lie in the last two axes, so NumPy pools in
        # the grid's own axis order, into contiguous scratch, then one transposed copy per output;
        # the kernel writes the outputs' own (m, F, ...) slices.
        if compiled:
            kernels.pool_2x2_code(grid, b, pooled[n0 : n0 + m], code[n0 : n0 + m])
            return
        chunk_pooled = scratch("conv_pool.pooled", (g.F, m, pg.H_out, pg.W_out), x.dtype)
        chunk_code = scratch("conv_pool.code", chunk_pooled.shape, code.dtype)
        np.add(grid.reshape(g.F, -1), bias, out=grid.reshape(g.F, -1))
        conv_out, chunk_g = grid[..., : g.W_out], pg._replace(N=g.F, C=m)
        pool_into(conv_out, chunk_g, chunk_pooled)
        first_max_code(conv_out, chunk_pooled, chunk_g, chunk_code)
        np.copyto(pooled[n0 : n0 + m].transpose(1, 0, 2, 3), chunk_pooled)
        np.copyto(code[n0 : n0 + m].transpose(1, 0, 2, 3), chunk_code)

    if plan.forward == "direct":  # as conv_forward_fast computes it: the same bits
        direct_forward(x, w, g, consume=pool_chunk)
    else:
        im2col_forward(x, w, g, plan, pool_chunk, grouped=not compiled)  # the NumPy pool: fewer, larger calls
    return pooled, ConvPoolCache(conv_cache, dict(pool_param), pooled, code)


def conv_pool_relu_backward(dout: np.ndarray, relu_cache: np.ndarray, cache: ConvPoolCache, input_grad: bool):
    """Backward of :func:`conv_pool_forward` followed by a ReLU whose input ``relu_cache`` is the
    pooled output: ``(dx or None, dw, db)``, ``dx`` only when ``input_grad``."""
    if cache.code is None:
        da = max_pool_relu_backward(dout, relu_cache, cache.pool)
        if input_grad:
            return conv_backward_fast(da, cache.conv)
        return (None, *conv_backward_fast_weights(da, cache.conv))

    func = "conv_backward_fast" if input_grad else "conv_backward_fast_weights"
    x, w, _, g = conv_inputs(func, *cache.conv[:3], cache.conv.conv_param, exact=False)
    plan = cache.conv.plan
    pooled, code = cache.pooled, cache.code
    conv_out = np.broadcast_to(x.dtype.type(0), (g.N, g.F, g.H_out, g.W_out))
    pg = pool_inputs("max_pool_relu_backward", conv_out, cache.pool_param)[1]
    # The same checks, in the same words, as the unfused max_pool_relu_backward.
    dout, relu_cache = _checked(dout, relu_cache, pooled)
    compiled = _compiled_2x2(pg, x.dtype)
    if not compiled:
        grad = select(relu_cache > 0, dout, np.empty_like(dout))  # the ReLU's gate

    def fill(n0: int, m: int, target: np.ndarray) -> None:  # target (F, m, H_out, W_out)
        part = slice(n0, n0 + m)
        if compiled:  # the gate, the zeros and the scatter in one pass
            kernels.scatter_2x2(code[part], dout[part], relu_cache[part], target)
        else:
            code_part = code[part].transpose(1, 0, 2, 3)
            scatter_by_code(code_part, grad[part].transpose(1, 0, 2, 3), pg._replace(N=g.F, C=m), target)

    if not input_grad and plan.dw_only == "direct":
        return (None, *direct_weight_grads(x, g, fill))
    if input_grad and plan.dx == "direct":  # dx is a convolution of the whole da
        da = np.empty((g.N, g.F, g.H_out, g.W_out), dtype=x.dtype)
        fill(0, g.N, da.transpose(1, 0, 2, 3))
        return conv_backward_fast(da, cache.conv)
    return im2col_backward(x, w, g, plan, fill, input_grad, grouped=not compiled)


def _compiled_2x2(pg, dtype: np.dtype) -> bool:
    """Whether :mod:`.kernels` serves this pool: Numba present, 2x2 windows with stride 2."""
    return kernels.serves(dtype) and pg.PH == pg.PW == pg.stride == 2


def _checked(dout, relu_cache, pooled: np.ndarray):
    """``dout`` and ``relu_cache`` checked as :func:`~.pool_fast.max_pool_relu_backward` checks
    them (against the pooled output's shape), ``dout`` in its dtype."""
    func = "max_pool_relu_backward"
    dout = v.upstream(func, dout, pooled.shape, pooled.dtype)
    relu_cache = v.float_array(func, "relu_cache", relu_cache)
    v.check_same_shape(func, "relu_cache", relu_cache, "the pool output", pooled.shape)
    return dout, relu_cache
