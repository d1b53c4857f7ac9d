"""Specification of :mod:`layerwise.classifiers.convnet`: ConvNet.

Parameters (names, shapes, He and fixed-scale initialization), the architecture against the naive
layers, float64 numeric gradients of the whole model in every variant (normalization, shortcut,
global pool, dropout, reg, label smoothing), train/test modes and state, dtypes, the constructor's
refusals, and a small batch learned by heart.
"""

from __future__ import annotations

import numpy as np
import pytest

from layerwise import optim
from layerwise.classifiers import MODELS, ConvNet
from layerwise.gradient_check import eval_numerical_gradient, rel_error
from layerwise.layers import affine_forward, conv_forward_naive, max_pool_forward_naive, softmax_loss

# Two pools: the last block's maps are 2x2, so the global pool has a choice to make.
SMALL = dict(input_dim=(3, 8, 8), blocks=((4, False), {"filters": 4, "pool": True, "residual": True}, (6, True)), groups=2)


def small(**changes) -> ConvNet:
    return ConvNet(**{**SMALL, "dtype": np.float64, **changes})


def _data(rng, N=4, shape=(3, 8, 8), classes=10):
    return rng.standard_normal((N, *shape)), rng.integers(classes, size=N)


# --- parameters --------------------------------------------------------------------------------------


@pytest.mark.parametrize("normalization", [None, "batchnorm", "groupnorm"])
def test_parameter_names_shapes_and_initial_values(normalization):
    model = ConvNet(normalization=normalization)  # the default architecture
    filters = [32, 64, 64, 128, 128]
    expected = {}
    channels = 3
    for layer, F in enumerate(filters, start=1):
        expected[f"W{layer}"], expected[f"b{layer}"] = (F, channels, 3, 3), (F,)
        if normalization:
            expected[f"gamma{layer}"] = expected[f"beta{layer}"] = (F,)
        channels = F
    expected["W6"], expected["b6"] = (128, 10), (10,)
    assert {name: p.shape for name, p in model.params.items()} == expected
    assert list(model.params)[-2:] == ["W6", "b6"]  # the final affine layer last
    for name, value in model.params.items():
        assert value.dtype == np.float32, name
        if name.startswith("gamma"):
            np.testing.assert_array_equal(value, 1)
        elif name[0] == "b":  # biases and betas
            np.testing.assert_array_equal(value, 0)


def test_default_initialization_is_he_and_a_weight_scale_sets_the_std():
    np.random.seed(0)
    model = ConvNet(blocks=((64, False), (128, True)))
    for name, fan_in in (("W1", 3 * 9), ("W2", 64 * 9), ("W3", 128)):
        std = np.sqrt(2 / fan_in)
        assert abs(model.params[name].std() - std) < 0.1 * std, name
    np.random.seed(0)
    model = ConvNet(blocks=((64, False), (128, True)), weight_scale=0.02)
    for name in ("W1", "W2", "W3"):
        assert abs(model.params[name].std() - 0.02) < 0.002, name


def test_the_same_seed_of_the_global_generator_gives_the_same_model():
    np.random.seed(5)
    first = ConvNet(**SMALL)
    np.random.seed(5)
    second = ConvNet(**SMALL)
    for name, value in first.params.items():
        np.testing.assert_array_equal(second.params[name], value)


def test_blocks_take_pairs_or_dicts_and_are_recorded_as_dicts():
    model = ConvNet(input_dim=(3, 8, 8), blocks=[[4, True], {"filters": 4}, {"filters": 4, "pool": True, "residual": True}])
    assert model.blocks == [
        {"filters": 4, "pool": True, "residual": False},
        {"filters": 4, "pool": False, "residual": False},
        {"filters": 4, "pool": True, "residual": True},
    ]
    everywhere = ConvNet(input_dim=(4, 8, 8), blocks=((4, False), {"filters": 8, "residual": False}), residual=True)
    assert [block["residual"] for block in everywhere.blocks] == [True, False]


