"""Keeping uploads/ and the database in step after a crash, and knowing they belong together.

Files are written before their rows, so a killed import can leave a complete file in
uploads/ with no row (temp files live in .staging/ and never in uploads/). Every writer
holds a shared lock and leaves a marker in .staging/ while it works; the next writer that
finds a marker of a dead process, and gets the lock alone, removes what the dead one could
have left: staging files, and files with no row written after its marker. Any other file
without a row is reported (`journal check` lists them, `journal check --repair` re-indexes
them), never deleted.

A file without a row may also mean the database is the wrong one: a mistyped
JOURNAL_DATABASE_URL gives a new empty database, a restored backup an older one. The data home
and its database carry the same id and generation (the home's .journal-home file and the
home_identity row); writers and `journal serve` refuse a database with none, another or an older one.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from journal import storage
from journal.config import Settings
from journal.errors import JournalError, WrongDatabase
from journal.models import HomeIdentity, Photo, Track

logger = logging.getLogger(__name__)

_STORED = re.compile(r"^(originals|web|thumb)/(\d+)/[0-9a-f]{2}/([0-9a-f]{64})\.[a-z0-9]{1,5}$")
MARKER_PREFIX = "active-"
IDENTITY_FILE = ".journal-home"
#: Folders under uploads/ that hold what users gave (originals and GPX tracks).
USER_FILE_FOLDERS = ("originals", "tracks")


@dataclass(frozen=True)
class Identity:
    """Which data home, and how many writers have started in it."""

    home_id: str
    generation: int


@dataclass
class SweepReport:
    """What a sweep did: crash leftovers removed, and files without a row kept and reported."""

    removed: int = 0
    unaccounted: int = 0


@contextmanager
def run_as_writer(settings: Settings, factory: sessionmaker[Session]) -> Iterator[None]:
    """Hold the shared writer lock (and a marker) while files are added to uploads/.

    Raises WrongDatabase, before anything is written or swept, when the database does not
    belong to the data home (see run_verify_home). A job step: it commits the raised generation
    (and may sweep) before the body runs.
    """
    storage.set_modes(settings.file_mode, settings.dir_mode)
    staging = settings.staging_dir
    storage.make_dirs(staging)
    with os.fdopen(os.open(staging / "lock", os.O_RDWR | os.O_CREAT, settings.file_mode), "r+b") as lock:
        alone = _try_lock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if not alone:
            fcntl.flock(lock, fcntl.LOCK_SH)
        run_verify_home(settings, factory, count_writer=True)
        if alone:
            if any(staging.glob(MARKER_PREFIX + "*")):
                run_sweep(settings, factory)
            fcntl.flock(lock, fcntl.LOCK_SH)
        marker = staging / f"{MARKER_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
        marker.touch(mode=settings.file_mode)
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


def run_sweep(settings: Settings, factory: sessionmaker[Session]) -> SweepReport:
    """Remove what crashed writers left (call with the writer lock held alone); report the rest.

    A stored file without a row is removed only when it was written after the oldest marker
    left in .staging/ (a dead writer started then); older ones are logged and counted, kept.
    """
    staging = settings.staging_dir
    since = min((m.stat().st_mtime for m in staging.glob(MARKER_PREFIX + "*")), default=None)
    with factory() as session:
        known = {(uid, sha) for uid, sha in session.execute(select(Photo.user_id, Photo.sha256))}
    report = SweepReport()
    root = settings.uploads_dir
    for path in _stored_files(root):
        match = _STORED.match(path.relative_to(root).as_posix())
        if match and (int(match.group(2)), match.group(3)) in known:
            continue
        if match and since is not None and path.stat().st_mtime >= since:
            logger.warning("removing %s: written by a writer that crashed, and no row points at it", path)
            path.unlink(missing_ok=True)
            report.removed += 1
        else:
            logger.warning("keeping %s: no row points at it, and no crashed writer made it", path)
            report.unaccounted += 1
    if report.unaccounted:
        logger.warning(
            "%d file(s) in %s have no row: `journal check` lists them, `--repair` re-indexes them",
            report.unaccounted,
            root,
        )
    _clear_staging(staging)
    return report


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


# --- which data home the database belongs to ---------------------------------------------------


def identity_path(settings: Settings) -> Path:
    """The data home's half of the identity (the database holds the other)."""
    return settings.home / IDENTITY_FILE


