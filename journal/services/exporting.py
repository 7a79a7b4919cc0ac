"""Exporting posts as bundles: choose the posts, make privacy-safe files, batch them, write, record.

The run has three steps, like the import:

1. One short read: the posts to export and their photos, copied into plain values.
2. Files are made in worker processes (renditions, lossless re-saves) into a work folder; JPEG
   originals bound for a zip are not made here but scrubbed straight into the zip while it is
   written, so the `original` preset costs one read and one write per byte.
3. Batches are planned from the exact (or bounded) file sizes, and each batch is written
   atomically (temp file + rename) and then recorded in its own transaction. A crash leaves
   finished, recorded bundles and at worst one complete file with no record; never a partial
   file, never a record of a file that is not there. The bundles themselves (planning the
   batches, writing a zip or a message) are journal/publish/zipbundle.py and emailbundle.py.

Decisions:

- "Not exported yet" is per platform: a post counts as exported for a platform once a bundle
  made for that platform holds it (so the same posts can go to Instagram and then Mastodon).
- Posts without photos are left out.
- How each file is made (lossless scrub, lossless re-save, re-encode) is in journal/publish/exportfiles.py.
  Every file carries only ExifKeep's fields: time, camera make/model, orientation, and a
  position only in `exact` mode outside every privacy zone.
- A post's location and place come from its first located photo; inside a privacy zone it has
  no location and its place is the country only, whatever the mode.
- A photo whose file cannot be made is left out and reported; the rest of the export goes on.
- Leaks (journal/publish/leaks.py): every file is read again, from its bytes, with exifread and Pillow.
  A made file (or a planned scrub) that carries what its mode forbids is left out like a damaged
  one: that is a single odd photo, and the rest of the export is still good. The bundle writer
  reads the bytes once more as they go into the zip or the message; a leak found there means the
  bytes written differ from the ones checked (a bug, not a photo), so the whole bundle fails:
  nothing is renamed into place or recorded, and the run stops with PrivacyLeak. privacy.json
  (and index.html's privacy section) is built from that last reading; an e-mail bundle attaches
  it and points to it in the body.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import math
import os
import re
import secrets
import tempfile
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal, get_args

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session, sessionmaker

from journal import clock, storage
from journal.config import Settings
from journal.errors import Conflict, InvalidInput, NotFound, UnreadableFile
from journal.geo import is_valid_position
from journal.models import Export, ExportPost, OutgoingMessage, Photo, Post, Track, Trip, User
from journal.publish import emailbundle, leaks, mail, scrub, zipbundle
from journal.publish.exportfiles import FILE_ERRORS, FileJob, MadeFile, Workers, file_kind, one_line
from journal.publish.location import (
    LocationMode,
    PrivacyZone,
    check_location_mode,
    exif_position,
    in_any_zone,
    line_in_any_zone,
    public_location,
    public_place,
)
from journal.publish.platforms import Platform, cut_caption, get_platform, part_suffix, split_post
from journal.publish.scrub import ExifKeep
from journal.publish.streams import ByteSink
from journal.services import geotagging, quota, recipients
from journal.services.housekeeping import run_as_writer
from journal.services.owned import owned
from journal.services.zones import zones_for

logger = logging.getLogger(__name__)

ExportFormat = Literal["zip", "eml"]
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)
#: What `--format eml` uses when no batch size is given: under the 25 MB most mail servers take.
DEFAULT_EML_MAX_BYTES = 20_000_000
DEFAULT_SENDER = "journal@localhost"
#: Rows copied per query while reading the posts to export.
_READ_CHUNK = 500


# --- what to export ------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRequest:
    """What one export run should do; checked on creation."""

    user_id: int
    platform: str = "original"
    location: LocationMode = "exact"
    format: ExportFormat = "zip"
    trip_id: int | None = None
    include_exported: bool = False
    #: Largest bundle in bytes (1 MB = 1,000,000); None: no limit for zips, DEFAULT_EML_MAX_BYTES for e-mail.
    max_batch_bytes: int | None = None
    out_dir: Path | None = None
    mail_from: str = DEFAULT_SENDER
    mail_to: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "platform", get_platform(self.platform).name)
        check_location_mode(self.location)
        if self.format not in EXPORT_FORMATS:
            raise InvalidInput(f"unknown format {self.format!r}; choose one of: {', '.join(EXPORT_FORMATS)}")
        if self.max_batch_bytes is not None and self.max_batch_bytes <= 0:
            raise InvalidInput("the batch size must be positive")
        if self.format == "eml":
            mail.check_address(self.mail_from)
            if self.mail_to:
                object.__setattr__(self, "mail_to", mail.parse_recipient(self.mail_to))

    @property
    def batch_limit(self) -> int | None:
        """The batch size that applies (e-mail has a default one)."""
        if self.max_batch_bytes is None and self.format == "eml":
            return DEFAULT_EML_MAX_BYTES
        return self.max_batch_bytes


def megabytes(value: float | None) -> int | None:
    """--max-batch-mb as bytes (1 MB = 1,000,000 bytes); None stays None."""
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        raise InvalidInput("the batch size must be a positive number of megabytes")
    return max(1, round(value * 1_000_000))


@dataclass(frozen=True)
class PhotoSource:
    """What an export needs of one photo, copied out of the session."""

    id: int
    post_id: int
    path: Path
    format: str
    width: int
    height: int
    orientation: int | None
    make: str | None
    model: str | None
    taken_at: datetime | None
    utc_offset_min: int | None
    taken_at_utc: datetime | None
    lat: float | None
    lon: float | None
    alt: float | None
    place: str | None
    country: str | None
    thumb: Path | None = None  # the library's thumbnail (no metadata), when it is on disk
    #: Where the position came from (camera, track, track-nearest, manual), or None.
    position_source: str | None = None
    clock_wrong: bool = False  # the capture time cannot be right (Photo.clock_wrong)
    #: The library's web image and its size as recorded at import (not checked here: the worker
    #: falls back to the original when the file is missing or not that size).
    web: Path | None = None
    web_size: tuple[int, int] | None = None

    @property
    def position(self) -> tuple[float, float] | None:
        """(lat, lon) when the photo has a usable position."""
        if self.lat is None or self.lon is None or not is_valid_position(self.lat, self.lon):
            return None
        return (self.lat, self.lon)


@dataclass(frozen=True)
class PostSource:
    """A post to export: its caption and photos in order."""

    id: int
    caption: str
    photos: tuple[PhotoSource, ...]


def find_trip(session: Session, user_id: int, title: str) -> Trip:
    """The user's trip with that title; NotFound otherwise (an export never creates a trip)."""
    trip = session.scalar(select(Trip).where(Trip.user_id == user_id, Trip.title == " ".join(title.split())))
    if trip is None:
        raise NotFound(f"no trip called {title!r}")
    return trip