def test_the_registry_and_the_config_rebuild_the_model():
    assert MODELS["ConvNet"] is ConvNet
    model = small(normalization="groupnorm", global_pool="avg", dropout_keep=0.5, label_smoothing=0.1, reg=0.2, seed=3)
    config = model.get_config()
    rebuilt = ConvNet(**config)
    assert rebuilt.get_config() == config
    assert config["blocks"][1] == {"filters": 4, "pool": True, "residual": True}
    assert config["weight_scale"] is None and config["dtype"] == "float64"


# --- the architecture -------------------------------------------------------------------------------


def _reference_scores(model, X):
    """The test-time forward pass written out with the naive layers and NumPy."""
    p = model.params
    h = X
    pad = (model.filter_size - 1) // 2
    for layer, block in enumerate(model.blocks, start=1):
        a, _ = conv_forward_naive(h, p[f"W{layer}"], p[f"b{layer}"], {"stride": 1, "pad": pad})
        if model.normalization == "batchnorm":
            bn = model.bn_params[layer - 1]
            mean, var = (bn[key].reshape(1, -1, 1, 1) for key in ("running_mean", "running_var"))
            a = (a - mean) / np.sqrt(var + 1e-5) * p[f"gamma{layer}"].reshape(1, -1, 1, 1) + p[f"beta{layer}"].reshape(1, -1, 1, 1)
        elif model.normalization == "groupnorm":
            N, C, H, W = a.shape
            grouped = a.reshape(N, model.groups, -1)
            grouped = (grouped - grouped.mean(axis=2, keepdims=True)) / np.sqrt(grouped.var(axis=2, keepdims=True) + 1e-5)
            a = grouped.reshape(N, C, H, W) * p[f"gamma{layer}"].reshape(1, -1, 1, 1) + p[f"beta{layer}"].reshape(1, -1, 1, 1)
        out = np.maximum(a, 0)
        if block["residual"]:
            out = out + h
        if block["pool"]:
            out, _ = max_pool_forward_naive(out, {"pool_height": 2, "pool_width": 2, "stride": 2})
        h = out
    features = h.max(axis=(2, 3)) if model.global_pool == "max" else h.mean(axis=(2, 3))
    last = model.num_layers
    return affine_forward(features, p[f"W{last}"], p[f"b{last}"])[0]


@pytest.mark.parametrize("global_pool", ["max", "avg"])
@pytest.mark.parametrize("normalization", [None, "batchnorm", "groupnorm"])
def test_test_time_scores_are_the_architecture_written_out(normalization, global_pool):
    rng = np.random.default_rng(1)
    model = small(normalization=normalization, global_pool=global_pool, input_dim=(3, 7, 9))
    for name in model.params:  # off their starting values, so every term matters
        model.params[name] = model.params[name] + 0.1 * rng.standard_normal(model.params[name].shape)
    X, y = _data(rng, N=5, shape=(3, 7, 9))
    model.loss(X, y)  # a train step moves the running statistics off zeros and ones
    scores = model.loss(X)
    assert scores.shape == (5, 10)
    np.testing.assert_allclose(scores, _reference_scores(model, X), rtol=1e-10, atol=1e-12)


# --- gradients --------------------------------------------------------------------------------------

