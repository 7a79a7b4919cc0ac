"""Keeping uploads/ and the database in step after a crash.

Files are written before their rows, so a killed import can leave a complete file in
uploads/ with no row (temp files live in .staging/ and never in uploads/). Every writer
holds a shared lock and leaves a marker in .staging/ while it works; the next writer that
finds a marker of a dead process, and gets the lock alone, removes the orphans.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from journal.config import Settings
from journal.models import Photo

logger = logging.getLogger(__name__)

_STORED = re.compile(r"^(originals|web|thumb)/(\d+)/[0-9a-f]{2}/([0-9a-f]{64})\.[a-z0-9]{1,5}$")
MARKER_PREFIX = "active-"


@contextmanager
def writer_guard(settings: Settings, factory: sessionmaker[Session]) -> Iterator[None]:
    """Hold the shared writer lock (and a marker) while files are added to uploads/."""
    staging = settings.staging_dir
    staging.mkdir(parents=True, exist_ok=True)
    with open(staging / "lock", "a+b") as lock:
        if _try_lock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB):
            if any(staging.glob(MARKER_PREFIX + "*")):
                sweep(settings, factory)
            fcntl.flock(lock, fcntl.LOCK_SH)
        else:
            fcntl.flock(lock, fcntl.LOCK_SH)
        marker = staging / f"{MARKER_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
        marker.touch()
        try:
            yield
        finally:
            marker.unlink(missing_ok=True)
            fcntl.flock(lock, fcntl.LOCK_UN)


def _try_lock(handle: object, flags: int) -> bool:
    try:
        fcntl.flock(handle, flags)  # type: ignore[arg-type]
    except BlockingIOError:
        return False
    return True


def sweep(settings: Settings, factory: sessionmaker[Session]) -> int:
    """Remove files in uploads/ that no row points at, and stale temp files; return how many."""
    with factory() as session:
        known = {(uid, sha) for uid, sha in session.execute(select(Photo.user_id, Photo.sha256))}
    removed = 0
    root = settings.uploads_dir
    for path in _stored_files(root):
        match = _STORED.match(path.relative_to(root).as_posix())
        if match and (int(match.group(2)), match.group(3)) in known:
            continue
        logger.warning("removing orphan %s", path)
        path.unlink(missing_ok=True)
        removed += 1
    _clear_staging(settings.staging_dir)
    return removed


def _stored_files(root: Path) -> Iterator[Path]:
    for kind in ("originals", "web", "thumb"):
        folder = root / kind
        if folder.is_dir():
            yield from (p for p in folder.rglob("*") if p.is_file())


#: Uploads are streamed into .staging/ while the request body arrives, before the writer lock is
#: taken: a sweep leaves young ones alone.
UPLOAD_GRACE_S = 3600


def _clear_staging(staging: Path) -> None:
    now = time.time()
    for entry in staging.iterdir():
        if entry.name == "lock":
            continue
        if entry.name.startswith(".tmp-upload-") and now - entry.stat().st_mtime < UPLOAD_GRACE_S:
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