def check_trip(session: Session, user_id: int, trip_id: int) -> Trip:
    """The user's trip with that id; NotFound for a missing id or somebody else's trip."""
    return owned(session, Trip, trip_id, user_id, "trip")


def check_request(session: Session, settings: Settings, request: ExportRequest) -> User:
    """The request's user, once its trip, recipient and quota allow the export; else an error."""
    user = session.get(User, request.user_id)
    if user is None:
        raise NotFound("no such user")
    if request.trip_id is not None:
        check_trip(session, request.user_id, request.trip_id)
    if request.format == "eml" and request.mail_to:
        recipients.check_recipient(settings, user, request.mail_to)
    if settings.quota_bytes:
        usage = quota.usage(session, settings, request.user_id)
        if usage.room == 0:
            raise usage.refuse()
    return user


def exported_post_ids(platform: str, user_id: int) -> Select[int]:
    """A subquery of the user's post ids that a bundle for `platform` already holds."""
    return (
        select(ExportPost.post_id)
        .join(Export, Export.id == ExportPost.export_id)
        .where(Export.user_id == user_id, Export.platform == platform)
    )


def select_posts(session: Session, settings: Settings, request: ExportRequest) -> list[PostSource]:
    """The posts the request asks for, with their photos, oldest first (by their first photo's time)."""
    stmt = select(Post.id, Post.caption).where(Post.user_id == request.user_id)
    if request.trip_id is not None:
        stmt = stmt.where(Post.trip_id == request.trip_id)
    if not request.include_exported:
        stmt = stmt.where(Post.id.not_in(exported_post_ids(request.platform, request.user_id)))
    captions: dict[int, str] = {post_id: caption for post_id, caption in session.execute(stmt)}
    photos = _photos_of(session, settings, request.user_id, sorted(captions))
    posts = [PostSource(pid, captions[pid], tuple(photos[pid])) for pid in photos if photos[pid]]
    return sorted(posts, key=_post_order)