VARIANTS = {
    f"{normalization or 'plain'}-{'residual' if residual else 'chain'}-{pool}": dict(
        normalization=normalization, global_pool=pool,
        blocks=((4, False), {"filters": 4, "pool": True, "residual": residual}, (6, True)),
    )  # fmt: skip
    for normalization in (None, "batchnorm", "groupnorm")
    for residual in (False, True)
    for pool in ("max", "avg")
}
VARIANTS["dropout-reg-smoothing"] = dict(normalization="batchnorm", dropout_keep=0.6, seed=123, reg=0.3, label_smoothing=0.1)
VARIANTS["groupnorm-dropout-reg"] = dict(normalization="groupnorm", global_pool="avg", dropout_keep=0.75, seed=7, reg=0.5)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_gradients_match_the_numeric_gradient_in_float64(variant):
    np.random.seed(231)
    rng = np.random.default_rng(231)
    model = small(**VARIANTS[variant])
    # Biases off zero: a ReLU input sitting exactly on the kink makes the numeric gradient wrong by design.
    for name in model.params:
        if name[0] == "b" and not name.startswith("beta"):
            model.params[name] = 0.1 * rng.standard_normal(model.params[name].shape)
    X, y = _data(rng, N=2)
    loss, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    state = np.random.get_state()
    for name in sorted(grads):
        numeric = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name], verbose=False)
        if model.normalization == "batchnorm" and name[0] == "b" and name != f"b{model.num_layers}" and not name.startswith("beta"):
            # a bias just before batch norm is cancelled by the mean subtraction: its gradient is 0
            np.testing.assert_allclose(grads[name], 0, atol=1e-12, err_msg=name)
            np.testing.assert_allclose(numeric, 0, atol=1e-8, err_msg=name)
        else:
            assert rel_error(numeric, grads[name]) < 1e-6, f"{name}: relative error {rel_error(numeric, grads[name]):.2e}"
        np.random.set_state(state)


def test_the_first_block_computes_no_input_gradient(monkeypatch):
    """The data needs no gradient: block 1's backward runs with input_grad=False, the others with True."""
    from layerwise.classifiers import convnet

    seen = []
    real = convnet.conv_block_backward

    def spy(dout, cache, *, input_grad=True):
        seen.append(input_grad)
        return real(dout, cache, input_grad=input_grad)

    monkeypatch.setattr(convnet, "conv_block_backward", spy)
    X, y = _data(np.random.default_rng(2))
    ConvNet(**SMALL).loss(X, y)
    assert seen == [True, True, False]  # blocks 3, 2, 1


# --- modes, dropout, regularization, state ---------------------------------------------------------


def test_batchnorm_uses_running_statistics_at_test_time_and_leaves_them_alone():
    rng = np.random.default_rng(3)
    model = small(normalization="batchnorm")
    X, y = _data(rng, N=6)
    for _ in range(3):
        model.loss(X, y)
    state = {name: value.copy() for name, value in model.get_state().items()}
    assert not np.all(state["running_mean1"] == 0)
    scores = model.loss(X)
    np.testing.assert_allclose(model.loss(X[2:3]), scores[2:3], rtol=1e-12)  # no dependence on the batch
    for name, value in model.get_state().items():
        np.testing.assert_array_equal(value, state[name])


def test_dropout_with_a_seed_draws_the_same_mask_and_is_off_at_test_time():
    rng = np.random.default_rng(4)
    X, y = _data(rng)
    dropped = small(dropout_keep=0.5, seed=1, normalization=None)
    assert dropped.loss(X, y)[0] == dropped.loss(X, y)[0]
    plain = small(normalization=None)
    plain.params = {name: value.copy() for name, value in dropped.params.items()}
    assert dropped.loss(X, y)[0] != plain.loss(X, y)[0]
    np.testing.assert_array_equal(dropped.loss(X), plain.loss(X))


def test_reg_applies_to_the_weights_only():
    rng = np.random.default_rng(5)
    X, y = _data(rng)
    model = small()
    loss0, grads0 = model.loss(X, y)
    model.reg = 0.7
    loss1, grads1 = model.loss(X, y)
    weights = [name for name in model.params if name[0] == "W"]
    assert weights == ["W1", "W2", "W3", "W4"]
    assert loss1 == pytest.approx(loss0 + 0.5 * 0.7 * sum(np.sum(model.params[w] ** 2) for w in weights), rel=1e-12)
    for name in model.params:
        if name in weights:
            np.testing.assert_allclose(grads1[name], grads0[name] + 0.7 * model.params[name], rtol=1e-12, atol=1e-14)
        else:
            np.testing.assert_array_equal(grads1[name], grads0[name])


def test_label_smoothing_is_the_softmax_losss():
    rng = np.random.default_rng(6)
    X, y = _data(rng)
    model = small(normalization="groupnorm", label_smoothing=0.2)  # no batch statistics: train scores = test scores
    loss, _ = model.loss(X, y)
    assert loss == softmax_loss(model.loss(X), y, label_smoothing=0.2)[0]


