"""The convolution plan: which algorithm computes each pass of a convolution, decided once.

:func:`plan_convolution` maps a layer's geometry, its dtype and whether the compiled kernels can
run to a :class:`ConvPlan`: the algorithm of the forward pass, of ``dx``, of ``dw``/``db`` (with
and without ``dx``), the im2col column layout and chunk size, and whether a following max pool
can be fused into it. :func:`~.conv_fast.conv_forward_fast` makes the plan, the cache carries it,
and the backward pass and the fused conv + pool (:mod:`.conv_pool`) read it rather than decide
again. The same inputs with the same plan give the same bits; how the chunks are shared among
threads never changes a bit (every partial sum is per chunk, added in chunk order).

Every threshold the plan uses is in the table below, with the reason for it; the
``bench_speed.py`` rows named beside each measure it, and the measured figures behind the values
are in ``benchmarks/README.md`` ("Design measurements").
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import kernels
from .geometry import ConvGeometry

# Bytes of im2col columns per chunk: they stay in L2/L3 while BLAS consumes them, and the chunk
# is large enough to amortise the call (every im2col row of bench_speed.py).
CHUNK_BYTES = 2 << 20
# Bytes of output grid per group of chunks where the layer above works in many NumPy calls (the
# fused pool without Numba): fewer, larger calls ("3-layer conv 7x7" without Numba).
GROUP_BYTES = 2 << 20
# Bytes of Winograd-transformed input per chunk: the chunk's transforms stay in L2/L3.
WINOGRAD_CHUNK_BYTES = 1 << 20
# The wide column layout computes R / W_out times the needed columns; past this ratio the waste
# outweighs building the columns as long runs.
WIDE_MAX_WASTE = 1.2
# Winograd F(2x2, 3x3) for 3x3 stride-1 forward passes from this many input channels: below it,
# the transforms' layout changes cost more than the multiplications saved ("cnn 16->16 32x32"
# against "cnn 32->32 16x16").
WINOGRAD_MIN_CHANNELS = 32
# dx as a Winograd convolution of dout from this many input channels (the output channels of
# that convolution): below it, the transforms' short inner runs cost more than they save.
WINOGRAD_DX_MIN_CHANNELS = 32
# dw and db by Winograd from this many input channels with the compiled transforms, and from the
# second with NumPy's, which are slower and pay off only on larger layers ("cnn 32->32 16x16").
WINOGRAD_DW_MIN_CHANNELS = 32
WINOGRAD_DW_MIN_CHANNELS_NUMPY = 64
# The direct weight gradients split the batch into this many chunks whatever the thread count,
# so that their partial sums, and so their bits, never depend on it.
DIRECT_DW_CHUNKS = 16

ALGORITHMS = ("winograd", "direct", "im2col", "im2col per image")


class ConvPlan(NamedTuple):
    """How one convolution is computed (see the module docstring); print it to see.

    Attributes
    ----------
    forward : str
        ``'winograd'``, ``'direct'`` (compiled, float32), ``'im2col'`` (a chunk's columns times
        the filters, copied out with the bias) or ``'im2col per image'`` (each image's product
        written straight into the output).
    dx : str
        ``'winograd'`` or ``'direct'`` (a convolution of ``dout`` by the flipped filters), or
        ``'im2col'`` (the columns' gradient summed back, col2im).
    dw : str
        ``dw`` and ``db`` when ``dx`` is computed too: ``'winograd'``, ``'direct'`` or ``'im2col'``.
    dw_only : str
        ``dw`` and ``db`` of a weights-only backward pass (a network's first layer).
    columns : str
        The im2col column layout, ``'wide'`` (stride 1: each column row one contiguous run) or
        ``'compact'``, wherever im2col runs.
    images_per_chunk : int
        Images per im2col chunk (its columns about :data:`CHUNK_BYTES`).
    fuses_pool : bool
        Whether :mod:`.conv_pool` may pool each chunk's output while it is in cache (no pass is
        Winograd's, which computes the whole batch at once).
    """

    forward: str
    dx: str
    dw: str
    dw_only: str
    columns: str
    images_per_chunk: int
    fuses_pool: bool

    def __str__(self) -> str:
        return (
            f"forward {self.forward}; backward dx {self.dx}, dw {self.dw} (weights only: {self.dw_only}); "
            f"im2col columns {self.columns}, {self.images_per_chunk} images a chunk; "
            f"{'fuses' if self.fuses_pool else 'does not fuse'} a following pool"
        )


def plan_convolution(g: ConvGeometry, dtype, compiled: bool | None = None) -> ConvPlan:
    """The plan of the convolution of geometry ``g`` in ``dtype``.

    Parameters
    ----------
    g : ConvGeometry
    dtype : the layer's float dtype
    compiled : bool, optional
        Whether the compiled kernels run for ``dtype`` (default: :func:`.kernels.serves`).
        float32 alone takes the direct convolutions: float64 is the dtype of gradient checks, whose
        numeric estimates the notebooks print with im2col's rounding.
    """
    dtype = np.dtype(dtype)
    compiled = kernels.serves(dtype) if compiled is None else compiled
    direct = compiled and dtype == np.float32
    winograd_3x3 = g.HH == 3 and g.WW == 3 and g.stride == 1
    winograd_fwd = winograd_3x3 and g.C >= WINOGRAD_MIN_CHANNELS
    winograd_dx = winograd_3x3 and g.pad <= 2 and g.C >= WINOGRAD_DX_MIN_CHANNELS
    dw_threshold = WINOGRAD_DW_MIN_CHANNELS if compiled else WINOGRAD_DW_MIN_CHANNELS_NUMPY
    winograd_dw = winograd_3x3 and g.C >= dw_threshold
    direct_fwd = direct and g.stride == 1 and not winograd_fwd
    direct_dw = direct and g.stride == 1 and not winograd_dw
    dx_g = dx_geometry(g)
    direct_dx = direct and dx_g is not None and not winograd_dx and not _winograd_takes(dx_g)

    if winograd_fwd:
        forward = "winograd"
    elif direct_fwd:
        forward = "direct"
    elif g.stride > 1 or g.C * g.HH * g.WW <= 2 * g.F:  # compact anyway, or the copy out costs more
        forward = "im2col per image"
    else:
        forward = "im2col"
    if winograd_dx:
        dx = "winograd"
        dw = "winograd" if winograd_dw else "im2col"  # else the chunks that make dx make dw too
    elif direct_dw and direct_dx:
        dx = dw = "direct"
    else:
        dx = dw = "im2col"
    dw_only = "winograd" if winograd_dw else "direct" if direct_dw else "im2col"
    columns = column_layout(g)
    return ConvPlan(
        forward=forward, dx=dx, dw=dw, dw_only=dw_only, columns=columns,
        images_per_chunk=images_per_chunk(g, dtype, columns == "wide"),
        fuses_pool="winograd" not in (forward, dx, dw, dw_only),
    )  # fmt: skip


def column_layout(g: ConvGeometry) -> str:
    """``'wide'`` for stride-1 layers whose wide grid wastes little (see :data:`WIDE_MAX_WASTE`),
    else ``'compact'``."""
    pitch = max(g.W + g.pad, g.W_out)
    wide = g.stride == 1 and g.WW > 1 and pitch <= WIDE_MAX_WASTE * g.W_out
    return "wide" if wide else "compact"


def images_per_chunk(g: ConvGeometry, dtype: np.dtype, wide: bool) -> int:
    """Images whose im2col columns fit :data:`CHUNK_BYTES` (at least one)."""
    width = max(g.W + g.pad, g.W_out) if wide else g.W_out
    per_image = g.C * g.HH * g.WW * g.H_out * width * np.dtype(dtype).itemsize
    return max(1, min(g.N, CHUNK_BYTES // per_image))


def dx_geometry(g: ConvGeometry) -> ConvGeometry | None:
    """``dx`` as a convolution: ``dx[n, c, y, x] = sum_{f, i, j} dout[n, f, y + pad - i, x + pad -
    j] * w[f, c, i, j]`` is, with ``i' = HH - 1 - i``, the stride-1 convolution of ``dout``
    zero-padded by ``HH - 1 - pad`` with the flipped filters, F and C swapped; its output is
    exactly H x W. None where there is no such convolution (stride > 1, filters not square,
    pad >= HH)."""
    if g.stride != 1 or g.HH != g.WW or g.pad >= g.HH:
        return None
    return ConvGeometry(g.N, g.F, g.H_out, g.W_out, g.C, g.HH, g.WW, 1, g.HH - 1 - g.pad, g.H, g.W)


def _winograd_takes(g: ConvGeometry) -> bool:
    return g.HH == 3 and g.WW == 3 and g.stride == 1 and g.C >= WINOGRAD_MIN_CHANNELS
