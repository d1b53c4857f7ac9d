"""Data augmentation of training minibatches: random crops of a padded image and horizontal flips.

An augmentation is a callable ``augment(X) -> X_augmented`` on a batch ``(N, C, H, W)``; the
:class:`~layerwise.solver.Solver` applies it to every training minibatch (never to validation or
test images). One with ``get_state()``/``set_state(state)`` has its random state saved in the
Solver's checkpoints, so a resumed run draws the crops an uninterrupted one would.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from . import _validation as v

AUGMENTATIONS = ("crop-flip",)
"""The augmentations :func:`make_augmentation` builds by name (the command line's ``--augment``)."""

PAD_MODES = ("reflect", "edge", "constant")
"""How the border is filled, as :func:`numpy.pad` names it: ``reflect`` mirrors without repeating
the edge (PyTorch's ``reflect``), ``edge`` repeats it (``replicate``), ``constant`` pads zeros."""


class RandomCropFlip:
    """Pad every image by ``pad`` on each side, crop back to its size at a random offset, and
    mirror it left-right with probability 1/2.

    Parameters
    ----------
    pad : int >= 0
        Pixels added on each side; offsets are uniform in ``[0, 2 * pad]`` along each axis.
    flip : bool
        Whether to flip half of the images (each independently) horizontally.
    mode : str
        One of :data:`PAD_MODES`. ``reflect`` needs ``pad`` smaller than the image's height and width.
    seed : int >= 0 or None
        Seeds this augmentation's own ``numpy.random.Generator``; None draws from NumPy's global
        generator instead (so ``np.random.seed`` reproduces the draws).

    Calling it on ``x`` of shape ``(N, C, H, W)`` (any numeric dtype) returns a new array of the
    same shape and dtype; ``x`` is never written. Per image it draws the row offset, the column
    offset and the flip, in that order, for the whole batch at once.
    """

    def __init__(self, pad: int = 4, flip: bool = True, mode: str = "reflect", seed: int | None = None):
        owner = "RandomCropFlip"
        self.pad = v.int_value(owner, "pad", pad, minimum=0)
        if not isinstance(flip, (bool, np.bool_)):
            raise TypeError(f"{owner}: flip must be a bool, got {v.describe(flip)}")
        self.flip = bool(flip)
        if mode not in PAD_MODES:
            raise ValueError(f"{owner}: mode must be one of {list(PAD_MODES)}, got {v.describe(mode)}")
        self.mode = mode
        self.seed = None if seed is None else v.int_value(owner, "seed", seed, minimum=0)
        self._rng = None if seed is None else np.random.default_rng(self.seed)

    def __repr__(self) -> str:
        return f"RandomCropFlip(pad={self.pad}, flip={self.flip}, mode={self.mode!r}, seed={self.seed})"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The augmented batch: ``(N, C, H, W)``, the dtype of ``x``."""
        func = "RandomCropFlip"
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiu":
            raise TypeError(f"{func}: x must be a numeric numpy.ndarray, got {v.describe(x)}")
        v.check_ndim(func, "x", x, 4, "(N, C, H, W)")
        N, C, H, W = x.shape
        if self.mode == "reflect" and self.pad >= min(H, W):
            raise ValueError(f"{func}: pad must be smaller than the image's height and width to reflect, got pad={self.pad} for shape {x.shape}")
        p = self.pad
        rows = self._integers(2 * p + 1, N)[:, None] + np.arange(H)  # (N, H) rows of the padded image
        cols = self._integers(2 * p + 1, N)[:, None] + np.arange(W)  # (N, W)
        if self.flip:
            cols = np.where(self._integers(2, N).astype(bool)[:, None], cols[:, ::-1], cols)
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode=self.mode) if p else x
        batch = np.arange(N)[:, None, None, None]
        channels = np.arange(C)[None, :, None, None]
        return padded[batch, channels, rows[:, None, :, None], cols[:, None, None, :]]

    def _integers(self, high: int, size: int) -> np.ndarray:
        """``size`` integers uniform in ``[0, high)`` from this augmentation's generator."""
        if high == 1:
            return np.zeros(size, dtype=np.intp)  # nothing to draw: keeps the stream for what varies
        if self._rng is None:
            return np.random.randint(0, high, size=size)
        return self._rng.integers(0, high, size=size)

    def get_state(self) -> dict[str, Any] | None:
        """The generator's state as JSON-able data (None with ``seed=None``: NumPy's global
        generator is then the caller's to save, as the Solver does)."""
        return None if self._rng is None else copy.deepcopy(self._rng.bit_generator.state)

    def set_state(self, state: dict[str, Any] | None) -> None:
        """Restore a state :meth:`get_state` returned, so the next draws continue from there."""
        func = "RandomCropFlip.set_state"
        if self._rng is None:
            if state is not None:
                raise ValueError(f"{func}: this augmentation draws from NumPy's global generator (seed=None); state must be None, got {v.describe(state)}")
            return
        expected = type(self._rng.bit_generator).__name__
        if not isinstance(state, dict) or state.get("bit_generator") != expected:
            raise ValueError(f"{func}: state must be the dict get_state returns for a {expected} generator, got {v.describe(state)}")
        try:
            self._rng.bit_generator.state = copy.deepcopy(state)
        except (TypeError, ValueError, KeyError) as error:
            raise ValueError(f"{func}: state is not a valid {expected} state ({error})") from None


def make_augmentation(name: str | None, seed: int | None) -> RandomCropFlip | None:
    """The augmentation a name in :data:`AUGMENTATIONS` stands for (None for None), seeded with ``seed``.

    ``crop-flip``: ``RandomCropFlip(pad=4, flip=True, mode="reflect")``, the usual CIFAR-10 recipe.
    """
    if name is None:
        return None
    if name not in AUGMENTATIONS:
        raise ValueError(f"make_augmentation: name must be one of {list(AUGMENTATIONS)} or None, got {v.describe(name)}")
    return RandomCropFlip(pad=4, flip=True, mode="reflect", seed=seed)


def state_of(augment: Any) -> Any:
    """``augment.get_state()``: what a checkpoint keeps of an augmentation (None for none, or one without state)."""
    return augment.get_state() if hasattr(augment, "get_state") else None


def restore_state(augment: Any, state: Any) -> None:
    """Give ``augment`` the ``state`` :func:`state_of` saved, refusing a state that does not fit it.

    Raises
    ------
    ValueError
        When one of ``state`` and ``augment``'s own state is None and the other is not (the saved
        run augmented with its own generator and this one does not, or the reverse), or when
        ``augment.set_state`` refuses ``state``; ``augment`` is then unchanged.
    """
    own = state_of(augment)
    if (state is None) != (own is None):
        saved = "no augmentation state" if state is None else "an augmentation state"
        raise ValueError(f"it holds {saved}, but augment={augment!r} {'keeps none' if own is None else 'keeps one'}")
    if state is not None:
        augment.set_state(state)
