"""Tests for layerwise.data_utils: sources, safe loading, cs231n splits and the embedded sample.

Every archive here is built in the test, in the official format but with a few images per batch,
so the tests need neither the network nor the real data (one optional test uses the shared
archive when it exists). An autouse fixture isolates the environment and makes any network access
fail loudly.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import lzma
import os
import pickle
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layerwise import data_utils
from layerwise._data import sample_codec
from layerwise.data_utils import (
    CLASS_NAMES,
    CIFAR10FormatError,
    CIFAR10UnavailableError,
    cifar10_available,
    default_cache_dir,
    find_cifar10,
    get_CIFAR10_data,
    get_embedded_data,
    load_CIFAR10,
    load_CIFAR_batch,
    load_embedded_sample,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_ARCHIVE = REPO_ROOT.parent / "shared" / "data" / "cifar-10-python.tar.gz"
N_TRAIN_BATCH = 20  # images per training batch in the fake archives (the real ones hold 10,000)
N_TEST_BATCH = 15
FOLDER = "cifar-10-batches-py"
TRAIN_NAMES = [f"data_batch_{i}" for i in range(1, 6)]


# ----------------------------------------------------------------------------- fake CIFAR-10


def make_batch(n: int, seed: int, label: str = "training batch") -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": label.encode(),
        b"labels": [int(v) for v in rng.integers(0, 10, size=n)],
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        b"filenames": [f"image_{seed}_{i}.png".encode() for i in range(n)],
    }


def make_batches() -> dict[str, dict]:
    batches = {name: make_batch(N_TRAIN_BATCH, seed) for seed, name in enumerate(TRAIN_NAMES, start=1)}
    batches["test_batch"] = make_batch(N_TEST_BATCH, 99, "testing batch 1 of 1")
    return batches


META = {b"num_cases_per_batch": N_TRAIN_BATCH, b"label_names": [n.encode() for n in CLASS_NAMES], b"num_vis": 3072}
BATCHES = make_batches()
RAW_TRAIN = np.concatenate([BATCHES[name][b"data"] for name in TRAIN_NAMES])
LABELS_TRAIN = np.concatenate([BATCHES[name][b"labels"] for name in TRAIN_NAMES])
RAW_TEST = BATCHES["test_batch"][b"data"]
LABELS_TEST = np.array(BATCHES["test_batch"][b"labels"])


def payloads(batches: dict[str, dict] | None = None) -> dict[str, bytes]:
    """Each batch as the official files store it: a protocol-2 pickle of a dict with bytes keys."""
    batches = BATCHES if batches is None else batches
    return {name: pickle.dumps(batch, protocol=2) for name, batch in {**batches, "batches.meta": META}.items()}


def add_member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def write_archive(path: Path, files: dict[str, bytes] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in (payloads() if files is None else files).items():
            add_member(tar, f"{FOLDER}/{name}", payload)
    return path


def write_folder(parent: Path, files: dict[str, bytes] | None = None) -> Path:
    folder = parent / FOLDER
    folder.mkdir(parents=True)
    for name, payload in (payloads() if files is None else files).items():
        (folder / name).write_bytes(payload)
    return folder


def nchw(rows: np.ndarray) -> np.ndarray:
    return rows.reshape(-1, 3, 32, 32)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No LAYERWISE_DATA, a private cache folder, and no network."""
    monkeypatch.delenv("LAYERWISE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


@pytest.fixture
def archive(tmp_path) -> Path:
    return write_archive(tmp_path / "supplied" / "cifar-10-python.tar.gz")


# ----------------------------------------------------------------------------- loading


def test_archive_gives_the_cs231n_split_in_nchw(archive):
    data = get_CIFAR10_data(70, 20, 10, subtract_mean=False, dtype=np.float64, data_dir=archive)
    assert sorted(data) == ["X_test", "X_train", "X_val", "y_test", "y_train", "y_val"]
    np.testing.assert_array_equal(data["X_train"], nchw(RAW_TRAIN[:70]))
    np.testing.assert_array_equal(data["X_val"], nchw(RAW_TRAIN[70:90]))
    np.testing.assert_array_equal(data["X_test"], nchw(RAW_TEST[:10]))
    np.testing.assert_array_equal(data["y_train"], LABELS_TRAIN[:70])
    np.testing.assert_array_equal(data["y_val"], LABELS_TRAIN[70:90])
    np.testing.assert_array_equal(data["y_test"], LABELS_TEST[:10])
    for split in ("train", "val", "test"):
        assert data[f"X_{split}"].dtype == np.float64 and data[f"X_{split}"].flags.c_contiguous
        assert data[f"y_{split}"].dtype == np.int64


def test_pixel_layout_is_1024_red_1024_green_1024_blue_row_major(tmp_path):
    row = (np.arange(3072) % 251).astype(np.uint8)  # 251 is prime: no two nearby positions collide
    batch = {b"data": row[None, :].copy(), b"labels": [3], b"batch_label": b"b", b"filenames": [b"f"]}
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=2))

    X, Y = load_CIFAR_batch(path)
    assert X.shape == (1, 32, 32, 3) and X.dtype == np.float64
    assert Y.dtype == np.int64 and Y.tolist() == [3]
    for channel, h, w in [(0, 0, 0), (0, 1, 2), (1, 0, 0), (1, 31, 5), (2, 7, 31), (2, 31, 31)]:
        assert X[0, h, w, channel] == (channel * 1024 + h * 32 + w) % 251

    files = payloads()
    files["data_batch_1"] = pickle.dumps({**BATCHES["data_batch_1"], b"data": np.tile(row, (N_TRAIN_BATCH, 1))})
    data = get_CIFAR10_data(5, 0, 1, subtract_mean=False, data_dir=write_archive(tmp_path / "a.tar.gz", files))
    assert data["X_train"][0, 0, 1, 2] == 34  # red, row 1, column 2
    assert data["X_train"][0, 1, 0, 0] == 1024 % 251  # first green value
    assert data["X_train"][0, 2, 31, 31] == 3071 % 251  # last blue value


