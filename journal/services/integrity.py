"""`journal check`: do the database and uploads/ agree? `--repair` mends what it can, deleting no original.

Rows without files (an original, rendition or track missing), files without rows (originals
and tracks no row points at, renditions of no photo, files the journal did not name) and hash
mismatches (a file whose bytes no longer give the SHA-256 it is named and recorded by) are
listed. Repair re-indexes orphan originals and tracks from their own bytes through the normal
import pipeline (a row, with its metadata and renditions, for the user whose folder holds the
file), rebuilds missing renditions, and removes only renditions that no row and no original
account for (they are made from originals and can be made again).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from journal import storage
from journal.config import Settings
from journal.errors import JournalError
from journal.models import Photo, Track, User
from journal.names import shown_path
from journal.services import housekeeping, importing

logger = logging.getLogger(__name__)

Kind = Literal[
    "wrong_database",
    "missing_original",
    "missing_rendition",
    "missing_track",
    "orphan",
    "stray_rendition",
    "unknown_file",
    "hash_mismatch",
]

#: What each kind of problem is called in `journal check`'s lines.
LABELS: dict[str, str] = {
    "wrong_database": "wrong database",
    "missing_original": "row without file",
    "missing_rendition": "row without rendition",
    "missing_track": "row without file",
    "orphan": "file without row",
    "stray_rendition": "rendition without row",
    "unknown_file": "file the journal did not name",
    "hash_mismatch": "hash mismatch",
}

_NAMED = re.compile(r"^(originals|tracks|web|thumb)/(\d+)/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z0-9]{1,5})$")


@dataclass(frozen=True)
class Problem:
    """One disagreement between the database and uploads/ (path relative to uploads/)."""

    kind: Kind
    path: str
    detail: str = ""
    user_id: int | None = None
    photo_id: int | None = None
    track_id: int | None = None

    def line(self) -> str:
        """The problem as one line of `journal check`."""
        detail = f": {self.detail}" if self.detail else ""
        return f"{LABELS[self.kind]}: {self.path}{detail}"


@dataclass
class CheckReport:
    """Everything `journal check` found (and, with repair, did)."""

    photos: int = 0
    tracks: int = 0
    files: int = 0
    problems: list[Problem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the database and uploads/ agree."""
        return not self.problems

    def of(self, *kinds: Kind) -> list[Problem]:
        """The problems of these kinds."""
        return [p for p in self.problems if p.kind in kinds]

    def as_dict(self) -> dict[str, object]:
        """The report as `journal check --json` prints it."""
        return {
            "ok": self.ok,
            "photos": self.photos,
            "tracks": self.tracks,
            "files": self.files,
            "problems": [asdict(p) for p in self.problems],
            "repaired": self.repaired,
        }

    def summary(self) -> str:
        """The last line of `journal check`."""
        counts = {
            "rows without files": len(self.of("missing_original", "missing_rendition", "missing_track")),
            "files without rows": len(self.of("orphan", "stray_rendition", "unknown_file")),
            "hash mismatches": len(self.of("hash_mismatch")),
        }
        found = ", ".join(f"{label} {n}" for label, n in counts.items())
        head = "ok" if self.ok else "problems"
        return f"{head}: {self.photos} photos, {self.tracks} tracks, {self.files} files; {found}"


@dataclass(frozen=True)
class _Row:
    kind: Literal["photo", "track"]
    id: int
    user_id: int
    sha256: str
    stored_path: str


def run_check(settings: Settings, factory: sessionmaker[Session], *, hashes: bool = True) -> CheckReport:
    """Compare the database with uploads/; reads every stored file's bytes when `hashes`."""
    report = CheckReport()
    with factory() as session:
        wrong = housekeeping.home_mismatch(session, settings)
    if wrong:
        report.problems.append(Problem("wrong_database", housekeeping.shown_url(settings), wrong))
    rows = _rows(factory)
    report.photos = sum(1 for r in rows if r.kind == "photo")
    report.tracks = len(rows) - report.photos
    root = settings.uploads_dir
    for row in rows:
        report.problems.extend(_check_row(root, row, hashes))
    expected = {r.stored_path for r in rows}
    photo_keys = {(r.user_id, r.sha256) for r in rows if r.kind == "photo"}
    for path in _files(root):
        report.files += 1
        rel = path.relative_to(root).as_posix()
        if rel not in expected:
            report.problems.extend(_check_unknown(path, rel, photo_keys, hashes))
    return report


def _rows(factory: sessionmaker[Session]) -> list[_Row]:
    with factory() as session:
        photos = session.execute(select(Photo.id, Photo.user_id, Photo.sha256, Photo.stored_path))
        found = [_Row("photo", *r) for r in photos]
        tracks = session.execute(select(Track.id, Track.user_id, Track.sha256, Track.stored_path))
        found += [_Row("track", *r) for r in tracks]
    return found


