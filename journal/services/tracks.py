"""GPX tracks in the journal: store and record a track, and place photos without a position on it by time.

A track is stored once per user (by content hash) under ``uploads/tracks/<user id>/``, recorded with
its UTC time span and a simplified geometry for drawing, and then used both ways:

- a track imported after the photos places every photo of that user that has no position and whose
  time falls on it (`place_photos_on_track`);
- a photo imported after the track is placed as it is recorded (`place_new_photo`).

Placing matches the photo's UTC time (``taken_at_utc``) to the track within
``Settings.track_max_gap_s`` (see journal.gpx.locate_by_time). Many cameras record only local
wall-clock time; such a photo is read in the time zone of the track where it was at that local time
(the same rule the metadata reader uses: "from the time zone at the photo's position"), and then gets
that UTC time and offset too. A position found this way is marked ``location_source = "track"``;
positions from the camera or set by hand are never changed. Services flush, never commit.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from journal import gpx, places, storage
from journal.config import Settings
from journal.errors import JournalError, UnreadableFile, UnsupportedFile
from journal.geo import haversine_m, unwrap_positions
from journal.models import Photo, Track
from journal.route import simplify_ranks

logger = logging.getLogger(__name__)

#: Most points kept per track for drawing (all segments together).
MAX_GEOMETRY_POINTS = 5000
#: Douglas-Peucker tolerance to start from, in degrees (about 2 m): finer than any map needs.
GEOMETRY_TOLERANCE_DEG = 0.00002
#: Tracks with more points than this many times MAX_GEOMETRY_POINTS are sampled evenly before ranking.
CANDIDATE_FACTOR = 4
#: Local wall-clock time is at most this far from UTC (UTC-12 to UTC+14).
LOCAL_SLACK = timedelta(hours=14)

Status = Literal["imported", "duplicate", "failed", "skipped"]
Geometry = list[list[list[float | None]]]


class PlannedRouteOnly(UnsupportedFile):
    """A GPX file with a planned route (<rte>) and no recorded track: it says nothing about where one was."""


@dataclass(frozen=True)
class StoredTrack:
    """A GPX file stored under uploads/ and what it holds; no row yet."""

    sha256: str
    bytes: int
    stored_path: str
    track: gpx.Track


@dataclass(frozen=True)
class TrackResult:
    """The outcome of importing one GPX file."""

    status: Status
    sha256: str | None = None
    track_id: int | None = None
    placed: int = 0
    error: str | None = None
    note: str | None = None


# --- storing and recording ------------------------------------------------------------------------


def track_relpath(user_id: int, sha256: str) -> str:
    """Where a track's GPX file lives under uploads/, named by the app."""
    storage.check_sha256(sha256)
    return f"tracks/{int(user_id)}/{sha256[:2]}/{sha256}.gpx"


def reason(exc: JournalError, path: Path) -> str:
    """An error's message without the (possibly temporary) file name gpx.py puts in front."""
    message = str(exc)
    return message.removeprefix(f"{path.name}: ")


def store_track(settings: Settings, user_id: int, path: Path) -> StoredTrack:
    """Read a GPX file and store it under uploads/ (once per content); raise when it holds no track.

    UnreadableFile for broken GPX or a file with no points at all; PlannedRouteOnly for a file that
    has only a planned route.
    """
    track = gpx.read_track_isolated(path, limits=read_limits(settings))
    if track.is_planned_route:
        raise PlannedRouteOnly(f"{path.name}: a planned route, not a recorded track")
    if not track.segments:
        raise UnreadableFile(f"{path.name}: no track points")
    sha = storage.sha256_file(path)
    rel = track_relpath(user_id, sha)
    target = settings.uploads_dir / rel
    if not target.is_file():
        storage.copy_atomic(path, target, staging=settings.staging_dir)
    _remember(str(target.resolve()), track)  # placing photos on it next need not read the file again
    return StoredTrack(sha, path.stat().st_size, rel, track)


def read_limits(settings: Settings) -> gpx.ReadLimits:
    """The bounds on reading a GPX file from someone (size, points, CPU seconds) from the settings."""
    return gpx.ReadLimits(settings.gpx_max_bytes, settings.gpx_max_points, settings.gpx_cpu_s)