def test_load_CIFAR10_reads_archive_and_folders_alike(tmp_path, archive):
    folder = write_folder(tmp_path / "extracted")
    results = [load_CIFAR10(archive), load_CIFAR10(folder), load_CIFAR10(folder.parent), load_CIFAR10(archive.parent)]
    Xtr, Ytr, Xte, Yte = results[0]
    assert Xtr.shape == (5 * N_TRAIN_BATCH, 32, 32, 3) and Xtr.dtype == np.float64
    assert Xte.shape == (N_TEST_BATCH, 32, 32, 3) and Yte.dtype == np.int64
    np.testing.assert_array_equal(Xtr, RAW_TRAIN.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(Ytr, LABELS_TRAIN)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_load_CIFAR_batch_reads_an_extracted_file(tmp_path):
    folder = write_folder(tmp_path)
    X, Y = load_CIFAR_batch(folder / "test_batch")
    np.testing.assert_array_equal(X, RAW_TEST.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(Y, LABELS_TEST)


def test_python3_pickles_with_str_keys_and_wider_ints_are_accepted(tmp_path):
    files = payloads()
    batch = BATCHES["data_batch_2"]
    files["data_batch_2"] = pickle.dumps(
        {"data": batch[b"data"].astype(np.int16), "labels": np.array(batch[b"labels"])}, protocol=5
    )
    Xtr, Ytr, _, _ = load_CIFAR10(write_archive(tmp_path / "a.tar.gz", files))
    np.testing.assert_array_equal(Xtr, RAW_TRAIN.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(Ytr, LABELS_TRAIN)


# ----------------------------------------------------------------------------- where the data comes from


def test_find_cifar10_accepts_every_supported_form(tmp_path, archive):
    folder = write_folder(tmp_path / "extracted")
    assert find_cifar10(archive) == archive
    assert find_cifar10(str(archive.parent)) == archive
    assert find_cifar10(folder) == folder
    assert find_cifar10(folder.parent) == folder
    write_archive(folder.parent / "cifar-10-python.tar.gz")
    assert find_cifar10(folder.parent) == folder  # extracted beats archive: it loads faster


def test_sources_are_tried_in_order_argument_environment_cache(tmp_path, monkeypatch):
    explicit = write_archive(tmp_path / "explicit" / "cifar.tar.gz")
    from_env = write_folder(tmp_path / "env")
    cached = write_archive(default_cache_dir() / "cifar-10-python.tar.gz")
    assert default_cache_dir() == tmp_path / "xdg-cache" / "layerwise"

    monkeypatch.setenv("LAYERWISE_DATA", str(from_env))
    assert find_cifar10(explicit) == explicit
    assert find_cifar10() == from_env
    monkeypatch.delenv("LAYERWISE_DATA")
    assert find_cifar10() == cached
    assert cifar10_available() and cifar10_available(explicit)


def test_cache_defaults_to_home_dot_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "layerwise"
    folder = write_folder(default_cache_dir())
    assert find_cifar10(download=False) == folder


def test_environment_variable_is_used_by_get_CIFAR10_data(monkeypatch, archive):
    monkeypatch.setenv("LAYERWISE_DATA", str(archive))
    data = get_CIFAR10_data(10, 5, 5, subtract_mean=False)
    np.testing.assert_array_equal(data["X_val"], nchw(RAW_TRAIN[10:15]))


def test_a_bad_explicit_path_is_an_error_not_a_fall_back(tmp_path, monkeypatch, archive):
    monkeypatch.setenv("LAYERWISE_DATA", str(archive))
    missing = tmp_path / "nowhere"
    with pytest.raises(CIFAR10UnavailableError, match="data_dir must be a CIFAR-10 archive.*nowhere.*does not exist"):
        find_cifar10(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CIFAR10UnavailableError, match="which holds neither"):
        get_CIFAR10_data(data_dir=tmp_path / "empty")
    assert not cifar10_available(missing)


def test_a_bad_environment_variable_is_an_error(tmp_path, monkeypatch):
    write_folder(default_cache_dir())
    monkeypatch.setenv("LAYERWISE_DATA", str(tmp_path / "typo"))
    with pytest.raises(CIFAR10UnavailableError, match="LAYERWISE_DATA must name"):
        find_cifar10()
    assert not cifar10_available()


def test_nothing_found_without_download_says_how_to_supply_the_archive():
    assert not cifar10_available()  # and the autouse fixture proves no download was tried
    with pytest.raises(CIFAR10UnavailableError) as info:
        find_cifar10(download=False)
    message = str(info.value)
    assert "data_dir=" in message and "LAYERWISE_DATA" in message and str(default_cache_dir()) in message


# ----------------------------------------------------------------------------- downloads (network mocked)


class FakeResponse(io.BytesIO):
    """What urlopen returns, serving local bytes; ``fail_after`` simulates a dropped connection."""

    def __init__(self, payload: bytes, length: int | None = None, fail_after: int | None = None) -> None:
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload) if length is None else length)}
        self.fail_after = fail_after

    def read(self, size: int = -1) -> bytes:
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        return super().read(size if self.fail_after is None else min(size, 1000))


