"""Checked reading of ``conv_param`` / ``pool_param`` and the output-size arithmetic they imply.

Shared by the naive and the fast convolution and pooling layers, so both accept exactly the same
inputs and refuse the same ones with the same messages.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import _validation as v


class ConvGeometry(NamedTuple):
    """Sizes of one convolution: input (N, C, H, W), filters (F, C, HH, WW), output (N, F, H_out, W_out)."""

    N: int
    C: int
    H: int
    W: int
    F: int
    HH: int
    WW: int
    stride: int
    pad: int
    H_out: int
    W_out: int


class PoolGeometry(NamedTuple):
    """Sizes of one max pool: input (N, C, H, W), window (PH, PW), output (N, C, H_out, W_out)."""

    N: int
    C: int
    H: int
    W: int
    PH: int
    PW: int
    stride: int
    H_out: int
    W_out: int


def conv_inputs(
    func: str, x: Any, w: Any, b: Any, conv_param: Any, *, exact: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, ConvGeometry]:
    """Validate the arguments of a convolution forward pass.

    Returns ``x`` and ``w``/``b`` cast to ``x.dtype``, and the geometry. With ``exact=True``
    (the naive layer, as specified) the filter must tile the padded input exactly:
    ``(H + 2*pad - HH) % stride == 0``; otherwise the last incomplete positions are dropped,
    as ``torch.nn.functional.conv2d`` does.
    """
    x = v.float_array(func, "x", x)
    v.check_ndim(func, "x", x, 4, "(N, C, H, W)")
    w = v.param_array(func, "w", w, x.dtype)
    v.check_ndim(func, "w", w, 4, "(F, C, HH, WW)")
    b = v.param_array(func, "b", b, x.dtype)
    N, C, H, W = x.shape
    F, Cw, HH, WW = w.shape
    if Cw != C:
        raise ValueError(
            f"{func}: x has {C} channels but w expects {Cw} (x.shape={x.shape}, w.shape={w.shape})"
        )
    if b.shape != (F,):
        raise ValueError(f"{func}: b must have shape ({F},), one bias per filter of w, got shape {b.shape}")
    conv_param = v.param_dict(func, "conv_param", conv_param)
    stride = v.int_entry(func, "conv_param", conv_param, "stride", minimum=1)
    pad = v.int_entry(func, "conv_param", conv_param, "pad", minimum=0)
    Hp, Wp = H + 2 * pad, W + 2 * pad
    if HH > Hp or WW > Wp:
        raise ValueError(
            f"{func}: filter of size {HH}x{WW} does not fit the padded input of size {Hp}x{Wp} "
            f"(x.shape={x.shape}, w.shape={w.shape}, pad={pad})"
        )
    if exact and ((Hp - HH) % stride or (Wp - WW) % stride):
        raise ValueError(
            f"{func}: filters of size {HH}x{WW} with stride {stride} must tile the padded input "
            f"of size {Hp}x{Wp}: (H + 2*pad - HH) and (W + 2*pad - WW) must be divisible by the stride, "
            f"got {Hp - HH} and {Wp - WW}"
        )
    geometry = ConvGeometry(
        N, C, H, W, F, HH, WW, stride, pad, (Hp - HH) // stride + 1, (Wp - WW) // stride + 1
    )
    return x, w, b, geometry


def pool_inputs(func: str, x: Any, pool_param: Any) -> tuple[np.ndarray, PoolGeometry]:
    """Validate the arguments of a max-pool forward pass; windows that do not fit are dropped."""
    x = v.float_array(func, "x", x)
    v.check_ndim(func, "x", x, 4, "(N, C, H, W)")
    pool_param = v.param_dict(func, "pool_param", pool_param)
    PH = v.int_entry(func, "pool_param", pool_param, "pool_height", minimum=1)
    PW = v.int_entry(func, "pool_param", pool_param, "pool_width", minimum=1)
    stride = v.int_entry(func, "pool_param", pool_param, "stride", minimum=1)
    N, C, H, W = x.shape
    if PH > H or PW > W:
        raise ValueError(
            f"{func}: pool window {PH}x{PW} must fit the input of size {H}x{W}, got x.shape={x.shape}"
        )
    geometry = PoolGeometry(N, C, H, W, PH, PW, stride, (H - PH) // stride + 1, (W - PW) // stride + 1)
    return x, geometry
