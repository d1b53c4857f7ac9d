"""Solver: overfitting, histories, best parameters, learning-rate decay, checkpoints and resume."""

import json

import numpy as np
import pytest

from layerwise.classifiers.cnn import ThreeLayerConvNet
from layerwise.classifiers.fc_net import FullyConnectedNet, TwoLayerNet
from layerwise.solver import NonFiniteLossError, Solver


def _small_data(num_train=50, num_val=20, shape=(3, 8, 8), seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_train + num_val, *shape))
    y = rng.integers(10, size=num_train + num_val)
    return {"X_train": X[:num_train], "y_train": y[:num_train], "X_val": X[num_train:], "y_val": y[num_train:]}


MODELS = {
    "TwoLayerNet": lambda: TwoLayerNet(input_dim=192, weight_scale=1e-2),
    "FullyConnectedNet-5": lambda: FullyConnectedNet([100] * 4, input_dim=192, weight_scale=1e-1, dtype=np.float64),
    "ThreeLayerConvNet": lambda: ThreeLayerConvNet(
        input_dim=(3, 8, 8), num_filters=8, filter_size=3, hidden_dim=50, weight_scale=1e-1
    ),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_overfits_a_small_batch(name):
    np.random.seed(1)
    data = _small_data()
    solver = Solver(MODELS[name](), data, num_epochs=30, batch_size=25, update_rule="adam",
                    optim_config={"learning_rate": 1e-2}, verbose=False)
    solver.train()
    # As the notebooks read it: the training accuracy at the last epoch (best_params, swapped in at
    # the end, are chosen by validation accuracy and need not be the last ones).
    assert solver.train_acc_history[-1] == 1.0


def test_histories_have_one_entry_per_iteration_and_per_epoch(capsys):
    np.random.seed(0)
    solver = Solver(TwoLayerNet(input_dim=192), _small_data(), num_epochs=3, batch_size=10, print_every=2)
    solver.train()
    assert len(solver.loss_history) == 3 * 5
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 3 + 1
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"(Iteration 1 / 15) loss: {solver.loss_history[0]:f}"
    assert printed[1].startswith("(Epoch 0 / 3) train acc: ")
    assert sum(line.startswith("(Iteration") for line in printed) == 8  # iterations 1, 3, ..., 15


def test_verbose_false_prints_nothing(capsys):
    Solver(TwoLayerNet(input_dim=192), _small_data(), num_epochs=1, batch_size=10, verbose=False).train()
    assert capsys.readouterr().out == ""


class _Recorder:
    """Records the parameters and validation accuracy at every accuracy check."""

    def __init__(self):
        self.snapshots = []

    def on_epoch_end(self, solver):
        self.snapshots.append((solver.val_acc_history[-1], {k: v.copy() for k, v in solver.model.params.items()}))


def test_best_params_are_those_with_the_best_validation_accuracy():
    np.random.seed(3)
    data = _small_data(num_train=100, num_val=50)
    recorder = _Recorder()
    model = TwoLayerNet(input_dim=192, weight_scale=1e-1)
    solver = Solver(model, data, num_epochs=8, batch_size=10, update_rule="sgd",
                    optim_config={"learning_rate": 5e-2}, verbose=False, callbacks=[recorder])
    solver.train()
    accuracies = [acc for acc, _ in recorder.snapshots]
    best = int(np.argmax(accuracies))  # the first best one is kept
    assert solver.best_val_acc == max(accuracies)
    for name, value in recorder.snapshots[best][1].items():
        np.testing.assert_array_equal(model.params[name], value)
        np.testing.assert_array_equal(solver.best_params[name], value)
    assert len(set(accuracies)) > 1, "the check needs validation accuracy to change"


def test_a_diverging_loss_raises_naming_the_iteration_and_keeps_the_best_parameters():
    np.random.seed(0)
    solver = Solver(TwoLayerNet(input_dim=192), _small_data(), num_epochs=5, batch_size=10, update_rule="sgd",
                    optim_config={"learning_rate": 1e30}, verbose=False)
    with pytest.raises(FloatingPointError, match=r"Solver: the loss became (nan|inf) at iteration \d+") as caught:
        with np.errstate(over="ignore", invalid="ignore"):
            solver.train()
    error = caught.value
    assert isinstance(error, NonFiniteLossError) and not np.isfinite(error.loss)
    assert error.iteration == len(solver.loss_history) + 1 > 1
    assert solver.best_params and all(np.isfinite(value).all() for value in solver.best_params.values())


def test_learning_rate_decays_once_per_epoch():
    solver = Solver(TwoLayerNet(input_dim=192), _small_data(), num_epochs=3, batch_size=25,
                    optim_config={"learning_rate": 1.0e-3}, lr_decay=0.5, verbose=False)
    solver.train()
    for config in solver.optim_configs.values():
        assert config["learning_rate"] == pytest.approx(1e-3 * 0.5**3)


def test_checkpoint_round_trips(tmp_path):
    np.random.seed(0)
    data = _small_data()
    solver = Solver(TwoLayerNet(input_dim=192), data, num_epochs=2, batch_size=25, update_rule="adam",
                    verbose=False, checkpoint_name=str(tmp_path / "run"))
    solver.train()
    assert (tmp_path / "run_epoch_2.npz").is_file() and (tmp_path / "run_epoch_2.json").is_file()
    restored = Solver(TwoLayerNet(input_dim=192), data, update_rule="adam", verbose=False)
    restored.load_checkpoint(tmp_path / "run_epoch_2")
    assert restored.epoch == 2
    assert restored.loss_history == solver.loss_history
    assert restored.val_acc_history == solver.val_acc_history
    for name in ("W1", "b2"):
        np.testing.assert_array_equal(restored.best_params[name], solver.best_params[name])
        np.testing.assert_array_equal(restored.optim_configs[name]["m"], solver.optim_configs[name]["m"])
        assert restored.optim_configs[name]["t"] == solver.optim_configs[name]["t"]


def test_train_seconds_add_up_over_calls_and_travel_in_checkpoints(tmp_path):
    np.random.seed(0)
    data = _small_data()
    solver = Solver(TwoLayerNet(input_dim=192), data, num_epochs=1, batch_size=25, verbose=False,
                    checkpoint_name=str(tmp_path / "run"))
    assert solver.train_seconds == 0.0
    solver.train()
    first = solver.train_seconds
    saved = json.loads((tmp_path / "run_epoch_1.json").read_text())["meta"]["train_seconds"]
    assert 0.0 < saved <= first
    resumed = Solver(TwoLayerNet(input_dim=192), data, num_epochs=2, batch_size=25, verbose=False)
    resumed.load_checkpoint(tmp_path / "run_epoch_1")
    assert resumed.train_seconds == saved
    resumed.train()
    assert resumed.train_seconds > saved


@pytest.mark.parametrize("stop_epoch", [0, 2])  # epoch 0: the checkpoint after the first step
def test_resumed_training_ends_where_an_uninterrupted_run_ends(tmp_path, stop_epoch):
    data = _small_data()
    np.random.seed(7)
    straight = Solver(TwoLayerNet(input_dim=192), data, num_epochs=4, batch_size=10, update_rule="sgd_momentum",
                      lr_decay=0.9, verbose=False, checkpoint_name=str(tmp_path / "run"))
    straight.train()

    np.random.seed(12345)  # whatever the generator holds now, the checkpoint restores it
    resumed = Solver(TwoLayerNet(input_dim=192), data, num_epochs=4, batch_size=10, update_rule="sgd_momentum",
                     lr_decay=0.9, verbose=False)
    resumed.load_checkpoint(tmp_path / f"run_epoch_{stop_epoch}.json")
    resumed.train()
    assert resumed.loss_history == straight.loss_history
    assert resumed.val_acc_history == straight.val_acc_history
    for name, value in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[name], value)


