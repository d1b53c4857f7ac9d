"""Finding the CIFAR-10 archive on disk, and downloading and extracting it into the cache folder.

Downloads go to a temporary file in the cache folder and are renamed into place only once their
MD5 matches, so an interrupted or corrupted download never looks like a complete archive.
Extraction goes through the same discipline: members are checked (no absolute paths, no ``..``,
no links), written into a temporary folder, and the finished folder is renamed into place.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, BinaryIO

import numpy as np

from layerwise._data.cifar_format import BATCHES_FOLDER, CIFAR10FormatError, is_batches_folder, member_parts
from layerwise._validation import describe

ARCHIVE_NAME = "cifar-10-python.tar.gz"
ENV_VAR = "LAYERWISE_DATA"
_CHUNK = 1 << 20


class CIFAR10UnavailableError(OSError):
    """CIFAR-10 could not be found where it was asked for, or could not be downloaded and verified."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/layerwise``, or ``~/.cache/layerwise`` when that variable is unset or empty."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "layerwise"


def locate(path: Path) -> Path | None:
    """The CIFAR-10 source at ``path``: an archive file or an extracted batches folder, else ``None``.

    ``path`` may be the archive itself (any file name), an extracted ``cifar-10-batches-py``
    folder, or a folder holding either (the extracted folder is preferred, it loads faster).
    """
    if path.is_file():
        return path
    if not path.is_dir():
        return None
    if is_batches_folder(path):
        return path
    if is_batches_folder(path / BATCHES_FOLDER):
        return path / BATCHES_FOLDER
    if (path / ARCHIVE_NAME).is_file():
        return path / ARCHIVE_NAME
    return None


def as_path(func: str, name: str, value: Any) -> Path:
    """``value`` as a ``Path`` (``~`` expanded), or ``TypeError`` unless it is a str or os.PathLike."""
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{func}: {name} must be a path (str or os.PathLike), got {describe(value)}")
    return Path(value).expanduser()


def located(func: str, path: Path, must: str, given: str) -> Path:
    """:func:`locate` ``path``, or raise :class:`CIFAR10UnavailableError`: ``"<func>: <must> a
    CIFAR-10 archive, ... got <given>, which ..."`` (``must`` names the argument, ``given`` is
    what the user wrote)."""
    found = locate(path)
    if found is None:
        why = "which does not exist" if not path.exists() else "which holds neither"
        raise CIFAR10UnavailableError(
            f"{func}: {must} a CIFAR-10 archive, a {BATCHES_FOLDER} folder or a folder holding either, "
            f"got {given!r}, {why}"
        )
    return found


def find(data_dir: Any, download: Any, func: str, url: str, md5: str) -> Path:
    """Where CIFAR-10 is, first match wins: ``data_dir``, ``$LAYERWISE_DATA``, the cache folder,
    else a download of ``url`` (checked against ``md5``) extracted into the cache folder. A
    ``data_dir`` or ``$LAYERWISE_DATA`` that names no CIFAR-10 data is an error, not a fall-back."""
    if not isinstance(download, (bool, np.bool_)):
        raise TypeError(f"{func}: download must be a bool, got {describe(download)}")
    cache = default_cache_dir()
    if data_dir is not None:
        path = as_path(func, "data_dir", data_dir)
        return located(func, path, "data_dir must be", str(path))
    env = os.environ.get(ENV_VAR)
    if env:
        return located(func, Path(env).expanduser(), f"the environment variable {ENV_VAR} must name", env)
    found = locate(cache)
    if found is not None:
        return found
    if not download:
        raise CIFAR10UnavailableError(
            f"{func}: CIFAR-10 was not found (no data_dir, {ENV_VAR} unset, nothing in the cache folder "
            f"{cache}) and download is False. {how_to_supply(cache)}"
        )
    archive = download_archive(cache, url, md5, func)
    try:
        return extract_archive(archive, cache, func)
    finally:
        # Extracted, the archive is redundant; unextractable, it must not be picked up next time.
        archive.unlink(missing_ok=True)


def how_to_supply(cache: Path) -> str:
    """The sentence that tells a user the three ways to provide the archive without a download."""
    return (
        f"Supply the archive yourself in one of three ways: pass data_dir='/path/to/{ARCHIVE_NAME}' "
        f"(or an extracted {BATCHES_FOLDER} folder, or a folder holding either); set the environment "
        f"variable {ENV_VAR} to such a path; or copy {ARCHIVE_NAME} into the cache folder {cache}"
    )


def download_archive(directory: Path, url: str, md5: str, func: str) -> Path:
    """Download ``url`` into ``directory/cifar-10-python.tar.gz``, atomically and MD5-verified.

    Returns
    -------
    Path
        The verified archive.

    Raises
    ------
    CIFAR10UnavailableError
        When the download fails (offline, HTTP error, connection dropped) or the MD5 differs; the
        temporary file is removed in every failure case.
    """
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / ARCHIVE_NAME
    handle, temp_name = tempfile.mkstemp(prefix=f".{ARCHIVE_NAME}.", suffix=".part", dir=directory)
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            digest = _fetch(url, out, directory, func)
        if digest != md5:
            raise CIFAR10UnavailableError(
                f"{func}: the download from {url} must have MD5 {md5}, got {digest}; the corrupted "
                f"download was deleted. Try again, or: {how_to_supply(directory)}"
            )
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