def _photos_of(
    session: Session, settings: Settings, user_id: int, post_ids: list[int]
) -> dict[int, list[PhotoSource]]:
    """Photos of the given posts in post order, read in chunks (rows are not kept in the session)."""
    result: dict[int, list[PhotoSource]] = {}
    for start in range(0, len(post_ids), _READ_CHUNK):
        chunk = post_ids[start : start + _READ_CHUNK]
        stmt = (
            select(Photo)
            .where(Photo.user_id == user_id, Photo.post_id.in_(chunk))
            .order_by(Photo.post_id, Photo.position, Photo.id)
        )
        for photo in session.scalars(stmt):
            assert photo.post_id is not None
            result.setdefault(photo.post_id, []).append(_photo_source(settings, photo))
    return result


def _photo_source(settings: Settings, photo: Photo) -> PhotoSource:
    """Copy a row into a PhotoSource."""
    assert photo.post_id is not None
    return PhotoSource(
        id=photo.id,
        post_id=photo.post_id,
        path=settings.uploads_dir / photo.stored_path,
        format=photo.format,
        width=photo.width,
        height=photo.height,
        orientation=photo.orientation,
        make=photo.make,
        model=photo.model,
        taken_at=photo.taken_at,
        utc_offset_min=photo.utc_offset_min,
        taken_at_utc=photo.taken_at_utc,
        lat=photo.lat,
        lon=photo.lon,
        alt=photo.alt,
        place=photo.place,
        country=photo.country,
        thumb=_thumb_of(settings, photo),
        position_source=geotagging.position_source(photo.location_source),
        clock_wrong=photo.clock_wrong,
        web=_web_of(settings, photo),
        web_size=(photo.web_width, photo.web_height) if photo.web_width and photo.web_height else None,
    )


def _web_of(settings: Settings, photo: Photo) -> Path | None:
    """Where the photo's web image is, when the row records its size (not checked for existence here)."""
    if photo.web_width <= 0 or photo.web_height <= 0:
        return None
    return settings.uploads_dir / storage.rendition_relpath(photo.user_id, photo.sha256, "web")


def _thumb_of(settings: Settings, photo: Photo) -> Path | None:
    """The photo's library thumbnail (metadata already stripped), when it is on disk."""
    path = settings.uploads_dir / storage.rendition_relpath(photo.user_id, photo.sha256, "thumb")
    return path if path.is_file() else None


def _post_order(post: PostSource) -> tuple[bool, datetime, int]:
    """Posts by their first photo's UTC time (untimed last, like times that cannot be right), then id."""
    times = [p.taken_at_utc for p in post.photos if p.taken_at_utc is not None and not p.clock_wrong]
    first = min(times) if times else None
    return (first is None, first or datetime.min.replace(tzinfo=UTC), post.id)


# --- tracks: the recorded GPS tracks an exact bundle's map draws ----------------------------


@dataclass(frozen=True)
class TrackSource:
    """A recorded track a batch's map may draw; `withheld` when a privacy zone keeps it out."""

    id: int
    started_at: datetime | None
    ended_at: datetime | None
    #: The track belongs to the trip being exported (drawn in each of its bundles, like the trip's map).
    own: bool
    track: zipbundle.BundleTrack
    withheld: bool = False


@dataclass(frozen=True)
class BatchTracks:
    """The tracks of an export and the time span of each post, to choose each batch's tracks."""

    tracks: tuple[TrackSource, ...] = ()
    spans: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)

    def drawable(self) -> list[zipbundle.BundleTrack]:
        """Every track some batch may draw (for the size estimate)."""
        return [source.track for source in self.tracks if not source.withheld]

    def for_batch(self, posts: Sequence[zipbundle.BundlePost]) -> tuple[list[zipbundle.BundleTrack], int]:
        """The tracks a batch draws (the trip's own, or meeting its photos' times), and how many withheld."""
        spans = [self.spans[post.id] for post in posts if post.id in self.spans]
        first = min((span[0] for span in spans), default=None)
        last = max((span[1] for span in spans), default=None)
        chosen = [source for source in self.tracks if source.own or _overlaps(source, first, last)]
        drawn = [source.track for source in chosen if not source.withheld]
        return drawn, len(chosen) - len(drawn)


def _overlaps(source: TrackSource, first: datetime | None, last: datetime | None) -> bool:
    """True when the track's recorded times meet the span [first, last]."""
    if source.started_at is None or source.ended_at is None or first is None or last is None:
        return False
    return source.started_at <= last and source.ended_at >= first


def photo_spans(posts: Sequence[PostSource]) -> dict[int, tuple[datetime, datetime]]:
    """Each post's first and last photo time (UTC), leaving out times that cannot be right."""
    spans = {}
    for post in posts:
        times = [p.taken_at_utc for p in post.photos if p.taken_at_utc is not None and not p.clock_wrong]
        if times:
            spans[post.id] = (min(times), max(times))
    return spans