def test_checkpoint_of_another_model_is_refused_before_anything_changes(tmp_path):
    data = _small_data()
    Solver(TwoLayerNet(input_dim=192, hidden_dim=20), data, num_epochs=1, batch_size=25, verbose=False,
           checkpoint_name=str(tmp_path / "small")).train()
    model = TwoLayerNet(input_dim=192, hidden_dim=30)
    before = {k: v.copy() for k, v in model.params.items()}
    solver = Solver(model, data, verbose=False)
    with pytest.raises(ValueError, match=r"array 'params/W1' must have shape \(192, 30\)"):
        solver.load_checkpoint(tmp_path / "small_epoch_1")
    assert solver.epoch == 0
    for name, value in before.items():
        np.testing.assert_array_equal(model.params[name], value)


def test_check_accuracy_subsamples_and_batches():
    solver = Solver(TwoLayerNet(input_dim=192), _small_data(), verbose=False)
    data = _small_data(num_train=230)
    scores = solver.model.loss(data["X_train"])
    expected = np.mean(np.argmax(scores, axis=1) == data["y_train"])
    assert solver.check_accuracy(data["X_train"], data["y_train"], batch_size=7) == pytest.approx(expected)
    assert 0.0 <= solver.check_accuracy(data["X_train"], data["y_train"], num_samples=40) <= 1.0


