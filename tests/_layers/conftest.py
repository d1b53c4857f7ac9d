"""Fixtures of the layer tests: the convolution's chunking, both ways."""

from __future__ import annotations

import pytest

import layerwise._layers.conv_plan as conv_plan_module


@pytest.fixture(params=[1 << 22, 1], ids=["one-chunk", "chunk-per-image"])
def chunking(request, monkeypatch):
    """Run conv tests both with the default chunking and with one image per chunk."""
    monkeypatch.setattr(conv_plan_module, "CHUNK_BYTES", request.param)
