"""Reading CIFAR-10 python batches safely, from a folder or straight from the ``.tar.gz``.

A batch is a Python-2-style pickle of a dict: ``data`` is a uint8 array of shape ``(n, 3072)``
(1024 red, then 1024 green, then 1024 blue values per image, each plane row-major) and
``labels`` a list of ``n`` ints in ``[0, 9]``. The official batches hold ``n = 10000`` images,
but nothing here depends on that: every batch is checked for consistency instead.

Pickles can run arbitrary code when loaded, so batches go through :class:`_SafeUnpickler`,
which only resolves the globals needed to rebuild numpy arrays and plain data; anything else
(``os.system``, ``builtins.eval``, ...) is refused before it is called.
"""

from __future__ import annotations

import functools
import io
import pickle
import tarfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

IMAGE_VALUES = 3 * 32 * 32
NUM_CLASSES = 10
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
ALL_BATCHES = TRAIN_BATCHES + (TEST_BATCH,)
BATCHES_FOLDER = "cifar-10-batches-py"


class CIFAR10FormatError(ValueError):
    """A file is not a valid CIFAR-10 python batch or archive.

    Raised for truncated or corrupted files, wrong shapes or labels, missing batches, and pickles
    that reference a global outside the allowed set (which could run code when loaded).
    """


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle referenced a global that :class:`_SafeUnpickler` does not allow."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualified_name = f"{module}.{name}"


def _latin1_encode(text: Any, encoding: Any) -> bytes:
    """``_codecs.encode`` as Python 3 uses it to store ``bytes`` in protocol-2 pickles (latin-1 only)."""
    if not isinstance(text, str) or not isinstance(encoding, str):
        raise pickle.UnpicklingError("_codecs.encode is only allowed on a str with the latin-1 codec")
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1"):
        raise pickle.UnpicklingError(f"_codecs.encode is only allowed with the latin-1 codec, got {encoding!r}")
    return text.encode("latin-1")


@functools.cache
def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The globals a CIFAR-10 batch may reference, keyed by ``(module, name)`` as the pickle spells them.

    Official batches (pickled by Python 2 and numpy 1.x) need ``numpy.core.multiarray._reconstruct``,
    ``numpy.ndarray`` and ``numpy.dtype``; the same data re-pickled by Python 3 or numpy 2 may also
    name ``numpy._core``, ``_frombuffer`` (protocol 5), ``_codecs.encode`` and a few builtin types.
    """
    try:  # numpy >= 2
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]

    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(module, "_frombuffer")] = numeric._frombuffer
    for module in ("_codecs", "codecs"):
        allowed[(module, "encode")] = _latin1_encode
    # Python 3 writes empty bytes, bytearray, set, frozenset and complex as calls in older protocols.
    plain = {
        "bytes": _plain(bytes),
        "bytearray": _plain(bytearray),
        "set": set,
        "frozenset": frozenset,
        "complex": complex,
    }
    for module in ("builtins", "__builtin__"):
        for name, constructor in plain.items():
            allowed[(module, name)] = constructor
    return allowed


def _plain(kind: type) -> Any:
    """``bytes``/``bytearray`` from existing data only: ``bytes(10**12)`` would allocate a terabyte."""

    def construct(*args: Any) -> Any:
        if args and isinstance(args[0], int):
            raise pickle.UnpicklingError(f"{kind.__name__}() of a size is not allowed in a CIFAR-10 batch")
        return kind(*args)

    return construct


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :func:`_allowed_globals`, so a crafted batch cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _allowed_globals()[(module, name)]
        except KeyError:
            raise _RefusedGlobal(module, name) from None


def parse_batch(payload: bytes, source: str, func: str) -> tuple[np.ndarray, np.ndarray]:
    """Unpickle and check one batch.

    Parameters
    ----------
    payload : bytes
        The pickled batch.
    source : str
        The file (or ``archive:member``) it came from, for error messages.
    func : str
        The public function on whose behalf it is read, for error messages.

    Returns
    -------
    rows : np.ndarray of uint8, shape (n, 3072)
        One image per row, 1024 red, 1024 green, then 1024 blue values, each plane row-major.
    labels : np.ndarray of int64, shape (n,)
        Class indices in ``[0, 9]``.

    Raises
    ------
    CIFAR10FormatError
        When the pickle is truncated or corrupted, references a refused global, or holds data of
        the wrong shape, dtype or label range.
    """
    try:
        batch = _SafeUnpickler(io.BytesIO(payload), encoding="bytes").load()
    except _RefusedGlobal as err:
        raise CIFAR10FormatError(
            f"{func}: {source} must be a CIFAR-10 batch pickle holding only numpy arrays and plain data, "
            f"got a reference to the global {err.qualified_name}, which was refused (loading it could run code)"
        ) from None
    except Exception as err:  # any failure while unpickling means a damaged file
        raise CIFAR10FormatError(
            f"{func}: {source} must be a CIFAR-10 batch pickle, but it could not be unpickled; the file is "
            f"truncated or corrupted ({type(err).__name__}: {err})"
        ) from err
    return check_batch(batch, source, func)


def check_batch(batch: Any, source: str, func: str) -> tuple[np.ndarray, np.ndarray]:
    """Check an unpickled batch dict (keys ``b'data'``/``'data'``, ...) and return ``(rows, labels)``."""
    if not isinstance(batch, dict):
        raise CIFAR10FormatError(
            f"{func}: {source} must hold a dict with 'data' and 'labels', got {type(batch).__name__}"
        )
    entries = {(key.decode("latin-1") if isinstance(key, bytes) else key): value for key, value in batch.items()}
    missing = [key for key in ("data", "labels") if key not in entries]
    if missing:
        raise CIFAR10FormatError(
            f"{func}: {source} must hold a dict with 'data' and 'labels', got keys {sorted(map(str, entries))}"
        )
    rows = _check_rows(entries["data"], source, func)
    labels = _check_labels(entries["labels"], len(rows), source, func)
    return rows, labels


def _check_rows(data: Any, source: str, func: str) -> np.ndarray:
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "iu":
        got = f"dtype {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise CIFAR10FormatError(f"{func}: {source} must hold 'data' as a uint8 array, got {got}")
    if data.ndim != 2 or data.shape[1] != IMAGE_VALUES:
        raise CIFAR10FormatError(
            f"{func}: {source} must hold 'data' of shape (n, {IMAGE_VALUES}), got shape {data.shape}"
        )
    if data.dtype != np.uint8:
        if data.size and (data.min() < 0 or data.max() > 255):
            raise CIFAR10FormatError(
                f"{func}: {source} must hold 'data' values in [0, 255], got values in [{data.min()}, {data.max()}]"
            )
        data = data.astype(np.uint8)
    return np.ascontiguousarray(data)


def _check_labels(labels: Any, num_rows: int, source: str, func: str) -> np.ndarray:
    try:
        array = np.asarray(labels)
    except (TypeError, ValueError):
        array = None
    if array is None or array.dtype.kind not in "iu" or array.ndim != 1:
        raise CIFAR10FormatError(
            f"{func}: {source} must hold 'labels' as a list of ints, got {type(labels).__name__}"
            + (f" of dtype {array.dtype} and shape {array.shape}" if array is not None else "")
        )
    if len(array) != num_rows:
        raise CIFAR10FormatError(
            f"{func}: {source} must hold one label per image ({num_rows}), got {len(array)} labels"
        )
    if array.size and (array.min() < 0 or array.max() >= NUM_CLASSES):
        raise CIFAR10FormatError(
            f"{func}: {source} must hold labels in [0, {NUM_CLASSES - 1}], "
            f"got values in [{array.min()}, {array.max()}]"
        )
    return array.astype(np.int64)


def read_batch_file(path: Path, func: str) -> tuple[np.ndarray, np.ndarray]:
    """Read and check one batch file; see :func:`parse_batch` for the result."""
    return parse_batch(path.read_bytes(), str(path), func)


def is_batches_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding all six batch files (an extracted ``cifar-10-batches-py``)."""
    return path.is_dir() and all((path / name).is_file() for name in ALL_BATCHES)


