"""Learning-rate schedules: hand-computed values, PyTorch's schedulers, and bad specs."""

import json
import math

import numpy as np
import pytest

from layerwise import schedules
from layerwise.schedules import make_schedule

# spec, base_lr, total_iterations, {iteration: expected rate}, worked out by hand
HAND = [
    ({"name": "constant"}, 0.1, 10, {0: 0.1, 9: 0.1, 50: 0.1}),
    ({"name": "step", "every": 3, "factor": 0.5}, 1.0, 10, {0: 1.0, 2: 1.0, 3: 0.5, 5: 0.5, 6: 0.25, 9: 0.125}),
    ({"name": "step", "boundaries": [2, 5]}, 1.0, 10, {0: 1.0, 1: 1.0, 2: 0.1, 4: 0.1, 5: 0.01, 9: 0.01}),
    ({"name": "linear_warmup", "warmup_iterations": 4, "start_factor": 0.2}, 1.0, 10, {0: 0.2, 1: 0.4, 2: 0.6, 4: 1.0, 9: 1.0}),
    ({"name": "cosine"}, 1.0, 4, {0: 1.0, 1: (1 + math.cos(math.pi / 4)) / 2, 2: 0.5, 4: 0.0, 7: 0.0}),
    ({"name": "cosine", "min_lr": 0.2, "warmup_iterations": 2, "warmup_start_factor": 0.5}, 1.0, 6,
     {0: 0.5, 1: 0.75, 2: 1.0, 4: 0.6, 6: 0.2}),
    # one cycle over 10 steps: up from 0.2 / 25 over steps 0..2 (the rise ends at 0.3 * 10 - 1), down over 2..9
    ({"name": "one_cycle", "max_lr": 0.2, "pct_start": 0.3}, 1.0, 10,
     {0: 0.008, 1: 0.104, 2: 0.2, 9: 0.008 / 1e4, 20: 0.008 / 1e4}),
    ({"name": "one_cycle", "anneal_strategy": "linear", "pct_start": 0.5, "div_factor": 10, "final_div_factor": 2}, 1.0, 5,
     {0: 0.1, 1: 0.1 + 0.9 / 1.5, 2: 1.0 - 0.95 * 0.5 / 2.5, 4: 0.05}),
]


@pytest.mark.parametrize("spec, base_lr, total, expected", HAND, ids=[f"{h[0]['name']}-{i}" for i, h in enumerate(HAND)])
def test_hand_computed_values(spec, base_lr, total, expected):
    schedule = make_schedule(spec, base_lr, total)
    for iteration, rate in expected.items():
        assert schedule(iteration) == pytest.approx(rate, rel=1e-12, abs=1e-15), iteration


def test_one_cycle_peaks_at_max_lr_where_the_rise_ends():
    schedule = make_schedule({"name": "one_cycle"}, 0.2, 100)  # max_lr defaults to the base rate
    rates = [schedule(t) for t in range(100)]
    assert int(np.argmax(rates)) == 29 and rates[29] == pytest.approx(0.2, rel=1e-15)
    assert rates[0] == pytest.approx(0.2 / 25) and rates[-1] == pytest.approx(0.2 / 25 / 1e4)
    assert all(a <= b for a, b in zip(rates[:30], rates[1:30])) and all(a >= b for a, b in zip(rates[29:], rates[30:]))


def test_a_spec_survives_json_and_gives_the_same_rates():
    spec = {"name": "one_cycle", "max_lr": 0.2, "three_phase": True}
    again = json.loads(json.dumps(spec))
    first, second = make_schedule(spec, 0.1, 50), make_schedule(again, 0.1, 50)
    assert [first(t) for t in range(60)] == [second(t) for t in range(60)]


# --------------------------------------------------------------------------- PyTorch's schedulers

