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
from ..checkpoint import CheckpointError
from ..classifiers import FullyConnectedNet, ThreeLayerConvNet, TwoLayerNet
from ..model_io import save_model
from ..optim import HYPERPARAMETERS, UPDATE_RULES
from ..preprocessing import Preprocessing
from ..solver import NonFiniteLossError, Solver
from . import plots, run_folder
from .evaluate import evaluate_and_report
from .progress import ProgressReporter, format_duration, plural

MODEL_CHOICES = ("two-layer", "fc", "three-layer-conv")

# Settings every model shares, then each model's own defaults (they override the shared ones).
COMMON_DEFAULTS: dict[str, Any] = {
    "model": "two-layer",
    "update_rule": "adam",
    "learning_rate": 1e-3,
    "lr_decay": 0.95,
    "batch_size": 100,
    "epochs": 5,
    "reg": 0.0,
    "dtype": "float32",
    "num_train_samples": 1000,
    "num_val_samples": None,
    "num_training": None,
    "num_validation": None,
    "num_test": None,
    "data": None,
    "sample": False,
    "download": True,
    "seed": None,
    "optim_config": {},
}
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    # Tuned on CIFAR-10 (benchmarks/bench_cifar.py): raw pixels are large, so adam wants a small step.
    "two-layer": {"hidden_dim": 500, "weight_scale": 1e-3, "learning_rate": 1e-4, "lr_decay": 0.8},
    "fc": {"hidden_dims": [100, 100], "normalization": "batchnorm", "dropout_keep": 1.0, "weight_scale": 5e-2},
    "three-layer-conv": {
        "num_filters": 32, "filter_size": 7, "hidden_dim": 100, "weight_scale": 1e-3, "epochs": 1, "batch_size": 50,
    },  # fmt: skip
}
MODEL_ONLY = {
    "hidden_dim": ("two-layer", "three-layer-conv"),
    "hidden_dims": ("fc",),
    "normalization": ("fc",),
    "dropout_keep": ("fc",),
    "num_filters": ("three-layer-conv",),
    "filter_size": ("three-layer-conv",),
}
SETTINGS = sorted(set(COMMON_DEFAULTS) | set(MODEL_ONLY) | {"weight_scale"})


def _positive_threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}")
    return value


class CommandError(Exception):
    """A user error on the command line: printed without a traceback, exit status 2."""


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
    output.add_argument("--threads", type=_positive_threads,
                        help="threads for the fast layers (default: $LAYERWISE_NUM_THREADS, else as many as BLAS uses)")
    parser.set_defaults(handler=run)


