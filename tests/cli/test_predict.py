"""``layerwise predict``: real test images as PNG, JPEG, .npy and folders, under a trained model."""

import json

import numpy as np
import pytest
from PIL import Image

from layerwise import data_utils
from layerwise.cli import main
from layerwise.model_io import load_model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("predict") / "run"
    args = ["train", "--sample", "--num-training", "300", "--num-validation", "50", "--num-test", "50", "--no-progress",
            "--model", "fc", "--hidden-dims", "32", "--epochs", "2", "--seed", "0", "--run-dir", str(run)]  # fmt: skip
    assert main(args) == 0
    return run


@pytest.fixture(scope="module")
def test_images():
    _, _, x_test, y_test = data_utils.load_embedded_sample()
    return x_test[:6], y_test[:6]  # (6, 32, 32, 3) uint8


def _write(folder, images, kind):
    folder.mkdir(exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"img{i}.{kind}"
        if kind == "npy":
            np.save(path, image)
        else:
            Image.fromarray(image).save(path, quality=95) if kind == "jpg" else Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines()]


def test_png_and_npy_predictions_are_the_models_on_those_pixels(run, test_images, tmp_path, capsys):
    images, _ = test_images
    saved = load_model(run / "model")
    expected = saved.predict_proba(images.transpose(0, 3, 1, 2))
    for kind in ("png", "npy"):
        paths = _write(tmp_path / kind, images, kind)
        capsys.readouterr()
        assert main(["predict", str(run), *map(str, paths), "--json", "--top-k", "3"]) == 0
        records = _json_lines(capsys.readouterr().out)
        assert [r["file"] for r in records] == list(map(str, paths))
        for record, row in zip(records, expected):
            best = int(np.argmax(row))
            assert record["class"] == saved.class_names[best] and record["probability"] == float(row[best])
            assert [t["class"] for t in record["top"]] == [saved.class_names[i] for i in np.argsort(-row)[:3]]
            assert record["top"][0] == {"class": record["class"], "probability": record["probability"]}


def test_a_folder_of_jpegs_gives_one_line_per_image(run, test_images, tmp_path, capsys):
    images, _ = test_images
    _write(tmp_path / "jpegs", images, "jpg")
    (tmp_path / "jpegs" / "readme.txt").write_text("not an image")
    capsys.readouterr()
    assert main(["predict", str(run / "model.json"), str(tmp_path / "jpegs")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(images)
    for i, line in enumerate(lines):
        path, _, rest = line.partition(": ")
        name, probability = rest.split()
        assert path.endswith(f"img{i}.jpg") and name in data_utils.CLASS_NAMES and 0 < float(probability) <= 1


def test_the_model_classifies_real_test_images_as_evaluate_does(run, test_images, tmp_path, capsys):
    images, _ = test_images
    saved = load_model(run / "model")
    X = saved.preprocessing.apply(images.transpose(0, 3, 1, 2), saved.model.dtype)
    from layerwise.inference import class_scores

    expected = [saved.class_names[k] for k in np.argmax(class_scores(saved.model, X), axis=1)]
    paths = _write(tmp_path / "png", images, "png")
    capsys.readouterr()
    assert main(["predict", str(run), *map(str, paths), "--json"]) == 0
    assert [r["class"] for r in _json_lines(capsys.readouterr().out)] == expected


def test_other_sizes_are_refused_naming_the_file_unless_resize(run, tmp_path, capsys):
    big = (np.arange(48 * 64 * 3) % 256).astype(np.uint8).reshape(48, 64, 3)
    Image.fromarray(big).save(tmp_path / "big.png")
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "big.png")]) == 2
    err = capsys.readouterr().err
    assert "big.png: the image is 64x48 pixels but the model takes 32x32" in err and "--resize" in err
    assert main(["predict", str(run), str(tmp_path / "big.png"), "--resize", "--top-k", "2"]) == 0
    assert capsys.readouterr().out.count(",") == 1  # two classes on the line


@pytest.mark.parametrize("k", ["0", "11"])
def test_top_k_must_fit_the_classes(run, tmp_path, capsys, k):
    np.save(tmp_path / "x.npy", np.zeros((32, 32, 3), np.uint8))
    assert main(["predict", str(run), str(tmp_path / "x.npy"), "--top-k", k]) == 2
    assert f"--top-k must be between 1 and 10 (the model's classes), got {k}" in capsys.readouterr().err


def test_a_missing_model_is_a_clear_error(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((32, 32, 3), np.uint8))
    assert main(["predict", str(tmp_path / "nothing"), str(tmp_path / "x.npy")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_test_flip_averages_with_the_mirror_images_by_default_when_training_did(run, test_images, tmp_path, capsys):
    images, _ = test_images
    paths = _write(tmp_path / "png", images, "png")
    flipped_run = tmp_path / "flipped"
    args = ["train", "--sample", "--num-training", "300", "--num-validation", "50", "--num-test", "50", "--no-progress",
            "--model", "fc", "--hidden-dims", "32", "--epochs", "2", "--seed", "0", "--test-flip", "--run-dir", str(flipped_run)]  # fmt: skip
    assert main(args) == 0
    saved = load_model(flipped_run / "model")
    pixels = images.transpose(0, 3, 1, 2)
    printed = {}
    for extra, flip in (([], True), (["--no-test-flip"], False)):
        capsys.readouterr()
        assert main(["predict", str(flipped_run), *map(str, paths), "--json", *extra]) == 0
        printed[flip] = [r["probability"] for r in _json_lines(capsys.readouterr().out)]
        assert printed[flip] == [float(row.max()) for row in saved.predict_proba(pixels, flip=flip)]
    assert printed[True] != printed[False]
    capsys.readouterr()
    assert main(["predict", str(run), *map(str, paths), "--json", "--test-flip"]) == 0  # a model trained without
    got = [r["probability"] for r in _json_lines(capsys.readouterr().out)]
    assert got == [float(row.max()) for row in load_model(run / "model").predict_proba(pixels, flip=True)]
