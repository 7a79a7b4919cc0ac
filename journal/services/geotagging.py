"""Positions from GPS tracks as derived data: placed by time, and placed again whenever a time changes.

A photo's position has a source (``Photo.location_source``): the camera's own GPS (``exif``/``xmp``),
set by hand (``manual``), or a track: interpolated between two points (``track``) or the nearest
point (``track-nearest``). Positions from a track follow from the photo's time, the user's tracks and
the placing rule (`journal.geotag.PlacePolicy`, kept per trip), so they are computed again when any of
these changes: a clock fix, a time zone set by hand, a track added or deleted, a new rule. Positions
from the camera or set by hand are never touched.

Many cameras record only local wall-clock time; such a photo is read in the time zone of the track
where it was at that local time (the metadata reader's rule: "from the time zone at the photo's
position"), and then gets that UTC time and offset too. Services flush, never commit.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from journal import geotag, gpx, places, storage
from journal.config import Settings
from journal.errors import InvalidInput, JournalError, NotFound
from journal.geotag import Miss, Placement, PlacePolicy
from journal.models import Photo, Post, Track, Trip

logger = logging.getLogger(__name__)

#: Local wall-clock time is at most this far from UTC (UTC-12 to UTC+14).
LOCAL_SLACK = timedelta(hours=14)
#: Sources of a position that came from a track, and may be computed again.
TRACK_SOURCES = ("track", "track-nearest")
#: How each stored source is named in the API, manifests and pages.
POSITION_SOURCES = {
    "exif": "camera",
    "xmp": "camera",
    "track": "track",
    "track-nearest": "track-nearest",
    "manual": "manual",
}

Outcome = Literal["placed", "moved", "removed", "unchanged", "missed", "kept"]


def position_source(location_source: str | None) -> str | None:
    """The public name of where a position came from: camera, track, track-nearest, manual (or None)."""
    return POSITION_SOURCES.get(location_source or "")


# --- the rule ---------------------------------------------------------------------------------------


def default_policy(settings: Settings) -> PlacePolicy:
    """The placing rule from the settings."""
    return PlacePolicy(max_gap_s=settings.track_max_gap_s, nearest_s=settings.track_nearest_s)


def trip_policy(settings: Settings, trip: Trip | None) -> PlacePolicy:
    """The rule a trip keeps, else the settings' default."""
    base = default_policy(settings)
    if trip is None:
        return base
    return PlacePolicy(
        max_gap_s=base.max_gap_s if trip.track_max_gap_s is None else trip.track_max_gap_s,
        nearest_s=base.nearest_s if trip.track_nearest_s is None else trip.track_nearest_s,
    )


def set_trip_policy(trip: Trip, policy: PlacePolicy) -> None:
    """Keep a rule on the trip, so later clock fixes place its photos the same way."""
    trip.track_max_gap_s = round(policy.max_gap_s)
    trip.track_nearest_s = round(policy.nearest_s)


# --- reading tracks ---------------------------------------------------------------------------------


def read_limits(settings: Settings) -> gpx.ReadLimits:
    """The bounds on reading a GPX file from someone (size, points, CPU seconds) from the settings."""
    return gpx.ReadLimits(settings.gpx_max_bytes, settings.gpx_max_points, settings.gpx_cpu_s)


#: Parsed stored tracks kept per process, bounded by their points (a track can hold a million).
CACHE_POINTS = 2_000_000
_cache: OrderedDict[str, gpx.Track] = OrderedDict()
_cache_lock = threading.Lock()


def _size(track: gpx.Track) -> int:
    return sum(len(s) for s in track.segments) + sum(len(r) for r in track.routes)


def remember(path: str, track: gpx.Track) -> None:
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
    remember(path, track)
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


def user_has_tracks(session: Session, user_id: int) -> bool:
    """True when the user has at least one track with usable times."""
    return bool(
        session.scalar(select(exists().where(Track.user_id == user_id, Track.started_at.is_not(None))))
    )


def _reach(policy: PlacePolicy) -> timedelta:
    return timedelta(seconds=max(policy.max_gap_s, policy.nearest_s))