def select_tracks(
    session: Session,
    settings: Settings,
    request: ExportRequest,
    posts: Sequence[PostSource],
    zones: Sequence[PrivacyZone],
) -> BatchTracks:
    """The tracks an export's maps may draw: only for `exact` zips (a track is a trail of exact positions).

    A track is the exported trip's own, or overlaps the time span of the exported photos. One that
    touches a privacy zone anywhere (any recorded point of its GPX file, or a drawn piece) is withheld
    whole, and so is one whose file cannot be read to check that.
    """
    if request.location != "exact" or request.format != "zip":
        return BatchTracks()
    spans = photo_spans(posts)
    wanted: list[ColumnElement[bool]] = []
    if spans:
        first = min(span[0] for span in spans.values())
        last = max(span[1] for span in spans.values())
        wanted.append((Track.started_at <= last) & (Track.ended_at >= first))
    if request.trip_id is not None:
        wanted.append(Track.trip_id == request.trip_id)
    if not wanted:
        return BatchTracks(spans=spans)
    stmt = (
        select(Track)
        .where(Track.user_id == request.user_id, or_(*wanted))
        .order_by(Track.started_at, Track.id)
    )
    sources = [_track_source(settings, row, request, zones) for row in session.scalars(stmt)]
    return BatchTracks(tuple(source for source in sources if source.track.lines), spans)


def _track_source(
    settings: Settings, row: Track, request: ExportRequest, zones: Sequence[PrivacyZone]
) -> TrackSource:
    """A track row as its drawn lines, withheld when it touches a privacy zone."""
    lines = []
    for segment in row.geometry:
        line = tuple(
            (float(p[0]), float(p[1]))
            for p in segment
            if len(p) >= 2
            and p[0] is not None
            and p[1] is not None
            and is_valid_position(float(p[0]), float(p[1]))
        )
        if len(line) >= 2:
            lines.append(line)
    withheld = bool(zones) and _touches_zone(settings, row, lines, zones)
    return TrackSource(
        id=row.id,
        started_at=row.started_at,
        ended_at=row.ended_at,
        own=request.trip_id is not None and row.trip_id == request.trip_id,
        track=zipbundle.BundleTrack(tuple(lines)),
        withheld=withheld,
    )


def _touches_zone(
    settings: Settings, row: Track, lines: Sequence[zipbundle.Line], zones: Sequence[PrivacyZone]
) -> bool:
    """True when a drawn line or a recorded point (of the GPX file, not the drawing) is in a zone."""
    if any(line_in_any_zone(line, zones) for line in lines):
        return True
    recorded = geotagging.parsed_track(settings, row)
    if recorded is None:
        logger.warning("track %d left out of the bundle map: its file cannot be checked for zones", row.id)
        return True
    return any(
        in_any_zone(point.lat, point.lon, zones)
        for segment in (*recorded.segments, *recorded.routes)
        for point in segment
    )


# --- privacy: what a post and its files may show --------------------------------------------


@dataclass(frozen=True)
class PostFacts:
    """A post's public fields after the privacy filter."""

    location: dict[str, float] | None
    place: str | None
    taken_at_utc: str | None
    taken_at_local: str | None
    #: Where the given location came from (None when no location is given).
    position_source: str | None = None


def post_facts(post: PostSource, mode: LocationMode, zones: Sequence[PrivacyZone]) -> PostFacts:
    """Location and place from the first located photo (none inside a zone); time from the first timed one."""
    located = next((p for p in post.photos if p.position is not None), None)
    location: dict[str, float] | None = None
    place: str | None = None
    if located is not None and located.position is not None:
        inside = in_any_zone(*located.position, zones)
        public = public_location(*located.position, mode, zones)
        if public is not None:
            location = {"lat": round(public[0], 6), "lon": round(public[1], 6)}
        place = public_place(located.place, located.country, "none" if inside else mode)
    timed_photos = [p for p in post.photos if p.taken_at_utc is not None or p.taken_at is not None]
    # A photo whose clock can be right dates the post; one that cannot only when no other has a time.
    timed = next((p for p in timed_photos if not p.clock_wrong), timed_photos[0] if timed_photos else None)
    return PostFacts(
        location=location,
        place=place,
        taken_at_utc=_utc_text(timed.taken_at_utc) if timed else None,
        taken_at_local=timed.taken_at.isoformat(timespec="seconds") if timed and timed.taken_at else None,
        position_source=located.position_source if location is not None and located is not None else None,
    )


