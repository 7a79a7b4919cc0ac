"""Importing photos: find files, store originals and renditions, record rows.

The heavy part (hashing, metadata, renditions) runs in worker processes and only writes
files; the parent process writes rows, one short transaction per photo. Files go in
before rows, so a crash leaves at worst an orphan file that housekeeping removes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from journal import geotag, places, storage
from journal.config import Settings
from journal.errors import JournalError, UnreadableFile
from journal.geotag import PlacePolicy
from journal.media.metadata import PhotoMetadata, read_metadata
from journal.media.renditions import RenditionResult, make_web_renditions, set_decode_lock
from journal.models import ImportFailure, Photo, Post, Track, Trip
from journal.names import printable, shown_path
from journal.services import geotagging, quota, tracks
from journal.services.housekeeping import run_as_writer

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
    #: For a photo without a position of its own, when the user has tracks: where the tracks put it
    #: ("track" or "track-nearest"), or why they could not (in words).
    position_source: str | None = None
    not_placed: str | None = None
    #: For a GPX file: how many photos already in the journal it placed.
    placed: int = 0


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

    def placement_line(self) -> str | None:
        """What the tracks did for the photos of this run (None when no track was involved)."""
        placed = sum(1 for r in self.results if r.position_source is not None)
        missed = Counter(r.not_placed for r in self.results if r.not_placed)
        earlier = sum(r.placed for r in self.results)
        if not (placed or missed or earlier):
            return None
        line = f"placed {placed} photo{'' if placed == 1 else 's'} from tracks"
        if missed:
            reasons = ", ".join(f"{n} {why}" for why, n in missed.most_common())
            line += f"; {sum(missed.values())} not placed: {reasons}"
        if earlier:
            line += f"; the tracks also placed {earlier} photo{'' if earlier == 1 else 's'} imported before"
        return line


@dataclass(frozen=True)
class ImportOptions:
    """Where imported photos go: which user, trip, and whether they share one post."""

    user_id: int
    trip_title: str | None = None
    trip_id: int | None = None
    caption: str = ""
    one_post: bool = False
    post_id: int | None = None
    #: The rule for placing photos on tracks in this run (kept on the trip when there is one).
    policy: PlacePolicy | None = None


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
    except Exception as exc:  # a bug met by one file is that file's failure: logged with its traceback
        logger.exception("unexpected failure importing %s", name)
        return FileResult(name, "failed", error=internal_error(exc))


def internal_error(exc: BaseException) -> str:
    """The `error` of a file that met an unexpected exception (as `journal inspect` words it)."""
    return f"internal error: {type(exc).__name__}: {exc}"


def write_renditions(
    settings: Settings, src: Path, user_id: int, sha256: str, orientation: int | None
) -> RenditionResult:
    """The web image and thumbnail of an original, at their stored paths, as the settings say."""
    root = settings.uploads_dir
    return make_web_renditions(
        src,
        web_path=root / storage.rendition_relpath(user_id, sha256, "web"),
        thumb_path=root / storage.rendition_relpath(user_id, sha256, "thumb"),
        web_size=settings.web_size,
        thumb_size=settings.thumb_size,
        quality=settings.jpeg_quality,
        orientation=orientation,
        max_pixels=settings.max_pixels,
        staging=settings.staging_dir,
        draft_tolerance=settings.web_size_tolerance,
    )


def _prepare(settings: Settings, user_id: int, path: Path, name: str, force: bool) -> Prepared | FileResult:
    sha = storage.sha256_file(path)
    root = settings.uploads_dir
    if not force and storage.original_exists(root, user_id, sha):
        # The original is written last, so its presence means complete files.
        return FileResult(name, "duplicate", sha256=sha)
    meta = read_metadata(path, max_pixels=settings.max_pixels)
    rel = storage.original_relpath(user_id, sha, _stored_extension(meta, path))
    original = root / rel
    result = write_renditions(settings, path, user_id, sha, meta.orientation)
    if not (original.is_file() and original.samefile(path)):  # re-indexing a stored original: no copy
        storage.copy_atomic(path, original, staging=settings.staging_dir)
    return Prepared(name, sha, path.stat().st_size, rel, meta, result.web_width, result.web_height)


#: HEIF images with more pixels than this are prepared one at a time (see _Importer._prepare_all).
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


def _outcome(future: Future[Prepared | FileResult], candidate: Candidate) -> Prepared | FileResult:
    """A worker's answer; a worker that died or could not send it back fails its file alone."""
    try:
        return future.result()
    except Exception as exc:  # BrokenProcessPool, an unpicklable result: reported with the file
        logger.error("worker failed on %s: %s: %s", candidate.name, type(exc).__name__, exc)
        return FileResult(candidate.name, "failed", error=internal_error(exc))


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