def tracks_covering(session: Session, photo: Photo, reach: timedelta) -> list[Track]:
    """The user's timed tracks whose span may hold the photo's moment (by UTC, else by local time)."""
    if photo.taken_at_utc is not None:
        low = high = photo.taken_at_utc
    elif photo.taken_at is not None:
        low = high = photo.taken_at.replace(tzinfo=UTC)  # compared within LOCAL_SLACK either way
        reach += LOCAL_SLACK
    else:
        return []
    try:
        low, high = low - reach, high + reach
    except OverflowError:  # a time at the very edge of the calendar: no track is there
        return []
    return list(
        session.scalars(
            select(Track)
            .where(Track.user_id == photo.user_id, Track.started_at <= high, Track.ended_at >= low)
            .order_by(Track.started_at, Track.id)
        )
    )


# --- placing one photo ------------------------------------------------------------------------------


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _first_timed(track: gpx.Track) -> gpx.TrackPoint | None:
    return next((p for segment in track.segments for p in segment if p.time is not None), None)


def _place_local(
    track: gpx.Track, local: datetime, zone_name: str | None, policy: PlacePolicy
) -> tuple[Placement | Miss, datetime | None, str | None]:
    """A local wall-clock time read in a zone, placed on the track: (result, UTC time, zone)."""
    zone = _zone(zone_name)
    if zone is None:
        return Miss("outside"), None, None
    try:
        utc = local.replace(tzinfo=zone).astimezone(UTC)
    except OverflowError:
        return Miss("outside"), None, None
    return geotag.place(track, utc, policy), utc, zone_name


def _locate_local(photo: Photo, track: gpx.Track, policy: PlacePolicy) -> Placement | Miss:
    assert photo.taken_at is not None
    first = _first_timed(track)
    if first is None:
        return Miss("untimed")
    found, utc, zone = _place_local(track, photo.taken_at, places.timezone_at(first.lat, first.lon), policy)
    if isinstance(found, Placement):
        there = places.timezone_at(found.lat, found.lon)
        if there and there != zone:  # the track crossed into another zone: read the time there
            found, utc, zone = _place_local(track, photo.taken_at, there, policy)
    if isinstance(found, Placement) and utc is not None and zone is not None:
        _set_time_from_zone(photo, utc, zone)
    return found


def locate_photo(photo: Photo, tracks: Sequence[gpx.Track], policy: PlacePolicy) -> Placement | Miss:
    """Where the tracks put the photo, by its UTC time, else by its local time (then also setting its UTC)."""
    if photo.taken_at_utc is not None:
        return geotag.place_on_tracks(tracks, photo.taken_at_utc, policy)
    if photo.taken_at is None:
        return Miss("no-time")
    return geotag.best(_locate_local(photo, track, policy) for track in tracks)


def _set_time_from_zone(photo: Photo, utc: datetime, zone: str) -> None:
    """Give a local-only photo the UTC time and offset its position's time zone implies."""
    assert photo.taken_at is not None
    photo.taken_at_utc = utc
    photo.utc_offset_min = round((photo.taken_at - utc.replace(tzinfo=None)).total_seconds() / 60)
    photo.offset_source = "timezone"
    photo.timezone = zone


def apply_placement(photo: Photo, placement: Placement) -> None:
    """Set a photo's position from a track, with its place name and (unless known) time zone."""
    photo.lat, photo.lon = round(placement.lat, 7), round(placement.lon, 7)
    if placement.elevation is not None and math.isfinite(placement.elevation):
        if photo.alt is None or photo.location_source in TRACK_SOURCES:
            photo.alt = placement.elevation
    photo.location_source = placement.source
    place = places.place_for(placement.lat, placement.lon)
    photo.place = place.name if place else None
    photo.country = place.country if place else None
    photo.country_code = place.country_code if place else None
    if photo.timezone is None:
        photo.timezone = (place.timezone if place else None) or places.timezone_at(
            placement.lat, placement.lon
        )


def clear_track_position(photo: Photo) -> None:
    """Forget a position that came from a track (the photo's time no longer falls on one)."""
    photo.lat = photo.lon = photo.alt = None
    photo.place = photo.country = photo.country_code = None
    photo.location_source = None


def is_derived(photo: Photo) -> bool:
    """True when the photo's position is the tracks' to give or take: none yet, or one from a track."""
    if photo.location_source in TRACK_SOURCES:
        return True
    return photo.location_source is None and photo.lat is None and photo.lon is None


# --- placing many photos, with a report -------------------------------------------------------------


