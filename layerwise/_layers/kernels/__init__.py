"""Optional compiled kernels (Numba) for the passes NumPy does slowest in the fast layers.

Each replaces a pass that NumPy makes as many small, strided calls, each taking and releasing the
GIL, or as a data-dependent scatter; the kernel makes it in one pass without the GIL, on the
layers' threads, and gives the NumPy path's results to the bit (the tests compare them), except
:func:`direct_conv` and :func:`direct_weight_grads`, which replace whole im2col products and sum
in their own order (the tests compare them with im2col's results up to rounding), and those of
the fused batchnorm + ReLU, whose sums run in float64 (compared with the composed layers up to
rounding):

* :func:`pool_2x2_code`: the fused 2x2 max pool of a convolution's output chunk (bias added) with
  each window's first-maximum offset (:mod:`.conv_pool`), where NumPy makes a dozen passes;
* :func:`scatter_2x2`: its backward, the ReLU-gated gradient written through those offsets;
* :func:`scatter_add`: the standalone max pool's backward scatter through its flat indices
  (:mod:`.pool_fast`), float32 only: it alone does not repay loading Numba for a float64 cell;
* :func:`col2im_wide`: the convolution's column gradients summed back onto the pixels, wide column
  layout (:mod:`.conv_im2col`), one image channel at a time in L1;
* :func:`col2im_compact`: the same for the compact layout (strided layers), into the padded
  image's phase planes, where every addition is a contiguous run;
* :func:`to_pixel_major`, :func:`winograd_input_tiles`, :func:`winograd_output_tiles`,
  :func:`winograd_gradient_tiles`: the Winograd transforms (:mod:`.winograd`), each tile's in one
  pass over contiguous runs of (image, channel) instead of NumPy's eight passes over the chunk;
* :func:`direct_conv`: a stride-1 convolution computed directly, without im2col columns
  (:mod:`.conv_direct`): each filter tap's input is one contiguous run of a padded image, and four
  filters' outputs are summed from three runs at a time, the multiply-adds fused;
* :func:`direct_weight_grads`: the weight and bias gradients of such a layer the same way, each
  a dot product of the upstream gradient with a tap's run, twelve at a time;
* :func:`channel_moments`, :func:`scale_shift_relu`, :func:`gated_sums`,
  :func:`gated_input_grad`: the fused spatial batchnorm + ReLU (:mod:`.batchnorm_relu`), two
  passes each way where NumPy makes a dozen.

What each saved, measured when it was written, is in benchmarks/README.md ("Design measurements").

The kernels are grouped by family, one module each: :mod:`.pool`, :mod:`.col2im`,
:mod:`.winograd_tiles`, :mod:`.direct`, :mod:`.batchnorm`; :mod:`.registry` is the table of them
all, which compiles each on first use and drives :func:`warm_up`.

They are used when Numba (a dependency of layerwise) can be imported. Without Numba, or with
``LAYERWISE_NO_NUMBA=1``, :data:`available` is False and nothing here runs; with it, Numba is
imported and each kernel compiled (or loaded from its on-disk cache) on first use: about a second
and 100+ MB the first time in a process (:func:`warm_up` pays it up front), milliseconds for each
further kernel or dtype.

Branches that depend on the data (which element of a window is largest, whether a ReLU is open)
are written as selects or bitwise masks, in loops of their own where LLVM would otherwise turn
them back into branches: a branch the predictor gets wrong half the time costs more than the work.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from . import registry
from .batchnorm import channel_moments, gated_input_grad, gated_sums, scale_shift_relu
from .col2im import col2im_compact, col2im_wide
from .direct import direct_conv, direct_weight_grads
from .pool import pool_2x2_code, scatter_2x2, scatter_add
from .winograd_tiles import to_pixel_major, winograd_gradient_tiles, winograd_input_tiles, winograd_output_tiles

__all__ = [
    "available",
    "channel_moments",
    "gated_input_grad",
    "gated_sums",
    "scale_shift_relu",
    "col2im_compact",
    "col2im_wide",
    "direct_conv",
    "direct_weight_grads",
    "loaded",
    "numba_problem",
    "pool_2x2_code",
    "scatter_2x2",
    "scatter_add",
    "serves",
    "serves_training",
    "to_pixel_major",
    "warm_up",
    "winograd_gradient_tiles",
    "winograd_input_tiles",
    "winograd_output_tiles",
]

# Numba is imported on the first call, not here: importing it takes ~0.3 s and ~70 MB, which
# every `import layerwise` would otherwise pay, convolutions or not.
available = (
    os.environ.get("LAYERWISE_NO_NUMBA", "").strip() in ("", "0") and importlib.util.find_spec("numba") is not None
)


def numba_problem() -> str | None:
    """Why the compiled kernels will not run in this process, or None when they will.

    Imports Numba (~0.3 s) to find out. Where that import fails, :data:`available` becomes False,
    so call this before any layer has run (the command line does, once, at start-up).
    """
    global available
    if os.environ.get("LAYERWISE_NO_NUMBA", "").strip() not in ("", "0"):
        return "LAYERWISE_NO_NUMBA is set"
    if not available:
        return "Numba is not installed (pip install numba)"
    try:
        import numba  # noqa: F401
    except Exception as error:  # a broken install fails in many ways, ImportError among them
        available = False
        return f"Numba cannot be imported ({type(error).__name__}: {error})"
    return None


def serves(dtype) -> bool:
    """Whether the kernels run for arrays of ``dtype``: Numba is there (:data:`available`) and
    ``dtype`` is float32 or float64 in this machine's byte order. Numba compiles neither float16,
    longdouble nor a swapped byte order; those arrays take the NumPy path."""
    dtype = np.dtype(dtype)
    return available and dtype.char in "fd" and dtype.isnative


def serves_training(dtype) -> bool:
    """:func:`serves` for float32, the dtype models train in, alone. The passes that repay loading
    Numba only at training sizes ask this, so a float64 gradient check or notebook cell never
    loads it for them: the choice depends on the dtype, never on what ran before."""
    return np.dtype(dtype) == np.float32 and serves(dtype)


def loaded() -> bool:
    """Whether Numba has been loaded in this process (a kernel made): from then on a kernel's
    first use costs milliseconds, not the ~1 s of loading Numba. For tests and diagnostics: no
    layer chooses its path by it."""
    return bool(registry.compiled)


def warm_up(dtype=np.float32) -> None:
    """Load Numba and compile (or load from the on-disk cache) every kernel of
    :data:`.registry.KERNELS` for ``dtype`` now, on its tiny example arguments, rather than in the
    first training step: about a second and 100+ MB of resident memory (LLVM) the first time in a
    process. Does nothing without Numba."""
    if not available:
        return
    dtype = np.dtype(dtype)
    for kernel in registry.KERNELS:
        for arguments in kernel.examples(dtype):
            kernel(*arguments)