def ensure_trip(session: Session, user_id: int, title: str) -> int:
    """The id of the user's trip with that title, created when missing; flushes.

    IntegrityError when a parallel import or upload creates it at the same moment: the caller
    asks again in a new transaction, which finds that one.
    """
    return get_or_create_trip(session, user_id, title).id


def run_ensure_trip(factory: sessionmaker[Session], user_id: int, title: str) -> int:
    """The user's trip with that title, created in a transaction of its own when missing (for jobs
    that need the trip before their files: an import, an upload batch)."""
    try:
        with factory() as session, session.begin():
            return ensure_trip(session, user_id, title)
    except IntegrityError:  # a parallel import or upload created it a moment ago
        with factory() as session:
            return ensure_trip(session, user_id, title)


def keep_trip_policy(session: Session, user_id: int, trip_id: int, policy: PlacePolicy) -> None:
    """Keep the run's placing rule on its trip, so later clock fixes place its photos the same way."""
    trip = session.get(Trip, trip_id)
    if trip is not None and trip.user_id == user_id:
        geotagging.set_trip_policy(trip, policy)


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


def run_import(
    settings: Settings,
    factory: sessionmaker[Session],
    options: ImportOptions,
    candidates: Iterable[Candidate],
    on_result: Callable[[FileResult], None] | None = None,
) -> ImportSummary:
    """Import every candidate for options.user_id; one bad file never stops the batch.

    A job: each file's rows are committed on their own, so a long run holds no transaction open
    and a crash keeps what was done (the next writer sweeps the rest, see housekeeping).
    """
    return _Importer(settings, factory, options).run(candidates, on_result)