def serve(monkeypatch, payload: bytes, **kwargs) -> list[str]:
    requested: list[str] = []

    def urlopen(url, timeout=None):
        requested.append(url)
        return FakeResponse(payload, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return requested


def test_download_is_verified_extracted_and_cached(tmp_path, monkeypatch, capsys, archive):
    payload = archive.read_bytes()
    monkeypatch.setattr(data_utils, "CIFAR10_MD5", hashlib.md5(payload).hexdigest())
    requested = serve(monkeypatch, payload)

    folder = find_cifar10()
    assert requested == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
    assert folder == default_cache_dir() / FOLDER
    assert sorted(p.name for p in default_cache_dir().iterdir()) == [FOLDER]  # archive and temp files gone
    assert "Downloading cifar-10-python.tar.gz" in capsys.readouterr().err

    monkeypatch.setattr(urllib.request, "urlopen", None)  # the cache is used from now on
    data = get_CIFAR10_data(50, 10, 10, subtract_mean=False)
    np.testing.assert_array_equal(data["X_train"], nchw(RAW_TRAIN[:50]))


def test_wrong_checksum_leaves_no_complete_looking_file(monkeypatch, archive):
    serve(monkeypatch, archive.read_bytes())  # fake bytes never match the official MD5
    with pytest.raises(CIFAR10UnavailableError, match="must have MD5 c58f30108f718f92721af3b95e74349a"):
        get_CIFAR10_data()
    assert list(default_cache_dir().iterdir()) == []
    assert not cifar10_available()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"fail_after": 3000}, "ConnectionResetError"), ({"length": 10**9}, "must have 1000000000 bytes")],
    ids=["connection-reset", "short-body"],
)
def test_interrupted_download_leaves_nothing(monkeypatch, archive, kwargs, message):
    payload = archive.read_bytes()
    monkeypatch.setattr(data_utils, "CIFAR10_MD5", hashlib.md5(payload).hexdigest())
    serve(monkeypatch, payload, **kwargs)
    with pytest.raises(CIFAR10UnavailableError, match=message):
        find_cifar10()
    assert list(default_cache_dir().iterdir()) == []


