"""After a crash the sweep removes only what the dead writer could have left; a wrong database is refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from journal import db, storage
from journal.config import Settings
from journal.errors import WrongDatabase
from journal.models import Photo
from journal.services import housekeeping, importing, users
from tests.databases import journal_env
from tests.imaging import make_jpeg


def journal(
    home: Path, database_url: str | None, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """`journal ARGS` in its own process on this data home and database (None: the home's SQLite file)."""
    full = journal_env(home, database_url, JOURNAL_WORKERS="1")
    return subprocess.run(
        [sys.executable, "-m", "journal", *args],
        env=full,
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=300,
    )


def originals(home: Path) -> list[Path]:
    return sorted(p for p in (home / "uploads" / "originals").rglob("*") if p.is_file())


def dead_marker(home: Path, age_s: float = 0) -> Path:
    """A marker as a writer killed with SIGKILL leaves it (no process holds the lock)."""
    marker = home / ".staging" / f"{housekeeping.MARKER_PREFIX}999999-deadbeef"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    if age_s:
        then = time.time() - age_s
        os.utime(marker, (then, then))
    return marker


def imported_home(tmp_path: Path, database_url: str | None, count: int = 3) -> Path:
    home = tmp_path / "home"
    added = journal(home, database_url, "user", "add", "alice", "--password-stdin", stdin=b"password123\n")
    assert added.returncode == 0
    for i in range(count):
        make_jpeg(tmp_path / "in" / f"IMG_{i}.jpg", seed=i)
    done = journal(home, database_url, "import", str(tmp_path / "in"))
    assert done.returncode == 0, done.stderr
    assert len(originals(home)) == count
    return home


def test_mistyped_database_url_and_a_crash_marker_delete_nothing(
    tmp_path: Path, database_url: str | None, another_database_url: str | None
) -> None:
    home = imported_home(tmp_path, database_url)
    kept = {p: p.read_bytes() for p in originals(home)}
    # A typo in JOURNAL_DATABASE_URL: a new empty database, where the user makes an account again.
    wrong = another_database_url or f"sqlite:///{tmp_path / 'jornal.db'}"
    added = journal(home, wrong, "user", "add", "alice", "--password-stdin", stdin=b"pw-123456\n")
    assert added.returncode == 0
    dead_marker(home, age_s=60)
    make_jpeg(tmp_path / "new" / "IMG_new.jpg", seed=99)
    result = journal(home, wrong, "import", str(tmp_path / "new"))
    assert result.returncode == 1
    assert "does not belong to this data home" in result.stderr and "journal check" in result.stderr
    assert {p: p.read_bytes() for p in originals(home)} == kept, "an original was deleted"
    # The right database still works, and the crash leftovers of that marker are swept then.
    assert journal(home, database_url, "import", str(tmp_path / "new")).returncode == 0
    assert len(originals(home)) == 4


def test_serve_refuses_a_wrong_database(
    tmp_path: Path, database_url: str | None, another_database_url: str | None
) -> None:
    home = imported_home(tmp_path, database_url, count=1)
    wrong = another_database_url or f"sqlite:///{tmp_path / 'empty.db'}"
    result = journal(home, wrong, "serve", "--port", "1")
    assert result.returncode == 1 and "does not belong to this data home" in result.stderr


@pytest.mark.sqlite_only  # restores a copy of the SQLite file
def test_restored_older_database_is_refused_and_nothing_deleted(tmp_path: Path) -> None:
    home = imported_home(tmp_path, None, count=2)
    shutil.copy(home / "journal.db", tmp_path / "backup.db")
    make_jpeg(tmp_path / "more" / "IMG_later.jpg", seed=50)
    assert journal(home, None, "import", str(tmp_path / "more")).returncode == 0
    kept = {p: p.read_bytes() for p in originals(home)}
    assert len(kept) == 3
    for suffix in ("-wal", "-shm"):
        (home / f"journal.db{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "backup.db", home / "journal.db")
    dead_marker(home, age_s=60)
    make_jpeg(tmp_path / "third" / "IMG_third.jpg", seed=51)
    result = journal(home, None, "import", str(tmp_path / "third"))
    assert result.returncode == 1 and "older than the files" in result.stderr, result.stderr
    assert {p: p.read_bytes() for p in originals(home)} == kept


# --- the sweep itself, in process --------------------------------------------------------------


@pytest.fixture
def alice(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as s, s.begin():
        return users.create_user(s, "alice", "password123").id


def stray_original(settings: Settings, user_id: int, seed: int, tmp_path: Path) -> Path:
    """An original in uploads/ with no row (what a killed import leaves)."""
    src = make_jpeg(tmp_path / "stray" / f"{seed}.jpg", seed=seed)
    sha = storage.sha256_file(src)
    target = settings.uploads_dir / storage.original_relpath(user_id, sha, "jpg")
    storage.copy_atomic(src, target)
    return target


def test_sweep_removes_only_files_younger_than_the_dead_marker(
    settings: Settings,
    session_factory: sessionmaker[Session],
    alice: int,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = stray_original(settings, alice, 1, tmp_path)
    then = time.time() - 3600
    os.utime(old, (then, then))
    dead_marker(settings.home, age_s=60)
    young = stray_original(settings, alice, 2, tmp_path)
    (settings.staging_dir / (storage.TEMP_PREFIX + "half")).write_bytes(b"partial")
    report = housekeeping.run_sweep(settings, session_factory)
    assert old.exists() and not young.exists()
    assert report.removed == 1 and report.unaccounted == 1
    assert not (settings.staging_dir / (storage.TEMP_PREFIX + "half")).exists()
    assert "journal check" in caplog.text and str(old) in caplog.text


def test_writer_after_crash_keeps_old_orphans(
    settings: Settings, session_factory: sessionmaker[Session], alice: int, tmp_path: Path
) -> None:
    housekeeping.run_verify_home(settings, session_factory)  # the first writer of a fresh install
    old = stray_original(settings, alice, 3, tmp_path)
    then = time.time() - 3600
    os.utime(old, (then, then))
    dead_marker(settings.home, age_s=60)
    with housekeeping.run_as_writer(settings, session_factory):
        pass
    assert old.exists()
    assert not any(settings.staging_dir.glob(housekeeping.MARKER_PREFIX + "*"))


# --- the data home's identity ------------------------------------------------------------------


def test_fresh_install_adopts_and_writers_just_work(
    settings: Settings, session_factory: sessionmaker[Session], alice: int, tmp_path: Path
) -> None:
    src = make_jpeg(tmp_path / "a.jpg", seed=5)
    options = importing.ImportOptions(user_id=alice)
    summary = importing.run_import(settings, session_factory, options, list(importing.discover([src])))
    assert summary.count("imported") == 1
    assert housekeeping.identity_path(settings).is_file()
    housekeeping.run_verify_home(settings, session_factory)  # and again: still the same home


def test_empty_database_facing_originals_is_refused(
    settings: Settings, session_factory: sessionmaker[Session], alice: int, tmp_path: Path
) -> None:
    stray_original(settings, alice, 6, tmp_path)
    housekeeping.identity_path(settings).unlink(missing_ok=True)
    with pytest.raises(WrongDatabase, match="journal check --repair"):
        housekeeping.run_verify_home(settings, session_factory)


def test_database_of_another_home_is_refused(
    settings: Settings,
    session_factory: sessionmaker[Session],
    alice: int,
    tmp_path: Path,
    another_database_url: str | None,
) -> None:
    housekeeping.run_verify_home(settings, session_factory)
    other = settings.with_(home=tmp_path / "other")
    other_url = another_database_url or f"sqlite:///{tmp_path / 'o.db'}"
    engine = db.make_engine(other_url)
    db.ensure_schema(engine)
    housekeeping.run_verify_home(other.with_(database_url=other_url), db.make_session_factory(engine))
    engine.dispose()
    stray_original(other, alice, 7, tmp_path)
    with pytest.raises(WrongDatabase, match="another data home"):
        housekeeping.run_verify_home(other, session_factory)


def test_generation_grows_with_each_writer(
    settings: Settings, session_factory: sessionmaker[Session], alice: int
) -> None:
    with housekeeping.run_as_writer(settings, session_factory):
        pass
    first = housekeeping.read_identity(settings)
    with housekeeping.run_as_writer(settings, session_factory):
        pass
    second = housekeeping.read_identity(settings)
    assert first is not None and second is not None
    assert second.home_id == first.home_id and second.generation > first.generation
    with session_factory() as s:
        assert s.scalar(text("SELECT generation FROM home_identity")) == second.generation
        assert s.scalars(select(Photo)).all() == []
