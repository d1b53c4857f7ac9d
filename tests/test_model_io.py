"""Model files: everything inference needs, the same test-time scores after a round trip."""

import json

import numpy as np
import pytest

from layerwise import checkpoint
from layerwise.checkpoint import CheckpointError
from layerwise.classifiers import ConvNet, FullyConnectedNet, ThreeLayerConvNet, TwoLayerNet
from layerwise.inference import predict_proba, softmax
from layerwise.model_io import load_model, save_model
from layerwise.preprocessing import Preprocessing
from layerwise.solver import Solver

SHAPE = (3, 8, 8)


def _models(dtype):
    D = int(np.prod(SHAPE))
    yield "two-layer", TwoLayerNet(input_dim=D, hidden_dim=7, dtype=dtype)
    for normalization in (None, "batchnorm", "layernorm"):
        for keep in (1.0, 0.5):
            yield f"fc {normalization} keep {keep}", FullyConnectedNet(
                [9, 6], input_dim=D, normalization=normalization, dropout_keep_ratio=keep, weight_scale=0.1, dtype=dtype
            )
    yield "three-layer-conv", ThreeLayerConvNet(input_dim=SHAPE, num_filters=4, filter_size=3, hidden_dim=8, dtype=dtype)
    blocks = ((4, True), {"filters": 4, "residual": True}, (6, True))
    for normalization, global_pool in ((None, "max"), ("batchnorm", "max"), ("batchnorm", "avg"), ("groupnorm", "avg")):
        yield f"convnet {normalization} {global_pool}", ConvNet(
            input_dim=SHAPE, blocks=blocks, normalization=normalization, groups=2, global_pool=global_pool,
            dropout_keep=0.5, label_smoothing=0.1, dtype=dtype,
        )  # fmt: skip


def _trained(model, rng):
    """A few sgd steps in train mode: parameters and running statistics move away from their start."""
    for _ in range(3):
        X = rng.standard_normal((16, *SHAPE)).astype(model.dtype)
        y = rng.integers(10, size=16)
        _, grads = model.loss(X, y)
        for name, grad in grads.items():
            model.params[name] = model.params[name] - model.dtype.type(0.1) * grad
    return model


MODELS = [(dtype, label) for dtype in (np.float32, np.float64) for label, _ in _models(dtype)]


@pytest.mark.parametrize("dtype,label", MODELS, ids=[f"{np.dtype(d).name}-{label}" for d, label in MODELS])
def test_a_loaded_model_gives_the_same_test_time_scores_bit_for_bit(tmp_path, dtype, label):
    np.random.seed(0)
    rng = np.random.default_rng(1)
    model = _trained(dict(_models(dtype))[label], rng)
    if model.get_state():
        assert not np.all(model.get_state()["running_mean1"] == 0)  # the statistics moved
    X = rng.standard_normal((20, *SHAPE)).astype(dtype)
    expected = model.loss(X)
    save_model(tmp_path / "m", model)
    before = np.random.get_state()[1].copy()
    loaded = load_model(tmp_path / "m").model
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # loading draws nothing
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.loss(X), expected)
    assert set(loaded.get_state()) == set(model.get_state())
    for name, value in model.get_state().items():
        np.testing.assert_array_equal(loaded.get_state()[name], value)
        assert loaded.get_state()[name].dtype == value.dtype


def test_preprocessing_and_class_names_travel_with_the_model(tmp_path):
    np.random.seed(0)
    rng = np.random.default_rng(2)
    model = _trained(FullyConnectedNet([5], input_dim=int(np.prod(SHAPE)), normalization="batchnorm"), rng)
    mean = rng.uniform(0, 255, SHAPE).astype(np.float32)
    std = rng.uniform(20, 80, (3, 1, 1)).astype(np.float32)
    names = [f"class {k}" for k in range(10)]
    save_model(tmp_path / "m", model, preprocessing=Preprocessing(SHAPE, mean, std), class_names=names, meta={"note": 1})
    saved = load_model(tmp_path / "m.json")
    assert saved.class_names == names and saved.meta == {"note": 1}
    np.testing.assert_array_equal(saved.preprocessing.mean, mean)
    np.testing.assert_array_equal(saved.preprocessing.std, std)
    pixels = rng.integers(0, 256, (6, *SHAPE)).astype(np.uint8)
    probabilities = saved.predict_proba(pixels)
    by_hand = softmax(model.loss((pixels.astype(np.float32) - mean) / std))
    np.testing.assert_array_equal(probabilities, by_hand)
    assert probabilities.dtype == np.float32 and np.allclose(probabilities.sum(axis=1), 1)


def test_without_class_names_they_are_the_class_numbers(tmp_path):
    save_model(tmp_path / "m", TwoLayerNet(input_dim=4, hidden_dim=3, num_classes=3))
    saved = load_model(tmp_path / "m")
    assert saved.class_names == ["0", "1", "2"] and saved.preprocessing is None


def _write_old_format(path, model, mean_image):
    """A model file as layerwise wrote it before model_format 2: parameters only."""
    arrays = {f"params/{k}": v for k, v in model.params.items()}
    arrays["extra/mean_image"] = mean_image
    meta = {"class_names": [f"c{k}" for k in range(10)], "best_val_acc": 0.5}
    checkpoint.save(path, arrays, {"model": type(model).__name__, "config": model.get_config(), "meta": meta})