def test_offline_download_fails_with_instructions(monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(CIFAR10UnavailableError) as info:
        get_CIFAR10_data()
    message = str(info.value)
    assert message.startswith("get_CIFAR10_data: could not download CIFAR-10 from https://www.cs.toronto.edu")
    assert "Temporary failure in name resolution" in message
    for hint in ("data_dir='/path/to/cifar-10-python.tar.gz'", "LAYERWISE_DATA", str(default_cache_dir())):
        assert hint in message
    assert list(default_cache_dir().iterdir()) == []


def unsafe_archive(path: Path, tmp_path: Path, kind: str) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in payloads().items():
            add_member(tar, f"{FOLDER}/{name}", payload)
        if kind == "dotdot":
            add_member(tar, f"{FOLDER}/../../escaped.txt", b"escaped")
        elif kind == "absolute":
            add_member(tar, str(tmp_path / "escaped.txt"), b"escaped")
        else:
            link = tarfile.TarInfo(f"{FOLDER}/link")
            link.type = tarfile.SYMTYPE
            link.linkname = str(tmp_path / "escaped.txt")
            tar.addfile(link)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [("dotdot", "path with '..'"), ("absolute", "absolute path"), ("symlink", "a link or special file")],
)
def test_download_extraction_refuses_escaping_members(tmp_path, monkeypatch, kind, message):
    payload = unsafe_archive(tmp_path / "unsafe.tar.gz", tmp_path, kind).read_bytes()
    monkeypatch.setattr(data_utils, "CIFAR10_MD5", hashlib.md5(payload).hexdigest())
    serve(monkeypatch, payload)
    with pytest.raises(CIFAR10FormatError, match=f"{message}.*refusing to extract"):
        find_cifar10()
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "xdg-cache" / "escaped.txt").exists()
    assert list(default_cache_dir().iterdir()) == []


# ----------------------------------------------------------------------------- damaged and hostile files


def test_truncated_batch_file_is_named(tmp_path):
    folder = write_folder(tmp_path)
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[: 30_000])
    with pytest.raises(CIFAR10FormatError, match=r"data_batch_3 must be a CIFAR-10 batch pickle.*truncated"):
        get_CIFAR10_data(10, 5, 5, data_dir=folder)
    with pytest.raises(CIFAR10FormatError, match="data_batch_3"):
        load_CIFAR_batch(path)


@pytest.mark.parametrize("keep", [0.5, 0.05], ids=["half", "header-only"])
def test_truncated_archive_is_named(tmp_path, archive, keep):
    damaged = tmp_path / "damaged.tar.gz"
    payload = archive.read_bytes()
    damaged.write_bytes(payload[: int(len(payload) * keep)])
    with pytest.raises(CIFAR10FormatError, match="damaged.tar.gz.*truncated"):
        load_CIFAR10(damaged)


def test_garbage_and_incomplete_archives_are_named(tmp_path):
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(CIFAR10FormatError, match="garbage.tar.gz must be a CIFAR-10 python archive"):
        get_CIFAR10_data(data_dir=garbage)
    files = payloads()
    del files["test_batch"]
    incomplete = write_archive(tmp_path / "incomplete.tar.gz", files)
    with pytest.raises(CIFAR10FormatError, match="incomplete.tar.gz .*got none for test_batch"):
        load_CIFAR10(incomplete)


def bad_batch(**changes) -> dict:
    batch = dict(BATCHES["data_batch_2"])
    for key, value in changes.items():
        if value is None:
            del batch[key.encode()]
        else:
            batch[key.encode()] = value
    return batch