def _check_row(root: Path, row: _Row, hashes: bool) -> Iterator[Problem]:
    ids = {"photo_id": row.id} if row.kind == "photo" else {"track_id": row.id}
    path = root / row.stored_path
    if not path.is_file():
        kind: Kind = "missing_original" if row.kind == "photo" else "missing_track"
        yield Problem(kind, row.stored_path, f"{row.kind} {row.id}", row.user_id, **ids)
    elif hashes and storage.sha256_file(path) != row.sha256:
        yield Problem("hash_mismatch", row.stored_path, f"{row.kind} {row.id}", row.user_id, **ids)
    if row.kind == "photo":
        for kind_name in storage.RENDITIONS:
            rel = storage.rendition_relpath(row.user_id, row.sha256, kind_name)
            if not (root / rel).is_file():
                yield Problem("missing_rendition", rel, f"photo {row.id}", row.user_id, **ids)


def _check_unknown(path: Path, rel: str, photo_keys: set[tuple[int, str]], hashes: bool) -> Iterator[Problem]:
    match = _NAMED.match(rel)
    if not match or match.group(3) != match.group(4)[:2]:
        yield Problem("unknown_file", shown_path(rel))
        return
    folder, user_id, sha = match.group(1), int(match.group(2)), match.group(4)
    if folder in storage.RENDITIONS:
        if (user_id, sha) not in photo_keys:
            yield Problem("stray_rendition", rel, user_id=user_id)
        return
    if hashes and storage.sha256_file(path) != sha:
        yield Problem("hash_mismatch", rel, "no row; its bytes are not the ones it is named by", user_id)
    else:
        yield Problem("orphan", rel, "", user_id)


def _files(root: Path) -> Iterator[Path]:
    for folder in ("originals", "tracks", "web", "thumb"):
        base = root / folder
        if base.is_dir():
            yield from sorted(p for p in base.rglob("*") if p.is_file())


# --- repair ---------------------------------------------------------------------------------------


def run_repair(settings: Settings, factory: sessionmaker[Session]) -> CheckReport:
    """Mend what run_check finds without deleting an original; return the check after (with what was done)."""
    before = run_check(settings, factory)
    done: list[str] = []
    if before.of("wrong_database"):
        housekeeping.run_claim_home(settings, factory)
        done.append(f"the database now belongs to {settings.home}")
    done += _reindex(settings, factory, before.of("orphan"))
    with housekeeping.run_as_writer(settings, factory):
        done += _rebuild_renditions(settings, factory, before.of("missing_rendition"))
        done += _remove_stray_renditions(settings, factory, before.of("stray_rendition"))
    after = run_check(settings, factory)
    after.repaired = done
    return after


def _reindex(settings: Settings, factory: sessionmaker[Session], orphans: list[Problem]) -> list[str]:
    """Orphan originals and tracks go through the import pipeline for the user of their folder."""
    done: list[str] = []
    root = settings.uploads_dir
    with factory() as session:
        users = set(session.scalars(select(User.id)))
    for user_id in sorted({p.user_id for p in orphans if p.user_id is not None}):
        mine = [p for p in orphans if p.user_id == user_id]
        if user_id not in users:
            done += [f"not re-indexed (no account {user_id}; create it first): {p.path}" for p in mine]
            continue
        candidates = [
            importing.Candidate(root / p.path, p.path, importing.sniff(root / p.path)) for p in mine
        ]
        options = importing.ImportOptions(user_id=user_id)
        for result in importing.run_import(settings, factory, options, candidates).results:
            if result.status == "imported":
                done.append(f"re-indexed: {result.name}")
            else:
                done.append(f"not re-indexed ({result.status}: {result.error or 'see log'}): {result.name}")
    return done


def _rebuild_renditions(
    settings: Settings, factory: sessionmaker[Session], missing: list[Problem]
) -> list[str]:
    done: list[str] = []
    root = settings.uploads_dir
    for photo_id in sorted({p.photo_id for p in missing if p.photo_id is not None}):
        with factory() as session:
            photo = session.get(Photo, photo_id)
        if photo is None:
            continue
        original = root / photo.stored_path
        if not original.is_file() or storage.sha256_file(original) != photo.sha256:
            done.append(f"not rebuilt (the original is missing or damaged): photo {photo_id}")
            continue
        try:
            importing.write_renditions(settings, original, photo.user_id, photo.sha256, photo.orientation)
        except (JournalError, OSError, ValueError) as exc:
            done.append(f"not rebuilt ({exc}): photo {photo_id}")
            continue
        done.append(f"renditions rebuilt: photo {photo_id}")
    return done


def _remove_stray_renditions(
    settings: Settings, factory: sessionmaker[Session], strays: list[Problem]
) -> list[str]:
    """Renditions of no photo are removed only when no original of that content is on disk either."""
    done: list[str] = []
    root = settings.uploads_dir
    with factory() as session:
        keys = {(uid, sha) for uid, sha in session.execute(select(Photo.user_id, Photo.sha256))}
    for problem in strays:
        match = _NAMED.match(problem.path)
        assert match is not None
        user_id, sha = int(match.group(2)), match.group(4)
        if (user_id, sha) in keys or storage.original_exists(root, user_id, sha):
            continue
        (root / problem.path).unlink(missing_ok=True)
        done.append(f"removed (a rendition of no photo and no original): {problem.path}")
    return done
