"""Importing photos: find files, store originals and renditions, record rows.

The heavy part (hashing, metadata, renditions) runs in worker processes and only writes
files; the parent process writes rows, one short transaction per photo. Files go in
before rows, so a crash leaves at worst an orphan file that housekeeping removes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from journal import places, storage
from journal.config import Settings
from journal.errors import JournalError, UnreadableFile
from journal.metadata import PhotoMetadata, read_metadata
from journal.models import ImportFailure, Photo, Post, Trip
from journal.names import printable, shown_path
from journal.renditions import make_web_renditions, set_decode_lock
from journal.services import tracks
from journal.services.housekeeping import writer_guard

logger = logging.getLogger(__name__)

Status = Literal["imported", "duplicate", "failed", "skipped"]

IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .jfif .png .webp .heic .heif .hif .avif .tif .tiff .dng .mpo".split()
)
TRACK_EXTENSIONS = frozenset({".gpx"})
_STORED_EXT = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "TIFF": "tif", "HEIF": "heic"}


@dataclass(frozen=True)
class Candidate:
    """A file found for import, with the name shown to the user."""

    path: Path
    name: str
    kind: Literal["image", "track", "unknown"]


@dataclass(frozen=True)
class Prepared:
    """What a worker made of one file: stored files and metadata, no rows yet."""

    name: str
    sha256: str
    bytes: int
    stored_path: str
    meta: PhotoMetadata
    web_width: int
    web_height: int


@dataclass(frozen=True)
class FileResult:
    """The outcome for one file."""

    name: str
    status: Status
    photo_id: int | None = None
    error: str | None = None
    sha256: str | None = None
    #: For a GPX file: the recorded track, and what placing photos on it did.
    track_id: int | None = None
    note: str | None = None


@dataclass
class ImportSummary:
    """Counts and per-file results of one import run."""

    results: list[FileResult] = field(default_factory=list)

    def count(self, status: Status) -> int:
        """How many files ended with this status."""
        return sum(1 for r in self.results if r.status == status)

    def line(self) -> str:
        """The summary line printed by `journal import`."""
        return (
            f"imported {self.count('imported')}, duplicates {self.count('duplicate')}, "
            f"failed {self.count('failed')}"
        )


@dataclass(frozen=True)
class ImportOptions:
    """Where imported photos go: which user, trip, and whether they share one post."""

    user_id: int
    trip_title: str | None = None
    trip_id: int | None = None
    caption: str = ""
    one_post: bool = False
    post_id: int | None = None


# --- finding files -----------------------------------------------------------------------


def sniff(path: Path) -> Literal["image", "track", "unknown"]:
    """Recognise a file by its first bytes, not its name."""
    try:
        with path.open("rb") as handle:
            head = handle.read(512)
    except OSError:
        return "unknown"
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*")):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "image"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<?xml") or text.startswith(b"<gpx"):
        return "track" if b"<gpx" in _read_prefix(path, 4096).lower() else "unknown"
    return "unknown"


_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}


def _read_prefix(path: Path, size: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def discover(paths: Iterable[Path], *, exclude: Iterable[Path] = ()) -> Iterator[Candidate]:
    """Walk files and folders (recursively), skipping hidden entries and `exclude`; in a stable order.

    The data home's own uploads/ and exports/ go in `exclude`, so `journal import .` run in
    the data home does not import the journal's renditions as new photos.
    """
    skip = {p.resolve() for p in exclude}
    for root in paths:
        if root.is_dir():
            for folder, dirs, files in os.walk(root):
                dirs[:] = sorted(
                    d for d in dirs if not d.startswith(".") and (Path(folder) / d).resolve() not in skip
                )
                for name in sorted(files):
                    if not name.startswith("."):
                        path = Path(folder) / name
                        yield Candidate(path, shown_path(path), sniff(path))
        elif root.exists():
            yield Candidate(root, shown_path(root), sniff(root))
        else:
            yield Candidate(root, shown_path(root), "unknown")


def classify(candidate: Candidate) -> FileResult | None:
    """A final result for files that will not be imported, or None for ones to import."""
    path, suffix = candidate.path, candidate.path.suffix.lower()
    if not path.exists():
        return FileResult(candidate.name, "failed", error="no such file")
    if candidate.kind == "image":
        return None
    if candidate.kind == "track":
        return None
    if suffix in IMAGE_EXTENSIONS or suffix in TRACK_EXTENSIONS:
        size = path.stat().st_size
        reason = (
            "empty file"
            if size == 0
            else f"not a readable {suffix[1:].upper()} file (content does not match)"
        )
        return FileResult(candidate.name, "failed", error=reason)
    return FileResult(candidate.name, "skipped", error="not a photo or track")


# --- the worker side ---------------------------------------------------------------------


def prepare(
    settings: Settings, user_id: int, path: Path, name: str, *, force: bool = False
) -> Prepared | FileResult:
    """Hash, read and store one file with its renditions; runs in a worker process.

    Without `force`, a file whose original is stored already comes back as a "duplicate"
    hint that the parent checks against the database.
    """
    try:
        return _prepare(settings, user_id, path, name, force)
    except JournalError as exc:
        return FileResult(name, "failed", error=str(exc))
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        # Pillow and the EXIF readers raise these for damaged files: the batch goes on.
        logger.warning("cannot import %s: %s", name, exc)
        return FileResult(name, "failed", error=f"unreadable file: {exc}")


def _prepare(settings: Settings, user_id: int, path: Path, name: str, force: bool) -> Prepared | FileResult:
    sha = storage.sha256_file(path)
    root = settings.uploads_dir
    if not force and storage.original_exists(root, user_id, sha):
        # The original is written last, so its presence means complete files.
        return FileResult(name, "duplicate", sha256=sha)
    meta = read_metadata(path, max_pixels=settings.max_pixels)
    rel = storage.original_relpath(user_id, sha, _stored_extension(meta, path))
    original = root / rel
    result = make_web_renditions(
        path,
        web_path=root / storage.rendition_relpath(user_id, sha, "web"),
        thumb_path=root / storage.rendition_relpath(user_id, sha, "thumb"),
        web_size=settings.web_size,
        thumb_size=settings.thumb_size,
        quality=settings.jpeg_quality,
        orientation=meta.orientation,
        max_pixels=settings.max_pixels,
        staging=settings.staging_dir,
        draft_tolerance=settings.web_size_tolerance,
    )
    if not (original.is_file() and original.samefile(path)):  # re-indexing a stored original: no copy
        storage.copy_atomic(path, original, staging=settings.staging_dir)
    return Prepared(name, sha, path.stat().st_size, rel, meta, result.web_width, result.web_height)


#: HEIF images with more pixels than this are prepared one at a time (see Importer._prepare_all).
BIG_HEIF_PIXELS = 24_000_000


def is_big_heif(path: Path) -> bool:
    """True for a HEIF/AVIF file whose primary image has more than BIG_HEIF_PIXELS pixels."""
    try:
        head = _read_prefix(path, 16)
        if not (head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS):
            return False
        meta = read_metadata(path, lookup_timezone=False)
    except (JournalError, OSError, ValueError):
        return False  # prepare() reports the problem
    return meta.width * meta.height > BIG_HEIF_PIXELS


def _stored_extension(meta: PhotoMetadata, path: Path) -> str:
    if meta.format in _STORED_EXT:
        if meta.format == "TIFF" and path.suffix.lower() == ".dng":
            return "dng"
        return _STORED_EXT[meta.format]
    if meta.format == "AVIF":
        return "avif"
    raise UnreadableFile(f"unsupported image format {meta.format}")


# --- the parent side ---------------------------------------------------------------------


def get_or_create_trip(session: Session, user_id: int, title: str) -> Trip:
    """The user's trip with that title, created when missing."""
    title = title.strip()
    trip = session.scalar(select(Trip).where(Trip.user_id == user_id, Trip.title == title))
    if trip is None:
        trip = Trip(user_id=user_id, title=title)
        session.add(trip)
        session.flush()
    return trip