class _Importer:
    """Imports files for one user: workers prepare files, this process writes rows."""

    def __init__(self, settings: Settings, factory: sessionmaker[Session], options: ImportOptions) -> None:
        self.settings = settings
        self.factory = factory
        self.options = options
        self._todo: dict[str, Candidate] = {}
        self._has_tracks: bool | None = None
        #: The account's storage as this run goes (None without a quota), and bytes held for files in flight.
        self._usage: quota.Usage | None = None
        self._reserved: dict[str, int] = {}

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
            self.options = replace(
                self.options,
                trip_id=run_ensure_trip(self.factory, self.options.user_id, self.options.trip_title),
            )
        if self.options.policy is not None and self.options.trip_id is not None:
            with self.factory() as session, session.begin():
                keep_trip_policy(session, self.options.user_id, self.options.trip_id, self.options.policy)
        # GPX tracks first, so the photos of the same run are placed on them as they are recorded.
        gpx_files = [c for c in todo if c.kind == "track"]
        todo = [c for c in todo if c.kind != "track"]
        self._todo = {c.name: c for c in todo}
        if self.settings.quota_bytes:
            with self.factory() as session:
                self._usage = quota.usage(session, self.settings, self.options.user_id)
        with run_as_writer(self.settings, self.factory):
            for candidate in gpx_files:
                result = self._admit(candidate) or self._import_track(candidate)
                self._finish(summary, self._settle(result), on_result)
            for outcome in self._prepare_all(todo):
                self._finish(summary, self._settle(self._store(outcome)), on_result)
        return summary

    def _admit(self, candidate: Candidate) -> FileResult | None:
        """None when the file may be written; a failed result when the quota has no room for it.

        A file whose content the account holds already writes nothing, so it is let through
        (to come back as a duplicate) even when the quota is reached.
        """
        if self._usage is None:
            return None
        try:
            size = candidate.path.stat().st_size
        except OSError:
            return None  # prepare() reports why the file cannot be read
        if self._usage.fits(size):
            self._usage = self._usage.plus(originals=size)
            self._reserved[candidate.name] = size
            return None
        if self._holds_already(candidate):
            return None
        logger.info("quota: %s refused for user %d", candidate.name, self.options.user_id)
        return FileResult(candidate.name, "failed", error=self._usage.message())

    def _holds_already(self, candidate: Candidate) -> bool:
        """Whether the account stores this file's content already (as a photo or a track)."""
        sha = storage.sha256_file(candidate.path)
        if candidate.kind != "track":
            return self._stored_id(sha) is not None
        with self.factory() as session:
            query = select(Track.id).where(Track.user_id == self.options.user_id, Track.sha256 == sha)
            return session.scalar(query) is not None

    def _settle(self, result: FileResult) -> FileResult:
        """Quota book-keeping once a file is done: give back what nothing used, add the renditions made."""
        if self._usage is None:
            return result
        held = self._reserved.pop(result.name, 0)
        if result.status != "imported":
            self._usage = self._usage.plus(originals=-held)
        elif result.sha256 and result.track_id is None:
            made = quota.rendition_bytes(self.settings, self.options.user_id, result.sha256)
            self._usage = self._usage.plus(renditions=made)
        return result

    def _prepare_all(self, todo: list[Candidate]) -> Iterator[Prepared | FileResult]:
        big = [c for c in todo if is_big_heif(c.path)]
        small = [c for c in todo if c not in big]
        yield from self._prepare_in_pool(small)
        # Big HEIFs decode at full size (~230 MB inside libheif for 48 MP) and their decodes take
        # turns anyway: one at a time in this process, after the workers are gone, keeps an
        # import under ~500 MB at the same speed.
        for c in big:
            yield self._admit(c) or prepare(self.settings, self.options.user_id, c.path, c.name)

    def _prepare_in_pool(self, todo: list[Candidate]) -> Iterator[Prepared | FileResult]:
        workers = min(self.settings.workers, len(todo))
        if workers <= 1:
            for c in todo:
                yield self._admit(c) or prepare(self.settings, self.options.user_id, c.path, c.name)
            return
        context = multiprocessing.get_context("fork")
        # Big full-size decodes (48 MP HEIC: ~230 MB inside libheif) take turns across workers,
        # so an import stays under ~400 MB; JPEGs decode at reduced scale and never wait.
        lock = context.Lock()
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=set_decode_lock, initargs=(lock,)
        ) as pool:
            pending: dict[Future[Prepared | FileResult], Candidate] = {}
            for c in todo:
                refused = self._admit(c)  # before the worker writes anything
                if refused is not None:
                    yield refused
                    continue
                pending[pool.submit(prepare, self.settings, self.options.user_id, c.path, c.name)] = c
                if len(pending) >= workers * 2:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (_outcome(f, pending.pop(f)) for f in done)
            for future, c in pending.items():
                yield _outcome(future, c)

    def _store(self, outcome: Prepared | FileResult) -> FileResult:
        try:
            return self._store_one(outcome)
        except Exception as exc:  # a bug met while recording one file fails that file, not the batch
            logger.exception("unexpected failure recording %s", outcome.name)
            return FileResult(outcome.name, "failed", error=internal_error(exc), sha256=outcome.sha256)

    def _store_one(self, outcome: Prepared | FileResult) -> FileResult:
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
                source, not_placed = self._place_by_track(session, photo)
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
        return FileResult(
            outcome.name,
            "imported",
            photo_id=photo_id,
            sha256=outcome.sha256,
            position_source=source,
            not_placed=not_placed,
        )

    def _import_track(self, candidate: Candidate) -> FileResult:
        """Store and record a GPX track, then place the user's photos without a position on it."""
        done = tracks.run_import_track(
            self.settings,
            self.factory,
            self.options.user_id,
            candidate.path,
            original_name=candidate.name,
            trip_id=self.options.trip_id,
            policy=self.options.policy,
        )
        self._has_tracks = None  # ask again: this may be the user's first track
        return FileResult(
            candidate.name,
            done.status,
            error=done.error,
            sha256=done.sha256,
            track_id=done.track_id,
            note=done.note,
            placed=done.placed,
        )

    def _place_by_track(self, session: Session, photo: Photo) -> tuple[str | None, str | None]:
        """A photo without a position: place it on the user's tracks by its time; (source, why not)."""
        if photo.lat is not None:
            return None, None
        if self._has_tracks is None:
            self._has_tracks = geotagging.user_has_tracks(session, self.options.user_id)
        if not self._has_tracks:
            return None, None
        outcome, miss, rule = geotagging.place_new_photo(
            session, self.settings, photo, policy=self.options.policy
        )
        if outcome == "placed":
            return photo.location_source, None
        return None, None if miss is None else geotag.describe_miss(miss.reason, rule)

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
