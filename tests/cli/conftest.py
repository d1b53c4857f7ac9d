"""Fixtures of the command-line tests."""

import pytest


@pytest.fixture(autouse=True)
def no_full_data(monkeypatch, tmp_path):
    """Tests never see a real CIFAR-10 and never download it."""
    monkeypatch.delenv("LAYERWISE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