def ensure_trip(factory: sessionmaker[Session], user_id: int, title: str) -> int:
    """The id of the user's trip with that title, created in its own transaction when missing."""
    try:
        with factory() as session, session.begin():
            return get_or_create_trip(session, user_id, title).id
    except IntegrityError:
        # A parallel import or upload created it a moment ago.
        with factory() as session:
            return get_or_create_trip(session, user_id, title).id


def record(session: Session, prepared: Prepared, options: ImportOptions) -> Photo:
    """Insert the photo row (and its post) for prepared files; flushes, never commits."""
    meta = prepared.meta
    post = session.get(Post, options.post_id) if options.post_id else None
    if post is None:
        post = Post(user_id=options.user_id, trip_id=options.trip_id, caption=options.caption)
        session.add(post)
        session.flush()
    place = places.place_for(meta.lat, meta.lon) if meta.lat is not None and meta.lon is not None else None
    photo = Photo(
        user_id=options.user_id,
        post_id=post.id,
        position=len(post.photos),
        sha256=prepared.sha256,
        original_name=printable(prepared.name)[-1024:],
        stored_path=prepared.stored_path,
        bytes=prepared.bytes,
        format=meta.format,
        width=meta.width,
        height=meta.height,
        orientation=meta.orientation,
        web_width=prepared.web_width,
        web_height=prepared.web_height,
        make=meta.make,
        model=meta.model,
        lens=meta.lens,
        taken_at=meta.taken_at,
        utc_offset_min=meta.effective_offset_minutes,
        offset_source=meta.offset_source,
        taken_at_utc=meta.taken_at_utc,
        lat=meta.lat,
        lon=meta.lon,
        alt=meta.alt,
        location_source=meta.location_source,
        place=place.name if place else None,
        country=place.country if place else None,
        country_code=place.country_code if place else None,
        timezone=meta.timezone,
    )
    session.add(photo)
    session.flush()
    return photo


