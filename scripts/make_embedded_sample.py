"""Build ``layerwise/_data/cifar10_sample.npz.xz``, the real CIFAR-10 subset shipped with layerwise.

Usage::

    python scripts/make_embedded_sample.py [ARCHIVE] [--train-per-class K] [--output PATH]

``ARCHIVE`` is a CIFAR-10 python archive (default: ``../shared/data/cifar-10-python.tar.gz``
relative to the repository root). The selection is deterministic: the first ``K`` images of each
class in file order among training images 0-3,999, interleaved by class, and test images 0-999.
Only those images are byte-exact in the shared (re-built) archive, so the script refuses to take
images beyond them. The output is byte-reproducible for a given archive, numpy and liblzma, and
is written atomically; the script fails, writing nothing, if it exceeds ``--max-bytes``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from layerwise._data.cifar_format import TEST_BATCH, read_batches  # noqa: E402
from layerwise._data.sample_codec import CODEC, SAMPLE_FILE, encode_images, read_sample, write_sample  # noqa: E402

DEFAULT_ARCHIVE = REPO_ROOT.parent / "shared" / "data" / "cifar-10-python.tar.gz"
DEFAULT_OUTPUT = REPO_ROOT / "layerwise" / "_data" / SAMPLE_FILE
EXACT_TRAIN = 4000  # training images 0-3,999 are byte-exact in the shared archive
EXACT_TEST = 1000  # and so are test images 0-999
NUM_CLASSES = 10


def select_training(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first ``per_class`` images of each class among the exact ones, interleaved by class.

    Position ``10 * j + c`` of the result holds the ``j``-th image of class ``c``.
    """
    exact = labels[:EXACT_TRAIN]
    columns = []
    for label in range(NUM_CLASSES):
        indices = np.flatnonzero(exact == label)
        if len(indices) < per_class:
            raise SystemExit(
                f"error: class {label} has only {len(indices)} images among training images 0-{EXACT_TRAIN - 1}, "
                f"fewer than --train-per-class {per_class}"
            )
        columns.append(indices[:per_class])
    return np.stack(columns, axis=1).reshape(-1)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive", nargs="?", type=Path, default=DEFAULT_ARCHIVE, help="cifar-10-python.tar.gz")
    parser.add_argument("--train-per-class", type=int, default=190, help="training images per class (default 190)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default {DEFAULT_OUTPUT}")
    parser.add_argument("--max-bytes", type=int, default=5_000_000, help="size limit of the output (default 5 MB)")
    args = parser.parse_args(argv)
    if not args.archive.is_file():
        parser.error(f"archive {args.archive} does not exist")

    func = "make_embedded_sample"
    batches = read_batches(args.archive, ("data_batch_1", TEST_BATCH), func)
    train_rows, train_labels = batches["data_batch_1"]
    test_rows, test_labels = batches[TEST_BATCH]
    train_index = select_training(train_labels, args.train_per_class)
    test_index = np.arange(EXACT_TEST)

    arrays = {
        "x_train": encode_images(train_rows[train_index].reshape(-1, 3, 32, 32)),
        "y_train": train_labels[train_index].astype(np.uint8),
        "train_index": train_index.astype(np.int32),
        "x_test": encode_images(test_rows[test_index].reshape(-1, 3, 32, 32)),
        "y_test": test_labels[test_index].astype(np.uint8),
        "test_index": test_index.astype(np.int32),
        "codec": np.array(CODEC),
        "source_sha256": np.array(sha256(args.archive)),
    }
    payload = write_sample(arrays)

    # Check the round trip before writing anything.
    decoded = read_sample(payload, str(args.output))
    assert np.array_equal(decoded["x_train"].reshape(len(train_index), -1), train_rows[train_index])
    assert np.array_equal(decoded["x_test"].reshape(len(test_index), -1), test_rows[test_index])

    counts_train = np.bincount(arrays["y_train"], minlength=NUM_CLASSES).tolist()
    counts_test = np.bincount(arrays["y_test"], minlength=NUM_CLASSES).tolist()
    print(f"train: {len(train_index)} images, per class {counts_train}")
    print(f"test:  {len(test_index)} images, per class {counts_test}")
    per_image = len(payload) / (len(train_index) + len(test_index))
    print(f"size:  {len(payload):,} bytes ({per_image:.0f} per image)")
    if len(payload) > args.max_bytes:
        print(f"error: {len(payload):,} bytes exceeds --max-bytes {args.max_bytes:,}; nothing written", file=sys.stderr)
        return 1

    args.output.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{args.output.name}.", dir=args.output.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
        os.chmod(temp, 0o644)
        os.replace(temp, args.output)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
