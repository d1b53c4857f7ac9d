"""sweep.png: ok trials by their metric, stopped ones as hollow circles, failed ones as crosses."""

import pytest

from layerwise.sweep.plot import most_varied, plot_sweep
from layerwise.sweep.space import parse_space

pytest.importorskip("matplotlib")

SPACE = parse_space({"learning_rate": {"loguniform": [1e-9, 1e-1]}, "reg": {"values": [0.0, 0.1]}}, ["learning_rate", "reg"])
RECORDS = [
    {"trial": 0, "status": "ok", "learning_rate": 1e-3, "reg": 0.0, "best_val_acc": 0.4},
    {"trial": 1, "status": "ok", "learning_rate": 1e-2, "reg": 0.1, "best_val_acc": 0.3},
    {"trial": 2, "status": "stopped", "learning_rate": 1e-9, "reg": 0.0, "best_val_acc": 0.1},
    {"trial": 3, "status": "diverged", "learning_rate": 1e-1, "reg": 0.1, "best_val_acc": None},
]


def test_most_varied_orders_by_distinct_values():
    assert most_varied(RECORDS, SPACE) == ["learning_rate", "reg"]
    assert most_varied(RECORDS, SPACE, count=1) == ["learning_rate"]


@pytest.mark.parametrize("keys", [["learning_rate", "reg"], ["learning_rate"]], ids=["two settings", "one setting"])
def test_a_plot_with_ok_stopped_and_diverged_trials_is_written(tmp_path, keys):
    space = {key: SPACE[key] for key in keys}
    records = [{key: value for key, value in record.items() if key not in SPACE or key in keys} for record in RECORDS]
    assert plot_sweep(tmp_path / "sweep.png", records, space, "best_val_acc")
    assert (tmp_path / "sweep.png").stat().st_size > 0