def add_setting_arguments(parser: argparse.ArgumentParser) -> None:
    """Add an option for every setting (the keys of a run's ``config.json``) to ``parser``.

    The parser must have ``argument_default=argparse.SUPPRESS``, so that only the options given
    appear in the parsed arguments (``train`` and ``sweep`` merge them over other settings).
    """
    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=MODEL_CHOICES, help="architecture (default: two-layer)")
    model.add_argument("--hidden-dim", type=int, dest="hidden_dim", help="hidden units (two-layer: default 500; three-layer-conv: 100)")
    model.add_argument("--hidden-dims", type=_int_list, dest="hidden_dims", help="fc hidden sizes, comma-separated (default 100,100)")
    model.add_argument("--normalization", choices=("none", "batchnorm", "layernorm"), help="fc normalization (default batchnorm)")
    model.add_argument("--dropout-keep", type=float, dest="dropout_keep", help="fc dropout keep probability (default 1: no dropout)")
    model.add_argument("--num-filters", type=int, dest="num_filters", help="conv filters (default 32)")
    model.add_argument("--filter-size", type=int, dest="filter_size", help="conv filter size (default 7)")
    model.add_argument("--weight-scale", type=float, dest="weight_scale", help="std of the initial weights")
    model.add_argument("--reg", type=float, help="L2 strength (default 0)")
    model.add_argument("--dtype", choices=("float32", "float64"), help="compute dtype (default float32)")
    training = parser.add_argument_group("training")
    training.add_argument("--update-rule", choices=sorted(UPDATE_RULES), dest="update_rule", help="default adam")
    training.add_argument("--learning-rate", "--lr", type=float, dest="learning_rate", help="default 1e-3 (two-layer: 1e-4)")
    training.add_argument("--lr-decay", type=float, dest="lr_decay", help="per-epoch factor (default 0.95; two-layer: 0.8)")
    training.add_argument("--optim-config", type=_json_object, dest="optim_config",
                          help="other update-rule settings as JSON, e.g. '{\"momentum\": 0.95}' or '{\"beta1\": 0.8}'")
    training.add_argument("--batch-size", type=int, dest="batch_size", help="default 100 (50 for three-layer-conv)")
    training.add_argument("--epochs", type=int, help="default 5 (1 for three-layer-conv)")
    training.add_argument("--num-train-samples", type=int, dest="num_train_samples", help="examples for the train accuracy (default 1000)")
    training.add_argument("--num-val-samples", type=int, dest="num_val_samples", help="examples for the val accuracy (default all)")
    training.add_argument("--seed", type=int, help="random seed (default: a fresh one, recorded in config.json)")
    data = parser.add_argument_group("data")
    data.add_argument("--data", help="CIFAR-10 archive or cifar-10-batches-py folder (else $LAYERWISE_DATA, the cache, a download)")
    data.add_argument("--sample", action="store_true", help="use the embedded sample even if the full data is available")
    data.add_argument("--no-download", action="store_false", dest="download", help="never download CIFAR-10")
    data.add_argument("--num-training", type=int, dest="num_training", help="training images (default 49000; sample: 1800)")
    data.add_argument("--num-validation", type=int, dest="num_validation", help="validation images (default 1000; sample: 100)")
    data.add_argument("--num-test", type=int, dest="num_test", help="test images (default 1000)")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one size, got {text!r}")
    return values


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def resolve_config(options: dict[str, Any]) -> dict[str, Any]:
    """Merge defaults < config file < command-line options, and check the result."""
    given = {key: value for key, value in options.items() if key in SETTINGS}
    if options.get("config"):
        path = Path(options["config"])
        try:
            from_file = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise CommandError(f"--config: cannot read {path}: {error}") from None
        if not isinstance(from_file, dict):
            raise CommandError(f"--config: {path} must hold a JSON object of settings")
        unknown = sorted(set(from_file) - set(SETTINGS))
        if unknown:
            raise CommandError(f"--config: unknown settings {unknown} in {path}; valid ones are {SETTINGS}")
        given = {**from_file, **given}
    return resolve_settings(given)


def resolve_settings(given: dict[str, Any]) -> dict[str, Any]:
    """Every setting of a run: the model's defaults < ``given``; checked, and a fresh seed if none.

    Parameters
    ----------
    given : dict
        Settings keyed as in a run's ``config.json`` (each a key of ``SETTINGS``).

    Raises
    ------
    CommandError
        Naming the option of a setting that is unknown, does not apply to the model, or cannot train.
    """
    unknown = sorted(set(given) - set(SETTINGS))
    if unknown:
        raise CommandError(f"unknown settings {unknown}; valid ones are {SETTINGS}")
    model = given.get("model", COMMON_DEFAULTS["model"])
    if model not in MODEL_CHOICES:
        raise CommandError(f"model must be one of {list(MODEL_CHOICES)}, got {model!r}")
    for key in given:
        if key in MODEL_ONLY and model not in MODEL_ONLY[key]:
            raise CommandError(f"--{key.replace('_', '-')} applies to {' and '.join(MODEL_ONLY[key])} only, not to {model}")
    config = {**COMMON_DEFAULTS, **MODEL_DEFAULTS[model], **given}
    if config.get("normalization") == "none":
        config["normalization"] = None
    if config["seed"] is None:
        config["seed"] = int(np.random.SeedSequence().entropy % (2**31))
    check_settings(config)
    return config