def read_identity(settings: Settings) -> Identity | None:
    """The identity the data home records, or None when it records none yet."""
    path = identity_path(settings)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Identity(str(data["home_id"]), int(data["generation"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise JournalError(f"cannot read {path} ({exc}): it says which database belongs here") from exc


def _write_identity(settings: Settings, identity: Identity) -> None:
    text = json.dumps({"home_id": identity.home_id, "generation": identity.generation})
    with storage.atomic_write(identity_path(settings), staging=settings.staging_dir) as handle:
        handle.write(text.encode())


def has_user_files(settings: Settings) -> bool:
    """True when uploads/ holds any original or track."""
    for folder in USER_FILE_FOLDERS:
        root = settings.uploads_dir / folder
        if root.is_dir() and any(p.is_file() for p in root.rglob("*")):
            return True
    return False


def _has_rows(session: Session) -> bool:
    return any(session.scalar(select(model.id).limit(1)) is not None for model in (Photo, Track))


def shown_url(settings: Settings) -> str:
    """The database URL without its password."""
    return make_url(settings.database_url).render_as_string(hide_password=True)


def _where(settings: Settings) -> str:
    return f"the database {shown_url(settings)} does not belong to this data home ({settings.home})"


def _refusal(settings: Settings, why: str, remedy: str) -> WrongDatabase:
    return WrongDatabase(
        f"{_where(settings)}: {why}. Nothing was written or deleted. {remedy}. "
        "`journal check` lists what the database and uploads/ disagree on."
    )


CHECK_URL = "Check JOURNAL_DATABASE_URL and --home/JOURNAL_HOME"
REPAIR = (
    "If it is the right database all the same, `journal check --repair` re-indexes the photos"
    " from their files"
)


def run_verify_home(
    settings: Settings, factory: sessionmaker[Session], *, count_writer: bool = False
) -> Identity:
    """The identity the database and the data home share; WrongDatabase when they do not match.

    A fresh install (no identity on either side) or an existing one meeting this check for the
    first time gets a new identity; a database with none facing a data home that holds files,
    one of another data home, or one with a lower generation (an older copy) is refused.
    `count_writer` raises the generation (a writer starts): in the database first, in the same
    transaction as the check, then in .journal-home, which so never gets ahead of the database
    (hence a job: it commits before it writes the file).
    """
    home = read_identity(settings)
    try:
        with factory() as session, session.begin():
            identity = _match(session, settings, home, count_writer=count_writer)
    except IntegrityError:
        # Two first writers of a fresh install at once: the other one's identity is in place now.
        with factory() as session, session.begin():
            identity = _match(session, settings, home, count_writer=count_writer)
    current = read_identity(settings) if identity != home else home  # another writer may be ahead
    if current is None or identity.generation > current.generation or identity.home_id != current.home_id:
        _write_identity(settings, identity)
    return identity


def home_mismatch(session: Session, settings: Settings) -> str | None:
    """Why writers would refuse this database (run_verify_home's message), or None; changes nothing."""
    try:
        _match(session, settings, read_identity(settings), adopt=False)
    except WrongDatabase as exc:
        return str(exc)
    return None


def _match(
    session: Session,
    settings: Settings,
    home: Identity | None,
    *,
    adopt: bool = True,
    count_writer: bool = False,
) -> Identity:
    row = session.get(HomeIdentity, 1)
    if row is None:
        if has_user_files(settings):
            empty = not _has_rows(session)
            if empty or home is not None:
                why = (
                    "it is new or empty, while uploads/ holds photos"
                    if empty
                    else "it does not carry this data home's id (a copy from before the id?)"
                )
                raise _refusal(settings, why, f"{CHECK_URL}. {REPAIR}")
        row = HomeIdentity(
            id=1,
            home_id=home.home_id if home else uuid.uuid4().hex,
            generation=home.generation if home else 0,
        )
        if adopt:
            session.add(row)
            session.flush()
    elif home is not None and row.home_id != home.home_id:
        raise _refusal(settings, "it belongs to another data home", CHECK_URL)
    elif home is not None and row.generation < home.generation:
        why = (
            f"it is older than the files in uploads/ (generation {row.generation} < {home.generation}:"
            " restored from an older copy?)"
        )
        raise _refusal(settings, why, REPAIR)
    if not count_writer:
        return Identity(row.home_id, row.generation)
    # An SQL increment, not row.generation + 1: writers running at once each count.
    raised = HomeIdentity.generation + 1
    session.execute(update(HomeIdentity).where(HomeIdentity.id == 1).values(generation=raised))
    generation = session.scalar(select(HomeIdentity.generation).where(HomeIdentity.id == 1))
    return Identity(row.home_id, int(generation or 0))


def run_claim_home(settings: Settings, factory: sessionmaker[Session]) -> Identity:
    """Make the configured database the data home's own (`journal check --repair`): nothing is deleted.

    Commits before it writes .journal-home, which so never gets ahead of the database.
    """
    home = read_identity(settings)
    with factory() as session, session.begin():
        row = session.get(HomeIdentity, 1)
        home_id = home.home_id if home else row.home_id if row else uuid.uuid4().hex
        generation = max(home.generation if home else 0, row.generation if row else 0) + 1
        if row is None:
            session.add(HomeIdentity(id=1, home_id=home_id, generation=generation))
        else:
            row.home_id, row.generation = home_id, generation
    identity = Identity(home_id, generation)
    _write_identity(settings, identity)
    logger.warning("the database %s now belongs to %s", shown_url(settings), settings.home)
    return identity


# --- file modes ---------------------------------------------------------------------------------


def secure_home(settings: Settings) -> None:
    """Create the data home's folders and give them, and the database, the modes the settings ask for.

    Files and folders are private to the user running the journal by default (0600/0700);
    Settings.file_mode shares them with a group. The home folder itself is created private but
    never changed when it exists (it may be the current folder); the secret key stays 0600.
    """
    storage.set_modes(settings.file_mode, settings.dir_mode)
    storage.make_dirs(settings.home)
    for folder in (settings.uploads_dir, settings.exports_dir, settings.staging_dir):
        storage.make_dirs(folder)
        _set_mode(folder, settings.dir_mode)
    if settings.tiles_dir.is_dir():
        _set_mode(settings.tiles_dir, settings.dir_mode)
    if settings.secret_key_path.exists():
        _set_mode(settings.secret_key_path, 0o600)
    database = sqlite_path(settings.database_url)
    if database is not None:
        _make_database_file(database, settings.file_mode)
        for suffix in ("-wal", "-shm", "-journal"):
            side = database.with_name(database.name + suffix)
            if side.exists():
                _set_mode(side, settings.file_mode)


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL, None for other databases and in-memory ones."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _make_database_file(path: Path, mode: int) -> None:
    """An empty file with `mode` where SQLite will create the database (its -wal/-shm copy the mode)."""
    storage.make_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        _set_mode(path, mode)
        return
    os.fchmod(fd, mode)  # the umask must not change it
    os.close(fd)


def _set_mode(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 != mode:
            os.chmod(path, mode)
    except PermissionError:
        logger.warning("cannot set the mode of %s to %o (it belongs to another user)", path, mode)
