"""``--preset``: named sets of settings (layerwise/cli/presets.py) under the options given beside them."""

from __future__ import annotations

import pytest

from layerwise.cli import main


def test_the_best_cnn_preset_is_the_recipe_and_options_beside_it_win():
    from layerwise.cli.presets import PRESETS
    from layerwise.cli.settings import resolve_config

    config = resolve_config({"preset": "best-cnn", "seed": 0})
    for key, value in PRESETS["best-cnn"].items():
        assert config[key] == value, key
    assert config["lr_decay"] == 1.0 and config["num_test"] == 10000 and config["test_flip"] is True
    changed = resolve_config({"preset": "best-cnn", "epochs": 2, "blocks": "8,8p", "seed": 0})
    assert (changed["epochs"], changed["blocks"], changed["model"]) == (2, "8,8p", "convnet")
    changed["optim_config"]["momentum"] = 0.5  # a run's settings are a copy: the preset stays as it is
    assert PRESETS["best-cnn"]["optim_config"]["momentum"] == 0.9


def test_an_unknown_preset_is_refused_by_name(capsys):
    from layerwise.cli.settings import CommandError, resolve_config

    with pytest.raises(CommandError, match=r"--preset must be one of \['best-cnn'\], got 'best'"):
        resolve_config({"preset": "best"})
    with pytest.raises(SystemExit):  # argparse's own error, exit status 2
        main(["train", "--preset", "best"])