def time_span(track: gpx.Track) -> tuple[datetime | None, datetime | None]:
    """The first and last usable point times of the recorded segments (UTC), or (None, None)."""
    times = [p.time for segment in track.segments for p in segment if p.time is not None]
    return (min(times), max(times)) if times else (None, None)


def segment_length_m(segment: Sequence[gpx.TrackPoint]) -> float:
    """Length of one segment in metres."""
    return sum(haversine_m(a.lat, a.lon, b.lat, b.lon) for a, b in zip(segment, segment[1:], strict=False))


def _point(p: gpx.TrackPoint) -> list[float | None]:
    return [round(p.lat, 6), round(p.lon, 6), None if p.time is None else float(int(p.time.timestamp()))]


def _candidates(segment: Sequence[gpx.TrackPoint], share: int) -> list[int]:
    """Indexes of at most `share` points spread evenly along a segment (its ends always among them)."""
    if len(segment) <= share:
        return list(range(len(segment)))
    step = (len(segment) - 1) / max(1, share - 1)
    return sorted({round(i * step) for i in range(share)} | {len(segment) - 1})


def track_geometry(track: gpx.Track, *, max_points: int = MAX_GEOMETRY_POINTS) -> Geometry:
    """The recorded segments simplified for drawing: at most max_points points, each [lat, lon, unix time].

    Douglas-Peucker at GEOMETRY_TOLERANCE_DEG, or coarser when that keeps more than max_points:
    each segment is ranked once (route.simplify_ranks) and the best-ranked points are kept. A track
    of more than CANDIDATE_FACTOR x max_points points is first sampled evenly down to that many
    (a million-point track would take a minute to rank; the drawing cannot show the difference).
    Longitudes are ranked unwrapped, so a segment across the antimeridian is not one huge zig-zag.
    """
    total = sum(len(segment) for segment in track.segments) or 1
    limit = CANDIDATE_FACTOR * max_points
    picked = [_candidates(segment, max(2, len(segment) * limit // total)) for segment in track.segments]
    ranks = [
        simplify_ranks(unwrap_positions([(segment[i].lat, segment[i].lon) for i in indexes]))
        for segment, indexes in zip(track.segments, picked, strict=True)
    ]
    ordered = sorted((r for segment_ranks in ranks for r in segment_ranks), reverse=True)
    tolerance = max(GEOMETRY_TOLERANCE_DEG, ordered[max_points] if len(ordered) > max_points else 0.0)
    return [
        [_point(segment[i]) for i, rank in zip(indexes, segment_ranks, strict=True) if rank > tolerance]
        for segment, indexes, segment_ranks in zip(track.segments, picked, ranks, strict=True)
    ]


def record_track(
    session: Session, user_id: int, stored: StoredTrack, *, original_name: str, trip_id: int | None = None
) -> Track:
    """Insert the track's row; flushes (IntegrityError when the user has this file already)."""
    started, ended = time_span(stored.track)
    name = stored.track.name or Path(original_name.replace("\\", "/")).stem or "Track"
    row = Track(
        user_id=user_id,
        trip_id=trip_id,
        name=name[:255],
        original_name=original_name[-1024:],
        sha256=stored.sha256,
        stored_path=stored.stored_path,
        bytes=stored.bytes,
        started_at=started,
        ended_at=ended,
        point_count=sum(len(segment) for segment in stored.track.segments),
        distance_m=sum(segment_length_m(segment) for segment in stored.track.segments),
        geometry=track_geometry(stored.track),
    )
    session.add(row)
    session.flush()
    return row


def import_track(
    settings: Settings,
    factory: sessionmaker[Session],
    user_id: int,
    path: Path,
    *,
    original_name: str,
    trip_id: int | None = None,
) -> TrackResult:
    """Store a GPX file, record it, and place the user's photos without a position on it (one transaction)."""
    try:
        stored = store_track(settings, user_id, path)
    except PlannedRouteOnly as exc:
        return TrackResult("skipped", error=reason(exc, path))
    except JournalError as exc:
        return TrackResult("failed", error=reason(exc, path))
    except OSError as exc:
        logger.warning("cannot store track %s: %s", original_name, exc)
        return TrackResult("failed", error=f"unreadable file: {exc}")
    with factory() as session:
        known = session.scalar(
            select(Track.id).where(Track.user_id == user_id, Track.sha256 == stored.sha256)
        )
    if known is not None:
        return TrackResult("duplicate", sha256=stored.sha256, track_id=known)
    try:
        with factory() as session, session.begin():
            row = record_track(session, user_id, stored, original_name=original_name, trip_id=trip_id)
            placed = place_photos_on_track(session, settings, row)
            track_id = row.id
    except IntegrityError:  # the same file imported at the same moment by another import or upload
        return TrackResult("duplicate", sha256=stored.sha256)
    return TrackResult("imported", stored.sha256, track_id, placed, note=_note(stored.track, placed))


def _note(track: gpx.Track, placed: int) -> str:
    if not track.timed_points:
        return "track has no usable times: drawn, but it cannot place photos"
    return f"placed {placed} photo{'' if placed == 1 else 's'} on the track"


# --- placing photos ---------------------------------------------------------------------------------


#: Parsed stored tracks kept per process, bounded by their points (a track can hold a million).
CACHE_POINTS = 2_000_000
_cache: OrderedDict[str, gpx.Track] = OrderedDict()
_cache_lock = threading.Lock()


def _size(track: gpx.Track) -> int:
    return sum(len(s) for s in track.segments) + sum(len(r) for r in track.routes)


def _remember(path: str, track: gpx.Track) -> None:
    """Keep a parsed track for its stored file, dropping the least recently used beyond CACHE_POINTS."""
    with _cache_lock:
        _cache[path] = track
        _cache.move_to_end(path)
        while len(_cache) > 1 and sum(_size(t) for t in _cache.values()) > CACHE_POINTS:
            _cache.popitem(last=False)


def _read_stored(path: str, limits: gpx.ReadLimits) -> gpx.Track:
    """A stored track file, parsed once per process (stored files never change: named by content).

    Read in a worker process like any file from a user (it was one): never in a request thread.
    """
    with _cache_lock:
        found = _cache.get(path)
        if found is not None:
            _cache.move_to_end(path)
            return found
    track = gpx.read_track_isolated(Path(path), limits=limits)
    _remember(path, track)
    return track


def parsed_track(settings: Settings, row: Track) -> gpx.Track | None:
    """The recorded track of a row, read from its stored GPX file; None when the file is unreadable."""
    try:
        return _read_stored(
            str(storage.safe_join(settings.uploads_dir, row.stored_path)), read_limits(settings)
        )
    except (JournalError, OSError) as exc:
        logger.warning("track %d (%s) cannot be read: %s", row.id, row.stored_path, exc)
        return None


def _first_timed(track: gpx.Track) -> gpx.TrackPoint | None:
    return next((p for segment in track.segments for p in segment if p.time is not None), None)


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _locate_local(
    track: gpx.Track, local: datetime, zone_name: str | None, max_gap_s: float
) -> tuple[tuple[float, float, float | None], datetime, str] | None:
    """Position, UTC time and zone for a local wall-clock time read in a zone, if the track was there."""
    zone = _zone(zone_name)
    if zone is None or zone_name is None:
        return None
    utc = local.replace(tzinfo=zone).astimezone(UTC)
    found = gpx.locate_by_time(track, utc, max_gap_s=max_gap_s)
    return None if found is None else (found, utc, zone_name)


def locate_photo(
    photo: Photo, track: gpx.Track, max_gap_s: float
) -> tuple[float, float, float | None] | None:
    """Where the track puts the photo, by its UTC time, else by its local time (then also setting its UTC)."""
    if photo.taken_at_utc is not None:
        return gpx.locate_by_time(track, photo.taken_at_utc, max_gap_s=max_gap_s)
    if photo.taken_at is None:
        return None
    first = _first_timed(track)
    if first is None:
        return None
    guess = _locate_local(track, photo.taken_at, places.timezone_at(first.lat, first.lon), max_gap_s)
    if guess is not None:
        (lat, lon, _), _, zone = guess
        there = places.timezone_at(lat, lon)
        if there and there != zone:  # the track crossed into another zone: read the time there
            guess = _locate_local(track, photo.taken_at, there, max_gap_s)
    if guess is None:
        return None
    position, utc, zone = guess
    _set_time_from_zone(photo, utc, zone)
    return position


def _set_time_from_zone(photo: Photo, utc: datetime, zone: str) -> None:
    """Give a local-only photo the UTC time and offset its position's time zone implies."""
    assert photo.taken_at is not None
    photo.taken_at_utc = utc
    photo.utc_offset_min = round((photo.taken_at - utc.replace(tzinfo=None)).total_seconds() / 60)
    photo.offset_source = "timezone"
    photo.timezone = zone


def apply_position(photo: Photo, position: tuple[float, float, float | None]) -> None:
    """Set a photo's position from a track, with its place name and (unless known) time zone."""
    lat, lon, elevation = position
    photo.lat, photo.lon = round(lat, 7), round(lon, 7)
    if photo.alt is None and elevation is not None and math.isfinite(elevation):
        photo.alt = elevation
    photo.location_source = "track"
    place = places.place_for(lat, lon)
    photo.place = place.name if place else None
    photo.country = place.country if place else None
    photo.country_code = place.country_code if place else None
    if photo.timezone is None:
        photo.timezone = (place.timezone if place else None) or places.timezone_at(lat, lon)


def place_photo(photo: Photo, tracks: Iterable[gpx.Track], *, max_gap_s: float) -> bool:
    """Place a photo without a position on the first track that covers its time; True when placed."""
    if photo.lat is not None or photo.lon is not None:
        return False
    for track in tracks:
        position = locate_photo(photo, track, max_gap_s)
        if position is not None:
            apply_position(photo, position)
            return True
    return False


def _covers(start: datetime, end: datetime, gap: timedelta) -> ColumnElement[bool]:
    """Photos whose UTC time, or (without one) local time, may fall within [start, end]."""
    naive_start, naive_end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    return or_(
        Photo.taken_at_utc.between(start - gap, end + gap),
        and_(
            Photo.taken_at_utc.is_(None),
            Photo.taken_at.between(naive_start - LOCAL_SLACK - gap, naive_end + LOCAL_SLACK + gap),
        ),
    )


def place_photos_on_track(session: Session, settings: Settings, row: Track) -> int:
    """Place the user's photos without a position that fall on this track; returns how many were placed."""
    if row.started_at is None or row.ended_at is None:
        return 0
    track = parsed_track(settings, row)
    if track is None:
        return 0
    gap = timedelta(seconds=settings.track_max_gap_s)
    photos = session.scalars(
        select(Photo)
        .where(Photo.user_id == row.user_id, Photo.lat.is_(None))
        .where(_covers(row.started_at, row.ended_at, gap))
        .order_by(Photo.id)
    )
    placed = sum(place_photo(photo, [track], max_gap_s=settings.track_max_gap_s) for photo in photos)
    session.flush()
    logger.info("track %d placed %d photos", row.id, placed)
    return placed


def tracks_covering(session: Session, photo: Photo, gap: timedelta) -> list[Track]:
    """The user's timed tracks whose span may hold the photo's moment (by UTC, else by local time)."""
    if photo.taken_at_utc is not None:
        low = high = photo.taken_at_utc
    elif photo.taken_at is not None:
        local = photo.taken_at.replace(tzinfo=UTC)  # compared within LOCAL_SLACK either way
        low, high = local - LOCAL_SLACK, local + LOCAL_SLACK
    else:
        return []
    return list(
        session.scalars(
            select(Track)
            .where(
                Track.user_id == photo.user_id, Track.started_at <= high + gap, Track.ended_at >= low - gap
            )
            .order_by(Track.started_at, Track.id)
        )
    )


def place_new_photo(session: Session, settings: Settings, photo: Photo) -> bool:
    """Place one photo without a position (just imported) on the user's tracks; True when placed."""
    if photo.lat is not None or (photo.taken_at_utc is None and photo.taken_at is None):
        return False
    gap = timedelta(seconds=settings.track_max_gap_s)
    parsed = (parsed_track(settings, row) for row in tracks_covering(session, photo, gap))
    placed = place_photo(
        photo, (track for track in parsed if track is not None), max_gap_s=settings.track_max_gap_s
    )
    if placed:
        session.flush()
    return placed


def user_has_tracks(session: Session, user_id: int) -> bool:
    """True when the user has at least one track with usable times."""
    return bool(
        session.scalar(select(exists().where(Track.user_id == user_id, Track.started_at.is_not(None))))
    )
