"""Specification of :mod:`layerwise.vis_utils`: tiling images into one grid."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.vis_utils import vis_grid, visualize_grid


def _images(N=5, H=3, W=3, C=3, seed=0):
    return np.random.default_rng(seed).standard_normal((N, H, W, C)) * 7 - 2


def test_visualize_grid_shape_five_images_of_3x3_with_padding_1():
    grid = visualize_grid(_images())
    # ceil(sqrt(5)) = 3 images a side: 3 * 3 pixels + 2 gaps of 1.
    assert grid.shape == (11, 11, 3)


@pytest.mark.parametrize("N, H, W, padding, side", [(1, 4, 4, 1, 1), (4, 2, 5, 0, 2), (10, 3, 2, 2, 4), (9, 3, 3, 3, 3)])
def test_visualize_grid_shape_formula(N, H, W, padding, side):
    grid = visualize_grid(_images(N, H, W, 2), padding=padding)
    assert grid.shape == (side * H + (side - 1) * padding, side * W + (side - 1) * padding, 2)


@pytest.mark.parametrize("ubound", [255.0, 1.0])
def test_visualize_grid_rescales_each_image_to_0_ubound(ubound):
    Xs = _images()
    Xs[1] *= 100  # very different ranges: each image is scaled on its own
    grid = visualize_grid(Xs, ubound=ubound, padding=1)
    for index in range(5):
        row, col = divmod(index, 3)
        cell = grid[row * 4 : row * 4 + 3, col * 4 : col * 4 + 3]
        assert cell.min() == pytest.approx(0.0, abs=1e-12)
        assert cell.max() == pytest.approx(ubound, rel=1e-12)
        low, high = Xs[index].min(), Xs[index].max()
        np.testing.assert_allclose(cell, ubound * (Xs[index] - low) / (high - low), rtol=1e-12, atol=1e-12)


def test_visualize_grid_leaves_padding_and_unused_cells_at_zero():
    grid = visualize_grid(_images(), padding=1)
    np.testing.assert_array_equal(grid[3], 0)  # the gap below the first row of images
    np.testing.assert_array_equal(grid[:, 3], 0)
    np.testing.assert_array_equal(grid[4:7, 8:11], 0)  # cell 5 (row 1, col 2) is unused
    np.testing.assert_array_equal(grid[8:11], 0)  # the whole third row is unused


def test_visualize_grid_constant_image_does_not_divide_by_zero():
    Xs = np.ones((2, 2, 2, 1))
    grid = visualize_grid(Xs)
    assert np.all(np.isfinite(grid))


def test_visualize_grid_accepts_conv_filters_transposed():
    """The notebook's call: ``visualize_grid(model.params['W1'].transpose(0, 2, 3, 1))``."""
    W1 = np.random.default_rng(1).standard_normal((32, 3, 7, 7)).astype(np.float32)
    grid = visualize_grid(W1.transpose(0, 2, 3, 1))
    assert grid.shape == (6 * 7 + 5, 6 * 7 + 5, 3)
    assert grid.min() >= 0 and grid.max() <= 255
    assert W1.dtype == np.float32  # the input is not touched


def test_vis_grid_shape_and_values_are_unscaled():
    Xs = _images()
    grid = vis_grid(Xs)
    # 3 images a side, a 1-pixel border around and between them.
    assert grid.shape == (3 * 4 + 1, 3 * 4 + 1, 3)
    for index in range(5):
        row, col = divmod(index, 3)
        np.testing.assert_array_equal(grid[row * 4 + 1 : row * 4 + 4, col * 4 + 1 : col * 4 + 4], Xs[index])
    background = grid[0]
    np.testing.assert_array_equal(background, Xs.min())
