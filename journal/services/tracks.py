"""GPX tracks in the journal: store a GPX file once per user and record it.

A track is stored once per user (by content hash) under ``uploads/tracks/<user id>/``, recorded with
its UTC time span and a simplified geometry for drawing. Placing photos on tracks by time, and placing
them again when times change, is journal.services.geotagging's. Services flush, never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from journal import gpx, storage
from journal.config import Settings
from journal.errors import JournalError, UnreadableFile, UnsupportedFile
from journal.geo import haversine_m, unwrap_positions
from journal.geotag import PlacePolicy
from journal.models import Track
from journal.route import simplify_ranks
from journal.services import geotagging

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
    track = gpx.read_track_isolated(path, limits=geotagging.read_limits(settings))
    if track.is_planned_route:
        raise PlannedRouteOnly(f"{path.name}: a planned route, not a recorded track")
    if not track.segments:
        raise UnreadableFile(f"{path.name}: no track points")
    sha = storage.sha256_file(path)
    rel = track_relpath(user_id, sha)
    target = settings.uploads_dir / rel
    if not target.is_file():
        storage.copy_atomic(path, target, staging=settings.staging_dir)
    geotagging.remember(
        str(target.resolve()), track
    )  # placing photos on it next need not read the file again
    return StoredTrack(sha, path.stat().st_size, rel, track)


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


def run_import_track(
    settings: Settings,
    factory: sessionmaker[Session],
    user_id: int,
    path: Path,
    *,
    original_name: str,
    trip_id: int | None = None,
    policy: PlacePolicy | None = None,
) -> TrackResult:
    """Store a GPX file, record it, and place the user's photos without a position on it (one transaction).

    A job: the file is stored before its row, which is committed on its own.
    """
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
            report = geotagging.place_photos_on_track(session, settings, row, policy=policy)
            track_id = row.id
    except IntegrityError:  # the same file imported at the same moment by another import or upload
        return TrackResult("duplicate", sha256=stored.sha256)
    placed = report.count("placed") + report.count("moved")
    return TrackResult("imported", stored.sha256, track_id, placed, note=_note(stored.track, placed))


def _note(track: gpx.Track, placed: int) -> str:
    if not track.timed_points:
        return "track has no usable times: drawn, but it cannot place photos"
    if not placed:
        return "recorded; no photo already in the journal falls on it"
    return f"placed {placed} photo{'' if placed == 1 else 's'} already in the journal"