def read_batches(
    location: Path, names: Iterable[str], func: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read the named batches from an extracted folder or from a tar archive (``.tar.gz``).

    Parameters
    ----------
    location : Path
        A folder holding the batch files, or an archive whose members are
        ``cifar-10-batches-py/<name>``. The archive is read member by member in one pass, never
        extracted.
    names : iterable of str
        Batch names such as ``"data_batch_1"`` or ``"test_batch"``.
    func : str
        The public function on whose behalf they are read, for error messages.

    Returns
    -------
    dict of str to (rows, labels)
        ``rows`` uint8 of shape (n, 3072), ``labels`` int64 of shape (n,), for each name.
    """
    names = tuple(names)
    if location.is_dir():
        return {name: read_batch_file(location / name, func) for name in names}
    return _read_archive(location, names, func)


def member_parts(name: str) -> tuple[str, ...]:
    """The path components of a tar member name, without empty or ``.`` components."""
    return tuple(part for part in PurePosixPath(name).parts if part not in ("", "."))


def _read_archive(archive: Path, names: tuple[str, ...], func: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with open(archive, "rb") as raw:
        try:
            # Stream mode: one sequential pass, so the gzip data is decompressed only once.
            with tarfile.open(fileobj=raw, mode="r|*") as tar:
                for member in tar:
                    parts = member_parts(member.name)
                    if len(parts) != 2 or parts[0] != BATCHES_FOLDER or parts[1] not in names:
                        continue
                    if not member.isfile():
                        raise CIFAR10FormatError(
                            f"{func}: {archive} member {member.name} must be a regular file, got a link or special file"
                        )
                    extracted = tar.extractfile(member)
                    payload = extracted.read() if extracted is not None else b""
                    source = f"{archive} (member {member.name})"
                    if len(payload) != member.size:
                        raise CIFAR10FormatError(
                            f"{func}: {source} must have {member.size} bytes, got {len(payload)}; "
                            "the archive is truncated"
                        )
                    found[parts[1]] = parse_batch(payload, source, func)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            raise CIFAR10FormatError(
                f"{func}: {archive} must be a CIFAR-10 python archive (a .tar.gz holding {BATCHES_FOLDER}/), "
                f"but it could not be read; it is truncated or corrupted ({type(err).__name__}: {err})"
            ) from err
    missing = [name for name in names if name not in found]
    if missing:
        raise CIFAR10FormatError(
            f"{func}: {archive} must be a CIFAR-10 python archive holding "
            f"{', '.join(f'{BATCHES_FOLDER}/{name}' for name in names)}, got none for {', '.join(missing)}"
        )
    return found
