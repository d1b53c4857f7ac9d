"""Running the chunks of a layer on several threads, with BLAS kept to one thread meanwhile.

The fast convolutions process a batch a few images at a time; a chunk is an im2col copy (or a
Winograd transform), a matrix product small enough to stay in cache, and a copy out. BLAS alone
parallelises only the product, and poorly at these sizes, while NumPy's copies and elementwise
passes run on one core. Giving whole chunks to different threads (NumPy releases the GIL in all
of them) and holding BLAS to one thread while they run keeps every core on its own chunk, which
is faster than one chunk at a time with BLAS's threads.

Each chunk writes only its own part of the outputs and its own partial sums, which the caller
adds up in chunk order afterwards, and its products run on one BLAS thread even when there is one
chunk thread, so the results are the same to the bit whatever the number of threads (the
large affine products that :func:`.affine.matmul` splits inside :func:`products_on_layer_threads`
aside: like BLAS's own threads, the number of parts changes their last bits). Scratch
arrays (:mod:`.scratch`) are per thread, so chunks in different threads never share them. The BLAS
limit is process-wide (BLAS libraries have no other): a product that another Python thread runs
while a layer's chunks run gets one BLAS thread too.

The number of threads is :func:`set_num_threads`'s, else the ``LAYERWISE_NUM_THREADS``
environment variable's, else as many as the BLAS library uses (so ``OPENBLAS_NUM_THREADS=1`` makes
everything single-threaded), at most the CPUs this process may run on.
"""

from __future__ import annotations

import contextlib
import functools
import numbers
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_state = threading.local()  # .inside: running chunks for a parallel call; .holding: in one_blas_thread
_lock = threading.Lock()  # held while a parallel call runs; a concurrent call runs its chunks alone
_requested: int | None = None  # set_num_threads()
_default: int | None = None  # worked out on first use: reading it costs as much as a small product
_executor: ThreadPoolExecutor | None = None
_executor_size = 0
_blas = None  # threadpoolctl's controller of the BLAS libraries NumPy loaded
_hold_lock = threading.Lock()
_holders = 0  # Python threads inside one_blas_thread
_held_from: list[int] = []  # each BLAS library's threads before the hold set them to one


def set_num_threads(threads: int | None) -> None:
    """Use ``threads`` threads for the fast layers from now on; None restores the default.

    The default is the ``LAYERWISE_NUM_THREADS`` environment variable, else the number of threads
    the BLAS library uses, at most the CPUs this process may run on.
    """
    global _requested, _default
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
            raise ValueError(f"set_num_threads: threads must be an int >= 1 or None, got {threads!r}")
        threads = int(threads)  # numpy integers too
    _requested, _default = threads, None


def get_num_threads() -> int:
    """The number of threads the fast layers use (see :func:`set_num_threads`)."""
    global _default
    if _requested is not None:
        return _requested
    if _default is None:
        _default = _default_threads()
    return _default


def _default_threads() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    setting = os.environ.get("LAYERWISE_NUM_THREADS", "").strip()
    if setting:
        try:
            threads = int(setting)
        except ValueError:
            raise ValueError(f"LAYERWISE_NUM_THREADS must be an int >= 1, got {setting!r}") from None
        if threads < 1:
            raise ValueError(f"LAYERWISE_NUM_THREADS must be an int >= 1, got {setting!r}")
        return threads
    return max(1, min(cpus, _blas_threads()))


def _blas_controller():
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController().select(user_api="blas")
    return _blas


def _blas_threads() -> int:
    """The threads NumPy's BLAS uses (1 if it cannot be told)."""
    counts = [lib.num_threads for lib in _blas_controller().lib_controllers]
    return max(counts, default=1)


