"""``layerwise train``: train and evaluate a model end to end, leaving a run folder behind."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import data_utils, set_num_threads
from ..augmentation import make_augmentation
from ..checkpoint import CheckpointError
from ..classifiers import ConvNet, FullyConnectedNet, ThreeLayerConvNet, TwoLayerNet
from ..model_io import save_model
from ..preprocessing import Preprocessing
from ..solver import NonFiniteLossError, Solver
from . import plots, run_folder
from .evaluate import evaluate_and_report
from .progress import ProgressReporter, format_duration, plural
from .settings import (
    COMMON_DEFAULTS,
    LATER_SETTINGS,
    MODEL_ONLY,
    SETTINGS,
    CommandError,
    add_setting_arguments,
    option_name,
    parse_blocks,
    positive_int,
    resolve_config,
)

DIVERGED = 3
"""The exit status of a run whose loss became NaN or infinite."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train and evaluate a model, writing a run folder",
        description=(
            "Train a model on CIFAR-10 (the full data set when found or downloadable, else the small sample "
            "embedded in the package) and evaluate it on the test set. Writes a run folder with the config, "
            "metrics, plots, checkpoints and the trained model."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=argparse.SUPPRESS,  # so a config file's values are not hidden by defaults
    )
    add_setting_arguments(parser)
    output = parser.add_argument_group("output")
    output.add_argument("--config", help="JSON file of settings (keys as the option names with _); options given here win")
    output.add_argument("--run-dir", dest="run_dir", help="run folder (default runs/DATE-TIME-MODEL)")
    output.add_argument("--resume", metavar="RUN",
                        help="continue the run in folder RUN from its last checkpoint (with --epochs N: to N epochs in all)")
    output.add_argument("--no-progress", action="store_false", dest="progress",
                        help="no progress bar and no per-iteration lines, only a line per epoch")
    output.add_argument("--threads", type=positive_int,
                        help="threads for the fast layers (default: $LAYERWISE_NUM_THREADS, else as many as BLAS uses)")
    parser.set_defaults(handler=run)


def build_model(config: dict[str, Any]):
    """The classifier the config describes (its weights drawn from NumPy's global generator)."""
    dtype = np.dtype(config["dtype"])
    common = {"num_classes": 10, "weight_scale": config["weight_scale"], "reg": config["reg"], "dtype": dtype}
    if config["model"] == "two-layer":
        return TwoLayerNet(input_dim=3 * 32 * 32, hidden_dim=config["hidden_dim"], **common)
    if config["model"] == "fc":
        return FullyConnectedNet(
            config["hidden_dims"], input_dim=3 * 32 * 32, dropout_keep_ratio=config["dropout_keep"],
            normalization=config["normalization"], **common,
        )  # fmt: skip
    if config["model"] == "convnet":
        return ConvNet(
            input_dim=(3, 32, 32), blocks=parse_blocks(config["blocks"]), filter_size=config["filter_size"],
            normalization=config["normalization"], groups=config["groups"], residual=config["residual"],
            global_pool=config["global_pool"], dropout_keep=config["dropout_keep"],
            label_smoothing=config["label_smoothing"], **common,
        )  # fmt: skip
    return ThreeLayerConvNet(
        input_dim=(3, 32, 32), num_filters=config["num_filters"], filter_size=config["filter_size"],
        hidden_dim=config["hidden_dim"], **common,
    )  # fmt: skip


def make_solver(model, data: dict[str, np.ndarray], config: dict[str, Any], **extra) -> Solver:
    """The Solver that trains ``model`` on ``data`` as the config says (``extra``: checkpoints, callbacks)."""
    return Solver(
        model, data,
        update_rule=config["update_rule"], optim_config={**config["optim_config"], "learning_rate": config["learning_rate"]},
        lr_decay=config["lr_decay"], lr_schedule=config["lr_schedule"], augment=make_augmentation(config["augment"], config["seed"]),
        batch_size=config["batch_size"], num_epochs=config["epochs"],
        num_train_samples=config["num_train_samples"], num_val_samples=config["num_val_samples"], verbose=False,
        **extra,
    )  # fmt: skip