WRONG_SHAPE = r"must hold 'data' of shape \(n, 3072\), got shape"
BAD_BATCHES = [
    (bad_batch(data=np.zeros((20, 3000), np.uint8)), rf"{WRONG_SHAPE} \(20, 3000\)"),
    (bad_batch(data=np.zeros((20, 32, 32, 3), np.uint8)), rf"{WRONG_SHAPE} \(20, 32, 32, 3\)"),
    (bad_batch(data=np.zeros((20, 3072), np.float32)), "must hold 'data' as a uint8 array, got dtype float32"),
    (bad_batch(data=np.full((20, 3072), 300, np.int16)), r"must hold 'data' values in \[0, 255\], got .*\[300, 300"),
    (bad_batch(data=[[0] * 3072] * 20), "must hold 'data' as a uint8 array, got list"),
    (bad_batch(labels=[1] * 19), r"must hold one label per image \(20\), got 19 labels"),
    (bad_batch(labels=[0] * 19 + [10]), r"must hold labels in \[0, 9\], got values in \[0, 10\]"),
    (bad_batch(labels=[-1] + [0] * 19), r"must hold labels in \[0, 9\], got values in \[-1, 0\]"),
    (bad_batch(labels=["cat"] * 20), "must hold 'labels' as a list of ints"),
    (bad_batch(labels=None), "must hold a dict with 'data' and 'labels', got keys"),
    ([1, 2, 3], "must hold a dict with 'data' and 'labels', got list"),
]


@pytest.mark.parametrize(("batch", "message"), BAD_BATCHES, ids=[f"bad-{i}" for i in range(len(BAD_BATCHES))])
def test_wrong_contents_are_named(tmp_path, batch, message):
    files = payloads()
    files["data_batch_2"] = pickle.dumps(batch, protocol=2)
    archive = write_archive(tmp_path / "bad.tar.gz", files)
    with pytest.raises(CIFAR10FormatError, match=rf"bad.tar.gz \(member {FOLDER}/data_batch_2\) {message}"):
        get_CIFAR10_data(10, 5, 5, data_dir=archive)
    path = tmp_path / "data_batch_2"
    path.write_bytes(files["data_batch_2"])
    with pytest.raises(CIFAR10FormatError, match=rf"^load_CIFAR_batch: {path} {message}"):
        load_CIFAR_batch(path)