# --------------------------------------------------------------------------- schedules and augmentation


class _Recording:
    """A schedule or augmentation that records its calls."""

    def __init__(self, function):
        self.function = function
        self.calls = []

    def __call__(self, argument):
        self.calls.append(argument.shape if isinstance(argument, np.ndarray) else argument)
        return self.function(argument)


def test_a_schedule_sets_every_parameters_learning_rate_before_each_update():
    schedule = _Recording(lambda t: 1e-3 / (1 + t))
    solver = Solver(TwoLayerNet(input_dim=192), _small_data(), num_epochs=3, batch_size=25, update_rule="sgd_nesterov",
                    lr_schedule=schedule, verbose=False)
    solver.train()
    assert schedule.calls == list(range(6))
    assert {config["learning_rate"] for config in solver.optim_configs.values()} == {1e-3 / 6}


def test_a_schedule_spec_runs_over_all_epochs_from_the_base_learning_rate():
    from layerwise.schedules import make_schedule

    spec = {"name": "one_cycle", "pct_start": 0.5}
    solver = Solver(TwoLayerNet(input_dim=192), _small_data(), num_epochs=4, batch_size=10, update_rule="sgd",
                    optim_config={"learning_rate": 0.05}, lr_schedule=spec, verbose=False)
    rates = []
    solver.callbacks.append(type("Rates", (), {"on_step": lambda self, s, *_: rates.append(s.optim_configs["W1"]["learning_rate"])})())
    solver.train()
    expected = make_schedule(spec, 0.05, 20)
    assert rates == [expected(t) for t in range(20)]
    assert max(rates) == pytest.approx(0.05)


def test_without_schedule_or_augmentation_training_is_unchanged():
    runs = []
    for extra in ({}, {"lr_schedule": None, "augment": None}):
        np.random.seed(4)
        solver = Solver(TwoLayerNet(input_dim=192), _small_data(), num_epochs=2, batch_size=10, update_rule="sgd_momentum",
                        lr_decay=0.5, verbose=False, **extra)
        solver.train()
        runs.append(solver)
    assert runs[0].loss_history == runs[1].loss_history


def test_augment_sees_every_training_minibatch_and_nothing_else():
    augment = _Recording(lambda X: X[:, :, ::-1, :].copy())
    solver = Solver(TwoLayerNet(input_dim=192), _small_data(), num_epochs=2, batch_size=10, augment=augment, verbose=False)
    solver.train()
    assert augment.calls == [(10, 3, 8, 8)] * 10  # accuracy checks never augment