def record_failure(session: Session, user_id: int, result: FileResult) -> None:
    """Keep a failed file's name and reason so the user can see it later."""
    session.add(
        ImportFailure(
            user_id=user_id,
            source_name=result.name[-1024:],
            reason=(result.error or "")[:1024],
            sha256=result.sha256,
        )
    )
    session.flush()


class Importer:
    """Imports files for one user: workers prepare files, this process writes rows."""

    def __init__(self, settings: Settings, factory: sessionmaker[Session], options: ImportOptions) -> None:
        self.settings = settings
        self.factory = factory
        self.options = options
        self._todo: dict[str, Candidate] = {}
        self._has_tracks: bool | None = None

    def run(
        self, candidates: Iterable[Candidate], on_result: Callable[[FileResult], None] | None = None
    ) -> ImportSummary:
        """Import every candidate; one bad file never stops the batch."""
        summary = ImportSummary()
        todo: list[Candidate] = []
        for candidate in candidates:
            early = classify(candidate)
            if early is None:
                todo.append(candidate)
            else:
                self._finish(summary, early, on_result)
        if not todo:
            return summary
        if self.options.trip_title and self.options.trip_id is None:
            trip_id = ensure_trip(self.factory, self.options.user_id, self.options.trip_title)
            self.options = replace(self.options, trip_id=trip_id)
        # GPX tracks first, so the photos of the same run are placed on them as they are recorded.
        gpx_files = [c for c in todo if c.kind == "track"]
        todo = [c for c in todo if c.kind != "track"]
        self._todo = {c.name: c for c in todo}
        with writer_guard(self.settings, self.factory):
            for candidate in gpx_files:
                self._finish(summary, self._import_track(candidate), on_result)
            for outcome in self._prepare_all(todo):
                self._finish(summary, self._store(outcome), on_result)
        return summary

    def _prepare_all(self, todo: list[Candidate]) -> Iterator[Prepared | FileResult]:
        big = [c for c in todo if is_big_heif(c.path)]
        small = [c for c in todo if c not in big]
        yield from self._prepare_in_pool(small)
        # Big HEIFs decode at full size (~230 MB inside libheif for 48 MP) and their decodes take
        # turns anyway: one at a time in this process, after the workers are gone, keeps an
        # import under ~500 MB at the same speed.
        for c in big:
            yield prepare(self.settings, self.options.user_id, c.path, c.name)

    def _prepare_in_pool(self, todo: list[Candidate]) -> Iterator[Prepared | FileResult]:
        workers = min(self.settings.workers, len(todo))
        if workers <= 1:
            for c in todo:
                yield prepare(self.settings, self.options.user_id, c.path, c.name)
            return
        context = multiprocessing.get_context("fork")
        # Big full-size decodes (48 MP HEIC: ~230 MB inside libheif) take turns across workers,
        # so an import stays under ~400 MB; JPEGs decode at reduced scale and never wait.
        lock = context.Lock()
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=set_decode_lock, initargs=(lock,)
        ) as pool:
            pending: set[Future[Prepared | FileResult]] = set()
            queue = iter(todo)
            for c in queue:
                pending.add(pool.submit(prepare, self.settings, self.options.user_id, c.path, c.name))
                if len(pending) >= workers * 2:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in done)
            for future in pending:
                yield future.result()

    def _store(self, outcome: Prepared | FileResult) -> FileResult:
        if isinstance(outcome, FileResult) and outcome.status == "duplicate" and outcome.sha256:
            if self._stored_id(outcome.sha256) is not None:
                return outcome
            # Files with no row (left by a crash, not yet swept): import them for real.
            c = self._todo[outcome.name]
            outcome = prepare(self.settings, self.options.user_id, c.path, c.name, force=True)
        if isinstance(outcome, FileResult):
            return outcome
        try:
            with self.factory() as session, session.begin():
                photo = record(session, outcome, self.options)
                photo_id, post_id = photo.id, photo.post_id
                self._place_by_track(session, photo)
        except IntegrityError as exc:
            if self._stored_id(outcome.sha256) is not None:
                # Another import or upload stored the same content at the same moment.
                return FileResult(outcome.name, "duplicate", sha256=outcome.sha256)
            logger.error("cannot record %s: %s", outcome.name, exc)
            return FileResult(
                outcome.name, "failed", error="could not be saved; try again", sha256=outcome.sha256
            )
        if self.options.one_post and self.options.post_id is None:
            self.options = replace(self.options, post_id=post_id)
        return FileResult(outcome.name, "imported", photo_id=photo_id, sha256=outcome.sha256)

    def _import_track(self, candidate: Candidate) -> FileResult:
        """Store and record a GPX track, then place the user's photos without a position on it."""
        done = tracks.import_track(
            self.settings,
            self.factory,
            self.options.user_id,
            candidate.path,
            original_name=candidate.name,
            trip_id=self.options.trip_id,
        )
        self._has_tracks = None  # ask again: this may be the user's first track
        return FileResult(
            candidate.name,
            done.status,
            error=done.error,
            sha256=done.sha256,
            track_id=done.track_id,
            note=done.note,
        )

    def _place_by_track(self, session: Session, photo: Photo) -> None:
        """A photo without a position imported after a track: place it on the track by its time."""
        if photo.lat is not None:
            return
        if self._has_tracks is None:
            self._has_tracks = tracks.user_has_tracks(session, self.options.user_id)
        if self._has_tracks:
            tracks.place_new_photo(session, self.settings, photo)

    def _stored_id(self, sha256: str) -> int | None:
        with self.factory() as session:
            return session.scalar(
                select(Photo.id).where(Photo.user_id == self.options.user_id, Photo.sha256 == sha256)
            )

    def _finish(
        self, summary: ImportSummary, result: FileResult, on_result: Callable[[FileResult], None] | None
    ) -> None:
        # Names and messages may carry a path's undecodable bytes (os.fsdecode's surrogates), which
        # no database or terminal takes: they are kept escaped (names.printable).
        result = replace(result, name=printable(result.name), error=result.error and printable(result.error))
        if result.status == "failed":
            with self.factory() as session, session.begin():
                record_failure(session, self.options.user_id, result)
        summary.results.append(result)
        if on_result is not None:
            on_result(result)