def for_each_chunk(chunks: Sequence[tuple[int, int]], work: Callable[[int, int, int], None]) -> None:
    """Call ``work(i, n0, m)`` for each chunk ``chunks[i] = (n0, m)``, on up to
    :func:`get_num_threads` threads, and return when all have finished.

    ``work`` must only write outputs that belong to its chunk. While the chunks run, BLAS uses
    one thread, whatever the number of threads here, so each chunk's products are the same BLAS
    calls, with the same bits, on any number of threads. A call made while another is running
    (from another thread, or from inside a chunk) runs its chunks in the calling thread. An
    exception in any chunk is raised here, once the others have finished.
    """
    if getattr(_state, "inside", False):  # BLAS is held to one thread already
        for i, (n0, m) in enumerate(chunks):
            work(i, n0, m)
        return
    threads = min(get_num_threads(), len(chunks))
    parallel = threads > 1 and _lock.acquire(blocking=False)
    try:
        with one_blas_thread():
            if parallel:
                _run_on_threads(chunks, work, threads)
            else:
                for i, (n0, m) in enumerate(chunks):
                    work(i, n0, m)
    finally:
        if parallel:
            _lock.release()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Hold BLAS to one thread for the duration; nested uses cost nothing.

    :func:`for_each_chunk` holds it while its chunks run. A layer whose own products run between
    its chunked parts holds it over the whole call too: a product on several BLAS threads leaves
    OpenBLAS's idle threads spinning for a while, on the cores the next chunks need.

    The limit is process-wide (a BLAS library has one thread count), so it is counted
    process-wide: the first holder sets it, the last to leave restores what was there, whichever
    Python threads they are. (threadpoolctl's own ``limit`` is per caller: two Python threads
    whose holds overlap would leave BLAS at one thread for good.)
    """
    global _holders, _held_from
    if getattr(_state, "holding", False):
        yield
        return
    libraries = _blas_controller().lib_controllers
    with _hold_lock:
        if _holders == 0:
            _held_from = [library.get_num_threads() for library in libraries]
            for library in libraries:
                _set_threads(library, 1)
        _holders += 1
    _state.holding = True
    try:
        yield
    finally:
        _state.holding = False
        with _hold_lock:
            _holders -= 1
            if _holders == 0:
                for library, threads in zip(libraries, _held_from):
                    _set_threads(library, threads)


def _set_threads(library, threads: int) -> None:
    """Set a threadpoolctl library controller's thread count from whichever thread this is."""
    # threadpoolctl >= 3.8 lets only one "controlling" Python thread set OpenBLAS's threads,
    # silently ignoring the others; the hold is counted under a lock, so any thread may set it.
    clear = getattr(library, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
    library.set_num_threads(threads)


def holds_one_blas_thread(function: Callable) -> Callable:
    """Decorator: ``function`` runs under :func:`one_blas_thread`."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with one_blas_thread():
            return function(*args, **kwargs)

    return wrapper


def _run_on_threads(chunks: Sequence[tuple[int, int]], work, threads: int) -> None:
    """The chunks on ``threads`` threads, the calling thread one of them; each takes the next
    chunk not yet taken."""
    pending = iter(range(len(chunks)))
    take = threading.Lock()

    def run() -> None:
        _state.inside = True
        try:
            while True:
                with take:
                    i = next(pending, None)
                if i is None:
                    return
                work(i, *chunks[i])
        finally:
            _state.inside = False

    futures = [_pool(threads - 1).submit(run) for _ in range(threads - 1)]
    try:
        run()
    finally:
        for future in futures:
            future.exception()  # wait for all
    for future in futures:
        future.result()


def _pool(workers: int) -> ThreadPoolExecutor:
    """The shared executor, grown to at least ``workers`` threads."""
    global _executor, _executor_size
    if _executor is None or _executor_size < workers:
        if _executor is not None:
            _executor.shutdown(wait=False)
        _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="layerwise")
        _executor_size = workers
    return _executor


@contextlib.contextmanager
def products_on_layer_threads() -> Iterator[None]:
    """Within this block (in this Python thread), the affine layer's :func:`.affine.matmul` splits
    large products across the layers' threads, BLAS at one thread, instead of leaving them to
    BLAS's own threads.

    For networks whose convolutions run on the layers' threads: once BLAS has run on several
    threads, its idle threads keep spinning and slow the convolutions' chunks, while a network of
    affine layers alone is faster on BLAS's threads. The choice is the caller's, for the duration
    of the call: what ran earlier in the process never changes how a product is computed.
    """
    previous = getattr(_state, "split_products", False)
    _state.split_products = True
    try:
        yield
    finally:
        _state.split_products = previous


def splits_products() -> bool:
    """Whether large products may be split across the layers' threads here: inside
    :func:`products_on_layer_threads`, with more than one thread. (Which products, and into how
    many parts, is the affine layer's policy, :func:`.affine.matmul`.)"""
    return getattr(_state, "split_products", False) and get_num_threads() > 1


def split_outer(a: np.ndarray, b: np.ndarray, n_parts: int, by_rows: bool) -> np.ndarray:
    """``a @ b`` for 2-d arrays, the rows of the result (or its columns, without ``by_rows``) in
    :func:`even_parts` run on :func:`for_each_chunk`'s threads. BLAS rounds a part of the rows or
    columns as it rounds them in the whole product only up to the last bits."""
    rows, cols = a.shape[0], b.shape[1]
    out = np.empty((rows, cols), dtype=np.result_type(a, b))

    def work(_: int, start: int, count: int) -> None:
        part = slice(start, start + count)
        if by_rows:
            np.matmul(a[part], b, out=out[part])
        else:
            np.matmul(a, b[:, part], out=out[:, part])

    for_each_chunk(even_parts(rows if by_rows else cols, n_parts), work)
    return out


def split_inner(a: np.ndarray, b: np.ndarray, n_parts: int) -> np.ndarray:
    """``a @ b`` as the sum, in order, of the products of :func:`even_parts` of the inner
    dimension, run on :func:`for_each_chunk`'s threads (a sum of parts rounds differently from
    one product)."""
    parts = even_parts(a.shape[1], n_parts)
    partial = np.empty((len(parts), a.shape[0], b.shape[1]), dtype=np.result_type(a, b))

    def work(i: int, start: int, count: int) -> None:
        np.matmul(a[:, start : start + count], b[start : start + count], out=partial[i])

    for_each_chunk(parts, work)
    out = partial[0].copy()
    for part in partial[1:]:
        out += part
    return out


def chunks_of(total_items: int, bytes_per_item: int, chunk_bytes: int) -> list[tuple[int, int]]:
    """``(start, count)`` of runs of ``max(1, chunk_bytes // bytes_per_item)`` items covering
    ``range(total_items)`` in order (the last run shorter): a batch cut into chunks of about
    ``chunk_bytes`` each, for :func:`for_each_chunk`."""
    per_chunk = max(1, chunk_bytes // max(1, bytes_per_item))
    return [(start, min(per_chunk, total_items - start)) for start in range(0, total_items, per_chunk)]


def even_parts(size: int, n_parts: int) -> list[tuple[int, int]]:
    """``(start, count)`` of ``min(n_parts, size)`` runs covering ``range(size)``, in order, whose
    lengths differ by one at most (the longer first): 50 images in 8 parts are 7, 7, 6, ..., 6,
    which two threads share 25 / 25, where runs of ceil(50 / 8) = 7 (7 x 7 and 1) would share
    28 / 22."""
    n_parts = max(1, min(n_parts, size))
    base, longer = divmod(size, n_parts)
    starts = [k * base + min(k, longer) for k in range(n_parts + 1)]
    return [(starts[k], starts[k + 1] - starts[k]) for k in range(n_parts) if starts[k + 1] > starts[k]]