@dataclass
class PlaceReport:
    """What placing photos from tracks did."""

    policy: PlacePolicy
    outcomes: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)
    #: Photo ids per outcome (placed, moved, removed), for previews and tests.
    ids: dict[str, list[int]] = field(default_factory=dict)
    #: True when the user has no track with times at all: nothing could be placed.
    no_tracks: bool = False

    def add(self, photo_id: int, outcome: Outcome, miss: Miss | None = None) -> None:
        """Count one photo's outcome (and why it has no position, when it has none)."""
        self.outcomes[outcome] += 1
        self.ids.setdefault(outcome, []).append(photo_id)
        if miss is not None:
            self.missed[miss.reason] += 1

    def count(self, outcome: Outcome) -> int:
        """How many photos had this outcome."""
        return self.outcomes[outcome]

    def reasons(self) -> str:
        """ "2 outside every track's time, 1 in a gap of the track longer than 5 min"."""
        return ", ".join(
            f"{n} {geotag.describe_miss(reason, self.policy)}"  # type: ignore[arg-type]
            for reason, n in self.missed.most_common()
        )

    def summary(self) -> str:
        """One line for the CLI and the trip page."""
        if self.no_tracks:
            return "no GPS track with times to place photos from"
        placed = self.count("placed")
        parts = [f"placed {placed} photo{'' if placed == 1 else 's'} from tracks"]
        if self.count("moved"):
            parts.append(f"moved {self.count('moved')}")
        if self.count("removed"):
            parts.append(f"took the track position off {self.count('removed')}")
        line = ", ".join(parts)
        without = sum(self.missed.values())
        if without:
            line += f"; {without} without a position: {self.reasons()}"
        return line


def refresh_photo(
    session: Session, settings: Settings, photo: Photo, policy: PlacePolicy
) -> tuple[Outcome, Miss | None]:
    """Place one photo from the tracks again (if its position is theirs); say what happened."""
    if not is_derived(photo):
        return "kept", None
    before = (photo.lat, photo.lon, photo.location_source)
    if photo.clock_wrong:  # track times follow the same rule (journal.clock): none can hold this one
        if before[2] in TRACK_SOURCES:
            clear_track_position(photo)
            return "removed", Miss("clock")
        return "missed", Miss("clock")
    rows = tracks_covering(session, photo, _reach(policy))
    parsed = [t for t in (parsed_track(settings, row) for row in rows) if t is not None]
    if not rows:
        found: Placement | Miss = Miss("no-time") if photo.taken_at is None else Miss("outside")
    elif not parsed:
        found = Miss("untimed")
    else:
        found = locate_photo(photo, parsed, policy)
    if isinstance(found, Placement):
        apply_placement(photo, found)
        if before[0] is None:
            return "placed", None
        return ("unchanged" if before == (photo.lat, photo.lon, photo.location_source) else "moved"), None
    if before[2] in TRACK_SOURCES:
        clear_track_position(photo)
        return "removed", found
    return "missed", found


def refresh_positions(
    session: Session, settings: Settings, photos: Iterable[Photo], *, policy: PlacePolicy | None = None
) -> PlaceReport:
    """Place photos from the tracks again under a rule (default: each photo's trip's rule)."""
    report = PlaceReport(policy or default_policy(settings))
    trip_rules: dict[int | None, PlacePolicy] = {}
    for photo in photos:
        rule = policy or _rule_for(session, settings, photo, trip_rules)
        outcome, miss = refresh_photo(session, settings, photo, rule)
        if outcome != "kept":
            report.add(photo.id, outcome, miss)
    session.flush()
    return report


def _rule_for(
    session: Session, settings: Settings, photo: Photo, cache: dict[int | None, PlacePolicy]
) -> PlacePolicy:
    trip_id = photo.post.trip_id if photo.post is not None else None
    if trip_id not in cache:
        cache[trip_id] = trip_policy(settings, session.get(Trip, trip_id) if trip_id else None)
    return cache[trip_id]


def _covers(start: datetime, end: datetime, reach: timedelta) -> ColumnElement[bool]:
    """Photos whose UTC time, or (without one) local time, may fall within [start, end]."""
    naive_start, naive_end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    return or_(
        Photo.taken_at_utc.between(start - reach, end + reach),
        and_(
            Photo.taken_at_utc.is_(None),
            Photo.taken_at.between(naive_start - LOCAL_SLACK - reach, naive_end + LOCAL_SLACK + reach),
        ),
    )


def _derived_or_unplaced() -> ColumnElement[bool]:
    return or_(Photo.location_source.in_(TRACK_SOURCES), and_(Photo.lat.is_(None), Photo.lon.is_(None)))


