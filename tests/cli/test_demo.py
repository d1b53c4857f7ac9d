"""``layerwise demo convolve``: the notebook's image-processing filters written as a PNG."""

from __future__ import annotations

import numpy as np

from layerwise.cli import main


def test_demo_convolve_names_a_missing_image(tmp_path, capsys):
    assert main(["demo", "convolve", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "out.png")]) == 2
    assert "missing.npy: no such file" in capsys.readouterr().err


def test_demo_convolve_writes_a_png(tmp_path):
    out = tmp_path / "convolve.png"
    image = (np.arange(40 * 50 * 3) % 256).astype(np.uint8).reshape(40, 50, 3)
    np.save(tmp_path / "image.npy", image)
    assert main(["demo", "convolve", str(tmp_path / "image.npy"), "--out", str(out), "--size", "32"]) == 0
    header = out.read_bytes()[:24]
    assert int.from_bytes(header[16:20], "big") == 3 * 32 + 2 * 4  # original | grayscale | edges
    assert main(["demo", "convolve", "--out", str(out)]) == 0  # the bundled images
