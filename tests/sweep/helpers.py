"""Small sweeps on the embedded sample, shared by the local and the Ray back-end's tests."""

from layerwise.sweep import parse_sweep

TINY = {"model": "fc", "hidden_dims": [20], "normalization": "none", "sample": True, "num_training": 50,
        "num_validation": 20, "num_test": 20, "epochs": 2, "batch_size": 25, "update_rule": "sgd"}  # fmt: skip

# Trial 0 trains, trial 1 diverges (a huge step), trials 2 and 3 fail (a hidden layer of size 0).
MIXED = {
    "base": {**TINY, "weight_scale": 1.0},
    "space": {"hidden_dims": {"values": [[20], [0]]}, "learning_rate": {"values": [1e-2, 1e4]}},
    "seed": 1,
}
RANDOM = {"base": TINY, "space": {"learning_rate": {"loguniform": [1e-3, 1e-1]}, "weight_scale": {"uniform": [1e-2, 1e-1]}},
          "trials": 4, "seed": 5}  # fmt: skip


def spec(document, **overrides):
    return parse_sweep(document, overrides)


def outcome(result):
    """What must not depend on the back-end: the ranking and every trial's metrics."""
    keys = ("rank", "trial", "status", "seed", "best_val_acc", "final_val_acc", "best_train_acc", "final_train_acc", "epochs_done",
            "val_acc_curve", "train_acc_curve", "error")
    return [{key: record[key] for key in keys} for record in result.records]


# Trials 0-2 learn (adam, three epochs on 500 images); trial 3's step is 1e-9, so it stays at chance and is
# stopped after epoch 1 by the median of the three before it.
STOPPING = {
    "base": {**TINY, "hidden_dims": [50], "num_training": 500, "num_validation": 100, "epochs": 3, "batch_size": 50,
             "update_rule": "adam"},
    "space": {"learning_rate": {"values": [1e-3, 2e-3, 5e-4, 1e-9]}},
    "seed": 3,
    "early_stopping": {"rule": "median", "grace_epochs": 1, "min_trials": 3},
}  # fmt: skip


def assert_the_bad_trial_stopped(result):
    """STOPPING's outcome: the learning trials ran their three epochs, the one with a step of 1e-9 stopped after one."""
    by_trial = {record["trial"]: record for record in result.records}
    assert [(by_trial[i]["status"], by_trial[i]["epochs_done"]) for i in range(4)] == [("ok", 3)] * 3 + [("stopped", 1)]
    bad = by_trial[3]
    assert bad["error"].startswith("stopped after epoch 1: best validation accuracy") and "of the 3 earlier trials" in bad["error"]
    assert len(bad["val_acc_curve"]) == 1 and bad["best_val_acc"] == bad["val_acc_curve"][0]
    assert all(len(by_trial[i]["val_acc_curve"]) == 3 for i in range(3))
    assert bad["val_acc_curve"][0] < min(by_trial[i]["val_acc_curve"][0] for i in range(3))
    assert [record["status"] for record in result.records] == ["ok"] * 3 + ["stopped"]  # ranked after every ok trial
    assert result.best["status"] == "ok"