def photos_near_span(
    session: Session, user_id: int, start: datetime, end: datetime, reach: timedelta
) -> list[Photo]:
    """The user's photos whose position is the tracks' and whose time may fall on [start, end]."""
    return list(
        session.scalars(
            select(Photo)
            .where(Photo.user_id == user_id, _derived_or_unplaced(), _covers(start, end, reach))
            .order_by(Photo.id)
        )
    )


def place_photos_on_track(
    session: Session, settings: Settings, row: Track, *, policy: PlacePolicy | None = None
) -> PlaceReport:
    """A track was added: place again the user's photos that may fall on it (no position, or a track's)."""
    if row.started_at is None or row.ended_at is None:
        return PlaceReport(policy or default_policy(settings))
    reach = timedelta(seconds=86_400)  # the widest rule a trip may keep; each photo uses its own
    photos = photos_near_span(session, row.user_id, row.started_at, row.ended_at, reach)
    report = refresh_positions(session, settings, photos, policy=policy)
    logger.info("track %d: %s", row.id, report.summary())
    return report


def place_new_photo(
    session: Session, settings: Settings, photo: Photo, *, policy: PlacePolicy | None = None
) -> tuple[Outcome, Miss | None, PlacePolicy]:
    """Place one photo (just imported) on the user's tracks by a rule (default: its trip's)."""
    rule = policy or _rule_for(session, settings, photo, {})
    outcome, miss = refresh_photo(session, settings, photo, rule)
    session.flush()
    return outcome, miss, rule


def trip_photos(session: Session, user_id: int, trip_id: int) -> list[Photo]:
    """Every photo of a trip, in id order."""
    posts = select(Post.id).where(Post.user_id == user_id, Post.trip_id == trip_id)
    return list(
        session.scalars(
            select(Photo).where(Photo.user_id == user_id, Photo.post_id.in_(posts)).order_by(Photo.id)
        )
    )


def place_trip(
    session: Session, settings: Settings, user_id: int, trip_id: int, *, policy: PlacePolicy | None = None
) -> PlaceReport:
    """Place a trip's photos from the tracks again; a rule given is kept on the trip."""
    trip = session.get(Trip, trip_id)
    if trip is None or trip.user_id != user_id:
        raise NotFound("no such trip")
    if policy is not None:
        set_trip_policy(trip, policy)
    if not user_has_tracks(session, user_id):
        return PlaceReport(trip_policy(settings, trip), no_tracks=True)
    return refresh_positions(
        session, settings, trip_photos(session, user_id, trip_id), policy=trip_policy(settings, trip)
    )


def delete_track(
    session: Session, settings: Settings, user_id: int, track_id: int
) -> tuple[Path, PlaceReport]:
    """Delete a track's row and place again the photos it may have placed; returns its file to remove."""
    row = session.get(Track, track_id)
    if row is None or row.user_id != user_id:
        raise NotFound("no such track")
    path = storage.safe_join(settings.uploads_dir, row.stored_path)
    start, end = row.started_at, row.ended_at
    session.delete(row)
    session.flush()
    if start is None or end is None:
        return path, PlaceReport(default_policy(settings))
    photos = [
        p
        for p in photos_near_span(session, user_id, start, end, timedelta(seconds=86_400))
        if p.location_source in TRACK_SOURCES
    ]
    return path, refresh_positions(session, settings, photos)


def remove_track_file(session: Session, user_id: int, path: Path) -> None:
    """After the commit: remove a deleted track's file, unless the same file was imported again."""
    again = session.scalar(select(Track.id).where(Track.user_id == user_id, Track.sha256 == path.stem))
    if again is None:
        path.unlink(missing_ok=True)


# --- the camera's clock -----------------------------------------------------------------------------


def clock_shift_from_photo(recorded: datetime, shown: time) -> timedelta:
    """The camera's error from a photo of a clock: the time it shows minus the time the camera recorded.

    Only the time of day is typed, so the shift is taken within half a day either way (a camera
    more than 12 hours off is better fixed by typing the date as well, in the clock-fix form).
    """
    seen = datetime.combine(recorded.date(), shown)
    delta = seen - recorded.replace(tzinfo=None)
    day = timedelta(days=1)
    while delta > day / 2:
        delta -= day
    while delta <= -day / 2:
        delta += day
    return delta