def load_data(config: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any], Preprocessing]:
    """Load the data the config asks for; return it normalised, a description, and the normalisation.

    ``normalize``: ``mean-image`` subtracts the training set's mean image, ``channel`` each
    channel's mean and then divides by its std; the returned :class:`Preprocessing` gives the same
    bits from raw pixels, and is saved with the model.

    Without ``data``/``sample`` settings the full data set is used when it can be found or
    downloaded, else the embedded sample (the description says why). A ``data`` path or
    ``$LAYERWISE_DATA`` that holds no CIFAR-10 is an error, never a reason to fall back.
    """
    dtype = np.dtype(config["dtype"])
    split = {key: config[key] for key in ("num_training", "num_validation", "num_test") if config[key] is not None}
    info: dict[str, Any] = {}
    if not config["sample"]:
        try:
            location = data_utils.find_cifar10(config["data"], download=config["download"])
        except data_utils.CIFAR10UnavailableError as error:
            # Only the automatic search may fall back to the sample; a place the user named must hold the data.
            if config["data"] is not None or os.environ.get(data_utils.ENV_VAR):
                raise CommandError(str(error)) from None
            info["fallback_reason"] = str(error)
        else:
            data = data_utils.get_CIFAR10_data(data_dir=location, subtract_mean=False, dtype=dtype, **split)
            info.update(source="cifar10", location=str(location))
    if "source" not in info:
        data = data_utils.get_embedded_data(subtract_mean=False, dtype=dtype, **split)
        info["source"] = "sample"
    info.update({key: int(len(data[f"y_{part}"])) for key, part in
                 (("num_training", "train"), ("num_validation", "val"), ("num_test", "test"))})  # fmt: skip
    if config["normalize"] == "channel":
        preprocessing = Preprocessing.channel_statistics(data["X_train"])
        mean, std = preprocessing.mean.astype(dtype), preprocessing.std.astype(dtype)
    else:
        mean, std = data["X_train"].mean(axis=0), None
        preprocessing = Preprocessing(mean.shape, mean=mean)
    for part in ("X_train", "X_val", "X_test"):  # in place, in Preprocessing.apply's order and dtype
        data[part] -= mean
        if std is not None:
            data[part] /= std
    return data, info, preprocessing


def describe_data(info: dict[str, Any]) -> str:
    sizes = f"{info['num_training']:,} train / {info['num_validation']:,} val / {info['num_test']:,} test images"
    if info["source"] == "cifar10":
        return f"Data: full CIFAR-10 from {info['location']} ({sizes})"
    text = f"Data: the embedded CIFAR-10 sample ({sizes})"
    if "fallback_reason" in info:
        text += " because the full data set is not available:\n  " + info["fallback_reason"]
    return text