def test_state_is_the_running_statistics_of_every_batchnorm():
    model = small(normalization="batchnorm")
    assert sorted(model.get_state()) == sorted(f"{key}{i}" for key in ("running_mean", "running_var") for i in (1, 2, 3))
    assert model.get_state()["running_var3"].shape == (6,)
    for normalization in (None, "groupnorm"):
        assert small(normalization=normalization).get_state() == {}
    rng = np.random.default_rng(7)
    model.loss(*_data(rng))
    other = small(normalization="batchnorm")
    other.set_state(model.get_state())
    for name, value in model.get_state().items():
        np.testing.assert_array_equal(other.get_state()[name], value)
        assert other.get_state()[name] is not value  # copies
    with pytest.raises(ValueError, match=r"ConvNet.set_state: state\['running_mean2'\] must have shape \(4,\)"):
        other.set_state({**model.get_state(), "running_mean2": np.zeros(3)})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("normalization", [None, "batchnorm", "groupnorm"])
def test_params_scores_and_grads_have_the_model_dtype(dtype, normalization):
    model = ConvNet(**SMALL, normalization=normalization, dropout_keep=0.5, dtype=dtype)
    X, y = _data(np.random.default_rng(8))  # float64 input, cast to the model's dtype
    loss, grads = model.loss(X, y)
    assert isinstance(loss, float)
    for name, grad in grads.items():
        assert grad.dtype == dtype and grad.shape == model.params[name].shape, name
    assert model.loss(X).dtype == dtype
    for value in model.get_state().values():
        assert value.dtype == dtype


def test_model_inputs_are_not_mutated():
    rng = np.random.default_rng(9)
    X, y = _data(rng)
    model = small(normalization="batchnorm", dropout_keep=0.5)
    saved = X.copy(), y.copy(), {name: value.copy() for name, value in model.params.items()}
    model.loss(X, y)
    model.loss(X)
    np.testing.assert_array_equal(X, saved[0])
    np.testing.assert_array_equal(y, saved[1])
    for name, value in model.params.items():
        np.testing.assert_array_equal(value, saved[2][name], err_msg=name)