# The range of every real-valued setting: (low, high, low_open, high_open), as in _validation.real_value.
REAL_RANGES: dict[str, tuple[float, float | None, bool, bool]] = {
    "learning_rate": (0.0, None, True, False),
    "lr_decay": (0.0, 1.0, True, False),
    "weight_scale": (0.0, None, False, False),
    "reg": (0.0, None, False, False),
    "dropout_keep": (0.0, 1.0, True, False),
}


def option_name(key: str) -> str:
    """The command-line option of a setting: ``learning_rate`` -> ``--learning-rate``."""
    return "--" + key.replace("_", "-")


def check_settings(config: dict[str, Any]) -> None:
    """Refuse a setting that cannot train, naming its option, before anything is loaded or written."""
    for key in ("epochs", "batch_size", "num_train_samples", "num_val_samples"):
        value = config[key]
        if (value is not None or key != "num_val_samples") and (type(value) is not int or value < 1):
            raise CommandError(f"{option_name(key)} must be a positive integer, got {value!r}")
    for key, (low, high, low_open, high_open) in REAL_RANGES.items():
        if key in config:
            _check_real(option_name(key), config[key], low, high, low_open, high_open)
    rule = config["update_rule"]
    if rule not in UPDATE_RULES:
        raise CommandError(f"--update-rule must be one of {sorted(UPDATE_RULES)}, got {rule!r}")
    _check_optim_config(rule, config["optim_config"])


def _check_real(option: str, value: Any, low: float, high: float | None, low_open: bool, high_open: bool) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    below = number and (value <= low if low_open else value < low)
    above = number and high is not None and (value >= high if high_open else value > high)
    if not number or not np.isfinite(value) or below or above:
        if high is None:
            expected = f"{'>' if low_open else '>='} {low:g}"
        else:
            expected = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise CommandError(f"{option} must be a finite number {expected}, got {value!r}")


def _check_optim_config(rule: str, optim_config: Any) -> None:
    if not isinstance(optim_config, dict):
        raise CommandError(f"--optim-config must be a JSON object, got {optim_config!r}")
    if "learning_rate" in optim_config:
        raise CommandError("--optim-config: give the learning rate with --learning-rate, not as 'learning_rate'")
    valid = sorted(set(HYPERPARAMETERS[rule]) - {"learning_rate"})
    unknown = sorted(set(optim_config) - set(valid))
    if unknown:
        others = f"valid ones are {valid}" if valid else f"{rule} has none besides --learning-rate"
        raise CommandError(f"--optim-config: unknown settings {unknown} for --update-rule {rule}; {others}")
    scratch = np.zeros(1)
    try:  # the rule's own checks: finite values in each setting's range
        UPDATE_RULES[rule](scratch, scratch, dict(optim_config))
    except (TypeError, ValueError) as error:
        raise CommandError(f"--optim-config: {error}") from None


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
    return ThreeLayerConvNet(
        input_dim=(3, 32, 32), num_filters=config["num_filters"], filter_size=config["filter_size"],
        hidden_dim=config["hidden_dim"], **common,
    )  # fmt: skip


def make_solver(model, data: dict[str, np.ndarray], config: dict[str, Any], **extra) -> Solver:
    """The Solver that trains ``model`` on ``data`` as the config says (``extra``: checkpoints, callbacks)."""
    return Solver(
        model, data,
        update_rule=config["update_rule"], optim_config={**config["optim_config"], "learning_rate": config["learning_rate"]},
        lr_decay=config["lr_decay"], batch_size=config["batch_size"], num_epochs=config["epochs"],
        num_train_samples=config["num_train_samples"], num_val_samples=config["num_val_samples"], verbose=False,
        **extra,
    )  # fmt: skip


