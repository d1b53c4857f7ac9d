"""``layerwise demo convolve``: the notebook's "image processing via convolutions" aside.

Two hand-made 3x3 filters, run with ``conv_forward_naive``: one turns RGB into grayscale, the
other finds horizontal edges in the blue channel. The result is saved as a PNG grid: one row per
image, showing the original, the grayscale and the edges.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from .. import data_utils
from ..images import read_image
from ..layers import conv_forward_naive
from ..vis_utils import write_png

# Bundled default: a cat and a dog from the embedded sample's test images.
_DEFAULT_CLASSES = ("cat", "dog")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="small demonstrations", description="Small demonstrations of layerwise.")
    demos = parser.add_subparsers(dest="demo", metavar="DEMO", required=True)
    convolve = demos.add_parser(
        "convolve",
        help="grayscale and edge filters applied with conv_forward_naive, saved as a PNG",
        description=__doc__.split("\n\n")[1],
    )
    convolve.add_argument("images", nargs="*", metavar="IMAGE",
                          help="images to filter: PNG, JPEG or .npy arrays (H, W, 3) "
                               "(default: a cat and a dog bundled with layerwise)")  # fmt: skip
    convolve.add_argument("--out", default="convolve.png", help="output PNG (default convolve.png)")
    convolve.add_argument("--size", type=int, default=128, help="images are resized to SIZE x SIZE (default 128)")
    convolve.set_defaults(handler=run_convolve)


def filters() -> tuple[np.ndarray, np.ndarray]:
    """The notebook's two filters, w (2, 3, 3, 3), and biases b (2,)."""
    w = np.zeros((2, 3, 3, 3))
    w[0, :, 1, 1] = [0.3, 0.6, 0.1]  # grayscale: a weighted sum of the centre pixel's channels
    w[1, 2] = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]  # Sobel: horizontal edges of the blue channel
    b = np.array([0.0, 128.0])  # edges are offset so that nothing is negative
    return w, b


def bundled_images() -> list[np.ndarray]:
    _, _, x_test, y_test = data_utils.load_embedded_sample()
    return [x_test[np.flatnonzero(y_test == data_utils.CLASS_NAMES.index(name))[0]] for name in _DEFAULT_CLASSES]


def square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then nearest-neighbour resize to (size, size, 3)."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = image[top : top + side, left : left + side]
    index = (np.arange(size) * side) // size
    return crop[index][:, index]


def _to_uint8(image: np.ndarray) -> np.ndarray:
    low, high = image.min(), image.max()
    return np.zeros(image.shape, np.uint8) if high == low else (255 * (image - low) / (high - low)).astype(np.uint8)


def run_convolve(options: dict[str, Any]) -> int:
    size = options["size"]
    if size < 3:
        raise ValueError(f"demo convolve: --size must be at least 3, got {size}")
    paths = [Path(p) for p in options["images"]]
    images = [read_image(p) for p in paths] if paths else bundled_images()
    # Filter at the images' own resolution (at most SIZE), then enlarge for display: enlarging first
    # would make the edge filter find the block edges of the enlargement.
    work = min(size, *(min(image.shape[:2]) for image in images))
    zoom = max(1, size // work)
    x = np.stack([square_resize(image, work).transpose(2, 0, 1) for image in images]).astype(np.float64)
    w, b = filters()
    out, _ = conv_forward_naive(x, w, b, {"stride": 1, "pad": 1})
    enlarge = np.ones((zoom, zoom, 1), np.uint8)
    gap = 4
    rows = []
    for original, filtered in zip(x, out):
        panels = [original.transpose(1, 2, 0).astype(np.uint8)] + [np.repeat(_to_uint8(f)[:, :, None], 3, axis=2) for f in filtered]
        panels = [np.kron(panel, enlarge) for panel in panels]
        spacer = np.full((panels[0].shape[0], gap, 3), 255, np.uint8)
        rows.append(np.hstack([panels[0], spacer, panels[1], spacer, panels[2]]))
    spacer = np.full((gap, rows[0].shape[1], 3), 255, np.uint8)
    grid = np.vstack([part for row in rows for part in (row, spacer)][:-1])
    path = write_png(options["out"], grid)
    print(f"Wrote {path}: one row per image, original | grayscale | horizontal edges", file=sys.stdout)
    return 0
