"""``layerwise train``, end to end on the embedded sample with a few iterations: the run folder,
resuming, divergence, settings from flags and config files, and the data it finds."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from layerwise.cli import main
from layerwise.cli import train as train_command
from layerwise.model_io import load_model

from tests.helpers import SMALL, train_small


def test_train_writes_a_complete_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert train_small(run, "--model", "fc", "--hidden-dims", "32,16", "--epochs", "2", "--batch-size", "50") == 0
    out = capsys.readouterr().out
    assert "Data: the embedded CIFAR-10 sample (200 train / 50 val / 100 test images)" in out
    for name in ("config.json", "loss.csv", "epochs.csv", "metrics.json", "model.json", "model.npz",
                 "confusion.csv", "loss.png", "accuracy.png", "confusion.png"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    for name in ("loss.png", "accuracy.png", "confusion.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "loss.csv").read_text().splitlines()[0] == "iteration,loss"
    assert len((run / "loss.csv").read_text().splitlines()) == 1 + 2 * 4
    assert len((run / "epochs.csv").read_text().splitlines()) == 1 + 3
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert np.array(metrics["confusion"]).sum() == 100
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "fc" and config["hidden_dims"] == [32, 16] and config["seed"] == 0
    saved = load_model(run / "model")
    assert saved.model.hidden_dims == [32, 16] and saved.preprocessing.mean.shape == (3, 32, 32)
    assert saved.class_names[3] == "cat"


def test_no_progress_prints_epoch_lines_only_and_one_epoch_is_singular(tmp_path, capsys):
    assert train_small(tmp_path / "quiet", "--epochs", "1", "--batch-size", "20") == 0
    captured = capsys.readouterr()
    assert "for 1 epoch; run folder" in captured.out
    assert captured.err.splitlines() == [
        line for line in captured.err.splitlines() if line.startswith(("epoch 0/1: train acc", "epoch 1/1: train acc"))
    ] and len(captured.err.splitlines()) == 2
    arguments = ["train", *[a for a in SMALL if a != "--no-progress"], "--epochs", "2", "--batch-size", "20",
                 "--seed", "0", "--run-dir", str(tmp_path / "logged")]  # fmt: skip
    assert main(arguments) == 0
    captured = capsys.readouterr()
    assert "for 2 epochs; run folder" in captured.out
    assert "epoch 1/2 it 1/20 loss" in captured.err and "epoch 2/2 it 20/20 loss" in captured.err


def test_every_file_of_a_run_folder_has_the_mode_a_plain_open_gives(tmp_path):
    previous = os.umask(0o027)
    try:
        run = tmp_path / "run"
        assert train_small(run, "--model", "three-layer-conv", "--num-filters", "2", "--filter-size", "3", "--hidden-dim", "5") == 0
    finally:
        os.umask(previous)
    modes = {str(path.relative_to(run)): stat.S_IMODE(path.stat().st_mode) for path in run.rglob("*") if path.is_file()}
    assert {"filters.png", "loss.png", "model.npz", "config.json", "checkpoints/checkpoint_epoch_1.npz"} <= set(modes)
    assert {name for name, mode in modes.items() if mode != 0o640} == set()


def test_conv_net_run_writes_the_filter_grid(tmp_path):
    run = tmp_path / "conv"
    assert train_small(run, "--model", "three-layer-conv", "--num-filters", "4", "--filter-size", "3", "--hidden-dim", "10") == 0
    header = (run / "filters.png").read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert (width, height) == (4 * (2 * 3 + 1), 4 * (2 * 3 + 1))  # 2x2 grid of 3x3 filters, padding 1, x4


def test_a_convnet_run_trains_saves_and_records_its_settings(tmp_path, capsys):
    run = tmp_path / "convnet"
    assert train_small(run, "--model", "convnet", "--blocks", "4,4pr,8p", "--epochs", "1", "--batch-size", "50",
                       "--global-pool", "avg", "--label-smoothing", "0.1", "--dropout-keep", "0.8") == 0  # fmt: skip
    assert "Training ConvNet (convnet) for 1 epoch" in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    assert config["blocks"] == "4,4pr,8p" and config["weight_scale"] is None and config["normalization"] == "batchnorm"
    saved = load_model(run / "model").model
    assert saved.blocks == [
        {"filters": 4, "pool": False, "residual": False},
        {"filters": 4, "pool": True, "residual": True},
        {"filters": 8, "pool": True, "residual": False},
    ]
    assert (saved.global_pool, saved.label_smoothing, saved.dropout_keep) == ("avg", 0.1, 0.8)
    assert saved.get_state() and (run / "filters.png").is_file()


def test_convnet_groupnorm_and_he_weight_scale_from_the_command_line(tmp_path):
    run = tmp_path / "groupnorm"
    assert train_small(run, "--model", "convnet", "--blocks", "4,8p", "--normalization", "groupnorm", "--groups", "2",
                       "--weight-scale", "he", "--epochs", "1", "--batch-size", "100") == 0  # fmt: skip
    saved = load_model(run / "model").model
    assert (saved.normalization, saved.groups, saved.weight_scale) == ("groupnorm", 2, None)
    with pytest.raises(SystemExit):  # argparse's own error, exit status 2
        train_small(tmp_path / "other", "--model", "convnet", "--weight-scale", "big")


def test_threads_option_gives_the_same_model_and_is_not_a_setting(tmp_path):
    import layerwise

    conv = ["--model", "three-layer-conv", "--num-filters", "4", "--hidden-dim", "10"]
    try:
        assert train_small(tmp_path / "one", *conv, "--threads", "1") == 0
        assert layerwise.get_num_threads() == 1
        assert train_small(tmp_path / "two", *conv, "--threads", "2") == 0
    finally:
        layerwise.set_num_threads(None)
    one, two = np.load(tmp_path / "one" / "model.npz"), np.load(tmp_path / "two" / "model.npz")
    assert sorted(one.files) == sorted(two.files)
    for name in one.files:
        np.testing.assert_array_equal(one[name], two[name])
    assert "threads" not in json.loads((tmp_path / "two" / "config.json").read_text())
    with pytest.raises(SystemExit):
        train_small(tmp_path / "three", "--threads", "0")


def _interrupt_after_epoch_1(monkeypatch):
    """Make the next run stop as Ctrl-C would once epoch 1's files are written; returns the
    original RunWriter.on_epoch_end, to put back for the resume."""
    original = train_command.RunWriter.on_epoch_end

    def interrupt_after_epoch_1(self, solver):
        original(self, solver)
        if solver.epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_command.RunWriter, "on_epoch_end", interrupt_after_epoch_1)
    return original


def test_resume_after_an_interruption_ends_where_an_uninterrupted_run_ends(tmp_path, monkeypatch, capsys):
    settings = ["--epochs", "3", "--batch-size", "20", "--update-rule", "sgd_momentum"]
    assert train_small(tmp_path / "straight", *settings) == 0

    original = _interrupt_after_epoch_1(monkeypatch)
    assert train_small(tmp_path / "resumed", *settings) == 130
    assert not (tmp_path / "resumed" / "model.json").exists()
    monkeypatch.setattr(train_command.RunWriter, "on_epoch_end", original)
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "resumed"), "--no-progress"]) == 0
    assert f"Resuming {tmp_path / 'resumed'} after epoch 1" in capsys.readouterr().out

    straight = load_model(tmp_path / "straight" / "model").model
    resumed = load_model(tmp_path / "resumed" / "model").model
    for name, value in {**straight.params, **straight.get_state()}.items():
        np.testing.assert_array_equal({**resumed.params, **resumed.get_state()}[name], value)
    assert (tmp_path / "resumed" / "loss.csv").read_text() == (tmp_path / "straight" / "loss.csv").read_text()


def _same_model_and_histories(run, other):
    model = load_model(run / "model").model
    expected = load_model(other / "model").model
    for name, value in expected.params.items():
        np.testing.assert_array_equal(model.params[name], value)
    for name in ("loss.csv", "epochs.csv"):
        assert (run / name).read_text() == (other / name).read_text(), name


def test_resume_with_more_epochs_extends_a_finished_run(tmp_path, capsys):
    settings = ["--batch-size", "20", "--update-rule", "sgd_momentum", "--lr-decay", "0.5"]
    assert train_small(tmp_path / "straight", "--epochs", "2", *settings) == 0
    run = tmp_path / "extended"
    assert train_small(run, "--epochs", "1", *settings) == 0
    first = json.loads(sorted((run / "checkpoints").glob("*_1.json"))[0].read_text())["meta"]
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"Resuming {run} after epoch 1 (iteration 10)" in out and "for 2 epochs" in out
    _same_model_and_histories(run, tmp_path / "straight")
    metrics = json.loads((run / "metrics.json").read_text())
    checkpoint = json.loads(sorted((run / "checkpoints").glob("*_2.json"))[0].read_text())["meta"]
    # The time before the resume is kept: epoch 2's clock went on from epoch 1's (unrounded, as
    # checkpoints hold it; the run's metrics.json rounds it, and its first total also counted the
    # end-of-run writing after epoch 1's checkpoint).
    assert metrics["epochs"] == 2 and checkpoint["train_seconds"] > first["train_seconds"] > 0
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    assert checkpoint["optim_scalars"]["W1"]["learning_rate"] == pytest.approx(1e-4 * 0.5**2)


def test_resume_refuses_fewer_epochs_than_done_and_any_other_setting(tmp_path, capsys):
    run = tmp_path / "run"
    assert train_small(run, "--epochs", "2", "--batch-size", "50") == 0
    config = (run / "config.json").read_text()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "1"]) == 2
    assert "--epochs 1 is fewer than the 2 epochs" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--epochs", "3", "--lr", "0.1"]) == 2
    assert "(only --epochs may change); drop ['--learning-rate']" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--epochs", "0"]) == 2
    assert "--epochs must be a positive integer, got 0" in capsys.readouterr().err
    assert (run / "config.json").read_text() == config


def test_resume_skips_a_corrupted_newest_checkpoint(tmp_path, capsys):
    settings = ["--epochs", "3", "--batch-size", "20"]
    assert train_small(tmp_path / "straight", *settings) == 0
    run = tmp_path / "run"
    assert train_small(run, *settings) == 0
    newest = run / "checkpoints" / "checkpoint_epoch_3.npz"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    (run / "model.npz").unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert (f"layerwise: warning: the checkpoint after epoch 3 failed verification: checkpoint {newest}: "
            "its SHA-256 does not match") in captured.err
    assert f"Resuming {run} after epoch 2 (iteration 20)" in captured.out
    _same_model_and_histories(run, tmp_path / "straight")
    (run / "checkpoints" / "checkpoint_epoch_3.json").write_text("{}")
    (run / "checkpoints" / "checkpoint_epoch_2.json").write_text("{}")
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    assert "none of the checkpoints in" in capsys.readouterr().err


def test_ctrl_c_in_a_real_process_leaves_a_resumable_run(tmp_path):
    run = tmp_path / "run"
    # One BLAS thread: on a loaded machine threaded BLAS can slow small products by 30x.
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1"}
    env.pop("LAYERWISE_DATA", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "layerwise", "train", "--sample", "--num-training", "1000", "--num-validation", "50",
         "--hidden-dim", "50", "--batch-size", "10", "--epochs", "200", "--no-progress", "--seed", "1",
         "--run-dir", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # As in a terminal: a test suite started in the background (`pytest &` in a script) has SIGINT
        # ignored, which children inherit, and Python then never turns SIGINT into KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not (run / "checkpoints" / "checkpoint_epoch_1.json").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()
    assert (run / "checkpoints" / "checkpoint_epoch_1.json").exists(), "no checkpoint within the time limit"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert f"layerwise train --resume {run}" in stderr
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "checkpoint_epoch_1.json" in kept and len(kept) <= 4  # the newest two pairs


def test_a_diverging_run_exits_3_with_one_line_and_keeps_the_best_parameters(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "OPENBLAS_NUM_THREADS": "1"}
    env.pop("LAYERWISE_DATA", None)
    result = subprocess.run(
        [sys.executable, "-m", "layerwise", "train", *SMALL, "--run-dir", str(run), "--seed", "0",
         "--update-rule", "sgd", "--learning-rate", "1e4"],
        capture_output=True, text=True, env=env,
    )
    assert result.returncode == 3, result.stderr
    err = result.stderr
    assert "Traceback" not in err and "Warning" not in err
    lines = err.splitlines()
    assert lines[-2] == ("layerwise: error: the loss became inf at iteration 4 (epoch 2); "
                         "try a lower --learning-rate (now 10000) or --weight-scale (now 0.001)")
    assert lines[-1] == f"The best parameters so far (validation accuracy 0.1000) were saved to {run / 'model'}.npz and .json"
    saved = load_model(run / "model")
    assert saved.meta["best_val_acc"] == 0.1 and all(np.isfinite(value).all() for value in saved.model.params.values())
    assert len((run / "loss.csv").read_text().splitlines()) == 1 + 3
    assert not (run / "metrics.json").exists()


def test_a_diverging_batchnorm_run_keeps_the_best_parameters_with_their_running_statistics(tmp_path, capsys):
    run = tmp_path / "run"
    assert train_small(run, "--model", "fc", "--hidden-dims", "16", "--update-rule", "sgd", "--learning-rate", "1e30") == 3
    assert "the loss became nan at iteration 2 (epoch 1)" in capsys.readouterr().err
    saved = load_model(run / "model")
    assert saved.meta["best_val_acc"] > 0
    assert all(np.isfinite(value).all() for value in [*saved.model.params.values(), *saved.model.get_state().values()])


def test_a_run_diverging_before_any_accuracy_check_saves_no_model(tmp_path, capsys):
    run = tmp_path / "run"
    assert train_small(run, "--update-rule", "sgd", "--learning-rate", "1e4", "--weight-scale", "1e30") == 3
    err = capsys.readouterr().err
    assert "the loss became nan at iteration 1 (epoch 1)" in err
    assert err.splitlines()[-1] == "No model was saved: the loss diverged before the first accuracy check."
    assert not (run / "model.json").exists()


def test_config_file_and_flags(tmp_path):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"model": "fc", "hidden_dims": [8], "learning_rate": 0.01, "epochs": 1}))
    run = tmp_path / "run"
    assert train_small(run, "--config", str(config), "--learning-rate", "0.002") == 0
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["hidden_dims"] == [8] and recorded["learning_rate"] == 0.002 and recorded["epochs"] == 1


def test_optim_config_reaches_the_update_rule(tmp_path):
    run = tmp_path / "run"
    assert train_small(run, "--update-rule", "sgd_momentum", "--optim-config", '{"momentum": 0.5}') == 0
    assert json.loads((run / "config.json").read_text())["optim_config"] == {"momentum": 0.5}
    checkpoint = sorted((run / "checkpoints").glob("*.json"))[-1]
    assert json.loads(checkpoint.read_text())["meta"]["optim_scalars"]["W1"]["momentum"] == 0.5


@pytest.mark.parametrize("arguments, message", [
    (["--model", "two-layer", "--hidden-dims", "10,10"], "--hidden-dims applies to fc only, not to two-layer"),
    (["--update-rule", "adam", "--optim-config", '{"beta1": 1.5}'], "adam: config['beta1'] must be a finite number in [0, 1), got 1.5"),
    (["--epochs", "0"], "epochs must be a positive integer, got 0"),
    (["--model", "fc", "--blocks", "8p"], "--blocks applies to convnet only, not to fc"),
    (["--model", "fc", "--normalization", "groupnorm"], "--normalization must be one of none, batchnorm, layernorm for fc, got 'groupnorm'"),
    (["--model", "convnet", "--normalization", "layernorm"],
     "--normalization must be one of none, batchnorm, groupnorm for convnet, got 'layernorm'"),
    (["--model", "convnet", "--blocks", "8,16q"], "--blocks must be comma-separated filter counts, each optionally followed by p"),
    (["--model", "convnet", "--blocks", "8pp"], "--blocks must be comma-separated filter counts"),
    (["--model", "convnet", "--label-smoothing", "1.5"], "--label-smoothing must be a finite number in [0, 1], got 1.5"),
    (["--model", "convnet", "--residual"], "ConvNet: blocks[0] has residual=True"),
    (["--model", "fc", "--weight-scale", "he"], "--weight-scale must be a finite number >= 0, got None"),
])
def test_bad_settings_exit_2_with_a_message(tmp_path, capsys, arguments, message):
    assert train_small(tmp_path / "run", *arguments) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["--learning-rate", "nan"], "--learning-rate must be a finite number > 0, got nan"),
    (["--lr", "inf"], "--learning-rate must be a finite number > 0, got inf"),
    (["--lr", "-1"], "--learning-rate must be a finite number > 0, got -1.0"),
    (["--lr", "0"], "--learning-rate must be a finite number > 0, got 0.0"),
    (["--weight-scale", "nan"], "--weight-scale must be a finite number >= 0, got nan"),
    (["--reg", "-1"], "--reg must be a finite number >= 0, got -1.0"),
    (["--lr-decay", "1.5"], "--lr-decay must be a finite number in (0, 1], got 1.5"),
    (["--lr-decay", "0"], "--lr-decay must be a finite number in (0, 1], got 0.0"),
    (["--model", "fc", "--dropout-keep", "0"], "--dropout-keep must be a finite number in (0, 1], got 0.0"),
    (["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
    (["--num-val-samples", "-2"], "--num-val-samples must be a positive integer, got -2"),
    (["--update-rule", "sgd_momentum", "--optim-config", '{"momentumm": 0.9}'],
     "--optim-config: unknown settings ['momentumm'] for --update-rule sgd_momentum; valid ones are ['momentum']"),
    (["--update-rule", "adam", "--optim-config", '{"beta1": 0.9, "momentum": 0.9}'],
     "--optim-config: unknown settings ['momentum'] for --update-rule adam; valid ones are ['beta1', 'beta2', 'epsilon']"),
    (["--update-rule", "sgd", "--optim-config", '{"momentum": 0.9}'],
     "--optim-config: unknown settings ['momentum'] for --update-rule sgd; sgd has none besides --learning-rate"),
    (["--optim-config", '{"learning_rate": 0.1}'], "give the learning rate with --learning-rate"),
    (["--update-rule", "rmsprop", "--optim-config", '{"decay_rate": NaN}'],
     "--optim-config: rmsprop: config['decay_rate'] must be a finite number in [0, 1), got nan"),
    (["--update-rule", "adam", "--optim-config", '{"epsilon": Infinity}'],
     "--optim-config: adam: config['epsilon'] must be a finite number in (0, inf], got inf"),
    (["--optim-config", '{"beta2": "high"}'], "--optim-config: adam: config['beta2'] must be a real number, got 'high'"),
])
def test_bad_numbers_and_optim_settings_name_the_option_and_leave_no_run_folder(tmp_path, capsys, arguments, message):
    assert train_small(tmp_path / "run", *arguments) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_settings_from_a_config_file_are_checked_too(tmp_path, capsys):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"learning_rate": "0.1", "optim_config": {"beta1": 0.5}}))
    assert train_small(tmp_path / "run", "--config", str(config)) == 2
    assert "--learning-rate must be a finite number > 0, got '0.1'" in capsys.readouterr().err
    config.write_text(json.dumps({"optim_config": [0.5]}))
    assert train_small(tmp_path / "run", "--config", str(config)) == 2
    assert "--optim-config must be a JSON object, got [0.5]" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_setting_only_the_solver_refuses_leaves_no_run_folder(tmp_path, capsys, monkeypatch):
    from layerwise.cli import settings

    monkeypatch.setattr(settings, "check_settings", lambda config: None)
    assert train_small(tmp_path / "run", "--lr-decay", "1.5") == 2
    assert "Solver: lr_decay must be a finite number in (0, 1], got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_bad_model_setting_leaves_no_run_folder(tmp_path, capsys):
    assert train_small(tmp_path / "run", "--hidden-dim", "-3") == 2
    assert "TwoLayerNet: hidden_dim must be >= 1, got -3" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_an_existing_run_folder_is_never_overwritten(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "precious.txt").write_text("keep me")
    assert train_small(run) == 2
    assert "already holds files; use --resume" in capsys.readouterr().err
    assert (run / "precious.txt").read_text() == "keep me"


def test_unknown_config_key(tmp_path, capsys):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"learningrate": 0.1}))
    assert train_small(tmp_path / "run", "--config", str(config)) == 2
    assert "unknown settings ['learningrate']" in capsys.readouterr().err


def test_without_data_or_download_the_sample_is_used_and_the_reason_given(tmp_path, capsys):
    arguments = ["train", "--no-download", "--epochs", "1", "--num-training", "100", "--num-validation", "20",
                 "--num-test", "50", "--no-progress", "--run-dir", str(tmp_path / "run")]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert "the embedded CIFAR-10 sample" in out and "because the full data set is not available" in out


def test_an_explicit_data_path_that_is_wrong_is_an_error(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nothing"), "--run-dir", str(tmp_path / "run")]) == 2
    assert "nothing" in capsys.readouterr().err


def test_a_layerwise_data_that_is_wrong_is_the_same_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAYERWISE_DATA", str(tmp_path / "nothing"))
    arguments = ["--num-training", "100", "--num-validation", "20", "--num-test", "50", "--no-progress"]
    assert main(["train", *arguments, "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "the environment variable LAYERWISE_DATA must name a CIFAR-10 archive" in err
    assert f"got {str(tmp_path / 'nothing')!r}, which does not exist" in err
    assert not (tmp_path / "run").exists()
    assert main(["train", *arguments, "--sample", "--epochs", "1", "--run-dir", str(tmp_path / "sample")]) == 0


# --------------------------------------------------------------------------- training recipe options

RECIPE = ["--update-rule", "sgd_nesterov", "--optim-config", '{"coupled_weight_decay": 5e-4}',
          "--lr-schedule", '{"name": "one_cycle", "max_lr": 0.01}', "--augment", "crop-flip", "--normalize", "channel",
          "--batch-size", "20"]  # fmt: skip


def test_recipe_options_are_recorded_and_the_model_file_normalises_per_channel(tmp_path, capsys):
    run = tmp_path / "run"
    assert train_small(run, *RECIPE, "--epochs", "2") == 0
    config = json.loads((run / "config.json").read_text())
    assert config["update_rule"] == "sgd_nesterov" and config["optim_config"] == {"coupled_weight_decay": 5e-4}
    assert config["lr_schedule"] == {"name": "one_cycle", "max_lr": 0.01} and config["lr_decay"] == 1.0
    assert config["augment"] == "crop-flip" and config["normalize"] == "channel"
    checkpoint = json.loads((run / "checkpoints" / "checkpoint_epoch_2.json").read_text())["meta"]
    assert checkpoint["optim_scalars"]["W1"]["learning_rate"] == pytest.approx(0.01 / 25 / 1e4)  # the last step's
    assert checkpoint["augment_state"]["bit_generator"] == "PCG64"
    saved = load_model(run / "model")
    assert saved.preprocessing.mean.shape == saved.preprocessing.std.shape == (3, 1, 1)
    # The file alone gives the test accuracy training reported: its preprocessing is the training pipeline's.
    capsys.readouterr()
    assert main(["evaluate", str(run), "--sample", "--num-test", "100"]) == 0
    assert f"Test accuracy: {json.loads((run / 'metrics.json').read_text())['test_accuracy']:.4f}" in capsys.readouterr().out


def test_load_data_normalises_per_channel_with_the_bits_of_the_saved_preprocessing():
    from layerwise import data_utils
    from layerwise.cli.settings import resolve_settings

    config = resolve_settings({"sample": True, "num_training": 200, "num_validation": 50, "num_test": 100, "normalize": "channel"})
    data, _, preprocessing = train_command.load_data(config)
    raw = data_utils.get_embedded_data(200, 50, 100, subtract_mean=False)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(data[f"X_{part}"], preprocessing.apply(raw[f"X_{part}"], np.float32))
    assert abs(float(data["X_train"].mean())) < 1e-4 and abs(float(data["X_train"].std()) - 1) < 1e-3


def test_a_resumed_recipe_run_ends_where_an_uninterrupted_one_ends(tmp_path, monkeypatch, capsys):
    settings = [*RECIPE, "--epochs", "3"]
    assert train_small(tmp_path / "straight", *settings) == 0
    original = _interrupt_after_epoch_1(monkeypatch)
    assert train_small(tmp_path / "resumed", *settings) == 130
    monkeypatch.setattr(train_command.RunWriter, "on_epoch_end", original)
    assert main(["train", "--resume", str(tmp_path / "resumed"), "--no-progress"]) == 0
    _same_model_and_histories(tmp_path / "resumed", tmp_path / "straight")


def test_a_run_recorded_before_the_recipe_settings_existed_resumes_with_their_defaults(tmp_path, capsys):
    settings = ["--epochs", "1", "--batch-size", "50"]
    assert train_small(tmp_path / "straight", "--epochs", "2", "--batch-size", "50") == 0
    run = tmp_path / "old"
    assert train_small(run, *settings) == 0
    config = json.loads((run / "config.json").read_text())
    for key in ("lr_schedule", "augment", "normalize"):
        del config[key]
    (run / "config.json").write_text(json.dumps(config))
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    _same_model_and_histories(run, tmp_path / "straight")
    assert json.loads((run / "config.json").read_text())["normalize"] == "mean-image"


def test_an_lr_schedule_of_null_and_augment_none_mean_none(tmp_path):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"lr_schedule": {"name": "cosine"}, "augment": "crop-flip"}))
    run = tmp_path / "run"
    assert train_small(run, "--config", str(config), "--lr-schedule", "null", "--augment", "none", "--epochs", "1") == 0
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["lr_schedule"] is None and recorded["augment"] is None and recorded["lr_decay"] == 0.8


@pytest.mark.parametrize("arguments, message", [
    (["--lr-schedule", '{"name": "onecycle"}'],
     "--lr-schedule: make_schedule: spec['name'] must be one of ['constant', 'cosine', 'linear_warmup', 'one_cycle', 'step'], got 'onecycle'"),
    (["--lr-schedule", '{"name": "one_cycle", "max_lr": -1}'], "--lr-schedule: make_schedule: spec['max_lr'] must be a finite number in (0, inf], got -1.0"),
    (["--lr-schedule", '{"name": "cosine"}', "--lr-decay", "0.9"],
     "--lr-decay must be 1 with --lr-schedule, which sets every update's learning rate; got 0.9"),
    (["--update-rule", "sgd_nesterov", "--optim-config", '{"nesterov": true}'],
     "--optim-config: unknown settings ['nesterov'] for --update-rule sgd_nesterov; valid ones are ['coupled_weight_decay', 'momentum', 'weight_decay']"),
    (["--update-rule", "adamw", "--optim-config", '{"weight_decay": -1}'],
     "--optim-config: adamw: config['weight_decay'] must be a finite number in [0, inf], got -1"),
])
def test_bad_recipe_settings_name_the_option_and_leave_no_run_folder(tmp_path, capsys, arguments, message):
    assert train_small(tmp_path / "run", *arguments) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("settings, message", [
    ({"augment": "flip"}, "--augment must be one of ['crop-flip', 'none'], got 'flip'"),
    ({"normalize": "per-channel"}, "--normalize must be one of ['mean-image', 'channel'], got 'per-channel'"),
    ({"lr_schedule": "one_cycle"}, "--lr-schedule: make_schedule: spec must be a dict, got 'one_cycle'"),
])
def test_recipe_settings_from_a_config_file_are_checked(tmp_path, capsys, settings, message):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps(settings))
    assert train_small(tmp_path / "run", "--config", str(config)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# --- a preset run (the presets themselves: test_presets.py) -------------------------------------------


def test_a_preset_run_scores_with_flips_and_evaluate_reports_the_same(tmp_path, capsys):
    run = tmp_path / "best"
    assert train_small(run, "--preset", "best-cnn", "--blocks", "4,8p", "--epochs", "1", "--batch-size", "50") == 0
    config = json.loads((run / "config.json").read_text())
    assert config["test_flip"] is True and config["weight_scale"] == "pytorch" and config["num_test"] == 100
    assert load_model(run / "model").meta["test_flip"] is True
    trained = json.loads((run / "metrics.json").read_text())["test_accuracy"]
    capsys.readouterr()
    assert main(["evaluate", str(run), "--sample", "--num-test", "100"]) == 0
    assert f"Test accuracy: {trained:.4f}" in capsys.readouterr().out
    saved = load_model(run / "model")
    from layerwise import data_utils
    from layerwise.inference import class_scores

    data = data_utils.get_embedded_data(subtract_mean=False, dtype=np.float32, num_test=100)
    X = saved.preprocessing.apply(data["X_test"], np.float32)
    flipped = np.mean(np.argmax(class_scores(saved.model, X, flip=True), axis=1) == data["y_test"])
    plain = np.mean(np.argmax(class_scores(saved.model, X), axis=1) == data["y_test"])
    assert flipped == pytest.approx(trained)
    assert main(["evaluate", str(run), "--sample", "--num-test", "100", "--no-test-flip"]) == 0
    assert f"Test accuracy: {plain:.4f}" in capsys.readouterr().out


def test_resume_refuses_a_preset(tmp_path, capsys):
    run = tmp_path / "run"
    assert train_small(run, "--epochs", "1") == 0
    assert main(["train", "--resume", str(run), "--preset", "best-cnn"]) == 2
    assert "drop ['--preset']" in capsys.readouterr().err
