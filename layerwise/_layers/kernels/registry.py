"""The table of compiled kernels: each is a plain Python function, compiled by Numba on its first
call (or loaded from Numba's on-disk cache), once per process, and listed with the tiny arguments
that :func:`..warm_up` compiles it for.

Numba is imported only when a kernel first runs: importing layerwise never imports it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable

import numpy as np

compiled: dict[str, Callable] = {}  # a kernel's name -> its Numba dispatcher, once made
_compiling = threading.Lock()
KERNELS: list[Kernel] = []  # every kernel, in the order the families define them


class Kernel:
    """``body`` compiled by Numba with ``nogil=True, cache=True`` and the LLVM ``fastmath`` flags
    given, on the first call; calling the kernel calls the compiled code. ``"contract"`` lets
    ``a * b + c`` become one fused multiply-add (one rounding instead of two), ``"reassoc"`` lets a
    running sum be split into vector lanes (another order of the same additions, fixed by the
    compiled code, so the same bits on every call). ``examples(dtype)`` gives the argument tuples
    :func:`..warm_up` compiles it for (none where the layers never hand it that dtype)."""

    def __init__(self, body: Callable, fastmath: frozenset, examples: Callable[[np.dtype], Iterable[tuple]]):
        functools.update_wrapper(self, body)
        self.name = body.__name__
        self.body = body
        self.fastmath = fastmath
        self.examples = examples

    def __call__(self, *args):
        dispatcher = compiled.get(self.name)
        if dispatcher is None:
            dispatcher = self._compile()
        return dispatcher(*args)

    def _compile(self) -> Callable:
        with _compiling:  # chunks on several threads may arrive here at once
            if self.name not in compiled:
                from numba import njit

                flags = set(self.fastmath) or False
                compiled[self.name] = njit(nogil=True, cache=True, fastmath=flags)(self.body)
            return compiled[self.name]


def kernel(examples: Callable[[np.dtype], Iterable[tuple]], fastmath: Iterable[str] = ()) -> Callable[[Callable], Kernel]:
    """Decorator: the function becomes a :class:`Kernel`, listed in :data:`KERNELS`."""

    def make(body: Callable) -> Kernel:
        made = Kernel(body, frozenset(fastmath), examples)
        KERNELS.append(made)
        return made

    return make
