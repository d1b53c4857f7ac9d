"""Specification of :mod:`layerwise._layers.masking`."""

from __future__ import annotations

import numpy as np


def test_select_is_where_without_branches():
    from layerwise._layers.masking import select

    rng = np.random.default_rng(10)
    for dtype in (np.float32, np.float64):
        values = rng.standard_normal((5, 6)).astype(dtype)
        values[0, :3] = [np.inf, -np.inf, np.nan]
        mask = rng.random((5, 6)) < 0.5
        mask[0, :3] = False
        out = np.empty((5, 12), dtype=dtype)[:, ::2]  # a strided target
        result = select(mask, values, out)
        assert result is out
        np.testing.assert_array_equal(out, np.where(mask, values, 0))
        assert not np.signbit(out[~mask]).any()