class Reduces:
    """Pickles as ``func(*args)``: what a crafted batch does to run code on load."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def hostile_pickles(marker: Path) -> dict[str, tuple[bytes, str]]:
    touch = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": (pickle.dumps(Reduces(os.system, f"touch {marker}"), protocol=2), r"(posix|nt)\.system"),
        "builtins.exec": (pickle.dumps(Reduces(builtins.exec, touch), protocol=2), r"(builtins|__builtin__)\.exec"),
        "builtins.eval": (pickle.dumps(Reduces(builtins.eval, touch), protocol=4), r"(builtins|__builtin__)\.eval"),
        "nested eval": (
            pickle.dumps({b"data": Reduces(builtins.eval, touch), b"labels": []}, protocol=2),
            r"(builtins|__builtin__)\.eval",
        ),
        "protocol 0 os.system": (f"cos\nsystem\n(Vtouch {marker}\ntR.".encode(), r"os\.system"),
        "getattr chain": (
            pickle.dumps(Reduces(getattr, np.ndarray, "__init__"), protocol=2),
            r"(builtins|__builtin__)\.getattr",
        ),
    }


@pytest.mark.parametrize(
    "attack", ["os.system", "builtins.exec", "builtins.eval", "nested eval", "protocol 0 os.system", "getattr chain"]
)
def test_pickles_that_would_run_code_are_refused(tmp_path, attack):
    marker = tmp_path / "marker"
    payload, refused = hostile_pickles(marker)[attack]

    path = tmp_path / "data_batch_1"
    path.write_bytes(payload)
    expected = rf"{path} must be a CIFAR-10 batch pickle.*global {refused}, which was refused"
    with pytest.raises(CIFAR10FormatError, match=expected):
        load_CIFAR_batch(path)

    files = payloads()
    files["test_batch"] = payload
    archive = write_archive(tmp_path / "hostile.tar.gz", files)
    with pytest.raises(CIFAR10FormatError, match=rf"hostile.tar.gz \(member {FOLDER}/test_batch\).*{refused}"):
        get_CIFAR10_data(10, 5, 5, data_dir=archive)
    assert not marker.exists()


def test_the_hostile_payloads_do_run_code_without_the_safe_unpickler(tmp_path):
    marker = tmp_path / "marker"
    payload, _ = hostile_pickles(marker)["builtins.exec"]
    pickle.loads(payload)  # the plain unpickler executes it: the attack in the test above is real
    assert marker.exists()


def test_codecs_encode_is_allowed_only_for_latin1(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(CIFAR10FormatError, match="latin-1 codec, got 'rot13'"):
        load_CIFAR_batch(path)


# ----------------------------------------------------------------------------- splits and arguments


def test_mean_image_of_the_training_set_is_subtracted_from_all_splits(archive):
    data = get_CIFAR10_data(60, 25, 12, data_dir=archive)
    mean = nchw(RAW_TRAIN[:60]).mean(axis=0)
    assert data["X_train"].dtype == np.float32
    np.testing.assert_allclose(data["X_train"].mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(data["X_val"], nchw(RAW_TRAIN[60:85]) - mean, atol=1e-4)
    np.testing.assert_allclose(data["X_test"], nchw(RAW_TEST[:12]) - mean, atol=1e-4)
    np.testing.assert_array_equal(data["y_val"], LABELS_TRAIN[60:85])


def test_empty_validation_and_test_sets_are_allowed(archive):
    data = get_CIFAR10_data(100, 0, 0, data_dir=archive, dtype=np.float64)
    assert data["X_train"].shape == (100, 3, 32, 32)
    assert data["X_val"].shape == (0, 3, 32, 32) and data["y_val"].shape == (0,)
    assert data["X_test"].shape == (0, 3, 32, 32) and data["X_test"].dtype == np.float64


BAD_ARGUMENTS = [
    ({"num_training": 0}, ValueError, "get_CIFAR10_data: num_training must be >= 1, got 0"),
    ({"num_training": 2.5}, TypeError, r"get_CIFAR10_data: num_training must be an int, got 2.5 \(float\)"),
    ({"num_training": True}, TypeError, "num_training must be an int, got True"),
    ({"num_validation": -1}, ValueError, "num_validation must be >= 0, got -1"),
    ({"num_test": -5}, ValueError, "num_test must be >= 0, got -5"),
    (
        {"num_training": 49001},
        ValueError,
        r"num_training \+ num_validation must be <= 50000 \(the training images in CIFAR-10\), "
        r"got 49001 \+ 1000 = 50001",
    ),
    ({"num_test": 10001}, ValueError, r"num_test must be <= 10000 \(the test images in CIFAR-10\), got 10001"),
    ({"dtype": np.int32}, TypeError, "get_CIFAR10_data: dtype must be np.float32 or np.float64, got int32"),
    ({"dtype": np.float16}, TypeError, "dtype must be np.float32 or np.float64, got float16"),
    ({"dtype": "not a dtype"}, TypeError, "dtype must be np.float32 or np.float64, got 'not a dtype'"),
    ({"subtract_mean": "yes"}, TypeError, "subtract_mean must be a bool, got 'yes'"),
    ({"data_dir": 123}, TypeError, r"data_dir must be a path \(str or os.PathLike\), got 123 \(int\)"),
    ({"download": "no"}, TypeError, "download must be a bool"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_refused_before_any_data_is_read(kwargs, error, message):
    with pytest.raises(error, match=message):
        get_CIFAR10_data(**kwargs)  # the autouse fixture fails any download attempt


def test_counts_are_checked_against_the_images_present(archive):
    with pytest.raises(ValueError, match=r"num_training \+ num_validation must be <= 100 \(the training images in .*a"):
        get_CIFAR10_data(90, 20, data_dir=archive)
    with pytest.raises(ValueError, match=r"num_test must be <= 15"):
        get_CIFAR10_data(10, 5, 16, data_dir=archive)


# ----------------------------------------------------------------------------- the embedded sample


def test_embedded_sample_is_real_balanced_and_uint8():
    Xtr, Ytr, Xte, Yte = load_embedded_sample()
    assert Xtr.shape == (1900, 32, 32, 3) and Xtr.dtype == np.uint8
    assert Xte.shape == (1000, 32, 32, 3) and Xte.dtype == np.uint8
    assert Ytr.dtype == np.int64 and Yte.dtype == np.int64
    assert np.bincount(Ytr, minlength=10).tolist() == [190] * 10
    assert Ytr[:20].tolist() == list(range(10)) * 2  # interleaved by class
    assert np.bincount(Yte, minlength=10).tolist() == [103, 89, 100, 103, 90, 86, 112, 102, 106, 109]
    assert Xtr.std() > 40 and 90 < Xtr.mean() < 150  # natural images, not noise or blanks
    assert len(CLASS_NAMES) == 10 and CLASS_NAMES[0] == "airplane" and CLASS_NAMES[9] == "truck"


def test_embedded_arrays_are_fresh_copies():
    Xtr, Ytr, _, _ = load_embedded_sample()
    Xtr[:] = 0
    Ytr[:] = 0
    again_X, again_Y, _, _ = load_embedded_sample()
    assert again_X.max() > 0 and again_Y.max() == 9
    assert get_embedded_data(10, 0, 0)["X_train"].flags.writeable


def test_embedded_file_is_small_and_loads_without_pickle():
    path = REPO_ROOT / "layerwise" / "_data" / sample_codec.SAMPLE_FILE
    assert path.stat().st_size <= 5_000_000
    with np.load(io.BytesIO(lzma.decompress(path.read_bytes())), allow_pickle=False) as npz:
        assert {"x_train", "y_train", "x_test", "y_test", "train_index", "test_index"} <= set(npz.files)
        assert npz["train_index"].max() < 4000 and npz["test_index"].max() < 1000  # the exact images only


def test_get_embedded_data_has_the_shape_of_get_CIFAR10_data():
    data = get_embedded_data()
    shapes = {key: value.shape for key, value in data.items()}
    assert shapes == {
        "X_train": (1800, 3, 32, 32), "y_train": (1800,),
        "X_val": (100, 3, 32, 32), "y_val": (100,),
        "X_test": (1000, 3, 32, 32), "y_test": (1000,),
    }  # fmt: skip
    for split in ("train", "val", "test"):
        assert data[f"X_{split}"].dtype == np.float32 and data[f"y_{split}"].dtype == np.int64
    assert np.bincount(data["y_val"], minlength=10).tolist() == [10] * 10
    np.testing.assert_allclose(data["X_train"].mean(axis=0), 0, atol=1e-3)


def test_get_embedded_data_split_matches_the_raw_sample():
    Xtr, Ytr, Xte, Yte = load_embedded_sample()
    data = get_embedded_data(50, 10, 20, subtract_mean=False, dtype=np.float64)
    np.testing.assert_array_equal(data["X_train"], Xtr[:50].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(data["X_val"], Xtr[50:60].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(data["X_test"], Xte[:20].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(data["y_val"], Ytr[50:60])
    np.testing.assert_array_equal(data["y_test"], Yte[:20])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_validation": 1900}, ValueError, "must leave at least one of the 1900 embedded training images"),
        ({"num_training": 1000, "num_validation": 1000}, ValueError, r"<= 1900 \(the training images in the embedded"),
        ({"num_test": 1001}, ValueError, r"num_test must be <= 1000"),
        ({"num_validation": 1.0}, TypeError, "get_embedded_data: num_validation must be an int"),
        ({"dtype": np.uint8}, TypeError, "get_embedded_data: dtype must be np.float32 or np.float64, got uint8"),
    ],
)
def test_get_embedded_data_checks_its_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        get_embedded_data(**kwargs)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3), high=st.sampled_from([1, 2, 256]))
def test_sample_codec_round_trips_exactly(seed, n, high):
    images = np.random.default_rng(seed).integers(0, high, size=(n, 3, 32, 32)).astype(np.uint8)
    images *= 255 // max(high - 1, 1)  # high=2 gives 0/255 extremes, high=1 all zeros
    np.testing.assert_array_equal(sample_codec.decode_images(sample_codec.encode_images(images)), images)


# ----------------------------------------------------------------------------- the real archive, when present


@pytest.mark.skipif(not REAL_ARCHIVE.is_file(), reason=f"{REAL_ARCHIVE} not present")
def test_real_archive_first_batch_is_plausible_and_matches_the_embedded_sample(tmp_path):
    with tarfile.open(REAL_ARCHIVE, "r|gz") as tar:  # data_batch_1 comes early: no full decompression
        for member in tar:
            if member.name == f"{FOLDER}/data_batch_1":
                (tmp_path / "data_batch_1").write_bytes(tar.extractfile(member).read())
                break
    X, Y = load_CIFAR_batch(tmp_path / "data_batch_1")
    assert X.shape == (10000, 32, 32, 3) and Y.shape == (10000,)
    np.testing.assert_allclose(X.mean(axis=(0, 1, 2)), [125.27, 122.93, 113.86], atol=2.0)
    assert np.bincount(Y, minlength=10).min() > 900

    sample = data_utils._embedded()
    np.testing.assert_array_equal(sample["x_train"].transpose(0, 2, 3, 1), X[sample["train_index"]])
    np.testing.assert_array_equal(sample["y_train"], Y[sample["train_index"]])