def parse_shown_time(text: str) -> time:
    """ "14:05", "14:05:30", "2:05 pm" -> a time of day; InvalidInput otherwise."""
    value = text.strip().lower().replace(".", ":")
    for pattern in ("%H:%M:%S", "%H:%M", "%I:%M:%S %p", "%I:%M %p", "%I:%M:%S%p", "%I:%M%p"):
        try:
            return datetime.strptime(value, pattern).time()
        except ValueError:
            continue
    raise InvalidInput(f"not a time of day: {text!r} (such as 14:05 or 14:05:30)")


def camera_by_name(session: Session, user_id: int, trip_id: int, text: str) -> tuple[str | None, str | None]:
    """A trip's camera from "MAKE MODEL" as typed (or as the trip page labels it); InvalidInput if none."""
    from journal.services import editing

    wanted = " ".join(text.split()).lower()
    cameras = editing.trip_cameras(session, user_id, trip_id)
    for camera in cameras:
        names = {camera.label.lower(), " ".join(f"{camera.make or ''} {camera.model or ''}".split()).lower()}
        if wanted in names:
            return camera.make, camera.model
    known = ", ".join(f'"{c.label}"' for c in cameras) or "none"
    raise InvalidInput(f"no camera {text!r} in this trip (its cameras: {known})")


@dataclass(frozen=True)
class ClockFix:
    """A camera's clock fixed on a trip, and what the tracks then did."""

    shift: timedelta
    moved: int
    placing: PlaceReport

    def summary(self) -> str:
        """One line for the CLI and the trip page."""
        plural = "" if self.moved == 1 else "s"
        moved = f"moved the time of {self.moved} photo{plural} by {format_shift(self.shift)}"
        return moved if self.placing.no_tracks else f"{moved}; {self.placing.summary()}"


def format_shift(delta: timedelta) -> str:
    """timedelta(minutes=10) -> "+0:10"; -1 day 2 h -> "-1d 2:00"; seconds shown when there are some."""
    sign = "-" if delta < timedelta(0) else "+"
    total = abs(int(delta.total_seconds()))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")
    return f"{sign}{days}d {clock}" if days else f"{sign}{clock}"


def fix_camera_clock(
    session: Session,
    settings: Settings,
    user_id: int,
    trip_id: int,
    camera: tuple[str | None, str | None],
    delta: timedelta,
) -> ClockFix:
    """Shift one camera's photos on a trip by `delta`, then place the trip's photos from the tracks again."""
    from journal.services import editing

    moved = editing.shift_camera_clock(session, user_id, trip_id, camera, delta)
    report = place_trip(session, settings, user_id, trip_id)
    return ClockFix(delta, moved, report)


def _camera_of(photo: Photo) -> tuple[str | None, str | None]:
    return photo.make, photo.model


def preview_clock_from_photo(
    session: Session, settings: Settings, user_id: int, photo_id: int, shown: time
) -> ClockFix:
    """What fixing a camera's clock from a photo of a clock would do, without keeping it.

    The photo shows a clock (a phone's or a GPS's screen) reading `shown`; its camera's shift is the
    difference to the time the camera recorded. The change is made in the session (it flushes, as
    the real fix does, sharing its code): the caller rolls its transaction back, never commits it.
    """
    photo = session.get(Photo, photo_id)
    if photo is None or photo.user_id != user_id:
        raise NotFound("no such photo")
    if photo.taken_at is None:
        raise InvalidInput("that photo has no capture time to compare with")
    if photo.post is None or photo.post.trip_id is None:
        raise InvalidInput("that photo is in no trip: put it in one first")
    delta = clock_shift_from_photo(photo.taken_at, shown)
    if not delta:
        raise InvalidInput("the camera's clock was right: nothing to fix")
    return fix_camera_clock(session, settings, user_id, photo.post.trip_id, _camera_of(photo), delta)


def clock_from_photo(
    session: Session, settings: Settings, user_id: int, photo_id: int, shown: time
) -> ClockFix:
    """Fix a camera's clock from a photo of a clock showing `shown` (see preview_clock_from_photo)."""
    photo = session.get(Photo, photo_id)
    if photo is None or photo.user_id != user_id:
        raise NotFound("no such photo")
    if photo.taken_at is None or photo.post is None or photo.post.trip_id is None:
        raise InvalidInput("that photo has no capture time or is in no trip")
    delta = clock_shift_from_photo(photo.taken_at, shown)
    if not delta:
        raise InvalidInput("the camera's clock was right: nothing to fix")
    return fix_camera_clock(session, settings, user_id, photo.post.trip_id, _camera_of(photo), delta)
