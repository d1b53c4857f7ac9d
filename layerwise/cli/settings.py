"""The settings of a training run: their defaults, their command-line options, and their checks.

Shared by ``layerwise train`` and ``layerwise sweep``: a run's ``config.json`` holds one value for
each of :data:`SETTINGS`; :func:`resolve_config` merges defaults, a ``--config`` file and options,
and :func:`check_settings` refuses what cannot train, naming the option, before anything is
loaded or written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from .. import schedules
from ..augmentation import AUGMENTATIONS
from ..optim import HYPERPARAMETERS, UPDATE_RULES
from .presets import PRESETS

MODEL_CHOICES = ("two-layer", "fc", "three-layer-conv", "convnet")

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
    "lr_schedule": None,
    "augment": None,
    "normalize": "mean-image",
    "test_flip": False,
}
NORMALIZE_CHOICES = ("mean-image", "channel")
# Settings a run's config.json may lack, having been written before they existed: such a run had their defaults.
LATER_SETTINGS = ("lr_schedule", "augment", "normalize", "test_flip")
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    # Tuned on CIFAR-10 (benchmarks/bench_cifar.py): raw pixels are large, so adam wants a small step.
    "two-layer": {"hidden_dim": 500, "weight_scale": 1e-3, "learning_rate": 1e-4, "lr_decay": 0.8},
    "fc": {"hidden_dims": [100, 100], "normalization": "batchnorm", "dropout_keep": 1.0, "weight_scale": 5e-2},
    "three-layer-conv": {
        "num_filters": 32, "filter_size": 7, "hidden_dim": 100, "weight_scale": 1e-3, "epochs": 1, "batch_size": 50,
    },  # fmt: skip
    # weight_scale None: He initialisation, sqrt(2 / fan_in) per layer
    "convnet": {
        "blocks": "32,64p,64,128p,128p", "filter_size": 3, "normalization": "batchnorm", "groups": 4,
        "residual": False, "global_pool": "max", "dropout_keep": 1.0, "label_smoothing": 0.0, "weight_scale": None,
    },  # fmt: skip
}
MODEL_ONLY = {
    "hidden_dim": ("two-layer", "three-layer-conv"),
    "hidden_dims": ("fc",),
    "normalization": ("fc", "convnet"),
    "dropout_keep": ("fc", "convnet"),
    "num_filters": ("three-layer-conv",),
    "filter_size": ("three-layer-conv", "convnet"),
    "blocks": ("convnet",),
    "groups": ("convnet",),
    "residual": ("convnet",),
    "global_pool": ("convnet",),
    "label_smoothing": ("convnet",),
}
# The normalizations each model takes ("none" on the command line is None).
NORMALIZATIONS = {"fc": (None, "batchnorm", "layernorm"), "convnet": (None, "batchnorm", "groupnorm")}
SETTINGS = sorted(set(COMMON_DEFAULTS) | set(MODEL_ONLY) | {"weight_scale"})


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}")
    return value


class CommandError(Exception):
    """A user error on the command line: printed without a traceback, exit status 2."""


def add_setting_arguments(parser: argparse.ArgumentParser) -> None:
    """Add an option for every setting (the keys of a run's ``config.json``) to ``parser``.

    The parser must have ``argument_default=argparse.SUPPRESS``, so that only the options given
    appear in the parsed arguments (``train`` and ``sweep`` merge them over other settings).
    """
    model = parser.add_argument_group("model")
    model.add_argument("--preset", choices=sorted(PRESETS),
                       help="start from a named set of settings (options given beside it win): best-cnn = the ConvNet "
                            "recipe of benchmarks/bench_best_cnn.py, 8 epochs on the full CIFAR-10")
    model.add_argument("--model", choices=MODEL_CHOICES, help="architecture (default: two-layer)")
    model.add_argument("--hidden-dim", type=int, dest="hidden_dim", help="hidden units (two-layer: default 500; three-layer-conv: 100)")
    model.add_argument("--hidden-dims", type=_int_list, dest="hidden_dims", help="fc hidden sizes, comma-separated (default 100,100)")
    model.add_argument("--normalization", choices=("none", "batchnorm", "layernorm", "groupnorm"),
                       help="fc: none, batchnorm or layernorm; convnet: none, batchnorm or groupnorm (default batchnorm)")
    model.add_argument("--dropout-keep", type=float, dest="dropout_keep", help="fc, convnet dropout keep probability (default 1: no dropout)")
    model.add_argument("--num-filters", type=int, dest="num_filters", help="conv filters (default 32)")
    model.add_argument("--filter-size", type=int, dest="filter_size", help="conv filter size (three-layer-conv: default 7; convnet: 3)")
    model.add_argument("--blocks", help="convnet blocks, comma-separated filter counts, each followed by p for a 2x2 max pool "
                                        "and r for a residual shortcut (default 32,64p,64,128p,128p)")
    model.add_argument("--groups", type=int, help="convnet groupnorm groups, dividing every block's filters (default 4)")
    model.add_argument("--residual", action="store_true", help="convnet: a residual shortcut in every block (see --blocks' r)")
    model.add_argument("--global-pool", choices=("max", "avg"), dest="global_pool", help="convnet: after the blocks (default max)")
    model.add_argument("--label-smoothing", type=float, dest="label_smoothing", help="convnet softmax loss (default 0)")
    model.add_argument("--weight-scale", type=_weight_scale, dest="weight_scale",
                       help="std of the initial weights; convnet also: 'he' for sqrt(2 / fan_in) (its default) or 'pytorch' for "
                            "sqrt(1 / (3 fan_in)), PyTorch's default (best-cnn's)")
    model.add_argument("--reg", type=float, help="L2 strength (default 0)")
    model.add_argument("--dtype", choices=("float32", "float64"), help="compute dtype (default float32)")
    training = parser.add_argument_group("training")
    training.add_argument("--update-rule", choices=sorted(UPDATE_RULES), dest="update_rule", help="default adam")
    training.add_argument("--learning-rate", "--lr", type=float, dest="learning_rate", help="default 1e-3 (two-layer: 1e-4)")
    training.add_argument("--lr-decay", type=float, dest="lr_decay", help="per-epoch factor (default 0.95; two-layer: 0.8)")
    training.add_argument("--optim-config", type=_json_object, dest="optim_config",
                          help="other update-rule settings as JSON, e.g. '{\"momentum\": 0.95}' or '{\"beta1\": 0.8}'")
    training.add_argument("--lr-schedule", type=_json_object_or_null, dest="lr_schedule",
                          help="learning rate of every iteration, as JSON: {\"name\": NAME, ...} with NAME one of "
                               f"{', '.join(schedules.SCHEDULES)} (see layerwise.schedules), e.g. "
                               "'{\"name\": \"one_cycle\", \"max_lr\": 0.2}'; --lr-decay is then 1 (default: none)")
    training.add_argument("--augment", choices=(*AUGMENTATIONS, "none"),
                          help="training-batch augmentation: crop-flip = random crops of the image padded by 4 (reflected) "
                               "and horizontal flips (default: none)")
    training.add_argument("--batch-size", type=int, dest="batch_size", help="default 100 (50 for three-layer-conv)")
    training.add_argument("--epochs", type=int, help="default 5 (1 for three-layer-conv)")
    training.add_argument("--num-train-samples", type=int, dest="num_train_samples", help="examples for the train accuracy (default 1000)")
    training.add_argument("--num-val-samples", type=int, dest="num_val_samples", help="examples for the val accuracy (default all)")
    training.add_argument("--seed", type=int, help="random seed (default: a fresh one, recorded in config.json)")
    data = parser.add_argument_group("data")
    data.add_argument("--data", help="CIFAR-10 archive or cifar-10-batches-py folder (else $LAYERWISE_DATA, the cache, a download)")
    data.add_argument("--sample", action="store_true", help="use the embedded sample even if the full data is available")
    data.add_argument("--no-download", action="store_false", dest="download", help="never download CIFAR-10")
    data.add_argument("--normalize", choices=NORMALIZE_CHOICES,
                      help="subtract the training mean image, or each channel's mean and divide by its std (default mean-image)")
    data.add_argument("--num-training", type=int, dest="num_training", help="training images (default 49000; sample: 1800)")
    data.add_argument("--num-validation", type=int, dest="num_validation", help="validation images (default 1000; sample: 100)")
    data.add_argument("--num-test", type=int, dest="num_test", help="test images (default 1000; best-cnn: all 10000)")
    data.add_argument("--test-flip", action="store_true", dest="test_flip",
                      help="score each test image as the mean of its scores and its mirror image's (best-cnn's default)")


def _weight_scale(text: str) -> float | str | None:
    named = text.strip().lower()
    if named in ("he", "pytorch"):
        return None if named == "he" else named
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, 'he' or 'pytorch', got {text!r}") from None


def parse_blocks(blocks: Any) -> list:
    """The ``blocks`` setting as ``ConvNet`` takes it.

    A string such as ``"32,64p,64r,128p"``: a block per comma, its number of filters followed by
    ``p`` for a 2x2 max pool after it and ``r`` for a residual shortcut (in either order); or, from
    a JSON file, a list of ``[filters, pool]`` pairs or of dicts as ``ConvNet`` takes them.

    Raises
    ------
    CommandError
        Naming ``--blocks`` when the text is malformed.
    """
    if not isinstance(blocks, str):
        if not isinstance(blocks, list) or not blocks:
            raise CommandError(f"--blocks must be a text such as '32,64p,128p' or a list of blocks, got {blocks!r}")
        return blocks
    parsed = []
    for part in blocks.split(","):
        part = part.strip()
        digits = part.rstrip("pr")
        flags = part[len(digits):]
        if not digits.isdigit() or int(digits) < 1 or len(set(flags)) != len(flags):
            raise CommandError(
                f"--blocks must be comma-separated filter counts, each optionally followed by p (pool) and r "
                f"(residual), e.g. '32,64p,64r,128p', got {blocks!r}"
            )
        block: dict[str, Any] = {"filters": int(digits), "pool": "p" in flags}
        if "r" in flags:
            block["residual"] = True
        parsed.append(block)
    return parsed


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


def _json_object_or_null(text: str) -> dict[str, Any] | None:
    return None if text.strip() in ("null", "none") else _json_object(text)


def resolve_config(options: dict[str, Any]) -> dict[str, Any]:
    """Merge defaults < preset (``options["preset"]``) < config file < command-line options, and check the result."""
    given = {key: value for key, value in options.items() if key in SETTINGS}
    preset = preset_settings(options.get("preset"))
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
    return resolve_settings({**preset, **given})


def preset_settings(name: str | None) -> dict[str, Any]:
    """A copy of :data:`.presets.PRESETS` ``[name]`` ({} for None)."""
    if name is None:
        return {}
    if name not in PRESETS:
        raise CommandError(f"--preset must be one of {sorted(PRESETS)}, got {name!r}")
    return json.loads(json.dumps(PRESETS[name]))


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
    if config["augment"] == "none":
        config["augment"] = None
    if config["lr_schedule"] is not None and "lr_decay" not in given:
        config["lr_decay"] = 1.0  # the schedule sets every update's rate
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
    "label_smoothing": (0.0, 1.0, False, False),
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
        if key in config and not (key == "weight_scale" and config[key] in (None, "pytorch") and config["model"] == "convnet"):
            _check_real(option_name(key), config[key], low, high, low_open, high_open)
    model = config["model"]
    if model in NORMALIZATIONS and config["normalization"] not in NORMALIZATIONS[model]:
        choices = ", ".join("none" if choice is None else choice for choice in NORMALIZATIONS[model])
        raise CommandError(f"--normalization must be one of {choices} for {model}, got {config['normalization']!r}")
    if model == "convnet":
        parse_blocks(config["blocks"])
        if type(config["residual"]) is not bool:
            raise CommandError(f"--residual must be true or false, got {config['residual']!r}")
    rule = config["update_rule"]
    if rule not in UPDATE_RULES:
        raise CommandError(f"--update-rule must be one of {sorted(UPDATE_RULES)}, got {rule!r}")
    _check_optim_config(rule, config["optim_config"])
    _check_training_options(config)


def _check_training_options(config: dict[str, Any]) -> None:
    """The schedule, augmentation and normalisation settings."""
    spec = config["lr_schedule"]
    if spec is not None:
        try:
            schedules.check_spec(spec)
        except (TypeError, ValueError) as error:
            raise CommandError(f"--lr-schedule: {error}") from None
        if config["lr_decay"] != 1.0:
            raise CommandError(f"--lr-decay must be 1 with --lr-schedule, which sets every update's learning rate; got {config['lr_decay']!r}")
    if config["augment"] is not None and config["augment"] not in AUGMENTATIONS:
        raise CommandError(f"--augment must be one of {[*AUGMENTATIONS, 'none']}, got {config['augment']!r}")
    if type(config["test_flip"]) is not bool:
        raise CommandError(f"--test-flip must be true or false, got {config['test_flip']!r}")
    if config["normalize"] not in NORMALIZE_CHOICES:
        raise CommandError(f"--normalize must be one of {list(NORMALIZE_CHOICES)}, got {config['normalize']!r}")


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
