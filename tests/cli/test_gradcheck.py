"""``layerwise gradcheck``: the table of checks and the tolerance each row states."""

from __future__ import annotations

import numpy as np

from layerwise.cli import main


def test_gradcheck_passes(capsys):
    assert main(["gradcheck", "--only", "batchnorm"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "gradients within tolerance" in out
    assert "FullyConnectedNet batchnorm" in out


def test_gradcheck_checks_a_small_convnet(capsys):
    assert main(["gradcheck", "--only", "convnet"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("ConvNet ")]
    assert {row[1] for row in rows} == {"W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"}
    assert all(row[-1] == "ok" for row in rows)


def test_gradcheck_marks_a_row_ok_only_within_the_tolerance_it_states(monkeypatch, capsys):
    from layerwise.cli import gradcheck

    good = np.array([0.5, -2.0])
    rows = [
        ("close", "w", good, good * (1 + 1e-9), 1e-7),
        # A small but real gradient off by 5e-4 relatively: its absolute error (1e-9) must not save it.
        ("small but wrong", "x", np.array([1e-6, 2e-6]), np.array([1.001e-6, 2e-6]), 1e-7),
        ("zero by construction", "b", np.array([1e-11, -2e-11]), np.array([0.0, 1e-17]), 1e-7),
        ("zero but too far", "b", np.array([-9e-9]), np.array([9e-9]), 1e-7),
    ]
    monkeypatch.setattr(gradcheck, "checks", lambda: iter(rows))
    assert main(["gradcheck"]) == 1
    out = capsys.readouterr().out.splitlines()
    ends = {name: next(line for line in out if line.startswith(name)).split()[-4:] for name, *_ in rows}
    assert ends["close"] == ["rel", "1e-07", "2.0e-09", "ok"]
    assert ends["small but wrong"] == ["rel", "1e-07", "1.0e-09", "FAIL"]
    assert ends["zero by construction"] == ["abs", "1e-08", "2.0e-11", "ok"]
    assert ends["zero but too far"] == ["abs", "1e-08", "1.8e-08", "FAIL"]
    assert out[-1] == "2/4 gradients within tolerance"
