"""Every update rule over one table: reference values, dtype, state, and a minimised quadratic."""

import numpy as np
import pytest

from layerwise import optim

N, D = 4, 5


def _inputs():
    w = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
    dw = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
    return w, dw


def _state(start, stop):
    return np.linspace(start, stop, num=N * D).reshape(N, D)


# name, config, expected first row of next_w, expected first row of each state array
REFERENCE = [
    ("sgd", {"learning_rate": 1e-3}, [-0.3994, -0.34682105, -0.29424211, -0.24166316, -0.18908421], {}),
    (
        "sgd_momentum",
        {"learning_rate": 1e-3, "velocity": _state(0.6, 0.9)},
        [0.1406, 0.20738947, 0.27417895, 0.34096842, 0.40775789],
        {"velocity": [0.5406, 0.55475789, 0.56891579, 0.58307368, 0.59723158]},
    ),
    (
        "rmsprop",
        {"learning_rate": 1e-2, "cache": _state(0.6, 0.9)},
        [-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247],
        {"cache": [0.5976, 0.6126277, 0.6277108, 0.64284931, 0.65804321]},
    ),
    (
        "adam",
        {"learning_rate": 1e-2, "m": _state(0.6, 0.9), "v": _state(0.7, 0.5), "t": 5},
        [-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
        {"m": [0.48, 0.49947368, 0.51894737, 0.53842105, 0.55789474], "v": [0.69966, 0.68908382, 0.67851319, 0.66794809, 0.65738853]},
    ),
]


def _reference_update(name, w, dw, config):
    """Each rule written out independently, for the whole array."""
    if name == "sgd":
        return w - config["learning_rate"] * dw, {}
    if name == "sgd_momentum":
        velocity = 0.9 * config["velocity"] - config["learning_rate"] * dw
        return w + velocity, {"velocity": velocity}
    if name == "rmsprop":
        cache = 0.99 * config["cache"] + 0.01 * dw**2
        return w - config["learning_rate"] * dw / (np.sqrt(cache) + 1e-8), {"cache": cache}
    m = 0.9 * config["m"] + 0.1 * dw
    v = 0.999 * config["v"] + 0.001 * dw**2
    t = config["t"] + 1
    step = config["learning_rate"] * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return w - step, {"m": m, "v": v}


@pytest.mark.parametrize("name, config, first_row, state_rows", REFERENCE, ids=[r[0] for r in REFERENCE])
def test_reference_update(name, config, first_row, state_rows):
    w, dw = _inputs()
    expected_w, expected_state = _reference_update(name, w, dw, config)
    next_w, next_config = optim.UPDATE_RULES[name](w, dw, {k: (val.copy() if isinstance(val, np.ndarray) else val) for k, val in config.items()})
    np.testing.assert_allclose(next_w[0], first_row, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(next_w, expected_w, rtol=1e-12)
    for key, row in state_rows.items():
        np.testing.assert_allclose(next_config[key][0], row, rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(next_config[key], expected_state[key], rtol=1e-12)
    if name == "adam":
        assert next_config["t"] == 6


@pytest.mark.parametrize("name", sorted(optim.UPDATE_RULES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(name, dtype):
    w, dw = (a.astype(dtype) for a in _inputs())
    config = None
    for _ in range(3):
        w, config = optim.UPDATE_RULES[name](w, dw, config)
        assert w.dtype == dtype
        for value in config.values():
            if isinstance(value, np.ndarray):
                assert value.dtype == dtype


@pytest.mark.parametrize(
    "name, learning_rate, steps",
    [("sgd", 0.1, 300), ("sgd_momentum", 0.02, 300), ("rmsprop", 1e-2, 600), ("adam", 5e-2, 600)],
)
def test_minimises_a_quadratic(name, learning_rate, steps):
    rng = np.random.default_rng(0)
    target = rng.normal(size=(3, 4))
    curvature = rng.uniform(0.5, 2.0, size=(3, 4))
    w = np.zeros((3, 4))
    config = {"learning_rate": learning_rate}
    start = np.abs(w - target).max()
    for _ in range(steps):
        w, config = optim.UPDATE_RULES[name](w, curvature * (w - target), config)
    assert np.abs(w - target).max() < 0.02 * max(start, 1.0)


@pytest.mark.parametrize("name, defaults", [
    ("sgd", {"learning_rate": 1e-2}),
    ("sgd_momentum", {"learning_rate": 1e-2, "momentum": 0.9}),
    ("rmsprop", {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8}),
    ("adam", {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 1}),
])
def test_defaults(name, defaults):
    w, dw = _inputs()
    _, config = optim.UPDATE_RULES[name](w, dw)
    for key, value in defaults.items():
        assert config[key] == value


@pytest.mark.parametrize("name", sorted(optim.UPDATE_RULES))
def test_the_settings_table_lists_exactly_what_each_rule_keeps(name):
    w, dw = _inputs()
    _, config = optim.UPDATE_RULES[name](w, dw)
    counter = {"t"} if name == "adam" else set()
    assert set(config) == set(optim.HYPERPARAMETERS[name]) | set(optim.STATE[name]) | counter
    assert {key: config[key] for key in optim.HYPERPARAMETERS[name]} == optim.HYPERPARAMETERS[name]


def test_unknown_rule_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"update_rule must be one of \['adam', 'rmsprop', 'sgd', 'sgd_momentum'\], got 'sgd_nesterov'"):
        optim.get_update_rule("sgd_nesterov")


def test_bad_hyperparameter_leaves_config_untouched():
    w, dw = _inputs()
    config = {"learning_rate": 1e-3, "momentum": -0.5}
    with pytest.raises(ValueError, match=r"sgd_momentum: config\['momentum'\] must be a finite number in \[0, 1\), got -0.5"):
        optim.sgd_momentum(w, dw, config)
    assert config == {"learning_rate": 1e-3, "momentum": -0.5}
