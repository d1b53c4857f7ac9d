"""The median stopping rule: its settings checked, its decision, and the board that makes trials wait for earlier ones."""

import threading

import pytest

from layerwise.sweep import EarlyStopping, SweepError, parse_sweep
from layerwise.sweep.stopping import Board, epoch_curve, parse_early_stopping, stop_reason

BASE = {"model": "fc", "sample": True, "num_training": 50, "num_validation": 20, "num_test": 20, "epochs": 1}
MEDIAN = EarlyStopping("median", grace_epochs=1, min_trials=3)


def test_early_stopping_forms_and_defaults():
    assert parse_early_stopping(None) is None
    assert parse_early_stopping("median") == MEDIAN
    assert parse_early_stopping({"rule": "median", "grace_epochs": 2}) == EarlyStopping("median", 2, 3)
    assert parse_early_stopping({"grace_epochs": 2, "min_trials": 1}, rule="median") == EarlyStopping("median", 2, 1)
    assert parse_early_stopping(None, rule="median") == MEDIAN  # --early-stopping median on a file without it
    assert parse_early_stopping({"rule": "median"}, rule="none") is None
    spec = parse_sweep({"base": BASE, "space": {}, "early_stopping": {"min_trials": 4}})
    assert spec.early_stopping == EarlyStopping("median", 1, 4)
    assert spec.to_json()["early_stopping"] == {"rule": "median", "grace_epochs": 1, "min_trials": 4}
    assert parse_sweep(spec.to_json()) == spec
    assert parse_sweep({"base": BASE, "space": {}}).to_json()["early_stopping"] is None


BAD = [
    ({"rule": "asha"}, "early_stopping.rule must be one of ['median'] (or none), got 'asha'"),
    ("hyperband", "early_stopping.rule must be one of ['median'] (or none), got 'hyperband'"),
    ({"grace_epochs": 0}, "early_stopping.grace_epochs must be a positive integer, got 0"),
    ({"grace_epochs": 1.5}, "early_stopping.grace_epochs must be a positive integer, got 1.5"),
    ({"min_trials": True}, "early_stopping.min_trials must be a positive integer, got True"),
    ({"patience": 2}, "early_stopping: unknown keys ['patience']; valid ones are ['rule', 'grace_epochs', 'min_trials']"),
    ([1], "early_stopping must be null, a rule's name or a JSON object, got [1]"),
]


@pytest.mark.parametrize("value, message", BAD, ids=[message[:40] for _, message in BAD])
def test_bad_early_stopping_is_refused_naming_the_key(value, message):
    with pytest.raises(SweepError) as raised:
        parse_sweep({"base": BASE, "space": {}, "early_stopping": value})
    assert str(raised.value) == message


def test_epoch_curve_drops_the_check_after_the_first_iteration():
    assert epoch_curve([0.1, 0.2, 0.3], 2) == [0.2, 0.3]  # checks after iteration 1, epoch 1, epoch 2
    assert epoch_curve([0.2, 0.3], 2) == [0.2, 0.3]  # one iteration per epoch: the first check ends epoch 1
    assert epoch_curve([0.1], 0) == []


def test_a_trial_below_the_median_of_the_earlier_trials_stops():
    earlier = [[0.3, 0.4], [0.2, 0.5], [0.25, 0.3]]
    assert stop_reason([0.1, 0.2], earlier, 1, MEDIAN, "validation accuracy") == (
        "stopped after epoch 1: best validation accuracy 0.1000 is below the median 0.2500 of the 3 earlier trials that reached it"
    )
    assert stop_reason([0.25, 0.2], earlier, 1, MEDIAN, "validation accuracy") == ""  # at the median: goes on
    # Each curve counts with its best so far: at epoch 2 the median is of 0.4, 0.5, 0.3.
    assert stop_reason([0.1, 0.39], earlier, 2, MEDIAN, "validation accuracy").startswith("stopped after epoch 2")
    assert stop_reason([0.1, 0.4], earlier, 2, MEDIAN, "validation accuracy") == ""
    assert stop_reason([0.6, 0.1], earlier, 2, MEDIAN, "validation accuracy") == ""  # its best is 0.6


def test_the_grace_period_and_the_earlier_trials_needed():
    earlier = [[0.3, 0.4], [0.2], [0.25, 0.3]]  # trial 1 ended (stopped or diverged) after epoch 1
    assert stop_reason([0.1], earlier, 1, EarlyStopping("median", 2, 3), "validation accuracy") == ""  # in the grace period
    assert stop_reason([0.1, 0.1], earlier, 2, MEDIAN, "validation accuracy") == ""  # only 2 earlier trials reached epoch 2
    two = EarlyStopping("median", 1, 2)
    assert "median 0.3500 of the 2 earlier" in stop_reason([0.1, 0.1], earlier, 2, two, "validation accuracy")
    assert stop_reason([0.1], [], 1, EarlyStopping("median", 1, 1), "validation accuracy") == ""


def test_the_board_waits_for_every_earlier_trial_to_reach_the_epoch_or_end():
    board = Board(EarlyStopping("median", 1, 2), "validation accuracy")
    board.report(0, [0.3])
    board.report(2, [0.1])
    assert board.decide(2, 1, timeout=0.01) is None  # trial 1 has not reported epoch 1
    assert board.decide(0, 1, timeout=0.01) == ""  # nothing before trial 0

    answers = []
    waiting = threading.Thread(target=lambda: answers.append(board.decide(2, 1, timeout=30)))
    waiting.start()
    board.report(1, [], ended=True)  # trial 1 failed before epoch 1: it does not count, and is waited for no longer
    waiting.join(timeout=30)
    assert answers == [""]  # one earlier trial reached epoch 1, fewer than min_trials

    board.report(1, [0.5, 0.6])  # a longer curve is kept, a shorter one never replaces it
    board.report(1, [0.5])
    reason = board.decide(2, 1, timeout=0.01)
    assert reason.startswith("stopped after epoch 1: best validation accuracy 0.1000 is below the median 0.4000 of the 2")