@pytest.mark.parametrize("kwargs, error, message", [
    ({"lr_schedule": {"name": "cosine"}, "lr_decay": 0.9}, ValueError,
     "Solver: lr_decay must be 1.0 when lr_schedule sets the learning rate, got 0.9"),
    ({"lr_schedule": "one_cycle"}, TypeError, "Solver: lr_schedule must be a dict, got 'one_cycle'"),
    ({"lr_schedule": {"name": "one-cycle"}}, ValueError, "make_schedule: spec['name'] must be one of"),
    ({"lr_schedule": {"name": "cosine", "warmup_iterations": 50}}, ValueError,
     "spec['warmup_iterations'] must be fewer than the run's 10 iterations, got 50"),
    ({"augment": "crop-flip"}, TypeError, "Solver: augment must be a callable augment(X_batch) -> X_batch or None, got 'crop-flip'"),
])
def test_bad_schedule_and_augment_settings_are_refused_at_construction(kwargs, error, message):
    with pytest.raises(error) as caught:
        Solver(TwoLayerNet(input_dim=192), _small_data(), num_epochs=2, batch_size=10, verbose=False, **kwargs)
    assert message in str(caught.value)


def _recipe_solver(data, checkpoint_name=None, seed=11, schedule=None):
    from layerwise.augmentation import RandomCropFlip

    return Solver(ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=4, filter_size=3, hidden_dim=20, weight_scale=1e-1),
                  data, num_epochs=3, batch_size=10, update_rule="sgd_nesterov",
                  optim_config={"learning_rate": 0.05, "coupled_weight_decay": 5e-4},
                  lr_schedule=schedule or {"name": "one_cycle", "max_lr": 0.1}, augment=RandomCropFlip(pad=2, seed=seed),
                  verbose=False, checkpoint_name=checkpoint_name)  # fmt: skip


@pytest.mark.parametrize("stop_epoch", [0, 1])
def test_a_resumed_run_with_schedule_and_augmentation_is_bit_identical(tmp_path, stop_epoch):
    data = _small_data()
    np.random.seed(7)
    straight = _recipe_solver(data, checkpoint_name=str(tmp_path / "run"))
    straight.train()

    np.random.seed(12345)
    resumed = _recipe_solver(data, seed=999)  # the checkpoint restores the augmentation's generator too
    resumed.load_checkpoint(tmp_path / f"run_epoch_{stop_epoch}")
    resumed.train()
    assert resumed.loss_history == straight.loss_history
    for name, value in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[name], value)


def test_a_checkpoint_of_another_schedule_or_augmentation_is_refused(tmp_path):
    data = _small_data()
    _recipe_solver(data, checkpoint_name=str(tmp_path / "run")).train()
    other = _recipe_solver(data, schedule={"name": "cosine"})
    with pytest.raises(ValueError, match=r"was written with lr_schedule \{'name': 'one_cycle', 'max_lr': 0.1\}, this solver uses \{'name': 'cosine'\}"):
        other.load_checkpoint(tmp_path / "run_epoch_1")
    plain = Solver(ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=4, filter_size=3, hidden_dim=20), data,
                   update_rule="sgd_nesterov", lr_schedule={"name": "one_cycle", "max_lr": 0.1}, verbose=False)
    with pytest.raises(ValueError, match=r"it holds an augmentation state, but augment=None keeps none"):
        plain.load_checkpoint(tmp_path / "run_epoch_1")
    assert plain.epoch == 0


def test_a_schedule_spec_of_numpy_scalars_is_kept_as_json():
    spec = {"name": "step", "every": np.int64(2), "factor": np.float32(0.5)}
    solver = Solver(TwoLayerNet(input_dim=192), _small_data(), num_epochs=2, batch_size=10, lr_schedule=spec, verbose=False)
    assert solver.lr_schedule == {"name": "step", "every": 2, "factor": 0.5} and type(solver.lr_schedule["every"]) is int
