"""The entry point (:mod:`layerwise.cli`'s ``main`` and ``python -m layerwise``): the version, and
one line when Numba cannot run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from layerwise.cli import main


def test_python_dash_m_and_version():
    result = subprocess.run([sys.executable, "-m", "layerwise", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("layerwise ")


def test_the_cli_says_once_when_numba_cannot_run(monkeypatch, capsys):
    from layerwise import cli
    from layerwise._layers import kernels

    monkeypatch.delenv("LAYERWISE_NO_NUMBA", raising=False)
    monkeypatch.setattr(kernels, "available", False)
    monkeypatch.setattr(cli, "_told_about_numba", False)
    for _ in range(2):
        assert main(["predict", "no-such-model", "x.png"]) == 2
    assert capsys.readouterr().err.count("Numba is not installed (pip install numba); the NumPy path runs (slower)") == 1


def test_the_cli_is_silent_about_numba_when_it_runs(monkeypatch, capsys):
    from layerwise import cli
    from layerwise._layers import kernels

    if not kernels.available:
        pytest.skip("Numba is not installed here")
    monkeypatch.setattr(cli, "_told_about_numba", False)
    assert main(["predict", "no-such-model", "x.png"]) == 2
    assert "Numba" not in capsys.readouterr().err
