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
    (
        "sgd_nesterov",
        {"learning_rate": 1e-2, "momentum_buffer": _state(0.6, 0.9), "weight_decay": 0.1, "coupled_weight_decay": 0.05},
        [-0.39268, -0.34127895, -0.28987789, -0.23847684, -0.18707579],
        {"momentum_buffer": [-0.08, -0.01052632, 0.05894737, 0.12842105, 0.19789474]},
    ),
    (
        "adamw",
        {"learning_rate": 1e-2, "m": _state(0.6, 0.9), "v": _state(0.7, 0.5), "t": 5},
        [-0.40090747, -0.34832713, -0.29574756, -0.24316878, -0.19059082],
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
    if name == "sgd_nesterov":
        lr, decay, coupled = config["learning_rate"], config["weight_decay"], config["coupled_weight_decay"]
        gradient = dw + coupled * w
        buffer = 0.9 * config["momentum_buffer"] + gradient
        return w - lr * decay * w - lr * (gradient + 0.9 * buffer), {"momentum_buffer": buffer}
    if name == "adamw":
        w = w * (1 - config["learning_rate"] * 1e-2)
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
    if name in ("adam", "adamw"):
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
    [("sgd", 0.1, 300), ("sgd_momentum", 0.02, 300), ("rmsprop", 1e-2, 600), ("adam", 5e-2, 600),
     ("sgd_nesterov", 0.02, 300), ("adamw", 5e-2, 600)],
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
    ("sgd_nesterov", {"learning_rate": 1e-2, "momentum": 0.9, "weight_decay": 0.0, "coupled_weight_decay": 0.0}),
    ("adamw", {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "weight_decay": 1e-2, "t": 1}),
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
    counter = {"t"} if name in ("adam", "adamw") else set()
    assert set(config) == set(optim.HYPERPARAMETERS[name]) | set(optim.STATE[name]) | counter
    assert {key: config[key] for key in optim.HYPERPARAMETERS[name]} == optim.HYPERPARAMETERS[name]


def test_unknown_rule_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"update_rule must be one of \['adam', 'adamw', 'rmsprop', 'sgd', 'sgd_momentum', 'sgd_nesterov'\], got 'nesterov'"):
        optim.get_update_rule("nesterov")


def test_bad_hyperparameter_leaves_config_untouched():
    w, dw = _inputs()
    config = {"learning_rate": 1e-3, "momentum": -0.5}
    with pytest.raises(ValueError, match=r"sgd_momentum: config\['momentum'\] must be a finite number in \[0, 1\), got -0.5"):
        optim.sgd_momentum(w, dw, config)
    assert config == {"learning_rate": 1e-3, "momentum": -0.5}


@pytest.mark.parametrize("name, key", [("sgd_nesterov", "weight_decay"), ("sgd_nesterov", "coupled_weight_decay"), ("adamw", "weight_decay")])
def test_negative_weight_decay_is_refused(name, key):
    w, dw = _inputs()
    with pytest.raises(ValueError, match=rf"{name}: config\['{key}'\] must be a finite number in \[0, inf\], got -0.1"):
        optim.UPDATE_RULES[name](w, dw, {key: -0.1})


def test_without_weight_decay_nesterov_keeps_w_exactly():
    w, dw = _inputs()
    # With a zero gradient and an empty buffer the step is zero: w comes back to the bit.
    next_w, _ = optim.sgd_nesterov(w, np.zeros_like(w))
    np.testing.assert_array_equal(next_w, w)
    decayed, _ = optim.sgd_nesterov(w, np.zeros_like(w), {"learning_rate": 0.1, "weight_decay": 0.5})
    np.testing.assert_allclose(decayed, w * (1 - 0.05), rtol=1e-15)


# --------------------------------------------------------------------------- PyTorch's optimizers

TORCH_RULES = [
    ("sgd_nesterov", {"momentum": 0.9, "coupled_weight_decay": 5e-4},
     lambda torch, p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)),
    ("sgd_nesterov", {"momentum": 0.8},
     lambda torch, p, lr: torch.optim.SGD(p, lr=lr, momentum=0.8, nesterov=True)),
    ("adamw", {"weight_decay": 0.05, "beta1": 0.8},
     lambda torch, p, lr: torch.optim.AdamW(p, lr=lr, weight_decay=0.05, betas=(0.8, 0.999), eps=1e-8)),
    ("adamw", {}, lambda torch, p, lr: torch.optim.AdamW(p, lr=lr)),
    ("sgd", {}, lambda torch, p, lr: torch.optim.SGD(p, lr=lr)),
]


@pytest.mark.parametrize("name, config, make", TORCH_RULES, ids=[f"{r[0]}-{i}" for i, r in enumerate(TORCH_RULES)])
def test_trajectory_matches_pytorch_with_a_changing_learning_rate(name, config, make):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 7))
    gradients = [rng.standard_normal((6, 7)) for _ in range(12)]
    rates = [0.05 * (1 + np.sin(k)) + 1e-3 for k in range(12)]  # a schedule sets the rate before every step
    parameter = torch.nn.Parameter(torch.tensor(w))
    optimizer = make(torch, [parameter], rates[0])
    config = dict(config)
    for gradient, rate in zip(gradients, rates):
        for group in optimizer.param_groups:
            group["lr"] = rate
        parameter.grad = torch.tensor(gradient)
        optimizer.step()
        config["learning_rate"] = rate
        w, config = optim.UPDATE_RULES[name](w, gradient, config)
    np.testing.assert_allclose(w, parameter.detach().numpy(), rtol=1e-12, atol=1e-14)
