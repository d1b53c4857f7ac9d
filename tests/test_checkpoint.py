"""Checkpoints: data only, atomic, verified on load."""

import hashlib
import json
import os
import stat

import numpy as np
import pytest

from layerwise import checkpoint
from layerwise.checkpoint import CheckpointError


def _save(tmp_path):
    arrays = {"params/W1": np.arange(6, dtype=np.float32).reshape(2, 3), "rng/keys": np.arange(4, dtype=np.uint32)}
    checkpoint.save(tmp_path / "ck", arrays, {"epoch": 3, "history": [0.5, 0.25]})
    return arrays


def test_round_trip_from_stem_or_either_file(tmp_path):
    arrays = _save(tmp_path)
    for path in ("ck", "ck.npz", "ck.json"):
        loaded, meta = checkpoint.load(tmp_path / path)
        assert meta == {"epoch": 3, "history": [0.5, 0.25]}
        for name, value in arrays.items():
            np.testing.assert_array_equal(loaded[name], value)
            assert loaded[name].dtype == value.dtype


def test_no_temporary_files_are_left_behind(tmp_path):
    _save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.json", "ck.npz"]


def test_corrupted_npz_is_detected(tmp_path):
    _save(tmp_path)
    data = bytearray((tmp_path / "ck.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "ck.npz").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256 does not match"):
        checkpoint.load(tmp_path / "ck")


def test_mismatched_pair_is_detected(tmp_path):
    _save(tmp_path)
    checkpoint.save(tmp_path / "other", {"params/W1": np.zeros((2, 3), np.float32)}, {})
    (tmp_path / "other.npz").replace(tmp_path / "ck.npz")
    with pytest.raises(CheckpointError, match="SHA-256 does not match"):
        checkpoint.load(tmp_path / "ck")


def test_missing_file_is_named(tmp_path):
    _save(tmp_path)
    (tmp_path / "ck.npz").unlink()
    with pytest.raises(CheckpointError, match=r"ck\.npz does not exist"):
        checkpoint.load(tmp_path / "ck.json")


def test_not_json_and_not_ours(tmp_path):
    _save(tmp_path)
    (tmp_path / "ck.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        checkpoint.load(tmp_path / "ck")
    (tmp_path / "ck.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a layerwise checkpoint"):
        checkpoint.load(tmp_path / "ck")


def test_expected_arrays_are_checked(tmp_path):
    _save(tmp_path)
    with pytest.raises(CheckpointError, match=r"missing array 'params/W2'"):
        checkpoint.load(tmp_path / "ck", {"params/W2": ((2, 3), np.float32)})
    with pytest.raises(CheckpointError, match=r"array 'params/W1' must have shape \(3, 2\) and dtype float32, got shape \(2, 3\)"):
        checkpoint.load(tmp_path / "ck", {"params/W1": ((3, 2), np.float32)})
    with pytest.raises(CheckpointError, match=r"dtype float64, got shape \(2, 3\) and dtype float32"):
        checkpoint.load(tmp_path / "ck", {"params/W1": ((2, 3), np.float64)})


def test_object_arrays_are_refused_on_save_and_on_load(tmp_path):
    with pytest.raises(TypeError, match="dtype object"):
        checkpoint.save(tmp_path / "bad", {"x": np.array([{"a": 1}], dtype=object)}, {})
    assert not (tmp_path / "bad.json").exists()
    # A hand-made pickled array behind a valid-looking manifest is still never unpickled.
    np.savez(tmp_path / "evil.npz", x=np.array([{"a": 1}], dtype=object))
    digest = checkpoint._sha256(tmp_path / "evil.npz")
    (tmp_path / "evil.json").write_text(json.dumps({
        "format": checkpoint.FORMAT, "version": checkpoint.VERSION, "npz_sha256": digest,
        "arrays": {"x": {"shape": [1], "dtype": "|O"}}, "meta": {},
    }))
    with pytest.raises(CheckpointError, match="cannot be read as arrays"):
        checkpoint.load(tmp_path / "evil")


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    _save(tmp_path)

    def failing_savez(handle, **arrays):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(tmp_path / "ck", {"params/W1": np.ones((2, 3), np.float32)}, {"epoch": 4})
    monkeypatch.undo()
    arrays, meta = checkpoint.load(tmp_path / "ck")
    assert meta["epoch"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.json", "ck.npz"]


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def test_files_get_the_mode_a_plain_open_gives(tmp_path, umask_027):
    _save(tmp_path)
    with open(tmp_path / "plain", "w"):
        pass
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in tmp_path.iterdir()}
    assert modes == {"ck.json": 0o640, "ck.npz": 0o640, "plain": 0o640}
    assert checkpoint.atomic_write(tmp_path / "text", lambda handle: handle.write(b"abc")) == hashlib.sha256(b"abc").hexdigest()
    assert stat.S_IMODE((tmp_path / "text").stat().st_mode) == 0o640
