"""Layout of uploads/ and exports/: content-hash names, safe joins, atomic writes."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from journal.errors import InvalidInput

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
TEMP_PREFIX = ".tmp-"

#: Rendition kinds stored beside the originals, and their file extension.
RENDITIONS = {"thumb": "jpg", "web": "jpg"}

#: Modes of the files and folders the journal writes: private unless the settings share them.
#: One policy per process (set_modes, from Settings.file_mode), so modules that write files need
#: no settings of their own; forked workers inherit it, and a fresh process starts private.
_modes = {"file": 0o600, "dir": 0o700}


def set_modes(file_mode: int, dir_mode: int) -> None:
    """Use these modes for every file and folder written from now on (see Settings.file_mode)."""
    _modes.update(file=file_mode, dir=dir_mode)


def file_mode() -> int:
    """The mode new files get."""
    return _modes["file"]


def dir_mode() -> int:
    """The mode new folders get."""
    return _modes["dir"]


def make_dirs(path: Path, mode: int | None = None) -> None:
    """Create a folder and its missing parents with exactly `mode` (default: the policy's)."""
    mode = dir_mode() if mode is None else mode
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=mode)
        except FileExistsError:
            continue  # made by another writer a moment ago
        os.chmod(folder, mode)  # mkdir's mode goes through the umask; this one must not


@contextlib.contextmanager
def atomic_write(path: Path, *, staging: Path | None = None, mode: int | None = None) -> Iterator[BinaryIO]:
    """Open a temp file for writing; on success fsync it and move it to `path` with os.replace.

    The temp file lives in `staging` (same file system) or else beside `path`, so a crash
    leaves no partial file at `path`; on error the temp file is removed. The file gets `mode`,
    by default the policy's (set_modes), and missing folders the policy's folder mode.
    """
    make_dirs(path.parent)
    tmp_dir = staging or path.parent
    make_dirs(tmp_dir)
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=tmp_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, file_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def safe_join(root: Path, *parts: str) -> Path:
    """Join relative parts under root, refusing anything that would leave it."""
    candidate = root.joinpath(*parts).resolve()
    if not candidate.is_relative_to(root.resolve()):
        raise InvalidInput("path leaves its folder")
    return candidate


def check_sha256(sha256: str) -> str:
    """Return the hash if it is 64 lowercase hex digits, else raise InvalidInput."""
    if not _SHA256.match(sha256):
        raise InvalidInput("not a SHA-256 hex digest")
    return sha256


def original_relpath(user_id: int, sha256: str, ext: str) -> str:
    """Where an original lives under uploads/, named by the app (never by the user)."""
    check_sha256(sha256)
    if not re.fullmatch(r"[a-z0-9]{1,5}", ext):
        raise InvalidInput("bad file extension")
    return f"originals/{int(user_id)}/{sha256[:2]}/{sha256}.{ext}"


def original_exists(root: Path, user_id: int, sha256: str) -> bool:
    """True when an original with this content is stored for the user (whatever its extension)."""
    check_sha256(sha256)
    return any((root / f"originals/{int(user_id)}/{sha256[:2]}").glob(f"{sha256}.*"))


def rendition_relpath(user_id: int, sha256: str, kind: str) -> str:
    """Where a rendition (thumb, web) lives under uploads/."""
    check_sha256(sha256)
    if kind not in RENDITIONS:
        raise InvalidInput(f"unknown rendition {kind!r}")
    return f"{kind}/{int(user_id)}/{sha256[:2]}/{sha256}.{RENDITIONS[kind]}"


def copy_atomic(src: Path, dest: Path, *, staging: Path | None = None) -> None:
    """Copy a file's bytes to dest atomically (temp file + rename)."""
    with src.open("rb") as source, atomic_write(dest, staging=staging) as target:
        while chunk := source.read(CHUNK):
            target.write(chunk)


def remove_files(paths: list[Path]) -> None:
    """Delete files, ignoring ones already gone (used after their rows are deleted)."""
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            logger.debug("already gone: %s", path)
