"""Per-thread scratch arrays that the fast layers reuse from one call to the next.

A training step makes the same large temporaries every time: im2col columns, padded input
chunks, column gradients, masks. Allocating them afresh each call is slow for a reason outside
NumPy: glibc serves large blocks from the heap and hands the heap's freed top back to the
kernel once it exceeds a threshold, so every step page-faults its temporaries in again, a
sizeable part of a small convolutional net's step.

A scratch array is only ever used inside the call that asked for it: it is never returned and
never put in a cache, so reusing it cannot change a result, and two forward calls never share
anything that the backward pass reads. Each thread has its own arrays, so concurrent calls do not
collide. Arrays up to :data:`_KEEP_BYTES` are kept (they are bounded by the conv layer's chunk
size, a few MB); larger requests get a fresh array every time.
"""

from __future__ import annotations

import math
import threading

import numpy as np

_KEEP_BYTES = 1 << 26  # 64 MiB: beyond this, a one-off request is not worth holding on to
_ALIGN = 64  # bytes: a cache line, and the widest SIMD register

_local = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype``, 64-byte aligned.

    The same memory is handed out again on the next call with the same ``name`` in this thread, so
    the caller must be done with it before that call (and must not return it or cache it). Names
    are ``"<module>.<purpose>"``; two arrays alive at once need two names.
    """
    dtype = np.dtype(dtype)
    arrays = _local.__dict__.setdefault("arrays", {})
    last = arrays.get(name)
    if last is not None and last.shape == shape and last.dtype == dtype:
        # The same request as last time: the same array object. A layer asks for its scratch
        # arrays once a chunk, and making a new view each time holds the GIL long enough to show
        # in a threaded step's time.
        return last
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > _KEEP_BYTES:
        return np.empty(shape, dtype=dtype)
    buffers = _local.__dict__.setdefault("buffers", {})
    raw = buffers.get(name)
    if raw is None or raw.size < nbytes + _ALIGN:
        raw = np.empty(nbytes + _ALIGN, dtype=np.uint8)
        buffers[name] = raw
    start = -raw.ctypes.data % _ALIGN
    array = raw[start : start + nbytes].view(dtype).reshape(shape)
    arrays[name] = array
    return array


def bordered(name: str, shape: tuple[int, ...], dtype: np.dtype, layout) -> np.ndarray:
    """:func:`scratch` for a padded buffer whose interior the caller overwrites on every use and
    whose border must be zero: zero-filled only when this thread's previous ``bordered`` call with
    ``name`` had another ``layout`` (any hashable that fixes which elements are the interior) or got
    other memory. Saves rewriting the whole buffer each time when the same layer runs chunk after
    chunk; ``name`` must not also be used with :func:`scratch`.
    """
    array = scratch(name, shape, dtype)
    layouts = _local.__dict__.setdefault("layouts", {})
    last = layouts.get(name)
    if last is None or last[0] is not array or last[1] != layout:  # another array object: maybe other memory
        array[...] = 0
        layouts[name] = (array, layout)
    return array