class RunWriter:
    """Solver callback: after every epoch, rewrite the metrics files and prune old checkpoints."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def on_epoch_end(self, solver) -> None:
        write_metrics(self.run_dir, solver)
        run_folder.prune_checkpoints(self.run_dir)


def write_metrics(run_dir: Path, solver) -> None:
    run_folder.write_csv(run_dir / "loss.csv", ["iteration", "loss"], enumerate(solver.loss_history, start=1))
    run_folder.write_csv(
        run_dir / "epochs.csv",
        ["epoch", "train_acc", "val_acc"],
        ((epoch, train, val) for epoch, (train, val) in enumerate(zip(solver.train_acc_history, solver.val_acc_history))),
    )


def _new_run_dir(options: dict[str, Any], model: str) -> Path:
    if options.get("run_dir"):
        run_dir = Path(options["run_dir"])
    else:
        run_dir = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{model}"
    if run_dir.exists() and any(run_dir.iterdir()):
        raise CommandError(f"--run-dir: {run_dir} already holds files; use --resume {run_dir} to continue it, or another folder")
    return run_dir  # created by the first file written into it, once the model has been built


def _resumed_config(run_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    """The recorded settings of the run in ``run_dir``; ``--epochs`` is the one that may change."""
    ignored = sorted(key for key in options if (key in SETTINGS and key != "epochs") or key in ("config", "run_dir", "preset"))
    if ignored:
        raise CommandError(
            f"--resume continues a run with its recorded settings (only --epochs may change); drop {[option_name(k) for k in ignored]}"
        )
    if "epochs" in options and options["epochs"] < 1:
        raise CommandError(f"--epochs must be a positive integer, got {options['epochs']!r}")
    path = run_dir / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CommandError(f"--resume: {run_dir} is not a run folder ({path}: {error})") from None
    if not isinstance(config, dict):
        raise CommandError(f"--resume: {run_dir} is not a run folder ({path} holds no JSON object)")
    # A run recorded before a setting existed ran with that setting's default.
    config = {**{key: COMMON_DEFAULTS[key] for key in LATER_SETTINGS}, **config}
    missing = sorted(set(SETTINGS) - set(config) - set(MODEL_ONLY) - {"weight_scale"})
    if missing:
        raise CommandError(f"--resume: {path} lacks settings {missing}")
    # Reload exactly the data the run trained on.
    recorded = config.get("data_info", {})
    if recorded.get("source") == "cifar10":
        config.update(data=recorded["location"], sample=False, download=False)
    elif recorded.get("source") == "sample":
        config["sample"] = True
    config["epochs"] = options.get("epochs", config["epochs"])
    return config


def _restore_checkpoint(solver: Solver, run_dir: Path, out) -> None:
    """Load the newest checkpoint of ``run_dir`` that passes verification, saying which and why any failed."""
    saved = run_folder.checkpoints(run_dir)
    if not saved:
        print(f"{run_dir} has no checkpoint yet: training starts from the beginning", file=out)
        return
    for epoch, path in reversed(saved):
        try:
            solver.load_checkpoint(path)
        except CheckpointError as error:
            print(f"layerwise: warning: the checkpoint after epoch {epoch} failed verification: {error}", file=sys.stderr)
            continue
        print(f"Resuming {run_dir} after epoch {epoch} (iteration {solver.iteration})", file=out)
        return
    raise CommandError(f"--resume: none of the checkpoints in {run_dir / run_folder.CHECKPOINT_DIR} passed verification")


def run(options: dict[str, Any]) -> int:
    """Entry point of ``layerwise train`` (``options`` are the parsed arguments as a dict)."""
    if "threads" in options:  # how fast, not what is computed: the results are the same bits
        set_num_threads(options["threads"])
    if options.get("resume"):
        run_dir = Path(options["resume"])
        runtime = ("resume", "progress", "threads", "handler", "command")
        config = _resumed_config(run_dir, {k: v for k, v in options.items() if k not in runtime})
    else:
        config = resolve_config(options)
        run_dir = _new_run_dir(options, config["model"])
    out = sys.stdout

    np.random.seed(config["seed"])
    data, data_info, preprocessing = load_data(config)
    print(describe_data(data_info), file=out)
    model = build_model(config)
    progress = ProgressReporter() if options.get("progress", True) else ProgressReporter(bar=False, log_every=None)
    solver = make_solver(
        model, data, config, checkpoint_name=run_folder.checkpoint_stem(run_dir), callbacks=[progress, RunWriter(run_dir)]
    )
    if options.get("resume"):
        _restore_checkpoint(solver, run_dir, out)
        if solver.epoch > config["epochs"]:
            raise CommandError(
                f"--epochs {config['epochs']} is fewer than the {plural(solver.epoch, 'epoch')} {run_dir} has completed; "
                f"give --epochs {solver.epoch} or more"
            )
    # Every setting has now been checked (by the model and the Solver too): the run folder may be created.
    config["data_info"] = data_info
    run_folder.write_json(run_dir / "config.json", config)
    print(f"Training {type(model).__name__} ({config['model']}) for {plural(config['epochs'], 'epoch')}; run folder {run_dir}", file=out)

    try:
        # Overflow ends in a non-finite loss, which is reported below in one line instead.
        with _sigterm_as_interrupt(), np.errstate(over="ignore", invalid="ignore"):
            solver.train()
    except KeyboardInterrupt:
        saved = run_folder.checkpoints(run_dir)
        where = f"the last checkpoint is after epoch {saved[-1][0]}" if saved else "no checkpoint was written yet"
        print(f"\nInterrupted; {where}. Continue with: layerwise train --resume {run_dir}", file=sys.stderr)
        return 130
    except NonFiniteLossError as error:
        return _report_divergence(error, run_dir, model, solver, config, data_info, preprocessing)
    elapsed = solver.train_seconds  # the whole run's, over every resume

    plotted = write_run_results(run_dir, model, solver, data, data_info, preprocessing, out, test_flip=config["test_flip"])
    print(f"Best validation accuracy {solver.best_val_acc:.4f}; trained in {format_duration(elapsed)}", file=out)
    if not plotted:
        print("Curves and the confusion matrix were not plotted: matplotlib is not installed (pip install 'layerwise[plot]').", file=out)
    print(f"Run folder: {run_dir}  (evaluate again with: layerwise evaluate {run_dir})", file=out)
    return 0


def write_run_results(run_dir: Path, model, solver, data: dict[str, np.ndarray], data_info: dict[str, Any],
                      preprocessing: Preprocessing, out, *, test_flip: bool = False) -> list[Path]:  # fmt: skip
    """Write what a finished run leaves in its folder besides ``config.json`` and the checkpoints.

    ``loss.csv``, ``epochs.csv``, the model, the curves (and the filters of a conv net), the test
    accuracy with ``confusion.csv``/``.png`` (printed to ``out``) and ``metrics.json``.

    Parameters
    ----------
    model : the trained classifier (its parameters the ones to keep)
    solver : Solver, or any object with its ``loss_history``, ``train_acc_history``,
        ``val_acc_history``, ``iterations_per_epoch``, ``best_val_acc``, ``epoch`` and ``train_seconds``
    data : dict with ``X_test`` (N, 3, 32, 32), normalised, and ``y_test`` (N,)
    preprocessing : Preprocessing
        The normalisation ``data`` had, as :func:`load_data` returns it.
    test_flip : bool
        Score each test image with its mirror image too (recorded in the model file for ``evaluate``).

    Returns
    -------
    list of Path
        The curves plotted ([] without matplotlib).
    """
    write_metrics(run_dir, solver)
    save_run_model(run_dir, model, solver, data_info, preprocessing, test_flip=test_flip)
    plotted = plots.plot_curves(
        run_dir, solver.loss_history, solver.train_acc_history, solver.val_acc_history, solver.iterations_per_epoch
    )
    if isinstance(model, (ThreeLayerConvNet, ConvNet)):
        plots.save_filter_grid(run_dir / "filters.png", model.params["W1"])
    test = evaluate_and_report(model, data["X_test"], data["y_test"], run_dir, out, data_utils.CLASS_NAMES, flip=test_flip)
    run_folder.write_json(
        run_dir / "metrics.json",
        {**test, "best_val_acc": solver.best_val_acc, "train_seconds": round(solver.train_seconds, 2), "epochs": solver.epoch},
    )
    return plotted


def save_run_model(run_dir: Path, model, solver, data_info: dict[str, Any], preprocessing: Preprocessing,
                   *, test_flip: bool = False) -> None:  # fmt: skip
    """Save ``model`` as ``RUN/model.npz`` + ``.json``, with what ``layerwise evaluate`` needs to test it."""
    meta = {"data_info": data_info, "best_val_acc": solver.best_val_acc, "epochs": solver.epoch, "test_flip": test_flip}
    save_model(run_dir / "model", model, preprocessing=preprocessing, class_names=data_utils.CLASS_NAMES, meta=meta)


def _report_divergence(error: NonFiniteLossError, run_dir: Path, model, solver, config: dict[str, Any],
                       data_info: dict[str, Any], preprocessing: Preprocessing) -> int:  # fmt: skip
    """Say where the loss stopped being finite and what to try, keep the best parameters; exit status 3."""
    epoch = (error.iteration - 1) // solver.iterations_per_epoch + 1
    scale = config["weight_scale"]
    weight_scale = "he" if scale is None else scale if isinstance(scale, str) else f"{scale:g}"
    print(
        f"layerwise: error: the loss became {error.loss} at iteration {error.iteration} (epoch {epoch}); try a lower "
        f"--learning-rate (now {config['learning_rate']:g}) or --weight-scale (now {weight_scale})",
        file=sys.stderr,
    )
    write_metrics(run_dir, solver)
    if solver.best_params:
        model.params = {name: value.copy() for name, value in solver.best_params.items()}
        if solver.best_state:
            model.set_state(solver.best_state)
        save_run_model(run_dir, model, solver, data_info, preprocessing, test_flip=config["test_flip"])
        print(
            f"The best parameters so far (validation accuracy {solver.best_val_acc:.4f}) were saved to "
            f"{run_dir / 'model'}.npz and .json",
            file=sys.stderr,
        )
    else:
        print("No model was saved: the loss diverged before the first accuracy check.", file=sys.stderr)
    return DIVERGED


class _sigterm_as_interrupt:
    """Turn SIGTERM into KeyboardInterrupt for the duration, so a kill ends like Ctrl-C."""

    def __enter__(self):
        def handler(signum, frame):
            raise KeyboardInterrupt

        try:
            self.previous = signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread: leave signals alone
            self.previous = None
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False
