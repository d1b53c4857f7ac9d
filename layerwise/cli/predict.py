"""``layerwise predict``: class probabilities of image files under a saved model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..images import expand_paths, load_images
from ..model_io import load_model
from .evaluate import model_path, uses_flip


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify image files with a saved model",
        description=(
            "Print each image's most probable class under a trained model (a run folder or a saved model). "
            "Images are PNG, JPEG or .npy arrays ((H, W, 3) or (3, H, W), values 0-255); a folder stands for "
            "the images in it. They must have the size the model was trained on, unless --resize."
        ),
    )
    parser.add_argument("target", metavar="RUN_OR_MODEL", help="a run folder written by 'layerwise train', or a saved model")
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files or folders of them")
    parser.add_argument("--top-k", type=int, default=1, dest="top_k", help="print the K most probable classes (default 1)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line: file, class, probability, top")
    parser.add_argument("--resize", action="store_true", help="centre-crop and scale images of another size to the model's")
    parser.add_argument("--test-flip", action=argparse.BooleanOptionalAction, dest="test_flip",
                        help="average each image's scores with its mirror image's (default: as the model was evaluated in training)")
    parser.set_defaults(handler=run)


def top_classes(probabilities: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest probabilities of each row, largest first (ties: lower index first)."""
    return np.argsort(-probabilities, axis=1, kind="stable")[:, :k]


def run(options: dict[str, Any]) -> int:
    saved = load_model(model_path(Path(options["target"])))
    num_classes = len(saved.class_names)
    k = options["top_k"]
    if not 1 <= k <= num_classes:
        raise ValueError(f"predict: --top-k must be between 1 and {num_classes} (the model's classes), got {k}")
    shape = _image_shape(saved)
    files = expand_paths(options["images"])
    pixels = load_images(files, shape[1:], resize=options["resize"])
    probabilities = saved.predict_proba(pixels, flip=uses_flip(options, saved.meta))
    out = sys.stdout
    for path, row, best in zip(files, probabilities, top_classes(probabilities, k)):
        top = [(saved.class_names[i], float(row[i])) for i in best]
        if options["json"]:
            record = {
                "file": str(path), "class": top[0][0], "probability": top[0][1],
                "top": [{"class": name, "probability": p} for name, p in top],
            }  # fmt: skip
            print(json.dumps(record), file=out)
        else:
            print(f"{path}: " + ", ".join(f"{name} {p:.3f}" for name, p in top), file=out)
    return 0


def _image_shape(saved) -> tuple[int, int, int]:
    """(C, H, W) of the images the model takes; from its preprocessing, else a conv net's input_dim."""
    if saved.preprocessing is not None:
        shape = saved.preprocessing.input_shape
    elif isinstance(getattr(saved.model, "input_dim", None), tuple):
        shape = saved.model.input_dim
    else:
        raise ValueError(
            "predict: the model was saved without preprocessing, so the image size and scaling it expects "
            "are unknown; save it with save_model(..., preprocessing=Preprocessing(...))"
        )
    if shape[0] != 3:
        raise ValueError(f"predict: the model takes images with {shape[0]} channels; image files give RGB (3)")
    return shape
