"""The sweep examples (examples/sweeps/): each one a valid sweep, and the notebook's overfitting searches
reaching 100% training accuracy on 50 images of the embedded sample within a reduced budget."""

import json
from pathlib import Path

import pytest

from layerwise.cli import main
from layerwise.sweep import EarlyStopping, make_trials, parse_sweep

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sweeps"


def read(name):
    return json.loads((EXAMPLES / name).read_text())


@pytest.mark.parametrize("name", ["overfit-three-layer.json", "overfit-five-layer.json", "best-fc.json"])
def test_every_example_is_a_sweep_whose_trials_resolve(name):
    spec = parse_sweep(read(name))
    trials = make_trials(spec)  # every trial's settings checked as `layerwise train` would, nothing run
    assert len(trials) == spec.trials and all(trial.config["model"] == "fc" for trial in trials)


def test_the_overfitting_examples_are_the_notebooks_searches():
    for name, hidden in (("overfit-three-layer.json", [100, 100]), ("overfit-five-layer.json", [100] * 4)):
        trials = make_trials(parse_sweep(read(name)))
        assert {(t.config["hidden_dims"] == hidden, t.config["normalization"], t.config["update_rule"], t.config["batch_size"],
                 t.config["epochs"], t.config["num_training"]) for t in trials} == {(True, None, "sgd", 25, 20, 50)}  # fmt: skip
        assert {tuple(t.settings) for t in trials} == {("learning_rate", "weight_scale")}
        assert parse_sweep(read(name)).metric == "best_train_acc"


def test_the_best_fc_example_on_the_full_archive_is_valid():
    spec = parse_sweep(read("best-fc.json"), {"data": "../shared/data/cifar-10-python.tar.gz"})
    trials = make_trials(spec)
    assert spec.early_stopping == EarlyStopping("median", grace_epochs=2, min_trials=3)
    config = trials[0].config
    assert config["data"] == "../shared/data/cifar-10-python.tar.gz" and config["num_training"] is None  # all 49,000 images
    assert len(config["hidden_dims"]) >= 4 and config["normalization"] == "batchnorm" and config["update_rule"] == "adam"
    assert any(trial.config["dropout_keep"] < 1.0 for trial in trials)  # dropout among the choices drawn


@pytest.mark.parametrize("name", ["overfit-three-layer.json", "overfit-five-layer.json"])
def test_an_overfitting_example_reaches_100_percent_training_accuracy_on_the_sample(name, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", str(EXAMPLES / name), "--sample", "--trials", "2", "--workers", "2", "--threads", "1",
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    records = json.loads((out / "results.json").read_text())["trials"]
    assert len(records) == 2 and all(record["epochs_done"] == 20 for record in records)
    assert records[0]["best_train_acc"] == 1.0, records
    assert json.loads((out / "best" / "config.json").read_text())["data_info"]["num_training"] == 50
