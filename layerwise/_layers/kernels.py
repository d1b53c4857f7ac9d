"""Optional compiled kernels (Numba) for the passes NumPy does slowest in the fast layers.

Each replaces a pass that NumPy makes as many small, strided calls, each taking and releasing the
GIL, or as a data-dependent scatter; the kernel makes it in one pass without the GIL, on the
layers' threads, and gives the NumPy path's results to the bit (the tests compare them), except
:func:`direct_conv` and :func:`direct_weight_grads`, which replace whole im2col products and sum
in their own order (the tests compare them with im2col's results up to rounding):

* :func:`pool_2x2_code`: the fused 2x2 max pool of a convolution's output chunk (bias added) with
  each window's first-maximum offset (:mod:`.conv_pool`): 70 us against NumPy's dozen passes'
  450 us for a group of 12 ThreeLayerConvNet images (32 filters, 32x32);
* :func:`scatter_2x2`: its backward, the ReLU-gated gradient written through those offsets: 250 us
  against 350 us;
* :func:`scatter_add`: the standalone max pool's backward scatter through its flat indices
  (:mod:`.pool_fast`): 0.36 ms against 0.55 ms (50 images, 32 channels, 32x32, two threads); used
  only once Numba is loaded (:func:`loaded`), as it alone does not repay the load;
* :func:`col2im_wide`: the convolution's column gradients summed back onto the pixels, wide column
  layout (:mod:`.conv_fast`), one image channel at a time in L1: 0.045 ms against NumPy's 0.22 ms
  for a chunk of 3 images of 16 channels 32x32;
* :func:`col2im_compact`: the same for the compact layout (strided layers), into the padded
  image's phase planes, where every addition is a contiguous run: 0.46 ms against NumPy's
  0.79 ms for a chunk of 7 images of a 32->64 channel stride-2 layer (float32), 0.22 against
  0.49 ms for 37 images of the notebook's (float64);
* :func:`to_pixel_major`, :func:`winograd_input_tiles`, :func:`winograd_output_tiles`,
  :func:`winograd_gradient_tiles`: the Winograd transforms (:mod:`.winograd`), each tile's in one
  pass over contiguous runs of (image, channel) instead of NumPy's eight passes over the whole
  chunk each way: the forward of a 32->32 channel 16x16 convolution (batch 128) in 0.70x the time
  on one thread and 0.53x on two, 64->64 16x16 in 0.74x and 0.69x; their backward passes (dx is a
  Winograd forward) 0.74-0.91x, the weight gradients' transform of dout 0.10 ms against 0.19 ms
  a chunk at 64->64 16x16;
* :func:`direct_conv`: a stride-1 convolution computed directly, without im2col columns
  (:mod:`.conv_fast`): each filter tap's input is one contiguous run of a padded image, and four
  filters' outputs are summed from three runs at a time, the multiply-adds fused. Against the
  im2col product (columns, product, copy out; medians of 7 alternations, float32, ms, one thread /
  two): 3->16 channels 32x32 batch 128 2.57 vs 3.39 / 1.55 vs 2.41; 16->16 32x32 7.42 vs 11.74 /
  5.06 vs 7.91; ThreeLayerConvNet's 7x7 3->32 (batch 50) 7.35 vs 8.49 / 4.39 vs 5.20; 16->32
  32x32 17.8 vs 18.4 / 11.0 vs 13.1;
* :func:`direct_weight_grads`: the weight and bias gradients of such a layer the same way, each
  a dot product of the upstream gradient with a tap's run, twelve at a time: against the im2col
  columns and products (``conv_backward_fast_weights``, medians of 5 alternations, ms, one
  thread / two): 3->16 32x32 2.28 vs 5.12 / 1.65 vs 6.53; 16->16 32x32 7.72 vs 13.18 / 4.62 vs
  9.37; the 7x7 3->32 6.53 vs 9.18 / 3.47 vs 5.49. With dx as a direct convolution of the
  upstream gradient, the whole backward pass of 3->16 32x32 took 0.60x / 0.43x the time, 16->16
  0.61x / 0.62x.

They are used when Numba is installed (``pip install 'layerwise[fast]'``). Without Numba, or with
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
import math
import os
import threading

import numpy as np

# Numba is imported on the first call, not here: importing it takes ~0.3 s and ~70 MB, which
# every `import layerwise` would otherwise pay, convolutions or not.
available = (
    os.environ.get("LAYERWISE_NO_NUMBA", "").strip() in ("", "0") and importlib.util.find_spec("numba") is not None
)
_compiled: dict = {}
_compiling = threading.Lock()


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
    return bool(_compiled)


def pool_2x2_code(grid, bias, pooled, code) -> None:
    """:func:`_pool_2x2_code`, compiled by Numba on the first call (only when :data:`available`);
    ``grid`` (F, m, H, W), ``pooled`` and ``code`` (m, F, H_out, W_out)."""
    _kernel(_pool_2x2_code)(grid, bias, pooled, code)


def scatter_2x2(code, grad, relu_input, target) -> None:
    """:func:`_scatter_2x2`, compiled by Numba on the first call (only when :data:`available`);
    ``code``, ``grad``, ``relu_input`` (m, F, H_out, W_out), ``target`` (F, m, H, W); ``grad`` and
    ``target`` share a float dtype."""
    bits = np.dtype(f"i{grad.itemsize}")
    _kernel(_scatter_2x2)(code, grad.view(bits), relu_input, target.view(bits))


def scatter_add(index, grad, target, first) -> int:
    """:func:`_scatter_add`, compiled by Numba on the first call (only when :data:`available`);
    returns how many indices fell outside ``target`` (skipped)."""
    return _kernel(_scatter_add)(index, grad, target, first)


def col2im_wide(dcols, pitch, pad, dx) -> None:
    """:func:`_col2im_wide`, compiled by Numba on the first call (only when :data:`available`)."""
    _kernel(_col2im_wide)(dcols, pitch, pad, dx)


def col2im_compact(dcols, stride, pad, dx) -> None:
    """:func:`_col2im_compact`, compiled by Numba on the first call (only when :data:`available`)."""
    _kernel(_col2im_compact)(dcols, stride, pad, dx)


def to_pixel_major(x, target) -> None:
    """:func:`_to_pixel_major`, compiled by Numba on the first call (only when :data:`available`)."""
    _kernel(_to_pixel_major)(x, target)


def winograd_input_tiles(padded, V) -> None:
    """:func:`_winograd_input_tiles`, compiled by Numba on the first call (only when :data:`available`)."""
    _kernel(_winograd_input_tiles)(padded, V)


def winograd_output_tiles(prod, bias, out) -> None:
    """:func:`_winograd_output_tiles`, compiled by Numba on the first call (only when
    :data:`available`); ``bias`` (F,) or None for none."""
    if bias is None:  # any (F,) array of the dtype stands in, unread: one compiled signature
        _kernel(_winograd_output_tiles)(prod, prod[0, 0, 0, 0, 0], False, out)
    else:
        _kernel(_winograd_output_tiles)(prod, bias, True, out)


def winograd_gradient_tiles(padded, dM) -> None:
    """:func:`_winograd_gradient_tiles`, compiled by Numba on the first call (only when :data:`available`)."""
    _kernel(_winograd_gradient_tiles)(padded, dM)


def direct_conv(padded, w4, taps, bias, acc, out) -> None:
    """:func:`_direct_conv`, compiled by Numba on the first call (only when :data:`available`),
    multiplications and additions fused (FMA). ``out`` (m, F, H_out, W_out) gets the bias
    ``bias`` (F,) added; with ``bias`` None, ``out`` is (F, m, H_out, W_out), filters first as
    :func:`pool_2x2_code` reads it, without the bias."""
    if bias is None:  # any (F,) array of the dtype stands in, unread: one compiled signature
        _kernel(_direct_conv, {"contract"})(padded, w4, taps, w4[0], False, acc, out)
    else:
        _kernel(_direct_conv, {"contract"})(padded, w4, taps, bias, True, acc, out)


def direct_weight_grads(padded, dgrid, taps, dw, db) -> None:
    """:func:`_direct_weight_grads`, compiled by Numba on the first call (only when
    :data:`available`), multiply-adds fused and each dot product summed in vector lanes."""
    _kernel(_direct_weight_grads, {"contract", "reassoc"})(padded, dgrid, taps, dw, db)


def warm_up(dtype=np.float32) -> None:
    """Load Numba and compile (or load from the on-disk cache) the kernels for ``dtype`` now, on
    tiny arrays, rather than in the first training step: about a second and 100+ MB of resident
    memory (LLVM) the first time in a process. Does nothing without Numba."""
    if not available:
        return
    dtype = np.dtype(dtype)
    tiles = np.zeros((1, 1, 1, 1), dtype=dtype)
    grid = np.zeros((1, 1, 2, 2), dtype=dtype)
    code = np.zeros((1, 1, 1, 1), dtype=np.uint8)
    pool_2x2_code(grid, np.zeros(1, dtype=dtype), tiles, code)
    scatter_2x2(code, tiles, tiles, np.zeros((1, 1, 2, 3), dtype=dtype)[..., :2])  # a strided target, as in use
    scatter_add(np.zeros(1, dtype=np.intp), tiles.reshape(1), grid.reshape(4), 0)
    col2im_wide(np.zeros((1, 1, 1, 1, 1), dtype=dtype), 1, 0, tiles)
    col2im_compact(np.zeros((1, 1, 1, 1, 1, 1), dtype=dtype), 2, 0, tiles)
    to_pixel_major(grid, np.zeros((2, 2, 1, 1), dtype=dtype))
    winograd_input_tiles(np.zeros((4, 4, 1), dtype=dtype), np.zeros((4, 4, 1, 1, 1), dtype=dtype))
    winograd_gradient_tiles(np.zeros((2, 2, 1), dtype=dtype), np.zeros((4, 4, 1, 1, 1), dtype=dtype))
    for bias in (None, np.zeros(1, dtype=dtype)):
        winograd_output_tiles(np.zeros((4, 4, 1, 1, 1, 1), dtype=dtype), bias, grid)
    if dtype == np.float32:  # the only dtype the plan's direct convolutions hand it
        taps = np.zeros(1, dtype=np.intp)
        taps.flags.writeable = False  # as conv_fast caches them: a read-only array is another signature
        padded, acc = np.zeros((1, 5), dtype=dtype), np.zeros((4, 4), dtype=dtype)
        for bias in (None, np.zeros(1, dtype=dtype)):
            direct_conv(padded, np.zeros((4, 1), dtype=dtype), taps, bias, acc, np.zeros_like(grid))
        direct_weight_grads(padded, np.zeros((1, 4, 2, 2), dtype=dtype), taps, np.zeros((4, 1), dtype=dtype),
                            np.zeros(4, dtype=dtype))


def _kernel(function, fastmath=frozenset()):
    """``function`` compiled by Numba, once, with the LLVM ``fastmath`` flags given: ``"contract"``
    lets ``a * b + c`` become one fused multiply-add (one rounding instead of two), ``"reassoc"``
    lets a running sum be split into vector lanes (another order of the same additions, fixed by
    the compiled code, so the same bits on every call)."""
    kernel = _compiled.get(function.__name__)
    if kernel is None:
        with _compiling:  # chunks on several threads may arrive here at once
            if function.__name__ not in _compiled:
                from numba import njit

                flags = set(fastmath) or False
                _compiled[function.__name__] = njit(nogil=True, cache=True, fastmath=flags)(function)
        kernel = _compiled[function.__name__]
    return kernel


def _pool_2x2_code(grid, bias, pooled, code):  # pragma: no cover (compiled)
    """grid (F, m, H, W) (W may be a row pitch wider than 2 * W_out), bias (F,); writes pooled
    (m, F, H_out, W_out), images first as the layer's output has them, = each 2x2 window's maximum
    of grid + bias, and code (same shape, uint8) = the row-major offset of its first maximum (of
    its first NaN if it holds one).

    Written as selects rather than branches: which element of a window is largest is a coin toss
    the branch predictor loses (330 us -> 70 us for a group of 12 ThreeLayerConvNet images)."""
    m, F, H_out, W_out = pooled.shape
    for f in range(F):
        b = bias[f]
        for n in range(m):
            for y in range(H_out):
                top, bottom = grid[f, n, 2 * y], grid[f, n, 2 * y + 1]
                pooled_row, code_row = pooled[n, f, y], code[n, f, y]
                for x in range(W_out):
                    v0, v1 = top[2 * x] + b, top[2 * x + 1] + b
                    v2, v3 = bottom[2 * x] + b, bottom[2 * x + 1] + b
                    later = v1 > v0
                    best = v1 if later else v0
                    k = np.uint8(1) if later else np.uint8(0)
                    later = v2 > best
                    best = v2 if later else best
                    k = np.uint8(2) if later else k
                    later = v3 > best
                    best = v3 if later else best
                    k = np.uint8(3) if later else k
                    if math.isnan(v0 + v1 + v2 + v3):  # a NaN (or inf - inf), rare: the first NaN
                        if math.isnan(v0):
                            best, k = v0, np.uint8(0)
                        elif math.isnan(v1):
                            best, k = v1, np.uint8(1)
                        elif math.isnan(v2):
                            best, k = v2, np.uint8(2)
                        elif math.isnan(v3):
                            best, k = v3, np.uint8(3)
                    pooled_row[x] = best
                    code_row[x] = k


def _scatter_2x2(code, grad_bits, relu_input, target_bits):  # pragma: no cover (compiled)
    """target (F, m, H, W): zeros, then for each 2x2 window (stride 2) ``grad`` at its offset
    ``code`` where ``relu_input > 0`` (the ReLU's gate). code, grad, relu_input (m, F, H_out,
    W_out), images first as the layer's arrays have them: slices of those are contiguous, which
    halves the time against transposed views (2.0 -> 1.0 ms a ThreeLayerConvNet backward), whose
    generic strides keep the loops from vectorising. ``grad`` and ``target`` come as integer views
    of their bits, so that the gate is a bitwise AND with all ones or all zeros (exact for inf and
    NaN, as :func:`.masking.select`), in a loop of its own that compiles without branches: a gate
    open for about half the windows at random is what a branch predictor handles worst (510 us ->
    250 us for 12 images, 32 filters)."""
    m, F, H_out, W_out = code.shape
    H, W = target_bits.shape[2], target_bits.shape[3]
    gated = np.empty(W_out, dtype=grad_bits.dtype)
    for f in range(F):
        for n in range(m):
            for y in range(H):
                for x in range(W):
                    target_bits[f, n, y, x] = 0
            for y in range(H_out):
                for x in range(W_out):
                    gated[x] = grad_bits[n, f, y, x] & -np.int64(relu_input[n, f, y, x] > 0)
                for x in range(W_out):
                    k = code[n, f, y, x]
                    if k < 4:  # as NumPy's masked copies, an offset no window has writes nothing
                        target_bits[f, n, 2 * y + (k >> 1), 2 * x + (k & 1)] = gated[x]


def _scatter_add(index, grad, target, first):  # pragma: no cover (compiled)
    """target (1-d): zeros, then ``target[index[i] - first] += grad[i]`` for i in order, as
    ``np.add.at`` adds (0 + g is g + 0.0: -0.0 becomes 0.0, as in the naive layer). index (intp)
    and grad (1-d, the same length). Indices that fall outside target are skipped and counted (the
    count is returned): compiled code has no bounds checks, and the indices come from a cache a
    caller could have built or changed by hand."""
    size = target.shape[0]
    for j in range(size):
        target[j] = 0
    outside = 0
    for i in range(index.shape[0]):
        t = index[i] - first
        if t < 0 or t >= size:
            outside += 1
        else:
            target[t] += grad[i]
    return outside


def _col2im_wide(dcols, pitch, pad, dx):  # pragma: no cover (compiled)
    """dx (m, C, H, W) = the column gradients dcols (C, HH, WW, m, H_out * pitch) of a stride-1
    convolution in :class:`.conv_im2col.Columns`'s wide layout, summed back onto the pixels they came
    from, as the NumPy path sums them: each run ``dcols[c, i, j, n]`` added, in (i, j) order, onto
    a zeroed padded image at ``i * pitch + j``, whose interior is then ``dx[n, c]``. One image
    channel at a time, so the padded image stays in L1 and every addition is a long contiguous run
    (a gather of each pixel's terms, row by row, took 2-5x as long: 9 runs of W_out per output row
    rather than 9 of H_out * pitch per channel). Runs that reach past the channel's padded image
    (into the next channel's, in the NumPy path's shared buffer) carry only dropped grid columns,
    zeros, which change no sum that starts from +0.0."""
    C, HH, WW, m, Q = dcols.shape
    H, W = dx.shape[2], dx.shape[3]
    padded = np.empty((H + 2 * pad) * pitch + WW, dtype=dx.dtype)
    for n in range(m):
        for c in range(C):
            padded[:] = 0
            for i in range(HH):
                for j in range(WW):
                    # Slices, not indices: a loop over them has no negative-index check, so it vectorises.
                    source, target = dcols[c, i, j, n], padded[i * pitch + j : i * pitch + j + Q]
                    for t in range(Q):
                        target[t] += source[t]
            for y in range(H):
                start = (y + pad) * pitch + pad
                row, out = padded[start : start + W], dx[n, c, y]
                for x in range(W):
                    out[x] = row[x]


def _col2im_compact(dcols, stride, pad, dx):  # pragma: no cover (compiled)
    """dx (m, C, H, W) = the column gradients dcols (C, HH, WW, m, H_out, W_out) of a convolution
    in :class:`.conv_im2col.Columns`'s compact layout (any stride s), summed back onto the pixels they
    came from, as the NumPy path sums them: onto zeros, each offset (i, j) in turn. One image
    channel at a time, into its padded image split into s x s phase planes (plane (a, b) holds the
    padded pixels (s * r + a, s * q + b)): offset (i, j) of output row y lands on the contiguous
    run ``[j // s, j // s + W_out)`` of row ``y + i // s`` of plane (i % s, j % s), where NumPy
    adds a strided slice (1.6-2.2x as long). Each pixel's terms are added in the same order, so
    the sums are NumPy's to the bit; terms landing on the padding are dropped."""
    C, HH, WW, m, H_out, W_out = dcols.shape
    H, W = dx.shape[2], dx.shape[3]
    s = stride
    rows = max(H_out + (HH - 1) // s, (H + pad - 1) // s + 1)
    cols = max(W_out + (WW - 1) // s, (W + pad - 1) // s + 1)
    planes = np.empty((s, s, rows, cols), dtype=dx.dtype)
    for n in range(m):
        for c in range(C):
            planes[:] = 0
            for i in range(HH):
                for j in range(WW):
                    plane, r0, q0 = planes[i % s, j % s], i // s, j // s
                    for y in range(H_out):
                        # Slices, not indices: a loop over them has no negative-index check, so it vectorises.
                        source, target = dcols[c, i, j, n, y], plane[r0 + y, q0 : q0 + W_out]
                        for x in range(W_out):
                            target[x] += source[x]
            for a in range(s):
                for b in range(s):
                    first = max(0, -((b - pad) // s))  # the plane's columns inside the image
                    stop = min(cols, (W - 1 + pad - b) // s + 1)
                    for r in range(rows):
                        y = s * r + a - pad
                        if 0 <= y < H:
                            plane_row, out = planes[a, b, r], dx[n, c, y]
                            for q in range(first, stop):
                                out[s * q + b - pad] = plane_row[q]


def _to_pixel_major(x, target):  # pragma: no cover (compiled)
    """target (H, W, m, C)[y, x, n, c] = x (m, C, H, W)[n, c, y, x]: the Winograd input's layout
    change, a channel run at a time (NumPy's transposed copy moves one element per inner step)."""
    m, C, H, W = x.shape
    for n in range(m):
        for y in range(H):
            for col in range(W):
                run = target[y, col, n]
                for c in range(C):
                    run[c] = x[n, c, y, col]


def _winograd_input_tiles(padded, V):  # pragma: no cover (compiled)
    """V (4, 4, tH, tW, L)[a, b, ty, tx] = (B^T d B)[a, b] of the 4x4 tile of ``padded`` (Hp, Wp, L)
    at rows and columns (2 ty, 2 tx), L = images x channels: the operations of
    :func:`.winograd._input_transform`'s NumPy passes, in their order (rows first, then columns),
    one tile at a time on runs of L."""
    tH, tW, L = V.shape[2], V.shape[3], V.shape[4]
    r = np.empty((4, 4, L), dtype=V.dtype)  # r[a, j]: row combination a at tile column j
    for ty in range(tH):
        for tx in range(tW):
            for j in range(4):
                d0, d1 = padded[2 * ty, 2 * tx + j], padded[2 * ty + 1, 2 * tx + j]
                d2, d3 = padded[2 * ty + 2, 2 * tx + j], padded[2 * ty + 3, 2 * tx + j]
                r0, r1, r2, r3 = r[0, j], r[1, j], r[2, j], r[3, j]
                for t in range(L):
                    r0[t] = d0[t] - d2[t]
                    r1[t] = d1[t] + d2[t]
                    r2[t] = d2[t] - d1[t]
                    r3[t] = d1[t] - d3[t]
            for a in range(4):
                e0, e1, e2, e3 = r[a, 0], r[a, 1], r[a, 2], r[a, 3]
                v0, v1, v2, v3 = V[a, 0, ty, tx], V[a, 1, ty, tx], V[a, 2, ty, tx], V[a, 3, ty, tx]
                for t in range(L):
                    v0[t] = e0[t] - e2[t]
                    v1[t] = e1[t] + e2[t]
                    v2[t] = e2[t] - e1[t]
                    v3[t] = e1[t] - e3[t]


def _winograd_output_tiles(prod, bias, has_bias, out):  # pragma: no cover (compiled)
    """out (m, F, H_out, W_out) = A^T M A of each tile, M = prod (4, 4, tH, tW, m, F), plus
    ``bias`` (F,) where ``has_bias``, cropped where an output size is odd: the operations of
    :func:`.winograd._winograd_chunk`'s NumPy passes, in their order, one tile at a time on runs
    of F, then its four pixels written into the images."""
    m, F, H_out, W_out = out.shape
    tH, tW = prod.shape[2], prod.shape[3]
    s = np.empty((2, 4, m, F), dtype=out.dtype)  # A^T M: s[a, column]
    y = np.empty((2, 2, m, F), dtype=out.dtype)
    for ty in range(tH):
        for tx in range(tW):
            for col in range(4):
                p0, p1, p2, p3 = prod[0, col, ty, tx], prod[1, col, ty, tx], prod[2, col, ty, tx], prod[3, col, ty, tx]
                s0, s1 = s[0, col], s[1, col]
                for n in range(m):
                    for f in range(F):
                        s0[n, f] = (p0[n, f] + p1[n, f]) + p2[n, f]
                        s1[n, f] = (p1[n, f] - p2[n, f]) - p3[n, f]
            if has_bias:  # on column 1, which both output columns add once
                for a in range(2):
                    for n in range(m):
                        for f in range(F):
                            s[a, 1, n, f] += bias[f]
            for a in range(2):
                q0, q1, q2, q3 = s[a, 0], s[a, 1], s[a, 2], s[a, 3]
                y0, y1 = y[a, 0], y[a, 1]
                for n in range(m):
                    for f in range(F):
                        y0[n, f] = (q0[n, f] + q1[n, f]) + q2[n, f]
                        y1[n, f] = (q1[n, f] - q2[n, f]) - q3[n, f]
            for a in range(2):
                row = 2 * ty + a
                if row >= H_out:
                    continue
                for c in range(2):
                    col = 2 * tx + c
                    if col >= W_out:
                        continue
                    pixel = y[a, c]
                    for n in range(m):
                        for f in range(F):
                            out[n, f, row, col] = pixel[n, f]


def _winograd_gradient_tiles(padded, dM):  # pragma: no cover (compiled)
    """dM (4, 4, tH, tW, L)[a, b, ty, tx] = (A dY A^T)[a, b] of the 2x2 tile of ``padded``
    (2 tH, 2 tW, L) at rows and columns (2 ty, 2 tx), L = images x filters: the operations of
    :func:`.winograd._output_gradient_transform`'s NumPy passes, in their order (rows first), one
    tile at a time on runs of L."""
    tH, tW, L = dM.shape[2], dM.shape[3], dM.shape[4]
    r = np.empty((4, 2, L), dtype=dM.dtype)  # r[a, j]: row combination a at tile column j
    for ty in range(tH):
        for tx in range(tW):
            for j in range(2):
                y0, y1 = padded[2 * ty, 2 * tx + j], padded[2 * ty + 1, 2 * tx + j]
                r0, r1, r2, r3 = r[0, j], r[1, j], r[2, j], r[3, j]
                for t in range(L):
                    r0[t] = y0[t]
                    r1[t] = y0[t] + y1[t]
                    r2[t] = y0[t] - y1[t]
                    r3[t] = -y1[t]
            for a in range(4):
                c0, c1 = r[a, 0], r[a, 1]
                m0, m1, m2, m3 = dM[a, 0, ty, tx], dM[a, 1, ty, tx], dM[a, 2, ty, tx], dM[a, 3, ty, tx]
                for t in range(L):
                    m0[t] = c0[t]
                    m1[t] = c0[t] + c1[t]
                    m2[t] = c0[t] - c1[t]
                    m3[t] = -c1[t]


def _direct_conv(padded, w4, taps, bias, has_bias, acc, out):  # pragma: no cover (compiled)
    """out (m, F, H_out, W_out) = the stride-1 convolution of the m zero-padded images ``padded``
    (m, C * Hp * R + WW) by the filters w4 (F4, K) (rows (c, i, j) as ``w.reshape(F, K)``; F4 >= F
    a multiple of 4, the rows past F ignored), plus bias (F,); without ``has_bias``, out is (F, m,
    H_out, W_out) and gets the convolution alone.

    Each image is in :class:`.conv_im2col.Columns`'s wide layout (see ``conv_direct._direct_padded``):
    C planes of Hp rows ``R`` wide, each row ``pad`` zeros then the ``W`` pixels, so the zeros of
    the next row pad this one on the right, then ``WW`` zeros. Output position (y, x) with filter
    offset (c, i, j) then reads ``padded[n, taps[t] + y * R + x]``, ``taps[t] = c * Hp * R + i * R +
    j``: for one tap, the whole output grid (H_out rows of R, the last R - W_out of each dropped)
    is one contiguous run. Four filters' grids, ``acc`` (4, H_out * R), are summed at once, three
    taps a pass: each pass reads three runs and adds their weighted sum into the four
    accumulators, a loop LLVM vectorises with the weights in registers. Every output element is
    the same sum in the same order whatever the chunking or the thread."""
    m = padded.shape[0]
    F4, K = w4.shape
    F = out.shape[1] if has_bias else out.shape[0]
    H_out, W_out = out.shape[2], out.shape[3]
    L = acc.shape[1]
    R = L // H_out
    K3 = K - K % 3
    for n in range(m):
        image = padded[n]
        for f0 in range(0, F4, 4):
            a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
            a0[:] = 0
            a1[:] = 0
            a2[:] = 0
            a3[:] = 0
            for t in range(0, K3, 3):
                s0 = image[taps[t] : taps[t] + L]
                s1 = image[taps[t + 1] : taps[t + 1] + L]
                s2 = image[taps[t + 2] : taps[t + 2] + L]
                p0, p1, p2 = w4[f0, t], w4[f0, t + 1], w4[f0, t + 2]
                q0, q1, q2 = w4[f0 + 1, t], w4[f0 + 1, t + 1], w4[f0 + 1, t + 2]
                r0, r1, r2 = w4[f0 + 2, t], w4[f0 + 2, t + 1], w4[f0 + 2, t + 2]
                u0, u1, u2 = w4[f0 + 3, t], w4[f0 + 3, t + 1], w4[f0 + 3, t + 2]
                for q in range(L):
                    v0, v1, v2 = s0[q], s1[q], s2[q]
                    a0[q] += p0 * v0 + p1 * v1 + p2 * v2
                    a1[q] += q0 * v0 + q1 * v1 + q2 * v2
                    a2[q] += r0 * v0 + r1 * v1 + r2 * v2
                    a3[q] += u0 * v0 + u1 * v1 + u2 * v2
            for t in range(K3, K):  # the last one or two taps
                s0 = image[taps[t] : taps[t] + L]
                p0, q0, r0, u0 = w4[f0, t], w4[f0 + 1, t], w4[f0 + 2, t], w4[f0 + 3, t]
                for q in range(L):
                    v0 = s0[q]
                    a0[q] += p0 * v0
                    a1[q] += q0 * v0
                    a2[q] += r0 * v0
                    a3[q] += u0 * v0
            for k in range(min(4, F - f0)):
                grid = acc[k]
                if has_bias:
                    b = bias[f0 + k]
                    for y in range(H_out):
                        target, source = out[n, f0 + k, y], grid[y * R : y * R + W_out]
                        for e in range(W_out):
                            target[e] = source[e] + b
                else:
                    for y in range(H_out):
                        target, source = out[f0 + k, n, y], grid[y * R : y * R + W_out]
                        for e in range(W_out):
                            target[e] = source[e]


def _direct_weight_grads(padded, dgrid, taps, dw, db):  # pragma: no cover (compiled)
    """dw (F4, K) and db (F4,) = the weight and bias gradients of the stride-1 convolution of the
    m zero-padded images ``padded`` (:func:`_direct_conv`'s layout), for the upstream gradient
    dgrid (m, F4, H_out, R): each image's in :func:`_direct_conv`'s wide output grid (rows ``R``
    wide, zeros in the last ``R - W_out`` columns of each and in the filters past F). ``dw[f, t]``
    is the dot product of ``dgrid[n, f]`` with tap t's run of the padded image (the run that made
    output f in the forward pass), summed over the images; four filters by three taps at a time,
    twelve dot products in one pass over the runs, each summed in vector lanes. The sums' order
    depends only on the shapes, not on the thread."""
    m = padded.shape[0]
    F4, K = dw.shape
    L = dgrid.shape[2] * dgrid.shape[3]
    K3 = K - K % 3
    zero = dw.dtype.type(0)
    dw[:] = 0
    db[:] = 0
    for n in range(m):
        image = padded[n]
        for f0 in range(0, F4, 4):
            d0, d1 = dgrid[n, f0].reshape(L), dgrid[n, f0 + 1].reshape(L)
            d2, d3 = dgrid[n, f0 + 2].reshape(L), dgrid[n, f0 + 3].reshape(L)
            for t in range(0, K3, 3):
                s0 = image[taps[t] : taps[t] + L]
                s1 = image[taps[t + 1] : taps[t + 1] + L]
                s2 = image[taps[t + 2] : taps[t + 2] + L]
                a00 = a01 = a02 = a10 = a11 = a12 = a20 = a21 = a22 = a30 = a31 = a32 = zero
                for q in range(L):
                    v0, v1, v2 = s0[q], s1[q], s2[q]
                    e0, e1, e2, e3 = d0[q], d1[q], d2[q], d3[q]
                    a00 += e0 * v0
                    a01 += e0 * v1
                    a02 += e0 * v2
                    a10 += e1 * v0
                    a11 += e1 * v1
                    a12 += e1 * v2
                    a20 += e2 * v0
                    a21 += e2 * v1
                    a22 += e2 * v2
                    a30 += e3 * v0
                    a31 += e3 * v1
                    a32 += e3 * v2
                dw[f0, t] += a00
                dw[f0, t + 1] += a01
                dw[f0, t + 2] += a02
                dw[f0 + 1, t] += a10
                dw[f0 + 1, t + 1] += a11
                dw[f0 + 1, t + 2] += a12
                dw[f0 + 2, t] += a20
                dw[f0 + 2, t + 1] += a21
                dw[f0 + 2, t + 2] += a22
                dw[f0 + 3, t] += a30
                dw[f0 + 3, t + 1] += a31
                dw[f0 + 3, t + 2] += a32
            for t in range(K3, K):  # the last one or two taps
                s0 = image[taps[t] : taps[t] + L]
                a0 = a1 = a2 = a3 = zero
                for q in range(L):
                    v0 = s0[q]
                    a0 += d0[q] * v0
                    a1 += d1[q] * v0
                    a2 += d2[q] * v0
                    a3 += d3[q] * v0
                dw[f0, t] += a0
                dw[f0 + 1, t] += a1
                dw[f0 + 2, t] += a2
                dw[f0 + 3, t] += a3
            b0 = b1 = b2 = b3 = zero
            for q in range(L):
                b0 += d0[q]
                b1 += d1[q]
                b2 += d2[q]
                b3 += d3[q]
            db[f0] += b0
            db[f0 + 1] += b1
            db[f0 + 2] += b2
            db[f0 + 3] += b3
