"""The search space and the sweep spec: bad ones refused with the setting named, trials reproducible."""

import pytest

from layerwise.cli import main
from layerwise.sweep import SweepError, make_trials, parse_sweep
from layerwise.sweep.space import grid_points, parse_space, trial_settings

BASE = {"model": "fc", "sample": True, "num_training": 50, "num_validation": 20, "num_test": 20, "epochs": 1}

BAD_SWEEPS = [
    ({"space": {"learning_rat": {"values": [1e-3]}}}, "space: unknown setting 'learning_rat'"),
    ({"space": {"learning_rate": {"choice": []}}}, "space['learning_rate']: 'choice' needs a non-empty list, got []"),
    ({"space": {"learning_rate": {"values": []}}}, "space['learning_rate']: 'values' needs a non-empty list, got []"),
    ({"space": {"learning_rate": {"loguniform": [-1e-3, 1e-2]}}}, "a 'loguniform' range must be positive (0 < low < high), got [-0.001, 0.01]"),
    ({"space": {"learning_rate": {"loguniform": [0, 1e-2]}}}, "a 'loguniform' range must be positive"),
    ({"space": {"learning_rate": {"uniform": [1e-2, 1e-3]}}}, "'uniform' needs low < high, got [0.01, 0.001]"),
    ({"space": {"learning_rate": {"uniform": [1e-3]}}}, "'uniform' needs [low, high], two finite numbers, got [0.001]"),
    ({"space": {"learning_rate": {"uniform": [0.0, "1"]}}}, "two finite numbers"),
    ({"space": {"learning_rate": {"range": [1, 2]}}}, "space['learning_rate'] must be one of"),
    ({"space": {"learning_rate": [1e-3, 1e-2]}}, "space['learning_rate'] must be one of"),
    ({"space": {"seed": {"values": [1, 2]}}}, "space: 'seed' cannot vary between trials"),
    ({"space": {"num_training": {"values": [50, 100]}}}, "space: 'num_training' cannot vary between trials"),
    ({"space": {"normalize": {"choice": ["mean-image", "channel"]}}}, "space: 'normalize' cannot vary between trials"),
    ({"space": {"learning_rate": {"uniform": [-1.0, 1.0]}}}, "space['learning_rate']: the end -1.0 of the 'uniform' range: --learning-rate must be"),
    ({"space": {"dropout_keep": {"values": [0.5, 1.5]}}}, "trial 1 (dropout_keep=1.5): --dropout-keep must be a finite number in (0, 1]"),
    ({"space": {"num_filters": {"values": [8]}}}, "--num-filters applies to three-layer-conv only, not to fc"),
    ({"space": {"epochs": {"uniform": [1, 3]}}}, "--epochs must be a positive integer"),
    ({"space": {}, "trials": 0}, "trials must be a positive integer, got 0"),
    ({"space": {}, "metric": "val_loss"}, "metric must be one of ['best_val_acc', 'final_val_acc', 'best_train_acc', 'final_train_acc'], got 'val_loss'"),
    ({"space": {}, "spaces": {}}, "unknown sweep keys ['spaces']"),
    ({"space": {}, "base": {"seed": 3}}, "base: 'seed' is the sweep's"),
    ({"space": {}, "base": {"learning_rat": 3}}, "base: unknown settings ['learning_rat']"),
]


@pytest.mark.parametrize("document, message", BAD_SWEEPS, ids=[message[:40] for _, message in BAD_SWEEPS])
def test_bad_sweeps_are_refused_naming_the_setting(document, message):
    document = {**document, "base": {**BASE, **document.get("base", {})}}
    with pytest.raises(SweepError) as raised:
        make_trials(parse_sweep(document))
    assert message in str(raised.value)


def test_cli_refuses_a_bad_space_before_writing_anything(tmp_path, capsys):
    sweep = tmp_path / "sweep.json"
    sweep.write_text('{"base": {"sample": true}, "space": {"learning_rate": {"loguniform": [-1, 1]}}}')
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out)]) == 2
    assert "a 'loguniform' range must be positive" in capsys.readouterr().err
    assert not out.exists()


def test_grid_is_the_product_with_the_last_dimension_fastest():
    space = parse_space({"reg": {"values": [0.0, 0.1]}, "learning_rate": {"values": [1e-3, 1e-2, 1e-1]}}, ["reg", "learning_rate"])
    assert grid_points(space) == [{"reg": r, "learning_rate": lr} for r in (0.0, 0.1) for lr in (1e-3, 1e-2, 1e-1)]
    assert parse_sweep({"base": BASE, "space": {k: v.to_json() for k, v in space.items()}}).trials == 6


def test_a_trial_depends_on_the_seed_and_its_index_only():
    space = parse_space(
        {"learning_rate": {"loguniform": [1e-4, 1e-1]}, "reg": {"uniform": [0.0, 0.5]}, "update_rule": {"choice": ["sgd", "adam"]},
         "hidden_dims": {"values": [[10], [20, 20]]}},
        ["learning_rate", "reg", "update_rule", "hidden_dims"],
    )  # fmt: skip
    first = [trial_settings(space, 7, i) for i in range(6)]
    assert first == [trial_settings(space, 7, i) for i in range(6)]
    assert first != [trial_settings(space, 8, i) for i in range(6)]
    for settings, seed in first:
        assert 1e-4 <= settings["learning_rate"] <= 1e-1 and 0.0 <= settings["reg"] < 0.5 and 0 <= seed < 2**31
    assert [s["hidden_dims"] for s, _ in first] == [[10], [20, 20]] * 3
    spec = parse_sweep({"base": BASE, "space": {k: v.to_json() for k, v in space.items()}, "seed": 7, "trials": 6})
    assert [(t.settings, t.seed) for t in make_trials(spec)] == first
    assert [t.config["seed"] for t in make_trials(spec)] == [seed for _, seed in first]
    assert make_trials(spec._replace(trials=3)) == make_trials(spec)[:3]  # a budget extends, never reshuffles


def test_a_preset_lies_under_the_base_and_options_win_over_both():
    from layerwise.cli.sweep import _overrides, _with_preset

    document = {"base": {"epochs": 2, "sample": True}, "space": {"learning_rate": {"values": [0.1, 0.2]}}}
    spec = parse_sweep(_with_preset(document, "best-cnn"), _overrides({"batch_size": 32, "preset": "best-cnn"}))
    trial = make_trials(spec)[0].config
    assert (trial["model"], trial["update_rule"], trial["augment"]) == ("convnet", "sgd_nesterov", "crop-flip")
    assert (trial["epochs"], trial["batch_size"], trial["learning_rate"]) == (2, 32, 0.1)
    assert _with_preset(document, None) is document
