"""Sweeps on the local back-end: results as trials end, failures, resumption, the best run folder,
trials that ``layerwise train --config`` repeats to the bit, and bad trials stopped early."""

import csv
import json

import numpy as np
import pytest
from threadpoolctl import threadpool_limits
from tests.sweep.helpers import MIXED, RANDOM, STOPPING, assert_the_bad_trial_stopped, outcome, spec

from layerwise.cli import main
from layerwise.sweep import SweepError, run_sweep
from layerwise.sweep.results import LOG, read_records


def test_a_diverging_and_a_failing_trial_are_recorded_and_the_sweep_goes_on(tmp_path):
    result = run_sweep(spec(MIXED), tmp_path / "s", workers=2, progress=None)
    by_trial = {record["trial"]: record for record in result.records}
    assert [by_trial[i]["status"] for i in range(4)] == ["ok", "diverged", "failed", "failed"]
    assert by_trial[1]["error"].startswith("the loss became nan at iteration")
    assert by_trial[3]["error"] == "ValueError: FullyConnectedNet: hidden_dims[0] must be >= 1, got 0"
    assert by_trial[3]["best_val_acc"] is None
    assert [record["status"] for record in result.records] == sorted(
        (record["status"] for record in result.records), key=["ok", "diverged", "failed"].index
    )
    with open(tmp_path / "s" / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:6] == ["rank", "trial", "status", "seed", "hidden_dims", "learning_rate"]
    assert {"best_val_acc", "best_train_acc", "error", "wall_seconds"} <= set(rows[0]) and "val_acc_curve" not in rows[0]
    assert [int(row["trial"]) for row in rows] == [record["trial"] for record in result.records]
    assert json.loads((tmp_path / "s" / "results.json").read_text())["trials"] == result.records
    assert result.best["trial"] == result.records[0]["trial"] and result.best["status"] == "ok"


def test_the_best_trial_is_a_run_folder_that_train_reproduces_to_the_bit(tmp_path, capsys):
    result = run_sweep(spec(RANDOM), tmp_path / "s", workers=2, progress=None)
    best = tmp_path / "s" / "best"
    assert json.loads((best / "trial.json").read_text())["trial"] == result.best["trial"]
    assert main(["evaluate", str(best)]) == 0
    assert "Test accuracy" in capsys.readouterr().out

    config = tmp_path / "trial.json"
    config.write_text(json.dumps(result.best["config"]))
    run = tmp_path / "run"
    threads = result.best["threads"]  # BLAS's and layerwise's: OPENBLAS_NUM_THREADS=T layerwise train --threads T
    with threadpool_limits(threads):
        assert main(["train", "--config", str(config), "--run-dir", str(run), "--no-progress", "--threads", str(threads)]) == 0
    with np.load(best / "model.npz") as swept, np.load(run / "model.npz") as trained:
        assert sorted(swept.files) == sorted(trained.files)
        for name in swept.files:
            np.testing.assert_array_equal(swept[name], trained[name], err_msg=name)
    assert json.loads((run / "metrics.json").read_text())["best_val_acc"] == result.best["best_val_acc"]


def test_resume_runs_only_the_trials_not_recorded_and_ends_as_an_uninterrupted_sweep(tmp_path):
    whole = run_sweep(spec(RANDOM), tmp_path / "whole", workers=1, progress=None)

    def interrupt_after_two(record, seen=[]):
        seen.append(record["trial"])
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec(RANDOM), tmp_path / "cut", workers=1, progress=None, on_result=interrupt_after_two)
    assert sorted(read_records(tmp_path / "cut")) == [0, 1]
    with open(tmp_path / "cut" / LOG, "a") as log:
        log.write('{"trial": 2, "status": "ok"')  # a write cut short by a crash: ignored, trial 2 runs again
    ran = []
    resumed = run_sweep(None, tmp_path / "cut", resume=True, workers=1, progress=None, on_result=lambda r: ran.append(r["trial"]))
    assert sorted(ran) == [2, 3] and resumed.ran == 2
    assert outcome(resumed) == outcome(whole)

    extended = run_sweep(None, tmp_path / "cut", resume=True, trials=5, workers=1, progress=None)
    assert extended.ran == 1 and outcome(extended)[0]["trial"] in range(5) and len(extended.records) == 5


def test_a_new_sweep_refuses_a_folder_that_holds_files(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "x").write_text("")
    with pytest.raises(SweepError, match="already holds files; use --resume"):
        run_sweep(spec(RANDOM), tmp_path / "s", progress=None)


def test_cli_sweep_writes_the_folder_and_prints_the_ranking(tmp_path, capsys):
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps(RANDOM))
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out), "--trials", "2", "--epochs", "1", "--seed", "9"]) == 0
    captured = capsys.readouterr()
    assert "2 trials (2 ok, 0 diverged, 0 failed)" in captured.out and f"layerwise evaluate {out / 'best'}" in captured.out
    assert "[2/2] trial" in captured.err
    recorded = json.loads((out / "sweep.json").read_text())
    assert recorded["seed"] == 9 and recorded["trials"] == 2 and recorded["base"]["epochs"] == 1
    assert {"results.csv", "results.json", "trials.jsonl", "best", "sweep.json"} <= {p.name for p in out.iterdir()}
    assert main(["sweep", "--resume", str(out), "--epochs", "3"]) == 2
    assert "--resume continues the sweep recorded in" in capsys.readouterr().err
    assert main(["sweep", "--resume", str(out), "--quiet"]) == 0
    assert "0 run in" in capsys.readouterr().out