def _utc_text(moment: datetime | None) -> str | None:
    """An aware time as "YYYY-MM-DDTHH:MM:SSZ"."""
    return None if moment is None else clock.strftime(moment.astimezone(UTC), "%Y-%m-%dT%H:%M:%SZ")


def exif_keep(
    photo: PhotoSource, mode: LocationMode, zones: Sequence[PrivacyZone], *, upright: bool
) -> ExifKeep:
    """The EXIF a file of this photo may carry; orientation 1 when its pixels are made upright."""
    position = exif_position(photo.lat, photo.lon, mode, zones) if photo.position else None
    alt = photo.alt if position is not None and photo.alt is not None and math.isfinite(photo.alt) else None
    return ExifKeep(
        orientation=1 if upright else photo.orientation,
        taken_at=photo.taken_at.isoformat(timespec="seconds") if photo.taken_at else None,
        utc_offset=_offset_text(photo.utc_offset_min),
        make=_exif_text(photo.make),
        model=_exif_text(photo.model),
        position=position,
        alt=alt,
    )


def _offset_text(minutes: int | None) -> str | None:
    """-330 -> "-05:30"; None for unknown or impossible offsets."""
    if minutes is None or abs(minutes) >= 24 * 60:
        return None
    hours, mins = divmod(abs(minutes), 60)
    return f"{'-' if minutes < 0 else '+'}{hours:02d}:{mins:02d}"


def _exif_text(value: str | None) -> str | None:
    """Make/model as ExifKeep accepts them: printable, at most 128 characters; else left out."""
    if not value:
        return None
    text = "".join(c for c in value if c.isprintable()).strip()[:128]
    return text or None


# --- planning the files ---------------------------------------------------------------------


def plan_jobs(
    post: PostSource,
    platform: Platform,
    mode: LocationMode,
    zones: Sequence[PrivacyZone],
    *,
    work: Path,
    max_pixels: int,
    streamed: bool = False,
) -> list[FileJob]:
    """One FileJob per photo of the post, numbered from 1; `streamed` scrubs are only planned."""
    jobs = []
    for number, photo in enumerate(post.photos, start=1):
        kind = file_kind(photo.format, platform)
        keep = exif_keep(photo, mode, zones, upright=kind != "scrub")
        rendition = kind == "jpeg" and platform.format != "original"
        jobs.append(
            FileJob(
                photo_id=photo.id,
                post_id=post.id,
                number=number,
                src=photo.path,
                dest=work / f"{photo.id}",
                kind=kind,
                keep=keep,
                platform=platform,
                format=photo.format,
                width=photo.width,
                height=photo.height,
                orientation=photo.orientation,
                max_pixels=max_pixels,
                streamed=streamed and kind == "scrub",
                thumb=photo.thumb,
                gps_allowed=mode == "exact" and keep.position is not None,
                web=photo.web if rendition else None,
                web_size=photo.web_size if rendition else None,
            )
        )
    return jobs


# --- the run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Where a run is: a phase for people, and files done out of total."""

    phase: str
    done: int
    total: int


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class WrittenBundle:
    """A bundle written and recorded."""

    export_id: int
    path: Path
    batch: int
    batches: int
    bytes: int
    sha256: str
    posts: int
    message_id: str | None = None


@dataclass
class ExportOutcome:
    """What a run wrote, and the photos it had to leave out (with the reason)."""

    bundles: list[WrittenBundle] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    posts: int = 0


@dataclass(frozen=True)
class ExportRun:
    """Settings of one run that every batch shares."""

    request: ExportRequest
    platform: Platform
    run_id: str
    created_at: datetime
    title: str
    out_dir: Path
    staging: Path | None
    #: The account's storage before the run (its quota is checked before each bundle is written).
    usage: quota.Usage = quota.Usage(0, 0, 0)

    @property
    def created_text(self) -> str:
        """created_at as in the manifest: "YYYY-MM-DDTHH:MM:SSZ"."""
        return self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def file_name(self, batch: int, batches: int) -> str:
        """The bundle's file name (made by the app from safe parts only)."""
        stamp = self.created_at.strftime("%Y%m%d-%H%M%S")
        ext = "zip" if self.request.format == "zip" else "eml"
        return f"{slug(self.title)}-{self.platform.name}-{stamp}-{self.run_id[:6]}-{batch}of{batches}.{ext}"