def test_a_small_batch_is_learned_by_heart():
    rng = np.random.default_rng(10)
    np.random.seed(10)
    X = rng.standard_normal((20, 3, 8, 8)).astype(np.float32)
    y = rng.integers(10, size=20)
    model = ConvNet(input_dim=(3, 8, 8), blocks=((8, False), (16, True), (16, True)))
    configs = {name: {"learning_rate": 3e-3} for name in model.params}
    for _ in range(60):
        _, grads = model.loss(X, y)
        for name, grad in grads.items():
            model.params[name], configs[name] = optim.adam(model.params[name], grad, configs[name])
    assert np.mean(np.argmax(model.loss(X), axis=1) == y) == 1.0


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, error, message",
    [
        ({"input_dim": (32, 32)}, ValueError, "ConvNet: input_dim must be a tuple (C, H, W), got (32, 32) (tuple)"),
        ({"blocks": ()}, TypeError, "ConvNet: blocks must be a non-empty list of (num_filters, pool) pairs"),
        ({"blocks": "32,64"}, TypeError, "ConvNet: blocks must be a non-empty list of (num_filters, pool) pairs"),
        ({"blocks": ((4, False, True),)}, TypeError,
         "ConvNet: blocks[0] must be a (num_filters, pool) pair or a dict, got (4, False, True) (tuple)"),
        ({"blocks": ({"filters": 4, "pol": True},)}, ValueError,
         "ConvNet: blocks[0] must have the key 'filters' and optionally 'pool' and 'residual', got keys ['filters', 'pol']"),
        ({"blocks": ((0, False),)}, ValueError, "ConvNet: blocks[0] filters must be >= 1, got 0"),
        ({"blocks": ((4, "yes"),)}, TypeError, "ConvNet: blocks[0] pool must be a bool, got 'yes'"),
        ({"blocks": ((4, False), {"filters": 8, "residual": True})}, ValueError,
         "ConvNet: blocks[1] has residual=True, which adds the block's input to its output, but its 8 filters do not "
         "match its 4 input channels; give it residual=False or 4 filters"),
        ({"residual": True}, ValueError, "ConvNet: blocks[0] has residual=True"),
        ({"filter_size": 4}, ValueError, "ConvNet: filter_size must be odd, so that the convolutions keep the spatial size, got 4"),
        ({"normalization": "layernorm"}, ValueError,
         "ConvNet: normalization must be one of [None, 'batchnorm', 'groupnorm'], got 'layernorm'"),
        ({"normalization": "groupnorm", "groups": 3}, ValueError,
         "ConvNet: groups must divide every block's filters, got groups=3 and blocks[0] with 4"),
        ({"global_pool": "mean"}, ValueError, "ConvNet: global_pool must be one of ['max', 'avg'], got 'mean'"),
        ({"dropout_keep": 0.0}, ValueError, "ConvNet: dropout_keep must be a finite number in (0, 1], got 0.0"),
        ({"label_smoothing": 1.5}, ValueError, "ConvNet: label_smoothing must be a finite number in [0, 1], got 1.5"),
        ({"weight_scale": -1.0}, ValueError, "ConvNet: weight_scale must be a finite number in [0, inf], got -1.0"),
        ({"seed": -1}, ValueError, "ConvNet: seed must be >= 0, got -1"),
        ({"input_dim": (3, 3, 3)}, ValueError,
         "ConvNet: input_dim (3, 3, 3) is too small for the pool of blocks[2] (its input is 1x1)"),
        ({"input_dim": (3, 1, 8)}, ValueError,
         "ConvNet: input_dim (3, 1, 8) is too small for the pool of blocks[1] (its input is 1x8)"),
        ({"residual": 1}, TypeError, "ConvNet: residual must be a bool, got 1 (int)"),
        ({"dtype": np.float16}, TypeError, "ConvNet: dtype must be np.float32 or np.float64, got float16"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_at_construction(changes, error, message):
    with pytest.raises(error) as raised:
        ConvNet(**{**SMALL, **changes})
    assert str(raised.value).startswith(message), str(raised.value)


def test_the_constructor_takes_keywords_only():
    with pytest.raises(TypeError):
        ConvNet((3, 32, 32))


def test_bad_inputs_to_loss_are_refused_before_the_statistics_move():
    model = small(normalization="batchnorm")
    with pytest.raises(ValueError, match=r"ConvNet.loss: X must have shape \(N, 3, 8, 8\), got shape \(2, 3, 8, 7\)"):
        model.loss(np.zeros((2, 3, 8, 7)), np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match=r"ConvNet.loss: y must hold labels in \[0, 9\]"):
        model.loss(np.zeros((2, 3, 8, 8)), np.array([0, 10]))
    assert all("running_mean" not in bn_param and bn_param["mode"] == "train" for bn_param in model.bn_params)


@pytest.mark.parametrize("rule, std", [("he", lambda fan_in: np.sqrt(2 / fan_in)), ("pytorch", lambda fan_in: np.sqrt(1 / (3 * fan_in)))])
def test_named_initialisation_rules_scale_each_layer_by_its_fan_in(rule, std):
    np.random.seed(0)
    model = ConvNet(blocks=((64, False), (64, True)), weight_scale=rule, dtype=np.float64)
    for name, fan_in in (("W1", 3 * 9), ("W2", 64 * 9), ("W3", 64)):
        assert model.params[name].std() == pytest.approx(std(fan_in), rel=0.1), name
    assert ConvNet(weight_scale="he").weight_scale is None  # 'he' is the default, None


def test_an_unknown_initialisation_rule_is_refused():
    with pytest.raises(ValueError, match=r"weight_scale must be a number >= 0, None, 'he' or 'pytorch', got 'xavier'"):
        ConvNet(weight_scale="xavier")