def test_a_clearly_bad_trial_stops_early_and_the_others_run_to_the_end(tmp_path):
    result = run_sweep(spec(STOPPING), tmp_path / "s", workers=2, threads=1, progress=None)
    assert_the_bad_trial_stopped(result)
    recorded = json.loads((tmp_path / "s" / "results.json").read_text())
    assert recorded["early_stopping"] == {"rule": "median", "grace_epochs": 1, "min_trials": 3}
    one_at_a_time = run_sweep(spec(STOPPING), tmp_path / "one", workers=1, threads=1, progress=None)
    assert outcome(one_at_a_time) == outcome(result)  # what is stopped does not depend on timing (one thread each)
    without = run_sweep(spec({**STOPPING, "early_stopping": None}), tmp_path / "without", workers=2, threads=1, progress=None)
    assert [r["status"] for r in without.records] == ["ok"] * 4
    full = {r["trial"]: r for r in without.records}[3]
    assert full["epochs_done"] == 3 and full["val_acc_curve"][:1] == {r["trial"]: r for r in result.records}[3]["val_acc_curve"]


def test_a_stopped_trial_is_its_config_trained_for_the_epochs_it_ran(tmp_path):
    result = run_sweep(spec(STOPPING), tmp_path / "s", workers=2, threads=1, progress=None)
    stopped = next(record for record in result.records if record["status"] == "stopped")
    config = tmp_path / "trial.json"
    config.write_text(json.dumps(stopped["config"]))
    run = tmp_path / "run"
    with threadpool_limits(1):
        assert main(["train", "--config", str(config), "--epochs", str(stopped["epochs_done"]), "--run-dir", str(run),
                     "--no-progress", "--threads", "1"]) == 0  # fmt: skip
    with open(run / "epochs.csv", newline="") as handle:
        val_acc = [float(row["val_acc"]) for row in csv.DictReader(handle)]
    assert val_acc[1:] == stopped["val_acc_curve"]


def test_a_resumed_sweep_stops_the_same_trials_and_reruns_none(tmp_path):
    whole = run_sweep(spec(STOPPING), tmp_path / "whole", workers=2, threads=1, progress=None)

    def interrupt_after_three(record):
        if record["trial"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec(STOPPING), tmp_path / "cut", workers=1, threads=1, progress=None, on_result=interrupt_after_three)
    assert sorted(read_records(tmp_path / "cut")) == [0, 1, 2]
    ran = []
    resumed = run_sweep(None, tmp_path / "cut", resume=True, workers=2, threads=1, progress=None,
                        on_result=lambda r: ran.append(r["trial"]))  # fmt: skip
    assert ran == [3]  # stopped by the median of the recorded trials' curves, as in the uninterrupted sweep
    assert outcome(resumed) == outcome(whole)
    again = run_sweep(None, tmp_path / "cut", resume=True, threads=1, progress=None)  # the stopped trial is recorded: nothing runs
    assert again.ran == 0 and outcome(again) == outcome(whole)


def test_cli_early_stopping_option_is_recorded_and_fixed_on_resume(tmp_path, capsys):
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps({key: value for key, value in STOPPING.items() if key != "early_stopping"}))
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out), "--early-stopping", "median", "--workers", "2", "--threads", "1"]) == 0
    captured = capsys.readouterr()
    assert "4 trials (3 ok, 1 stopped early, 0 diverged, 0 failed)" in captured.out
    assert "trial 3 stopped: best_val_acc" in captured.err and "stopped 1, best" in captured.err
    assert json.loads((out / "sweep.json").read_text())["early_stopping"] == {"rule": "median", "grace_epochs": 1, "min_trials": 3}
    assert main(["sweep", "--resume", str(out), "--early-stopping", "none"]) == 2
    assert "drop ['--early-stopping']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sweep", str(sweep), "--out", str(tmp_path / "bad"), "--early-stopping", "asha"])
    assert "invalid choice: 'asha'" in capsys.readouterr().err


def test_workers_map_the_data_read_only_from_shared_memory_that_is_freed_after(monkeypatch):
    from multiprocessing.shared_memory import SharedMemory

    from layerwise.sweep import local

    data = {"X_train": np.arange(12, dtype=np.float32).reshape(3, 4), "y_train": np.arange(3), "empty": np.zeros((0, 2))}
    monkeypatch.setattr(local, "_blocks", [])
    with local._shared(data) as specs:
        local._receive_data(specs)  # as a worker process does when it starts
        try:
            for key, array in data.items():
                np.testing.assert_array_equal(local._data[key], array)
                assert local._data[key].dtype == array.dtype and not local._data[key].flags.writeable
        finally:
            for block in local._blocks:
                block.close()
            local._data = None
    with pytest.raises(FileNotFoundError):
        SharedMemory(name=specs["X_train"][0])


def test_without_room_in_shared_memory_the_workers_get_copies(monkeypatch, tmp_path):
    from layerwise.sweep import local

    data = {"X_train": np.arange(12, dtype=np.float32).reshape(3, 4)}
    assert local.shared_memory_fits(data["X_train"].nbytes)
    monkeypatch.setattr(local, "shared_memory_fits", lambda nbytes: False)
    monkeypatch.setattr(local, "_blocks", [])
    with local._shared(data) as sent:
        assert sent is data
        local._receive_data(sent)
        assert local._data["X_train"] is data["X_train"] and local._blocks == []
    local._data = None
    # and a whole sweep runs that way to the same results
    copied = run_sweep(spec(RANDOM), tmp_path / "copies", workers=2, progress=None)
    monkeypatch.undo()
    assert outcome(copied) == outcome(run_sweep(spec(RANDOM), tmp_path / "shared", workers=2, progress=None))