def slug(text: str, limit: int = 40) -> str:
    """ASCII letters, digits and dashes from text ("journal" when nothing is left)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:limit].strip("-") or "journal"


class _Ticker:
    """Counts finished files and reports progress."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self.done = 0
        self.phase = "Preparing photos"
        self.callback = callback

    def tick(self, count: int = 1) -> None:
        """Count files done."""
        self.done += count
        self.report()

    def set_phase(self, phase: str) -> None:
        """Start a new phase."""
        self.phase = phase
        self.report()

    def report(self) -> None:
        """Tell the callback."""
        if self.callback is not None:
            self.callback(Progress(self.phase, min(self.done, self.total), self.total))


class ExportLock:
    """One export at a time per account, in every process: an flock on <home>/.locks/export-<id>.lock.

    The lock file is never removed (removing a file someone holds a lock on would let a second
    holder in); the kernel drops the lock when its holder exits, crashed or not.
    """

    def __init__(self, settings: Settings, user_id: int) -> None:
        self.path = settings.home / ".locks" / f"export-{int(user_id)}.lock"
        self._handle: BinaryIO | None = None

    def acquire(self) -> ExportLock:
        """Take the lock without waiting; Conflict when another export of the account holds it."""
        storage.make_dirs(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, storage.file_mode())
        handle = os.fdopen(fd, "a+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise Conflict("an export is already running for this account; wait for it to finish") from None
        self._handle = handle
        return self

    def release(self) -> None:
        """Let the next export in."""
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> ExportLock:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


def export_lock(settings: Settings, user_id: int) -> ExportLock:
    """The account's export lock (not taken yet: use it as a context manager, or acquire())."""
    return ExportLock(settings, user_id)


def run_export(
    factory: sessionmaker[Session],
    settings: Settings,
    request: ExportRequest,
    *,
    on_progress: ProgressCallback | None = None,
    on_bundle: Callable[[WrittenBundle], None] | None = None,
    lock: ExportLock | None = None,
) -> ExportOutcome:
    """Export the requested posts; each batch is written atomically and recorded in its own transaction.

    on_bundle is told about each bundle as soon as it is recorded (a later failure leaves those in place).
    The account's export lock is taken for the run (Conflict when another export of it runs), unless
    the caller holds it already and passes it as `lock`. QuotaExceeded when the bundles would not fit.

    A job, like importing.run_import: it takes the session factory, not a session, as a long run
    must not hold one transaction open, and every batch commits on its own.
    """
    if lock is not None:
        return _run_export(factory, settings, request, on_progress, on_bundle)
    with export_lock(settings, request.user_id):
        return _run_export(factory, settings, request, on_progress, on_bundle)


def _run_export(
    factory: sessionmaker[Session],
    settings: Settings,
    request: ExportRequest,
    on_progress: ProgressCallback | None,
    on_bundle: Callable[[WrittenBundle], None] | None,
) -> ExportOutcome:
    """run_export with the account's lock held."""
    with factory() as session:
        check_request(session, settings, request)
        trip = check_trip(session, request.user_id, request.trip_id) if request.trip_id is not None else None
        zones = zones_for(session, request.user_id)
        posts = select_posts(session, settings, request)
        tracks = select_tracks(session, settings, request, posts, zones)
        usage = (
            quota.usage(session, settings, request.user_id) if settings.quota_bytes else quota.Usage(0, 0, 0)
        )
    outcome = ExportOutcome(posts=len(posts))
    if not posts:
        return outcome
    run = _new_run(settings, request, trip.title if trip else "Journal", usage)
    ticker = _Ticker(sum(len(post.photos) for post in posts), on_progress)
    count = settings.workers if ticker.total > 1 else 1
    with run_as_writer(settings, factory), _work_folder(settings) as work, Workers(count) as workers:
        groups = _make_groups(posts, run, zones, settings, work, workers, outcome, ticker)
        _write_batches(factory, run, groups, workers, outcome, ticker, on_bundle, tracks)
    return outcome


def _new_run(settings: Settings, request: ExportRequest, title: str, usage: quota.Usage) -> ExportRun:
    """Run-wide values: id, time, title, where files go and whether staging can be used."""
    out_dir = (request.out_dir or settings.exports_dir).expanduser().resolve()
    return ExportRun(
        request=request,
        platform=get_platform(request.platform),
        run_id=secrets.token_hex(8),
        created_at=datetime.now(UTC).replace(microsecond=0),
        title=title,
        out_dir=out_dir,
        staging=staging_for(out_dir, settings.staging_dir),
        usage=usage,
    )


def staging_for(out_dir: Path, staging: Path) -> Path | None:
    """The staging folder when it is on out_dir's file system (so rename works), else None."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging.mkdir(parents=True, exist_ok=True)
    return staging if os.stat(out_dir).st_dev == os.stat(staging).st_dev else None


@contextlib.contextmanager
def _work_folder(settings: Settings) -> Iterator[Path]:
    """A private temp folder for made files, removed afterwards (housekeeping sweeps it after a crash)."""
    settings.staging_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=settings.staging_dir) as name:
        yield Path(name)


def _make_groups(
    posts: Sequence[PostSource],
    run: ExportRun,
    zones: Sequence[PrivacyZone],
    settings: Settings,
    work: Path,
    workers: Workers,
    outcome: ExportOutcome,
    ticker: _Ticker,
) -> list[list[zipbundle.BundlePost]]:
    """Make the files and turn each post into its group of BundlePosts (its numbered parts).

    Streamed scrubs (JPEG originals into a zip) are only planned here, by the workers: a damaged
    original is left out with its reason before any bundle is begun.
    """
    mode = run.request.location
    streamed = run.request.format == "zip"
    plans = [
        (
            post,
            plan_jobs(
                post, run.platform, mode, zones, work=work, max_pixels=settings.max_pixels, streamed=streamed
            ),
        )
        for post in posts
    ]
    ticker.report()
    made: dict[int, MadeFile] = {}
    for result in workers.make_files([job for _, jobs in plans for job in jobs]):
        made[result.photo_id] = result
        if result.plan is None:  # a planned scrub counts when it is written
            ticker.tick()
    groups = []
    for post, jobs in plans:
        kept = [file for job in jobs if (file := _bundle_file(job, made[job.photo_id], ticker, outcome))]
        if kept:
            groups.append(post_group(post, kept, run.platform, post_facts(post, mode, zones)))
        else:
            outcome.problems.append(f"post {post.id}: left out, none of its photos could be exported")
    return groups


def _bundle_file(
    job: FileJob, made: MadeFile, ticker: _Ticker, outcome: ExportOutcome
) -> zipbundle.BundleFile | None:
    """The BundleFile of a job: a made file, or a planned scrub written into the zip; None when it failed."""
    if made.error is not None:
        outcome.problems.append(f"photo {job.photo_id} (post {job.post_id}): {made.error}")
        return None
    rule = leaks.FileRule(gps_allowed=job.gps_allowed, source=made.source)
    if made.plan is not None:
        writer = functools.partial(_write_planned, job, made.plan, ticker)
        size, sha256 = made.plan.size, made.plan.sha256
        return zipbundle.BundleFile(
            entry_name(job),
            writer,
            made.width,
            made.height,
            size_hint=size,
            sha256=sha256,
            thumb=job.thumb,
            rule=rule,
        )
    assert made.path is not None
    return zipbundle.BundleFile(
        entry_name(job), made.path, made.width, made.height, thumb=job.thumb, rule=rule
    )


def entry_name(job: FileJob) -> str:
    """Where a job's file goes inside the bundle: photos/<post-id>-<n>.<ext>."""
    return zipbundle.photo_entry_name(job.post_id, job.number, job.ext)


def _write_planned(job: FileJob, plan: scrub.ScrubPlan, ticker: _Ticker, sink: ByteSink) -> None:
    """Write a JPEG original's scrub into its zip entry, as a worker planned it."""
    try:
        scrub.write_scrub_plan(plan, job.src, sink)
    except FILE_ERRORS as exc:
        raise UnreadableFile(f"photo {job.photo_id} (post {job.post_id}): {one_line(exc)}") from exc
    ticker.tick()


def post_group(
    post: PostSource, files: Sequence[zipbundle.BundleFile], platform: Platform, facts: PostFacts
) -> list[zipbundle.BundlePost]:
    """A post as the platform takes it: numbered parts when it has too many photos, captions cut to fit."""
    parts = split_post(files, platform)
    group = []
    for index, part in enumerate(parts, start=1):
        caption = cut_caption(post.caption, platform, suffix=part_suffix(index, len(parts)))
        group.append(
            zipbundle.BundlePost(
                id=post.id,
                caption=caption.text,
                caption_cut=caption.cut,
                caption_length=caption.length if caption.limit is not None else None,
                caption_limit=caption.limit,
                caption_dropped=caption.dropped,
                taken_at_utc=facts.taken_at_utc,
                taken_at_local=facts.taken_at_local,
                place=facts.place,
                location=facts.location,
                position_source=facts.position_source,
                files=part,
                platform=platform.name,
                part=(index, len(parts)) if len(parts) > 1 else None,
            )
        )
    return group


def _write_batches(
    factory: sessionmaker[Session],
    run: ExportRun,
    groups: list[list[zipbundle.BundlePost]],
    workers: Workers,
    outcome: ExportOutcome,
    ticker: _Ticker,
    on_bundle: Callable[[WrittenBundle], None] | None,
    tracks: BatchTracks,
) -> None:
    """Plan the batches, then write and record each one."""
    if not groups:
        return
    limit = run.request.batch_limit
    if run.request.format == "zip":
        batches = zipbundle.plan_bundles(groups, limit, title=run.title, tracks=tracks.drawable())
    else:
        batches = emailbundle.plan_bundles(groups, limit, title=run.title)
    usage = run.usage
    if not usage.fits(sum(_photo_bytes(posts) for posts in batches)):
        raise usage.refuse()  # before the first bundle: an export that cannot fit writes nothing
    for number, posts in enumerate(batches, start=1):
        if not usage.fits(_photo_bytes(posts)):
            raise usage.refuse()
        ticker.set_phase(f"Writing bundle {number} of {len(batches)}")
        written = _write_and_record(factory, run, posts, number, len(batches), workers, tracks)
        usage = usage.plus(bundles=written.bytes)
        outcome.bundles.append(written)
        if on_bundle is not None:
            on_bundle(written)
        _remove_made_files(posts)
    ticker.set_phase("Done")


def _photo_bytes(posts: Sequence[zipbundle.BundlePost]) -> int:
    """What a batch's photos take (its page and map come on top: counted once written)."""
    return sum(file.size_bound() for post in posts for file in post.files)


def _write_and_record(
    factory: sessionmaker[Session],
    run: ExportRun,
    posts: list[zipbundle.BundlePost],
    number: int,
    batches: int,
    workers: Workers,
    tracks: BatchTracks,
) -> WrittenBundle:
    """Write one batch's file, then record it; the file is removed again when recording fails."""
    dest = run.out_dir / run.file_name(number, batches)
    message_id: str | None = None
    batch = zipbundle.Batch(posts, number, batches, run.created_text, run.title, run.request.location)
    if run.request.format == "zip":
        drawn, withheld = tracks.for_batch(posts)
        info = zipbundle.build_bundle(
            dest, batch, staging=run.staging, submit=workers.submit, tracks=drawn, tracks_withheld=withheld
        )
        sha256, size = info.sha256, info.bytes
    else:
        message = emailbundle.build_bundle(
            dest, batch, sender=run.request.mail_from, to=run.request.mail_to, staging=run.staging
        )
        sha256, size, message_id = message.sha256, message.bytes, message.message_id
    try:
        with factory() as session, session.begin():
            export = record_export(
                session,
                run=run,
                path=dest,
                sha256=sha256,
                size=size,
                batch=number,
                batches=batches,
                posts=posts,
            )
            if message_id is not None:
                session.add(
                    OutgoingMessage(
                        export_id=export.id, message_id=message_id, path=str(dest), to=run.request.mail_to
                    )
                )
            export_id = export.id
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    logger.info("export %d: %s (%d bytes)", export_id, dest, size)
    count = len({post.id for post in posts})
    return WrittenBundle(export_id, dest, number, batches, size, sha256, count, message_id)


def record_export(
    session: Session,
    *,
    run: ExportRun,
    path: Path,
    sha256: str,
    size: int,
    batch: int,
    batches: int,
    posts: Sequence[zipbundle.BundlePost],
) -> Export:
    """Insert the Export row of a written bundle and its (post, part) links; flushes."""
    request = run.request
    export = Export(
        user_id=request.user_id,
        trip_id=request.trip_id,
        run_id=run.run_id,
        name=path.name,
        path=str(path),
        sha256=sha256,
        bytes=size,
        batch=batch,
        batches=batches,
        created_at=run.created_at,
        platform=run.platform.name,
        location_mode=request.location,
        format=request.format,
        max_batch_bytes=request.batch_limit,
    )
    export.posts = [ExportPost(post_id=post.id, part=post.part[0] if post.part else 1) for post in posts]
    session.add(export)
    session.flush()
    return export


def _remove_made_files(posts: Sequence[zipbundle.BundlePost]) -> None:
    """Delete a written batch's made files from the work folder (keeps the disk use to one batch)."""
    for post in posts:
        for file in post.files:
            if isinstance(file.source, Path):
                file.source.unlink(missing_ok=True)