def load_data(config: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any], np.ndarray]:
    """Load the data the config asks for; return it mean-subtracted, a description, and the mean image.

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
    mean_image = data["X_train"].mean(axis=0)
    for part in ("X_train", "X_val", "X_test"):
        data[part] -= mean_image
    return data, info, mean_image


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
    ignored = sorted(key for key in options if (key in SETTINGS and key != "epochs") or key in ("config", "run_dir"))
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
    data, data_info, mean_image = load_data(config)
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
        return _report_divergence(error, run_dir, model, solver, config, data_info, mean_image)
    elapsed = solver.train_seconds  # the whole run's, over every resume

    plotted = write_run_results(run_dir, model, solver, data, data_info, mean_image, out)
    print(f"Best validation accuracy {solver.best_val_acc:.4f}; trained in {format_duration(elapsed)}", file=out)
    if not plotted:
        print("Curves and the confusion matrix were not plotted: matplotlib is not installed (pip install 'layerwise[plot]').", file=out)
    print(f"Run folder: {run_dir}  (evaluate again with: layerwise evaluate {run_dir})", file=out)
    return 0


def write_run_results(run_dir: Path, model, solver, data: dict[str, np.ndarray], data_info: dict[str, Any],
                      mean_image: np.ndarray, out) -> list[Path]:  # fmt: skip
    """Write what a finished run leaves in its folder besides ``config.json`` and the checkpoints.

    ``loss.csv``, ``epochs.csv``, the model, the curves (and the filters of a conv net), the test
    accuracy with ``confusion.csv``/``.png`` (printed to ``out``) and ``metrics.json``.

    Parameters
    ----------
    model : the trained classifier (its parameters the ones to keep)
    solver : Solver, or any object with its ``loss_history``, ``train_acc_history``,
        ``val_acc_history``, ``iterations_per_epoch``, ``best_val_acc``, ``epoch`` and ``train_seconds``
    data : dict with ``X_test`` (N, 3, 32, 32), mean-subtracted, and ``y_test`` (N,)

    Returns
    -------
    list of Path
        The curves plotted ([] without matplotlib).
    """
    write_metrics(run_dir, solver)
    save_run_model(run_dir, model, solver, data_info, mean_image)
    plotted = plots.plot_curves(
        run_dir, solver.loss_history, solver.train_acc_history, solver.val_acc_history, solver.iterations_per_epoch
    )
    if isinstance(model, ThreeLayerConvNet):
        plots.save_filter_grid(run_dir / "filters.png", model.params["W1"])
    test = evaluate_and_report(model, data["X_test"], data["y_test"], run_dir, out, data_utils.CLASS_NAMES)
    run_folder.write_json(
        run_dir / "metrics.json",
        {**test, "best_val_acc": solver.best_val_acc, "train_seconds": round(solver.train_seconds, 2), "epochs": solver.epoch},
    )
    return plotted


def save_run_model(run_dir: Path, model, solver, data_info: dict[str, Any], mean_image: np.ndarray) -> None:
    """Save ``model`` as ``RUN/model.npz`` + ``.json``, with what ``layerwise evaluate`` needs to test it."""
    meta = {"data_info": data_info, "best_val_acc": solver.best_val_acc, "epochs": solver.epoch}
    preprocessing = Preprocessing(mean_image.shape, mean=mean_image)
    save_model(run_dir / "model", model, preprocessing=preprocessing, class_names=data_utils.CLASS_NAMES, meta=meta)


def _report_divergence(error: NonFiniteLossError, run_dir: Path, model, solver, config: dict[str, Any],
                       data_info: dict[str, Any], mean_image: np.ndarray) -> int:  # fmt: skip
    """Say where the loss stopped being finite and what to try, keep the best parameters; exit status 3."""
    epoch = (error.iteration - 1) // solver.iterations_per_epoch + 1
    print(
        f"layerwise: error: the loss became {error.loss} at iteration {error.iteration} (epoch {epoch}); try a lower "
        f"--learning-rate (now {config['learning_rate']:g}) or --weight-scale (now {config['weight_scale']:g})",
        file=sys.stderr,
    )
    write_metrics(run_dir, solver)
    if solver.best_params:
        model.params = {name: value.copy() for name, value in solver.best_params.items()}
        if solver.best_state:
            model.set_state(solver.best_state)
        save_run_model(run_dir, model, solver, data_info, mean_image)
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