def test_old_files_without_running_statistics_are_read_when_the_model_has_none(tmp_path):
    model = _trained(FullyConnectedNet([5], input_dim=int(np.prod(SHAPE)), normalization="layernorm"), np.random.default_rng(3))
    mean = np.full(SHAPE, 100, np.float32)
    _write_old_format(tmp_path / "old", model, mean)
    saved = load_model(tmp_path / "old")
    assert saved.class_names[0] == "c0" and saved.meta["best_val_acc"] == 0.5
    np.testing.assert_array_equal(saved.preprocessing.mean, mean)
    X = np.random.default_rng(4).standard_normal((3, *SHAPE)).astype(np.float32)
    np.testing.assert_array_equal(saved.model.loss(X), model.loss(X))


def test_old_files_of_batchnorm_models_are_refused(tmp_path):
    model = _trained(FullyConnectedNet([5], input_dim=int(np.prod(SHAPE)), normalization="batchnorm"), np.random.default_rng(3))
    _write_old_format(tmp_path / "old", model, np.zeros(SHAPE, np.float32))
    with pytest.raises(CheckpointError, match="did not record the batchnorm running statistics"):
        load_model(tmp_path / "old")


def _rewrite_document(path, change):
    """Edit a model's JSON document (keeping the npz digest valid)."""
    json_path = path.with_suffix(".json")
    document = json.loads(json_path.read_text())
    change(document)
    json_path.write_text(json.dumps(document))


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: d["meta"].update(model_format=3), "model_format 3 is not supported"),
        (lambda d: d["meta"].update(class_names=["a"]), "class_names must hold 10 names"),
        (lambda d: d["meta"]["config"].update(normalization="layernorm"), "state must hold exactly \\[\\]"),
        (lambda d: d["meta"].update(preprocessing={"input_shape": [3, 4, 4]}), "mean must have shape"),
        (lambda d: d["meta"].update(model="Net"), "unknown model class 'Net'"),
    ],
)
def test_files_that_do_not_match_their_model_are_refused(tmp_path, change, message):
    model = _trained(FullyConnectedNet([5], input_dim=int(np.prod(SHAPE)), normalization="batchnorm"), np.random.default_rng(5))
    save_model(tmp_path / "m", model, preprocessing=Preprocessing(SHAPE, np.zeros(SHAPE, np.float32)))
    _rewrite_document(tmp_path / "m", change)
    with pytest.raises(CheckpointError, match=message):
        load_model(tmp_path / "m")


def test_save_model_refuses_bad_arguments(tmp_path):
    model = TwoLayerNet(input_dim=4, hidden_dim=3, num_classes=3)
    with pytest.raises(ValueError, match="class_names must hold 3 names"):
        save_model(tmp_path / "m", model, class_names=["a", "b"])
    with pytest.raises(TypeError, match="preprocessing must be a Preprocessing"):
        save_model(tmp_path / "m", model, preprocessing={"mean": 0})
    with pytest.raises(TypeError, match="model must be one of"):
        save_model(tmp_path / "m", object())
    assert not list(tmp_path.iterdir())


def test_solver_keeps_the_running_statistics_of_the_best_parameters(tmp_path):
    np.random.seed(0)
    rng = np.random.default_rng(6)
    data = {
        "X_train": rng.standard_normal((60, *SHAPE)).astype(np.float32), "y_train": rng.integers(10, size=60),
        "X_val": rng.standard_normal((30, *SHAPE)).astype(np.float32), "y_val": rng.integers(10, size=30),
    }  # fmt: skip
    model = FullyConnectedNet([12], input_dim=int(np.prod(SHAPE)), normalization="batchnorm", weight_scale=0.1)
    solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 0.5}, num_epochs=4, batch_size=20,
                    verbose=False, checkpoint_name=str(tmp_path / "ck"))  # fmt: skip
    solver.train()
    for name, value in solver.best_state.items():
        np.testing.assert_array_equal(model.get_state()[name], value)
    assert solver.check_accuracy(data["X_val"], data["y_val"]) == solver.best_val_acc

    restored = Solver(FullyConnectedNet([12], input_dim=int(np.prod(SHAPE)), normalization="batchnorm"), data,
                      update_rule="sgd", num_epochs=4, batch_size=20, verbose=False)  # fmt: skip
    restored.load_checkpoint(tmp_path / "ck_epoch_4")
    for name, value in solver.best_state.items():
        np.testing.assert_array_equal(restored.best_state[name], value)


def test_a_saved_model_predicts_with_flip_averaging_too(tmp_path):
    np.random.seed(0)
    rng = np.random.default_rng(7)
    model = _trained(ConvNet(input_dim=SHAPE, blocks=((4, True), (6, False))), rng)
    preprocessing = Preprocessing(SHAPE, rng.uniform(0, 255, SHAPE).astype(np.float32))
    save_model(tmp_path / "m", model, preprocessing=preprocessing)
    saved = load_model(tmp_path / "m")
    pixels = rng.integers(0, 256, (5, *SHAPE)).astype(np.uint8)
    np.testing.assert_array_equal(saved.predict_proba(pixels, flip=True), predict_proba(model, pixels, preprocessing, flip=True))
    assert not np.array_equal(saved.predict_proba(pixels, flip=True), saved.predict_proba(pixels))
