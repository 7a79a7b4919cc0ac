"""A killed import leaves no half rows and no partial files; running it again finishes the job."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from journal import storage
from journal.config import Settings
from tests.databases import db_rows, journal_env
from tests.imaging import make_jpeg
from tests.waiting import wait_until

N = 36
STORED = re.compile(r"^(originals|web|thumb)/(\d+)/[0-9a-f]{2}/([0-9a-f]{64})\.[a-z0-9]+$")


def journal(settings: Settings, *args: str, **kwargs: object) -> subprocess.Popen[bytes]:
    url = None if settings.is_sqlite else settings.database_url
    env = journal_env(settings.home, url, JOURNAL_WORKERS="2")
    return subprocess.Popen(  # type: ignore[call-overload]
        [sys.executable, "-m", "journal", *args], env=env, start_new_session=True, **kwargs
    )


def photo_rows(settings: Settings) -> list[tuple[int, str, str, int]]:
    return db_rows(settings, "SELECT user_id, sha256, stored_path, post_id FROM photos")


def stored_files(home: Path) -> list[Path]:
    return [p for p in (home / "uploads").rglob("*") if p.is_file()]


def check_no_half_rows_or_partial_files(settings: Settings) -> None:
    home = settings.home
    if settings.is_sqlite:  # PostgreSQL checks its foreign keys on every write and has no such pragma
        assert db_rows(settings, "PRAGMA integrity_check") == [("ok",)]
        assert db_rows(settings, "PRAGMA foreign_key_check") == []
    assert db_rows(settings, "SELECT count(*) FROM photos WHERE post_id IS NULL") == [(0,)]
    for user_id, sha, stored_path, _post in photo_rows(settings):
        original = home / "uploads" / stored_path
        assert storage.sha256_file(original) == sha, "a row points at a missing or wrong file"
        for kind in ("web", "thumb"):
            assert (home / "uploads" / storage.rendition_relpath(user_id, sha, kind)).stat().st_size > 0
    for path in stored_files(home):
        rel = path.relative_to(home / "uploads").as_posix()
        assert STORED.match(rel), f"unexpected (partial?) file in uploads/: {rel}"
        if rel.startswith("originals/"):
            assert storage.sha256_file(path) == STORED.match(rel).group(3)  # type: ignore[union-attr]


@pytest.mark.slow
def test_sigkill_midway_then_rerun(settings: Settings, tmp_path: Path) -> None:
    home, photos = settings.home, tmp_path / "photos"
    for i in range(N):
        make_jpeg(photos / f"IMG_{i:04d}.jpg", (2400, 1600), seed=i)
    user = journal(settings, "user", "add", "alice", "--password-stdin", stdin=subprocess.PIPE)
    user.communicate(b"password123\n")
    assert user.returncode == 0

    first = journal(settings, "import", str(photos), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(
            lambda: (
                first.poll() is not None
                or (
                    (not settings.is_sqlite or (home / "journal.db").exists())
                    and len(photo_rows(settings)) >= 6
                )
            ),
            120,
            "the first import to store 6 photos",
        )
    except AssertionError:
        os.killpg(first.pid, signal.SIGKILL)
        raise
    assert first.poll() is None, "the import finished before it could be killed; make the corpus bigger"
    os.killpg(first.pid, signal.SIGKILL)  # the parent and its workers, like a power cut
    first.wait()
    killed_at = len(photo_rows(settings))
    assert 0 < killed_at < N
    check_no_half_rows_or_partial_files(settings)

    second = journal(settings, "import", str(photos), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err.decode()
    imported, duplicates = map(int, re.search(rb"imported (\d+), duplicates (\d+)", out).groups())  # type: ignore[union-attr]
    assert imported + duplicates == N and imported >= N - killed_at
    check_no_half_rows_or_partial_files(settings)
    rows = photo_rows(settings)
    assert len(rows) == N and len({sha for _, sha, _, _ in rows}) == N
    # no orphans: every stored file belongs to a row
    assert len(stored_files(home)) == 3 * N
    assert not any((home / ".staging").glob(storage.TEMP_PREFIX + "*"))