def _torch_rates(make, base_lr, steps):
    torch = pytest.importorskip("torch")
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    scheduler = make(torch.optim.lr_scheduler, optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


TORCH = [
    ({"name": "one_cycle", "max_lr": 0.2}, 0.05, 157, lambda s, o: s.OneCycleLR(o, max_lr=0.2, total_steps=157)),
    ({"name": "one_cycle", "pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0, "three_phase": True}, 0.3, 96,
     lambda s, o: s.OneCycleLR(o, max_lr=0.3, total_steps=96, pct_start=0.25, div_factor=10.0, final_div_factor=100.0,
                               three_phase=True, cycle_momentum=False)),
    ({"name": "one_cycle", "anneal_strategy": "linear"}, 0.1, 40,
     lambda s, o: s.OneCycleLR(o, max_lr=0.1, total_steps=40, anneal_strategy="linear", cycle_momentum=False)),
    ({"name": "step", "every": 7, "factor": 0.5}, 0.1, 40, lambda s, o: s.StepLR(o, step_size=7, gamma=0.5)),
    ({"name": "step", "boundaries": [5, 12, 30]}, 0.1, 40, lambda s, o: s.MultiStepLR(o, milestones=[5, 12, 30], gamma=0.1)),
    ({"name": "linear_warmup", "warmup_iterations": 10}, 0.1, 30, lambda s, o: s.LinearLR(o, total_iters=10)),
    ({"name": "cosine", "min_lr": 1e-3}, 0.1, 50, lambda s, o: s.CosineAnnealingLR(o, T_max=50, eta_min=1e-3)),
]


@pytest.mark.parametrize("spec, base_lr, steps, make", TORCH, ids=[f"{t[0]['name']}-{i}" for i, t in enumerate(TORCH)])
def test_matches_pytorch(spec, base_lr, steps, make):
    expected = _torch_rates(make, base_lr, steps)
    schedule = make_schedule(spec, base_lr, steps)
    # Closed forms against PyTorch's recursive updates: equal to rounding.
    np.testing.assert_allclose([schedule(t) for t in range(steps)], expected, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- bad specs

BAD = [
    ("not a dict", 0.1, 10, TypeError, "make_schedule: spec must be a dict, got 'not a dict'"),
    ({"name": "cosinus"}, 0.1, 10, ValueError,
     "make_schedule: spec['name'] must be one of ['constant', 'cosine', 'linear_warmup', 'one_cycle', 'step'], got 'cosinus'"),
    ({}, 0.1, 10, ValueError, "spec['name'] must be one of"),
    ({"name": "one_cycle", "max_lr": 0.2, "epochs": 8}, 0.1, 10, ValueError,
     "make_schedule: spec has unknown entries ['epochs'] for schedule 'one_cycle'; valid ones are ['anneal_strategy', "),
    ({"name": "constant", "lr": 1}, 0.1, 10, ValueError, "valid ones are none besides 'name'"),
    ({"name": "one_cycle", "max_lr": -0.2}, 0.1, 10, ValueError, "make_schedule: spec['max_lr'] must be a finite number in (0, inf], got -0.2"),
    ({"name": "one_cycle", "pct_start": 1.5}, 0.1, 10, ValueError, "spec['pct_start'] must be a finite number in [0, 1], got 1.5"),
    ({"name": "one_cycle", "three_phase": 1}, 0.1, 10, TypeError, "spec['three_phase'] must be true or false, got 1 (int)"),
    ({"name": "one_cycle", "anneal_strategy": "cosine"}, 0.1, 10, ValueError, "spec['anneal_strategy'] must be one of ['cos', 'linear'], got 'cosine'"),
    ({"name": "step"}, 0.1, 10, ValueError, "spec for schedule 'step' must contain one of 'every' and 'boundaries'"),
    ({"name": "step", "every": 2, "boundaries": [3]}, 0.1, 10, ValueError, "must contain one of 'every' and 'boundaries'"),
    ({"name": "step", "every": 0}, 0.1, 10, ValueError, "spec['every'] must be >= 1, got 0"),
    ({"name": "step", "every": 2.5}, 0.1, 10, TypeError, "spec['every'] must be an int, got 2.5 (float)"),
    ({"name": "step", "boundaries": [4, 4]}, 0.1, 10, ValueError, "spec['boundaries'] must be strictly increasing, got [4, 4]"),
    ({"name": "step", "boundaries": []}, 0.1, 10, TypeError, "spec['boundaries'] must be a non-empty list of iterations"),
    ({"name": "step", "every": 2, "factor": 2.0}, 0.1, 10, ValueError, "spec['factor'] must be a finite number in (0, 1], got 2.0"),
    ({"name": "linear_warmup"}, 0.1, 10, ValueError, "spec for schedule 'linear_warmup' must contain 'warmup_iterations'"),
    ({"name": "cosine", "warmup_iterations": 10}, 0.1, 10, ValueError,
     "spec['warmup_iterations'] must be fewer than the run's 10 iterations, got 10"),
    ({"name": "constant"}, 0.0, 10, ValueError, "make_schedule: base_lr must be a finite number in (0, inf], got 0.0"),
    ({"name": "constant"}, 0.1, 0, ValueError, "make_schedule: total_iterations must be >= 1, got 0"),
]


@pytest.mark.parametrize("spec, base_lr, total, error, message", BAD)
def test_bad_specs_are_refused_naming_the_entry(spec, base_lr, total, error, message):
    with pytest.raises(error) as caught:
        make_schedule(spec, base_lr, total)
    assert message in str(caught.value)


def test_check_spec_fills_in_the_defaults_without_a_run_length():
    assert schedules.check_spec({"name": "one_cycle", "max_lr": 0.2}) == {
        "max_lr": 0.2, "pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4, "three_phase": False,
        "anneal_strategy": "cos",
    }  # fmt: skip
