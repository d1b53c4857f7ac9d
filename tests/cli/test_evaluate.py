"""``layerwise evaluate``: a trained run's test report, from its folder or its model file."""

from __future__ import annotations

import json

import pytest

from layerwise.cli import main

from tests.helpers import train_small


@pytest.mark.parametrize(
    "model",
    [
        ["--model", "two-layer"],
        ["--model", "fc", "--hidden-dims", "32,16", "--epochs", "3"],  # batchnorm, its default
        ["--model", "fc", "--normalization", "layernorm", "--dropout-keep", "0.8"],
        ["--model", "three-layer-conv", "--num-filters", "4", "--hidden-dim", "10"],
    ],
    ids=["two-layer", "fc-batchnorm", "fc-layernorm-dropout", "three-layer-conv"],
)
def test_evaluate_reports_what_training_reported(tmp_path, capsys, model):
    run = tmp_path / "run"
    assert train_small(run, *model) == 0
    trained = capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert main(["evaluate", str(run)]) == 0
    evaluated = capsys.readouterr().out
    report = trained[trained.index("Test accuracy:") : trained.index("Best validation accuracy")]
    assert report and report in evaluated  # the accuracy and every per-class line, to the digit
    assert f"Test accuracy: {metrics['test_accuracy']:.4f}" in evaluated
    assert main(["evaluate", str(run / "model.npz")]) == 0
    assert report in capsys.readouterr().out
