"""Arranging many small images (filters, examples) into one grid image for display."""

from __future__ import annotations

import os
import struct
import zlib
from math import ceil, sqrt
from pathlib import Path

import numpy as np

from . import _validation as v
from .checkpoint import atomic_write


def visualize_grid(Xs: np.ndarray, ubound: float = 255.0, padding: int = 1) -> np.ndarray:
    """Tile images into a square grid, each rescaled on its own to ``[0, ubound]``.

    Parameters
    ----------
    Xs : ndarray, shape (N, H, W, C)
        N images (e.g. first-layer filters ``W1.transpose(0, 2, 3, 1)``).
    ubound : float
        Upper bound of the output values (the lower one is 0).
    padding : int
        Blank pixels between neighbouring images.

    Returns
    -------
    grid : ndarray, shape (G*H + (G-1)*padding, G*W + (G-1)*padding, C), G = ceil(sqrt(N))
        Float64; cells left over at the end are zero.
    """
    func = "visualize_grid"
    Xs = np.asarray(Xs)
    if Xs.dtype.kind not in "fiu":
        raise TypeError(f"{func}: Xs must be a numeric array, got dtype {Xs.dtype}")
    v.check_ndim(func, "Xs", Xs, 4, "(N, H, W, C)")
    ubound = v.real_value(func, "ubound", ubound, low=0.0, low_open=True)
    padding = v.int_value(func, "padding", padding, minimum=0)
    N, H, W, C = Xs.shape
    grid_size = int(ceil(sqrt(N)))
    grid = np.zeros((grid_size * H + (grid_size - 1) * padding, grid_size * W + (grid_size - 1) * padding, C))
    for index in range(N):
        row, col = divmod(index, grid_size)
        image = Xs[index].astype(np.float64)
        low, high = image.min(), image.max()
        scaled = ubound * (image - low) / (high - low) if high > low else np.zeros_like(image)
        top, left = row * (H + padding), col * (W + padding)
        grid[top : top + H, left : left + W] = scaled
    return grid


def vis_grid(Xs: np.ndarray) -> np.ndarray:
    """Tile images into a square grid without rescaling, one pixel of padding, and the grid
    background at the images' minimum value (the values are as given).

    Xs : ndarray, shape (N, H, W, C). Returns shape (G*(H+1)+1, G*(W+1)+1, C), G = ceil(sqrt(N)).
    """
    Xs = np.asarray(Xs)
    v.check_ndim("vis_grid", "Xs", Xs, 4, "(N, H, W, C)")
    N, H, W, C = Xs.shape
    grid_size = int(ceil(sqrt(N)))
    grid = np.full((grid_size * (H + 1) + 1, grid_size * (W + 1) + 1, C), float(Xs.min()) if Xs.size else 0.0)
    for index in range(N):
        row, col = divmod(index, grid_size)
        top, left = row * (H + 1) + 1, col * (W + 1) + 1
        grid[top : top + H, left : left + W] = Xs[index]
    return grid


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an 8-bit image as a PNG file (atomically), with no dependency beyond NumPy and zlib.

    Parameters
    ----------
    path : str or os.PathLike
    image : ndarray of uint8, shape (H, W) (grayscale), (H, W, 3) (RGB) or (H, W, 4) (RGBA)
        Other dtypes must already lie in [0, 255]; they are rounded.
    """
    func = "write_png"
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    color_types = {2: 0, 3: {3: 2, 4: 6}}
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)) or 0 in image.shape:
        raise ValueError(f"{func}: image must have shape (H, W), (H, W, 3) or (H, W, 4), got shape {image.shape}")
    if image.dtype != np.uint8:
        if image.dtype.kind not in "fiu" or (image.size and (np.nanmin(image) < 0 or np.nanmax(image) > 255)):
            raise ValueError(f"{func}: image values must lie in [0, 255], got dtype {image.dtype}")
        image = np.rint(image).astype(np.uint8)
    height, width = image.shape[:2]
    color_type = color_types[2] if image.ndim == 2 else color_types[3][image.shape[2]]
    rows = image.reshape(height, -1)
    raw = np.hstack([np.zeros((height, 1), dtype=np.uint8), rows]).tobytes()  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    payload = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: handle.write(payload))
    return path