def _fetch(url: str, out: BinaryIO, directory: Path, func: str) -> str:
    """Stream ``url`` into ``out`` with a progress bar on stderr; return the MD5 hex digest."""
    import urllib.request  # imported here: costly, and only a download needs it

    md5 = hashlib.md5(usedforsecurity=False)
    received = 0
    total = None
    progress = _Progress(url.rsplit("/", 1)[-1])
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            length = response.headers.get("Content-Length") if response.headers is not None else None
            total = progress.total = int(length) if length and length.isdigit() else None
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                md5.update(chunk)
                received += len(chunk)
                progress.update(received)
    except (OSError, http.client.HTTPException, ValueError) as err:
        raise CIFAR10UnavailableError(
            f"{func}: could not download CIFAR-10 from {url} ({type(err).__name__}: {err}). "
            f"{how_to_supply(directory)}"
        ) from err
    finally:
        progress.close()
    if total is not None and received != total:
        raise CIFAR10UnavailableError(
            f"{func}: the download from {url} must have {total} bytes, got {received}; the connection "
            f"dropped and the partial download was deleted. Try again, or: {how_to_supply(directory)}"
        )
    return md5.hexdigest()


class _Progress:
    """A plain-text progress bar on stderr, redrawn at most once per percent."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.total: int | None = None
        self.shown = -1

    def update(self, done: int) -> None:
        mib = done / 2**20
        if self.total:
            percent = min(100, done * 100 // self.total)
            if percent == self.shown:
                return
            self.shown = percent
            bar = "#" * (percent // 4) + "." * (25 - percent // 4)
            line = f"Downloading {self.name} [{bar}] {percent:3d}% {mib:6.1f}/{self.total / 2**20:.1f} MiB"
        else:
            whole = int(mib)
            if whole == self.shown:
                return
            self.shown = whole
            line = f"Downloading {self.name} {mib:6.1f} MiB"
        sys.stderr.write("\r" + line)
        sys.stderr.flush()

    def close(self) -> None:
        """End the progress line, if one was drawn."""
        if self.shown >= 0:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _safe_member_parts(name: str, archive: Path, func: str) -> tuple[str, ...]:
    """The path components of a member to extract, refusing anything that could escape the target."""
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() or PureWindowsPath(name).drive:
        raise CIFAR10FormatError(
            f"{func}: {archive} member {name!r} must be a relative path, got an absolute path; refusing to extract"
        )
    parts = member_parts(name.replace("\\", "/"))
    if ".." in parts:
        raise CIFAR10FormatError(
            f"{func}: {archive} member {name!r} must stay inside the target folder, got a path with '..'; "
            "refusing to extract"
        )
    return parts


def extract_archive(archive: Path, directory: Path, func: str) -> Path:
    """Extract the batches folder of ``archive`` into ``directory``, safely and atomically.

    Only regular files and folders under ``cifar-10-batches-py/`` are accepted; absolute paths,
    ``..`` components, links and device files are refused before anything is written. Members are
    written into a temporary folder that is renamed into place once complete.

    Returns
    -------
    Path
        ``directory / "cifar-10-batches-py"``.
    """
    final = directory / BATCHES_FOLDER
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=directory))
    try:
        try:
            with tarfile.open(archive, mode="r|*") as tar:
                for member in tar:
                    parts = _safe_member_parts(member.name, archive, func)
                    if not parts or (member.isdir() and parts == (BATCHES_FOLDER,)):
                        continue
                    if parts[0] != BATCHES_FOLDER or not (member.isfile() or member.isdir()):
                        kind = "a path outside it" if parts[0] != BATCHES_FOLDER else "a link or special file"
                        raise CIFAR10FormatError(
                            f"{func}: {archive} member {member.name!r} must be a file or folder under "
                            f"{BATCHES_FOLDER}/, got {kind}; refusing to extract"
                        )
                    target = staging.joinpath(*parts)
                    if member.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    with open(target, "wb") as out:
                        if source is not None:
                            shutil.copyfileobj(source, out, _CHUNK)
        except (tarfile.TarError, EOFError, zlib.error) as err:
            raise CIFAR10FormatError(
                f"{func}: {archive} must be a CIFAR-10 python archive, but it could not be extracted "
                f"({type(err).__name__}: {err})"
            ) from err
        if not is_batches_folder(staging / BATCHES_FOLDER):
            raise CIFAR10FormatError(
                f"{func}: {archive} must hold {BATCHES_FOLDER}/ with data_batch_1..5 and test_batch, "
                "got an archive without them"
            )
        try:
            os.replace(staging / BATCHES_FOLDER, final)
        except OSError:
            if not is_batches_folder(final):  # else another process finished the same extraction first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
