"""The Solver: trains any model that has ``params`` and ``loss(X, y)`` with minibatch SGD-style rules.

A model is anything with

- ``model.params``: dict mapping names to ndarrays (updated in place by name);
- ``model.loss(X, y=None)``: scores ``(N, C)`` when ``y`` is None, else ``(loss, grads)`` with
  ``grads`` keyed like ``params``;
- optionally ``model.get_state()`` / ``model.set_state(state)``: the arrays besides ``params``
  that test-time scores depend on (batchnorm running statistics). The best parameters are kept
  together with the state they were validated with, and checkpoints hold both.

Example::

    solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, num_epochs=10, batch_size=100, print_every=100)
    solver.train()
    # model.params now holds the parameters with the best validation accuracy
"""

from __future__ import annotations

import copy
import json
import os
import time
from typing import Any

import numpy as np

from . import _validation as v
from . import augmentation, checkpoint, optim, schedules

class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (training diverged).

    Attributes
    ----------
    iteration : int
        The 1-based iteration whose loss was not finite (its update was not applied).
    loss : float
    """

    def __init__(self, message: str, iteration: int, loss: float):
        super().__init__(message)
        self.iteration = iteration
        self.loss = loss


class Solver:
    """Minibatch training with per-epoch learning-rate decay, accuracy tracking and checkpoints.

    Parameters
    ----------
    model : object with ``params`` and ``loss``
    data : dict
        ``X_train`` (N_train, ...), ``y_train`` (N_train,), ``X_val`` (N_val, ...), ``y_val`` (N_val,);
        X finite, y integer labels.
    update_rule : str
        A name in :data:`layerwise.optim.UPDATE_RULES` (default ``'sgd'``).
    optim_config : dict
        Hyperparameters for the update rule (each parameter gets its own copy, which also holds
        the rule's state).
    lr_decay : float in (0, 1]
        The learning rate is multiplied by this after every epoch.
    lr_schedule : dict or callable, optional
        Sets the learning rate of every parameter before each update instead: a spec for
        :func:`layerwise.schedules.make_schedule` (e.g. ``{"name": "one_cycle", "max_lr": 0.2}``,
        over ``num_epochs * iterations_per_epoch`` updates, scaling ``optim_config``'s
        ``learning_rate``), or any ``schedule(iteration) -> float`` (iterations count from 0).
        ``lr_decay`` must then stay 1.
    augment : callable, optional
        ``augment(X_batch) -> X_batch`` applied to every training minibatch (e.g.
        :class:`layerwise.augmentation.RandomCropFlip`); its ``get_state()``, if it has one, is
        saved in checkpoints and restored with ``set_state``.
    batch_size : int
    num_epochs : int
    num_train_samples : int or None
        Training examples drawn to estimate the training accuracy (default 1000; None for all).
    num_val_samples : int or None
        Likewise for validation (default None: all).
    checkpoint_name : str or None
        If given, ``{checkpoint_name}_epoch_{epoch}.npz`` + ``.json`` are written at every epoch.
    print_every : int
        Print the training loss every this many iterations.
    verbose : bool
        Print progress at all.
    callbacks : list, optional
        Objects with optional methods ``on_step(solver, iteration, num_iterations, loss)`` and
        ``on_epoch_end(solver)``, called after every step and every accuracy check (the
        command line uses them for its progress bar and run folder).

    Attributes
    ----------
    loss_history : list of float
        The loss of every iteration.
    train_acc_history, val_acc_history : list of float
        One entry after the first iteration (epoch 0) and one at the end of every epoch.
    best_val_acc : float
    best_params : dict
        Copies of the parameters with the best validation accuracy; swapped into the model when
        training ends.
    epoch : int
        Completed epochs.
    iteration : int
        Completed gradient steps; :meth:`train` continues from here after :meth:`load_checkpoint`.
    train_seconds : float
        Seconds spent in :meth:`train`, summed over every call and kept in checkpoints, so a
        resumed run counts the time before it was interrupted.
    """

    def __init__(self, model, data, **kwargs):
        self.model = v.solver_model(model)
        self.X_train, self.y_train, self.X_val, self.y_val = v.solver_data(data)

        settings = dict(
            update_rule="sgd",
            optim_config=None,
            lr_decay=1.0,
            lr_schedule=None,
            augment=None,
            batch_size=100,
            num_epochs=10,
            num_train_samples=1000,
            num_val_samples=None,
            checkpoint_name=None,
            print_every=10,
            verbose=True,
            callbacks=(),
        )
        unknown = sorted(set(kwargs) - set(settings))
        if unknown:
            raise TypeError(f"Solver: unrecognized arguments {unknown}; valid ones are {sorted(settings)}")
        settings.update(kwargs)

        self.update_rule_name = settings["update_rule"]
        self.update_rule = optim.get_update_rule(self.update_rule_name)
        optim_config = {} if settings["optim_config"] is None else settings["optim_config"]
        self.optim_config = dict(v.param_dict("Solver", "optim_config", optim_config))
        self.lr_decay = v.real_value("Solver", "lr_decay", settings["lr_decay"], low=0.0, high=1.0, low_open=True)
        self.batch_size = _positive_int("batch_size", settings["batch_size"])
        self.num_epochs = _positive_int("num_epochs", settings["num_epochs"], minimum=0)
        self.num_train_samples = _optional_positive_int("num_train_samples", settings["num_train_samples"])
        self.num_val_samples = _optional_positive_int("num_val_samples", settings["num_val_samples"])
        self.print_every = _positive_int("print_every", settings["print_every"])
        self.verbose = bool(settings["verbose"])
        name = settings["checkpoint_name"]
        if name is not None and not isinstance(name, (str, os.PathLike)):
            raise TypeError(f"Solver: checkpoint_name must be a str or None, got {v.describe(name)}")
        self.checkpoint_name = None if name is None else os.fspath(name)
        self.callbacks = list(settings["callbacks"])
        self.augment = settings["augment"]
        if self.augment is not None and not callable(self.augment):
            raise TypeError(f"Solver: augment must be a callable augment(X_batch) -> X_batch or None, got {v.describe(self.augment)}")
        self.lr_schedule = settings["lr_schedule"]
        self._check_optim_config()
        if self.lr_schedule is not None and self.lr_decay != 1.0:
            raise ValueError(f"Solver: lr_decay must be 1.0 when lr_schedule sets the learning rate, got {self.lr_decay!r}")
        if self.lr_schedule is not None and not callable(self.lr_schedule):
            v.param_dict("Solver", "lr_schedule", self.lr_schedule)
            self._schedule()  # a bad spec fails here, not mid-training
            # A copy as a checkpoint holds it; make_schedule let through only NumPy scalars besides JSON's types.
            self.lr_schedule = json.loads(json.dumps(self.lr_schedule, default=lambda scalar: scalar.item()))
        self._reset()

    def _check_optim_config(self) -> None:
        """Run the update rule once on a scratch copy so a bad hyperparameter fails here, not mid-training."""
        scratch = np.zeros(1)
        self.update_rule(scratch, scratch, copy.deepcopy(self.optim_config))

    def _reset(self) -> None:
        self.epoch = 0
        self.iteration = 0
        self.train_seconds = 0.0
        self.best_val_acc = 0.0
        self.best_params: dict[str, np.ndarray] = {}
        self.best_state: dict[str, np.ndarray] = {}
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.optim_configs = {name: copy.deepcopy(self.optim_config) for name in self.model.params}

    @property
    def iterations_per_epoch(self) -> int:
        return max(self.X_train.shape[0] // self.batch_size, 1)

    def _schedule(self):
        """The learning rate of each iteration, ``schedule(iteration) -> float``; None without ``lr_schedule``."""
        if self.lr_schedule is None or callable(self.lr_schedule):
            return self.lr_schedule
        base_lr = self.optim_config.get("learning_rate", optim.HYPERPARAMETERS[self.update_rule_name]["learning_rate"])
        return schedules.make_schedule(self.lr_schedule, base_lr, self.num_epochs * self.iterations_per_epoch)

    def _step(self, schedule) -> float:
        """One gradient update on a random minibatch (drawn with replacement from the global generator)."""
        batch_mask = np.random.choice(self.X_train.shape[0], self.batch_size)
        X_batch = self.X_train[batch_mask]
        if self.augment is not None:
            X_batch = self.augment(X_batch)
        loss, grads = self.model.loss(X_batch, self.y_train[batch_mask])
        if not np.isfinite(loss):
            iteration = len(self.loss_history) + 1
            raise NonFiniteLossError(
                f"Solver: the loss became {loss} at iteration {iteration}; lower the learning rate or the weight scale",
                iteration, float(loss),
            )  # fmt: skip
        self.loss_history.append(float(loss))
        if schedule is not None:
            rate = float(schedule(self.iteration))
            for config in self.optim_configs.values():
                config["learning_rate"] = rate
        for name, w in self.model.params.items():
            next_w, self.optim_configs[name] = self.update_rule(w, grads[name], self.optim_configs[name])
            self.model.params[name] = next_w
        return float(loss)

    def check_accuracy(self, X: np.ndarray, y: np.ndarray, num_samples: int | None = None, batch_size: int = 100) -> float:
        """Fraction of examples the model classifies correctly.

        Parameters
        ----------
        X : ndarray, shape (N, ...)
        y : ndarray of int, shape (N,)
        num_samples : int, optional
            Evaluate on this many examples drawn at random (without regard to order) when N is larger.
        batch_size : int
            Examples per forward pass (bounds memory).
        """
        X, y = v.labelled_split("check_accuracy", "X", "y", X, y)
        batch_size = _positive_int("batch_size", batch_size)
        num_samples = _optional_positive_int("num_samples", num_samples)
        return self._accuracy(X, y, num_samples, batch_size)

    def _accuracy(self, X: np.ndarray, y: np.ndarray, num_samples: int | None, batch_size: int = 100) -> float:
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            mask = np.random.choice(N, num_samples)
            X, y = X[mask], y[mask]
            N = num_samples
        correct = 0
        for start in range(0, N, batch_size):
            scores = self.model.loss(X[start : start + batch_size])
            correct += int(np.sum(np.argmax(scores, axis=1) == y[start : start + batch_size]))
        return correct / N

    def train(self) -> None:
        """Run the optimization for ``num_epochs`` epochs (the rest of them, after a restored checkpoint).

        Raises
        ------
        NonFiniteLossError
            A ``FloatingPointError`` raised when the loss becomes NaN or infinite; the model keeps
            the parameters that gave that loss, :attr:`best_params` the best ones so far.
        """
        per_epoch = self.iterations_per_epoch
        num_iterations = self.num_epochs * per_epoch
        self._clock_zero = time.perf_counter() - self.train_seconds
        try:
            self._train(per_epoch, num_iterations, self._schedule())
        finally:
            self._tick()
        if self.best_params:
            self.model.params = {name: value.copy() for name, value in self.best_params.items()}
            if self.best_state:
                self.model.set_state(self.best_state)

    def _tick(self) -> None:
        self.train_seconds = time.perf_counter() - self._clock_zero

    def _train(self, per_epoch: int, num_iterations: int, schedule) -> None:
        for t in range(self.iteration, num_iterations):
            loss = self._step(schedule)
            self.iteration = t + 1
            if self.verbose and t % self.print_every == 0:
                print(f"(Iteration {t + 1} / {num_iterations}) loss: {loss:f}")
            for callback in self.callbacks:
                if hasattr(callback, "on_step"):
                    callback.on_step(self, t + 1, num_iterations, loss)

            epoch_end = (t + 1) % per_epoch == 0
            if epoch_end:
                self.epoch += 1
                for config in self.optim_configs.values():
                    config["learning_rate"] = config["learning_rate"] * self.lr_decay
            if t == 0 or t == num_iterations - 1 or epoch_end:
                self._record_accuracy()

    def _record_accuracy(self) -> None:
        train_acc = self._accuracy(self.X_train, self.y_train, self.num_train_samples)
        val_acc = self._accuracy(self.X_val, self.y_val, self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        if self.verbose:
            print(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:f}; val_acc: {val_acc:f}")
        if val_acc > self.best_val_acc or not self.best_params:
            self.best_val_acc = max(val_acc, self.best_val_acc)
            self.best_params = {name: value.copy() for name, value in self.model.params.items()}
            self.best_state = {name: value.copy() for name, value in _model_state(self.model).items()}
        if self.checkpoint_name is not None:
            self._tick()
            self.save_checkpoint(f"{self.checkpoint_name}_epoch_{self.epoch}")
        for callback in self.callbacks:
            if hasattr(callback, "on_epoch_end"):
                callback.on_epoch_end(self)

    # Checkpoints -----------------------------------------------------------------------------

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write the full training state (parameters and model state, update-rule state,
        histories, best parameters with their state, NumPy's global random state and the
        augmentation's) as ``path.npz`` + ``path.json``. A schedule's position is the iteration."""
        arrays: dict[str, np.ndarray] = {}
        scalar_configs: dict[str, dict[str, Any]] = {}
        for name, value in self.model.params.items():
            arrays[f"params/{name}"] = value
        for name, value in self.best_params.items():
            arrays[f"best_params/{name}"] = value
        for name, value in _model_state(self.model).items():
            arrays[f"state/{name}"] = value
        for name, value in self.best_state.items():
            arrays[f"best_state/{name}"] = value
        for name, config in self.optim_configs.items():
            scalar_configs[name] = {}
            for key, value in config.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optim/{name}/{key}"] = value
                else:
                    scalar_configs[name][key] = value
        kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
        arrays["rng/keys"] = keys
        meta = {
            "update_rule": self.update_rule_name,
            "optim_config": {k: val for k, val in self.optim_config.items() if not isinstance(val, np.ndarray)},
            "optim_scalars": scalar_configs,
            "lr_decay": self.lr_decay,
            "lr_schedule": None if callable(self.lr_schedule) else self.lr_schedule,
            "augment_state": augmentation.state_of(self.augment),
            "batch_size": self.batch_size,
            "num_epochs": self.num_epochs,
            "num_train_samples": self.num_train_samples,
            "num_val_samples": self.num_val_samples,
            "epoch": self.epoch,
            "iteration": self.iteration,
            "loss_history": self.loss_history,
            "train_acc_history": self.train_acc_history,
            "val_acc_history": self.val_acc_history,
            "best_val_acc": self.best_val_acc,
            "train_seconds": self.train_seconds,
            "rng": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        }
        checkpoint.save(path, arrays, meta)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore a state written by :meth:`save_checkpoint` into this solver and its model.

        The model must have the same parameter names, shapes and dtypes. Everything is verified
        before anything changes; :meth:`train` then continues from the checkpoint's epoch.
        """
        expected = {f"params/{name}": (value.shape, value.dtype) for name, value in self.model.params.items()}
        state = _model_state(self.model)
        expected.update({f"state/{name}": (value.shape, value.dtype) for name, value in state.items()})
        arrays, meta = checkpoint.load(path, expected)
        required = ("update_rule", "epoch", "iteration", "loss_history", "train_acc_history", "val_acc_history", "best_val_acc", "optim_scalars", "rng")
        missing = [key for key in required if key not in meta]
        if missing:
            raise checkpoint.CheckpointError(f"checkpoint {path}: metadata lacks {missing}")
        if meta["update_rule"] != self.update_rule_name:
            raise checkpoint.CheckpointError(
                f"checkpoint {path}: was written with update_rule {meta['update_rule']!r}, this solver uses {self.update_rule_name!r}"
            )
        names = list(self.model.params)
        optim_configs = {}
        for name in names:
            config = dict(meta["optim_scalars"].get(name, {}))
            prefix = f"optim/{name}/"
            config.update({key[len(prefix):]: arrays[key] for key in arrays if key.startswith(prefix)})
            optim_configs[name] = config
        best_params = {name: arrays[f"best_params/{name}"] for name in names if f"best_params/{name}" in arrays}
        best_state = {name: arrays[f"best_state/{name}"] for name in state if f"best_state/{name}" in arrays}
        if best_params and len(best_state) != len(state):
            raise checkpoint.CheckpointError(f"checkpoint {path}: holds best parameters without their state {sorted(state)}")
        rng = meta["rng"]
        schedule = None if callable(self.lr_schedule) else self.lr_schedule
        if meta.get("lr_schedule") != schedule:  # absent from older checkpoints: none
            raise checkpoint.CheckpointError(
                f"checkpoint {path}: was written with lr_schedule {meta.get('lr_schedule')!r}, this solver uses {schedule!r}"
            )
        try:  # the last check; on failure the augmentation keeps its state, as does everything else
            augmentation.restore_state(self.augment, meta.get("augment_state"))
        except (TypeError, ValueError) as error:
            raise checkpoint.CheckpointError(f"checkpoint {path}: {error}") from None

        self.model.params = {name: arrays[f"params/{name}"].copy() for name in names}
        if state:
            self.model.set_state({name: arrays[f"state/{name}"] for name in state})
        self.optim_configs = optim_configs
        self.best_params = best_params
        self.best_state = best_state
        self.epoch = int(meta["epoch"])
        self.iteration = int(meta["iteration"])
        self.loss_history = [float(x) for x in meta["loss_history"]]
        self.train_acc_history = [float(x) for x in meta["train_acc_history"]]
        self.val_acc_history = [float(x) for x in meta["val_acc_history"]]
        self.best_val_acc = float(meta["best_val_acc"])
        self.train_seconds = float(meta.get("train_seconds", 0.0))  # absent from older checkpoints
        np.random.set_state((rng["kind"], arrays["rng/keys"], rng["pos"], rng["has_gauss"], rng["cached_gaussian"]))


def _model_state(model) -> dict[str, np.ndarray]:
    """``model.get_state()``, or no state for a model without that method."""
    return model.get_state() if hasattr(model, "get_state") else {}


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    return v.int_value("Solver", name, value, minimum=minimum)


def _optional_positive_int(name: str, value: Any) -> int | None:
    return None if value is None else _positive_int(name, value)
