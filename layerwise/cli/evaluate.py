"""``layerwise evaluate``: test accuracy and per-class accuracy of a saved model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .. import data_utils
from ..inference import class_scores
from ..model_io import load_model
from . import plots, run_folder


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="test accuracy and per-class accuracy of a saved model",
        description="Evaluate a trained model (a run folder, or a model's .json/.npz/stem) on the CIFAR-10 test images.",
    )
    parser.add_argument("target", metavar="RUN_OR_MODEL", help="a run folder written by 'layerwise train', or a saved model")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", help="evaluate on the full CIFAR-10 test set at this path")
    source.add_argument("--sample", action="store_true", help="evaluate on the embedded sample's test images")
    parser.add_argument("--num-test", type=int, dest="num_test", help="test images (default: as in training)")
    parser.add_argument("--test-flip", action=argparse.BooleanOptionalAction, dest="test_flip",
                        help="score each image with its mirror image too (default: as in training)")
    parser.set_defaults(handler=run)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``matrix[i, j]`` counts the examples of class i predicted as class j."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def evaluate_and_report(
    model, X_test: np.ndarray, y_test: np.ndarray, out_dir: Path | None, out: TextIO, class_names: list[str] | None = None,
    *, flip: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Print the test accuracy and a per-class table; write confusion.csv/.png into ``out_dir``.

    ``X_test`` are model inputs (preprocessed); ``class_names`` default to CIFAR-10's; ``flip``
    scores each image with its mirror image too (:func:`layerwise.inference.class_scores`).
    """
    names = class_names or data_utils.CLASS_NAMES
    confusion = confusion_matrix(y_test, np.argmax(class_scores(model, X_test, flip=flip), axis=1), len(names))
    totals = confusion.sum(axis=1)
    per_class = {name: (float(confusion[i, i] / totals[i]) if totals[i] else None) for i, name in enumerate(names)}
    accuracy = float(np.trace(confusion) / max(len(y_test), 1))
    print(f"Test accuracy: {accuracy:.4f} ({np.trace(confusion)}/{len(y_test)})", file=out)
    print(f"  {'class':<12}{'accuracy':>9}{'images':>8}", file=out)
    for i, name in enumerate(names):
        value = "-" if per_class[name] is None else f"{per_class[name]:.3f}"
        print(f"  {name:<12}{value:>9}{totals[i]:>8}", file=out)
    if out_dir is not None:
        run_folder.write_csv(out_dir / "confusion.csv", ["true\\predicted", *names],
                             ([names[i], *row] for i, row in enumerate(confusion.tolist())))  # fmt: skip
        plots.plot_confusion(out_dir / "confusion.png", confusion, names)
    return {"test_accuracy": accuracy, "per_class_accuracy": per_class, "confusion": confusion.tolist()}


def uses_flip(options: dict[str, Any], meta: dict[str, Any]) -> bool:
    """``--test-flip``/``--no-test-flip`` if given, else whether training scored its test set with flips."""
    given = options.get("test_flip")
    return bool(meta.get("test_flip", False)) if given is None else given


def model_path(target: Path) -> Path:
    return target / "model.json" if target.is_dir() else target


def run(options: dict[str, Any]) -> int:
    target = Path(options["target"])
    saved = load_model(model_path(target))
    model, meta = saved.model, saved.meta
    info = meta.get("data_info", {})
    num_test = options.get("num_test") or info.get("num_test")
    use_sample = options.get("sample") or (not options.get("data") and info.get("source") == "sample")
    dtype = model.dtype
    if use_sample:
        kwargs = {} if num_test is None else {"num_test": num_test}
        data = data_utils.get_embedded_data(subtract_mean=False, dtype=dtype, **kwargs)
        where = "the embedded sample"
    else:
        recorded = info.get("location")
        recorded = recorded if recorded and Path(recorded).exists() else None
        location = data_utils.find_cifar10(options.get("data") or recorded, download=False)
        kwargs = {} if num_test is None else {"num_test": num_test}
        data = data_utils.get_CIFAR10_data(num_training=1, num_validation=0, subtract_mean=False, dtype=dtype, data_dir=location, **kwargs)
        where = str(location)
    X_test = data["X_test"]
    if saved.preprocessing is not None:
        if saved.preprocessing.input_shape != X_test.shape[1:]:
            raise ValueError(
                f"evaluate: the model takes images of shape {saved.preprocessing.input_shape}, the test images are {X_test.shape[1:]}"
            )
        X_test = saved.preprocessing.apply(X_test, dtype)
    print(f"Model: {type(model).__name__} from {model_path(target)}; test images from {where}", file=sys.stdout)
    evaluate_and_report(model, X_test, data["y_test"], None, sys.stdout, saved.class_names, flip=uses_flip(options, meta))
    return 0
