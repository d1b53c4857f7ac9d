"""Saving and loading arrays plus metadata as data, never as code.

A checkpoint is a pair of files with one stem: ``STEM.npz`` holds the arrays (read with
``allow_pickle=False``) and ``STEM.json`` the rest, together with a manifest of every array's
shape and dtype and the SHA-256 of the ``.npz``. Each file is written to a temporary name and
renamed into place, the ``.json`` last, so a crash leaves either the old pair or the new one,
and :func:`load` detects a pair that does not belong together.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping

import numpy as np

FORMAT = "layerwise-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupted, or does not hold what the caller needs."""


def stem_of(path: str | os.PathLike) -> Path:
    """The common stem of a checkpoint pair, given the stem or either file."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".npz", ".json") else path


def save(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Path:
    """Write ``arrays`` and JSON-serialisable ``meta`` as ``STEM.npz`` + ``STEM.json``, atomically.

    Returns the ``.json`` path. Array names may contain ``/``; they must be unique strings.
    """
    stem = stem_of(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    arrays = {str(name): np.ascontiguousarray(value) for name, value in arrays.items()}
    for name, value in arrays.items():
        if value.dtype.hasobject:
            raise TypeError(f"checkpoint.save: array {name!r} has dtype object, which cannot be stored as data")
    npz_path = stem.with_suffix(".npz")
    digest = atomic_write(npz_path, lambda handle: np.savez(handle, **arrays))
    document = {
        "format": FORMAT,
        "version": VERSION,
        "npz_sha256": digest,
        "arrays": {name: {"shape": list(value.shape), "dtype": value.dtype.str} for name, value in arrays.items()},
        "meta": dict(meta),
    }
    text = json.dumps(document, indent=1, allow_nan=False, default=_json_default)
    json_path = stem.with_suffix(".json")
    atomic_write(json_path, lambda handle: handle.write(text.encode("utf-8")))
    return json_path


def load(path: str | os.PathLike, expected: Mapping[str, tuple[tuple[int, ...], np.dtype]] | None = None):
    """Read a checkpoint pair, verifying it before returning anything.

    Parameters
    ----------
    path : path of the stem, the ``.npz`` or the ``.json``
    expected : mapping of array name to ``(shape, dtype)``, optional
        Arrays that must be present with exactly that shape and dtype.

    Returns
    -------
    arrays : dict of str to ndarray
    meta : dict

    Raises
    ------
    CheckpointError
        Naming the file and what is missing or wrong.
    """
    stem = stem_of(path)
    json_path, npz_path = stem.with_suffix(".json"), stem.with_suffix(".npz")
    for required in (json_path, npz_path):
        if not required.is_file():
            raise CheckpointError(f"checkpoint {stem}: {required} does not exist")
    try:
        document = json.loads(json_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"checkpoint {json_path}: not valid JSON ({error})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {json_path}: not a layerwise checkpoint (no format tag {FORMAT!r})")
    if document.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {json_path}: version {document.get('version')!r} is not supported (expected {VERSION})")
    manifest = document.get("arrays")
    if not isinstance(manifest, dict) or not isinstance(document.get("meta"), dict):
        raise CheckpointError(f"checkpoint {json_path}: missing the 'arrays' manifest or the 'meta' section")
    digest = _sha256(npz_path)
    if digest != document.get("npz_sha256"):
        raise CheckpointError(
            f"checkpoint {npz_path}: its SHA-256 does not match the one recorded in {json_path.name} "
            "(the file is corrupted or the pair does not belong together)"
        )
    try:
        with np.load(npz_path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as error:  # zipfile, format or pickle refusal: all mean an unusable file
        raise CheckpointError(f"checkpoint {npz_path}: cannot be read as arrays ({error})") from None
    if set(arrays) != set(manifest):
        raise CheckpointError(
            f"checkpoint {npz_path}: holds arrays {sorted(arrays)} but its manifest lists {sorted(manifest)}"
        )
    for name, entry in manifest.items():
        if list(arrays[name].shape) != entry.get("shape") or arrays[name].dtype.str != entry.get("dtype"):
            raise CheckpointError(f"checkpoint {npz_path}: array {name!r} does not match its manifest entry {entry}")
    for name, (shape, dtype) in (expected or {}).items():
        if name not in arrays:
            raise CheckpointError(f"checkpoint {npz_path}: missing array {name!r}")
        if arrays[name].shape != tuple(shape) or arrays[name].dtype != np.dtype(dtype):
            raise CheckpointError(
                f"checkpoint {npz_path}: array {name!r} must have shape {tuple(shape)} and dtype "
                f"{np.dtype(dtype)}, got shape {arrays[name].shape} and dtype {arrays[name].dtype}"
            )
    return arrays, document["meta"]


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> str:
    """Write a file through ``write(handle)`` atomically and return its SHA-256.

    The bytes go to a temporary file beside ``path``, are flushed to disk, and the file is
    renamed into place, so ``path`` holds either its old content or all of the new. The file gets
    the permissions a plain ``open(path, "w")`` would give it (0o666 less the umask), not
    :mod:`tempfile`'s 0o600, so every file of a run folder has the same mode.
    """
    path = Path(path)
    handle, temp = _create_beside(path)
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        digest = _sha256(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return digest


def _create_beside(path: Path) -> tuple[int, Path]:
    """Create a new, empty temporary file next to ``path``; the kernel applies the umask, as for ``open``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
    raise FileExistsError(f"atomic_write: could not create a temporary file beside {path}")


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def _json_default(value: Any):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.size <= 16:
        return value.tolist()
    raise TypeError(f"checkpoint.save: {type(value).__name__} is not JSON serialisable")
