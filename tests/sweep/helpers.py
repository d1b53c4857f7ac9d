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
    keys = ("rank", "trial", "status", "seed", "best_val_acc", "final_val_acc", "final_train_acc", "epochs_done", "error")
    return [{key: record[key] for key in keys} for record in result.records]
