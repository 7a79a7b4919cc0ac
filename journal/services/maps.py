"""Data for the map journal pages: points, routes, the story by day, photos without a position, tiles.

A page covers a *scope*: all of a user's photos, or one trip's. Everything here is built to stay quick
with 100,000 photos: the points go out as compact arrays, the routes are simplified to a vertex budget,
and the story comes in chunks of about `STORY_CHUNK` photos cut at day boundaries, walked with keyset
pagination on (sort_at, id) in time order (photos with no time last), so no query scans the library.

Story order: by `Photo.sort_at` (UTC time when known, else the camera's local time), oldest first.
A post appears once, where its earliest photo is, with all its photos; days are the local dates the
camera recorded. Services flush, never commit.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import ColumnElement, Float, Select, and_, case, func, or_, select, tuple_, type_coerce
from sqlalchemy.orm import Session

from journal import clock, geo, ids, route, storage, tiles
from journal.config import Settings
from journal.errors import InvalidInput, NotFound
from journal.models import Photo, Post, TileSet, Track, Trip
from journal.services.geotagging import TRACK_SOURCES
from journal.services.library import SortKey, plausible
from journal.services.owned import owned

logger = logging.getLogger(__name__)

#: Photos per story chunk (a chunk runs on to the end of its last day, up to STORY_CHUNK_MAX).
STORY_CHUNK = 60
STORY_CHUNK_MAX = 300
#: Thumbnails shown per post in the story (the rest as "+N").
ENTRY_THUMBS = 9
#: Place names listed per day.
DAY_PLACES = 5
#: Photos without a position listed per request.
UNLOCATED_PAGE = 24
#: Most route vertices put on one page (all lines together).
ROUTE_BUDGET = 4000
#: supercluster's options: clusters from the world view (zoom 2) to 17; at 18 every photo stands alone.
CLUSTER_OPTIONS = {"radius": 80, "minZoom": 2, "maxZoom": 17}
#: Most photo ids one details request may ask for.
MAX_DETAILS = 200
#: A route between photos is cut where consecutive photos are further apart than this (a flight).
#: Overnight at one place is not a gap; two days without a photo is.
ROUTE_MAX_GAP_S = 36 * 3600.0
ROUTE_MAX_JUMP_KM = 300.0
#: Photos closer than this to the previous stop are one stop of the route between photos; on a
#: page covering a large area the stops are further apart (diagonal / 2000), up to ROUTE_STOP_MAX_M.
ROUTE_STOP_M = 150.0
ROUTE_STOP_MAX_M = 5000.0
#: Most stops the route between photos is built from (twice the page's vertex budget).
ROUTE_MAX_STOPS = 8000

Position = tuple[float, float]
_S = TypeVar("_S", bound="Select[*tuple[Any, ...]]")


@dataclass(frozen=True)
class Scope:
    """Whose photos a map page shows: all of a user's, or one of their trips."""

    user_id: int
    trip_id: int | None = None


def scope_for(session: Session, user_id: int, trip_id: int | None = None) -> Scope:
    """A scope; NotFound for a trip that is missing or somebody else's."""
    if trip_id is not None:
        owned(session, Trip, trip_id, user_id, "trip")
    return Scope(user_id, trip_id)


def _in_scope(stmt: _S, scope: Scope) -> _S:
    """Photos of the scope (the trip alone selects the owner's photos: only they go on the trip's posts)."""
    stmt = stmt.select_from(Photo)
    if scope.trip_id is not None:
        return stmt.join(Post, Post.id == Photo.post_id).where(Post.trip_id == scope.trip_id)
    return stmt.where(Photo.user_id == scope.user_id)


# --- points and popups --------------------------------------------------------------------------------


def points_json(session: Session, scope: Scope) -> str:
    """The scope's located photos as ``{"count": n, "points": [[id, lat, lon], ...]}`` (6 decimals).

    On SQLite the array is built by the database (json_group_array: 3x faster at 100,000 photos).
    """
    located = _in_scope(select(Photo.id, Photo.lat, Photo.lon), scope).where(Photo.lat.is_not(None))
    if session.get_bind().dialect.name == "sqlite":
        inner = located.order_by(Photo.id).subquery()
        point = func.json_array(inner.c.id, func.round(inner.c.lat, 6), func.round(inner.c.lon, 6))
        count, body = session.execute(select(func.count(), func.json_group_array(point))).one()
        return f'{{"count":{count},"points":{body}}}'
    rows = session.execute(located.order_by(Photo.id)).all()
    text = ",".join(
        f"[{int(i)},{round(lat, 6)!r},{round(lon, 6)!r}]"
        for i, lat, lon in rows
        if lat is not None and lon is not None
    )
    return f'{{"count":{len(rows)},"points":[{text}]}}'


@dataclass(frozen=True)
class PhotoCard:
    """What a map popup shows for one photo; caption and place are untrusted text."""

    id: int
    sha256: str
    caption: str
    taken_at: datetime | None
    place: str | None
    source: str | None
    lat: float | None
    lon: float | None


def parse_ids(text: str | None) -> list[int]:
    """Photo ids from "1,2,3"; InvalidInput for anything else or too many."""
    parts = [part.strip() for part in (text or "").split(",") if part.strip()]
    if not parts or len(parts) > MAX_DETAILS or not all(ids.is_digits(part) for part in parts):
        raise InvalidInput(f"give 1 to {MAX_DETAILS} photo ids, like ids=1,2,3")
    # A number no row can have names no photo: left out, like another user's photo.
    return list(dict.fromkeys(n for n in map(ids.number, parts) if n <= ids.MAX_ID))


def photo_cards(session: Session, user_id: int, ids: Sequence[int]) -> list[PhotoCard]:
    """Popup details of the user's photos among ids (others' ids are left out)."""
    rows = session.execute(
        select(
            Photo.id,
            Photo.sha256,
            Post.caption,
            Photo.taken_at,
            Photo.place,
            Photo.location_source,
            Photo.lat,
            Photo.lon,
        )
        .outerjoin(Post, Post.id == Photo.post_id)
        .where(Photo.user_id == user_id, Photo.id.in_(list(ids)))
    ).all()
    return [PhotoCard(r[0], r[1], r[2] or "", r[3], r[4], r[5], r[6], r[7]) for r in rows]


# --- summary --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapSummary:
    """The numbers at the top of a map journal and where its photos are."""

    title: str
    trip: Trip | None
    located: int
    unlocated: int
    first_taken: datetime | None
    last_taken: datetime | None
    bounds: tuple[Position, Position] | None

    @property
    def total(self) -> int:
        """All photos of the scope."""
        return self.located + self.unlocated

    @property
    def days(self) -> int:
        """Calendar days from the first to the last photo (local dates)."""
        if self.first_taken is None or self.last_taken is None:
            return 0
        return (self.last_taken.date() - self.first_taken.date()).days + 1


def summary(session: Session, scope: Scope) -> MapSummary:
    """Counts, time span and bounds of the scope's photos (one pass over them)."""
    east_half = case((Photo.lon >= 0, Photo.lon))
    west_half = case((Photo.lon < 0, Photo.lon))
    stmt = _in_scope(
        select(
            func.count(),
            func.count(Photo.lat),
            func.min(Photo.lat),
            func.min(Photo.lon),
            func.max(Photo.lat),
            func.max(Photo.lon),
            func.min(east_half),
            func.max(west_half),
            func.min(plausible(Photo.taken_at)),
            func.max(plausible(Photo.taken_at)),
        ),
        scope,
    )
    total, located, south, west, north, east, east_min, west_max, first, last = session.execute(stmt).one()
    trip = session.get(Trip, scope.trip_id) if scope.trip_id is not None else None
    bounds = None
    if located and south is not None and west is not None and north is not None and east is not None:
        west, east = _short_span(float(west), float(east), east_min, west_max)
        bounds = ((float(south), west), (float(north), east))
    title = trip.title if trip else "All trips"
    return MapSummary(title, trip, located, total - located, first, last, bounds)


def _short_span(
    west: float, east: float, east_min: float | None, west_max: float | None
) -> tuple[float, float]:
    """West and east edges of the photos: across the antimeridian (east > 180) when that is shorter.

    From four aggregates (no scan in Python): the plain [min, max], or from the smallest longitude
    east of Greenwich round to the largest one west of it. That is the shortest box unless the photos
    circle the globe with a wide gap elsewhere, where both are about as wide as the world anyway.
    """
    if east_min is None or west_max is None:
        return west, east
    across = (float(east_min), float(west_max) + 360.0)
    return across if across[1] - across[0] < east - west else (west, east)


# --- routes ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteLine:
    """A line to draw: a recorded GPX track segment, or the way between photos in time order."""

    kind: Literal["track", "photos"]
    coords: tuple[Position, ...]
    name: str | None = None
    #: When the line starts (unix seconds), for putting lines in time order; None when unknown.
    start: float | None = None

    def as_json(self, centre: float = 0.0) -> dict[str, Any]:
        """The shape journal-map.js draws: longitudes unwrapped (the short way across the antimeridian)
        and shifted by whole turns to lie near the page's centre longitude; latitudes clamped to what
        Web Mercator draws."""
        coords = geo.unwrap_positions(self.coords)
        turn = geo.near(coords[0][1], centre) - coords[0][1] if coords else 0.0
        return {
            "kind": self.kind,
            "name": self.name,
            "coords": [[geo.draw_latitude(lat), round(lon + turn, 6)] for lat, lon in coords],
        }


@dataclass(frozen=True)
class Routes:
    """The lines of a page and the distance they cover."""

    lines: list[RouteLine] = field(default_factory=list)
    distance_km: float = 0.0


def scope_tracks(session: Session, scope: Scope) -> list[Track]:
    """The tracks of a scope: all the user's, or the trip's own plus unassigned ones within its time span."""
    stmt = select(Track).where(Track.user_id == scope.user_id).order_by(Track.started_at, Track.id)
    if scope.trip_id is None:
        return list(session.scalars(stmt))
    first, last = session.execute(
        _in_scope(
            select(func.min(plausible(Photo.taken_at_utc)), func.max(plausible(Photo.taken_at_utc))), scope
        )
    ).one()
    overlapping: ColumnElement[bool] = Track.trip_id == scope.trip_id
    if first is not None and last is not None:
        span = and_(Track.trip_id.is_(None), Track.started_at <= last, Track.ended_at >= first)
        overlapping = or_(overlapping, span)
    return list(session.scalars(stmt.where(overlapping)))


def track_lines(rows: Iterable[Track]) -> list[RouteLine]:
    """One line per recorded segment of each track (from its stored simplified geometry)."""
    lines = []
    for row in rows:
        for segment in row.geometry:
            coords = tuple((float(p[0] or 0.0), float(p[1] or 0.0)) for p in segment)
            start = next((float(p[2]) for p in segment if len(p) > 2 and p[2] is not None), None)
            if len(coords) >= 2:
                lines.append(RouteLine("track", coords, row.name or None, start))
    return lines


def _spans(rows: Iterable[Track]) -> list[tuple[float, float]]:
    """Time spans (unix seconds) of timed tracks, sorted: the photos in them lie on a drawn track."""
    return sorted(
        (r.started_at.timestamp(), r.ended_at.timestamp())
        for r in rows
        if r.started_at is not None and r.ended_at is not None
    )


def _epoch(session: Session, column: Any) -> ColumnElement[float]:
    """A naive-UTC datetime column as unix seconds, computed by the database (no parsing per row)."""
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(column) - 2440587.5) * 86400.0
    return type_coerce(func.extract("epoch", column), Float)


def stop_distance_m(bounds: tuple[Position, Position] | None) -> float:
    """How far apart two stops of the route between photos must be: finer for a town than for the world."""
    if bounds is None:
        return ROUTE_STOP_M
    (south, west), (north, east) = bounds
    diagonal_m = route.haversine_km(south, west, north, east) * 1000
    return min(ROUTE_STOP_MAX_M, max(ROUTE_STOP_M, diagonal_m / 2000))


def photo_lines(
    session: Session, scope: Scope, spans: Sequence[tuple[float, float]], *, stop_m: float = ROUTE_STOP_M
) -> list[RouteLine]:
    """The way between the scope's located photos in time order, cut at long gaps (route.split_route).

    Photos placed from a track, and photos taken while a track was recording, are left out: the
    track itself is drawn there. Photos within `stop_m` of the previous stop count as one stop.
    """
    stmt = _in_scope(select(Photo.lat, Photo.lon, _epoch(session, Photo.sort_at)), scope).where(
        Photo.lat.is_not(None),
        Photo.sort_at.is_not(None),
        or_(Photo.location_source.is_(None), Photo.location_source.not_in(TRACK_SOURCES)),
    )
    rows: list[tuple[float, float, float]] = [
        (lat, lon, when)
        for lat, lon, when in session.execute(stmt.order_by(Photo.sort_at, Photo.id))
        if lat is not None and lon is not None and when is not None and not (spans and _within(when, spans))
    ]
    stops = route.thin(rows, stop_m, _latlon)
    while len(stops) > ROUTE_MAX_STOPS:  # scattered photos: coarser stops keep the page quick to build
        stop_m *= 2
        stops = route.thin(stops, stop_m, _latlon)
    points = [route.TimedPoint(lat, lon, datetime.fromtimestamp(when, UTC)) for lat, lon, when in stops]
    parts = route.split_route(points, max_gap_s=ROUTE_MAX_GAP_S, max_jump_km=ROUTE_MAX_JUMP_KM)
    return [
        RouteLine("photos", tuple((p.lat, p.lon) for p in part), None, part[0].time.timestamp())
        for part in parts
        if len(part) >= 2
    ]


def _latlon(row: tuple[float, float, float]) -> Position:
    return row[0], row[1]


def _within(when: float, spans: Sequence[tuple[float, float]]) -> bool:
    """True when a time falls in one of the spans (sorted by start)."""
    i = bisect.bisect_right(spans, (when, math.inf))
    return i > 0 and spans[i - 1][0] <= when <= spans[i - 1][1]


def line_km(coords: Sequence[Position]) -> float:
    """Length of a line in kilometres."""
    return sum(route.haversine_km(*a, *b) for a, b in zip(coords, coords[1:], strict=False))


def fit_budget(lines: Sequence[RouteLine], budget: int = ROUTE_BUDGET) -> list[RouteLine]:
    """The lines simplified (Douglas-Peucker) just enough to hold at most `budget` vertices together.

    Each line is ranked once (route.simplify_ranks); the tolerance is then the one that keeps the
    `budget` best-ranked vertices. Coordinates are rounded to 5 decimals (about 1 m).
    """
    ranks = [route.simplify_ranks(geo.unwrap_positions(line.coords)) for line in lines]
    ordered = sorted((r for line_ranks in ranks for r in line_ranks), reverse=True)
    tolerance = ordered[budget] if len(ordered) > budget else -1.0
    return [
        RouteLine(
            line.kind,
            tuple(
                (round(lat, 5), round(lon, 5))
                for (lat, lon), rank in zip(line.coords, r, strict=True)
                if rank > tolerance
            ),
            line.name,
            line.start,
        )
        for line, r in zip(lines, ranks, strict=True)
    ]


def routes(
    session: Session,
    scope: Scope,
    *,
    bounds: tuple[Position, Position] | None = None,
    budget: int = ROUTE_BUDGET,
) -> Routes:
    """Tracks where there are any, the way between photos elsewhere; simplified to the vertex budget.

    `bounds` (the photos' extent) sets how coarse the route between photos may be.
    """
    rows = scope_tracks(session, scope)
    lines = track_lines(rows) + photo_lines(session, scope, _spans(rows), stop_m=stop_distance_m(bounds))
    lines.sort(key=lambda line: (line.start is None, line.start or 0.0))
    distance = sum(row.distance_m for row in rows) / 1000 + sum(
        line_km(line.coords) for line in lines if line.kind == "photos"
    )
    return Routes(fit_budget(lines, budget), distance)


def extent(
    bounds: tuple[Position, Position] | None, lines: Sequence[RouteLine]
) -> tuple[Position, Position] | None:
    """Bounds around the photos' bounds and the routes; east exceeds 180 when they cross the antimeridian."""
    lats = [lat for line in lines for lat, _ in line.coords]
    lons = [lon for line in lines for _, lon in line.coords]
    if bounds is not None:
        lats += [bounds[0][0], bounds[1][0]]
        lons += [bounds[0][1], bounds[1][1]]
    span = geo.unwrapped_span(lons)
    if not lats or span is None:
        return None
    return (min(lats), span[0]), (max(lats), span[1])


# --- the story ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoryPhoto:
    """One photo in the story."""

    id: int
    sha256: str
    web_width: int
    web_height: int
    taken_at: datetime | None
    place: str | None
    lat: float | None
    lon: float | None
    source: str | None

    @property
    def located(self) -> bool:
        """True when the photo has a position (is on the map)."""
        return self.lat is not None and self.lon is not None


@dataclass(frozen=True)
class StoryEntry:
    """A post in the story: its caption and photos (in the post's order), at its earliest photo."""

    post_id: int | None
    caption: str
    photos: tuple[StoryPhoto, ...]
    lead: StoryPhoto
    day: date | None

    @property
    def shown(self) -> tuple[StoryPhoto, ...]:
        """The photos given a thumbnail."""
        return self.photos[:ENTRY_THUMBS]

    @property
    def more(self) -> int:
        """Photos left out of the thumbnails."""
        return max(0, len(self.photos) - ENTRY_THUMBS)

    @property
    def photo_ids(self) -> list[int]:
        """All photo ids of the entry."""
        return [p.id for p in self.photos]


@dataclass(frozen=True)
class StoryDay:
    """Story entries of one local day (day None: photos with no known time)."""

    day: date | None
    number: int | None
    places: tuple[str, ...]
    entries: tuple[StoryEntry, ...]

    @property
    def key(self) -> str:
        """A stable key for the day ("2024-05-01", or "undated")."""
        return self.day.isoformat() if self.day else "undated"

    @property
    def photo_ids(self) -> list[int]:
        """The located photos of the day (for "show this day on the map")."""
        return [p.id for entry in self.entries for p in entry.photos if p.located]

    @property
    def photo_count(self) -> int:
        """All photos of the day."""
        return sum(len(entry.photos) for entry in self.entries)

    @property
    def blocks(self) -> list[StoryBlock]:
        """The entries as the story lays them out: runs of single photos without a caption form a grid."""
        blocks: list[StoryBlock] = []
        for entry in self.entries:
            compact = not entry.caption and len(entry.photos) == 1
            if compact and blocks and blocks[-1].grid:
                blocks[-1].entries.append(entry)
            else:
                blocks.append(StoryBlock(compact, [entry]))
        return blocks


@dataclass(frozen=True)
class StoryBlock:
    """One entry with its caption, or (grid) a run of single photos without one."""

    grid: bool
    entries: list[StoryEntry]


@dataclass(frozen=True)
class StoryChunk:
    """A run of story days, with cursors to load the runs before and after (None at either end)."""

    days: tuple[StoryDay, ...]
    before: str | None
    after: str | None


@dataclass(frozen=True)
class _Row:
    id: int
    post_id: int | None
    sort_at: datetime | None
    taken_at: datetime | None
    #: The clock looks wrong: the photo keeps its place in the order but belongs to no day.
    clock_wrong: bool = False

    @property
    def key(self) -> SortKey:
        return SortKey(self.sort_at, self.id)

    @property
    def day(self) -> date | None:
        when = self.taken_at or self.sort_at
        return when.date() if when and not self.clock_wrong else None


_ROW_COLUMNS = (Photo.id, Photo.post_id, Photo.sort_at, Photo.taken_at, Photo.clock_wrong)


def _order_rows(
    session: Session, scope: Scope, start: SortKey | None, *, forward: bool, limit: int
) -> list[_Row]:
    """Up to `limit` photos after (forward) or before `start`, nearest first; time order, untimed last."""
    base = _in_scope(select(*_ROW_COLUMNS), scope)
    segments = [True, False] if forward else [False, True]
    if start is not None:
        segments = segments[segments.index(start.sort_at is not None) :]
    rows: list[_Row] = []
    for i, timed in enumerate(segments):
        stmt = _segment(base, timed, start if i == 0 else None, forward)
        rows += [_Row(*r) for r in session.execute(stmt.limit(limit - len(rows))).all()]
        if len(rows) >= limit:
            break
    return rows


def _segment(stmt: _S, timed: bool, bound: SortKey | None, forward: bool) -> _S:
    """Photos with a time (by time, then id) or without one (by id), beyond a bound in one direction."""
    if not timed:
        stmt = stmt.where(Photo.sort_at.is_(None))
        if bound is not None:
            stmt = stmt.where(Photo.id > bound.id if forward else Photo.id < bound.id)
        return stmt.order_by(Photo.id if forward else Photo.id.desc())
    stmt = stmt.where(Photo.sort_at.is_not(None))
    if bound is not None and bound.sort_at is not None:
        key = tuple_(Photo.sort_at, Photo.id)
        stmt = stmt.where(key > (bound.sort_at, bound.id) if forward else key < (bound.sort_at, bound.id))
    if forward:
        return stmt.order_by(Photo.sort_at, Photo.id)
    return stmt.order_by(Photo.sort_at.desc(), Photo.id.desc())


def _cut(rows: list[_Row], size: int) -> list[_Row]:
    """The first `size` rows and the rest of the last day among them (rows nearest first)."""
    if len(rows) <= size:
        return rows
    for i in range(size, len(rows)):
        if rows[i].day != rows[i - 1].day:
            return rows[:i]
    return rows


_PHOTO_COLUMNS = (
    Photo.id,
    Photo.sha256,
    Photo.web_width,
    Photo.web_height,
    Photo.taken_at,
    Photo.place,
    Photo.lat,
    Photo.lon,
    Photo.location_source,
)


def _post_photos(session: Session, post_ids: set[int]) -> dict[int, list[tuple[StoryPhoto, _Row]]]:
    """Every photo of these posts in post order, with its order key."""
    found: dict[int, list[tuple[StoryPhoto, _Row]]] = {}
    if not post_ids:
        return found
    stmt = (
        select(*_PHOTO_COLUMNS, Photo.post_id, Photo.sort_at, Photo.clock_wrong)
        .where(Photo.post_id.in_(post_ids))
        .order_by(Photo.post_id, Photo.position, Photo.id)
    )
    for r in session.execute(stmt):
        photo = StoryPhoto(*r[:9])
        post_id = int(r[9] or 0)  # never 0: these are the posts' own photos
        found.setdefault(post_id, []).append((photo, _Row(photo.id, post_id, r[10], photo.taken_at, r[11])))
    return found


def _order(row: _Row) -> tuple[bool, datetime, int]:
    return (row.sort_at is None, row.sort_at or datetime.min, row.id)


def _entries(session: Session, rows: Sequence[_Row]) -> list[StoryEntry]:
    """Story entries for rows in time order: one per post, at the post's earliest photo."""
    posts = _post_photos(session, {r.post_id for r in rows if r.post_id is not None})
    captions = dict(session.execute(select(Post.id, Post.caption).where(Post.id.in_(list(posts)))).all())
    loose = {r.id for r in rows if r.post_id is None}
    singles = {}
    if loose:
        for r in session.execute(select(*_PHOTO_COLUMNS).where(Photo.id.in_(loose))):
            singles[r[0]] = StoryPhoto(*r)
    entries = []
    for row in rows:
        if row.post_id is None:
            photo = singles[row.id]
            entries.append(StoryEntry(None, "", (photo,), photo, row.day))
            continue
        members = posts.get(row.post_id, [])
        lead = min(members, key=lambda m: _order(m[1]), default=None)
        if lead is None or lead[0].id != row.id:
            continue  # shown with the post, at its earliest photo
        photos = tuple(m[0] for m in members)
        entries.append(StoryEntry(row.post_id, captions.get(row.post_id) or "", photos, lead[0], row.day))
    return entries


def _places(entries: Sequence[StoryEntry]) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for entry in entries:
        for photo in entry.photos:
            if photo.place:
                names.setdefault(photo.place)
    return tuple(names)[:DAY_PLACES]


def _days(entries: Sequence[StoryEntry], first_day: date | None) -> tuple[StoryDay, ...]:
    groups: list[tuple[date | None, list[StoryEntry]]] = []
    for entry in entries:
        day = entry.day
        if not groups or groups[-1][0] != day:
            groups.append((day, []))
        groups[-1][1].append(entry)
    return tuple(
        StoryDay(
            day,
            (day - first_day).days + 1 if day and first_day else None,
            _places(group),
            tuple(group),
        )
        for day, group in groups
    )


def first_day(session: Session, scope: Scope) -> date | None:
    """The local date of the scope's earliest photo whose clock can be right (day 1 of a trip)."""
    stmt = _in_scope(select(*_ROW_COLUMNS), scope).where(
        Photo.sort_at.is_not(None), Photo.clock_wrong.is_(False)
    )
    row = session.execute(stmt.order_by(Photo.sort_at, Photo.id).limit(1)).first()
    return _Row(*row).day if row else None


def parse_cursor(token: str | None) -> SortKey | None:
    """A story cursor, or None for none; InvalidInput when malformed."""
    return SortKey.parse(token) if token else None


def _start_of_day_before(session: Session, scope: Scope, key: SortKey, day: date | None) -> SortKey | None:
    """The cursor just before the first photo of `day` that precedes `key` (None: the story's start)."""
    back = _order_rows(session, scope, key, forward=False, limit=STORY_CHUNK_MAX)
    for i, row in enumerate(back):
        if row.day != day:
            return row.key
        if i == len(back) - 1 and len(back) == STORY_CHUNK_MAX:
            return row.key
    return None


def story_chunk(
    session: Session,
    scope: Scope,
    *,
    after: SortKey | None = None,
    before: SortKey | None = None,
    around: int | None = None,
    size: int = STORY_CHUNK,
    number_days: bool = False,
) -> StoryChunk:
    """A run of story days: from the start, `after` a cursor, `before` one, or around a photo's day."""
    day_one = first_day(session, scope) if number_days else None
    if around is not None:
        after = _around(session, scope, around)
    forward = before is None
    fetched = _order_rows(
        session, scope, after if forward else before, forward=forward, limit=STORY_CHUNK_MAX + 1
    )
    rows = _cut(fetched[:STORY_CHUNK_MAX], size)
    more_beyond = len(fetched) > len(rows)
    if forward:
        more_before, more_after = after is not None, more_beyond
    else:
        rows.reverse()
        more_before, more_after = more_beyond, True
    days = _days(_entries(session, rows), day_one)
    first_key = rows[0].key.token() if rows and more_before else None
    last_key = rows[-1].key.token() if rows and more_after else None
    return StoryChunk(days, first_key, last_key)


def _around(session: Session, scope: Scope, photo_id: int) -> SortKey | None:
    """The cursor that starts the story at the beginning of a photo's day."""
    row = session.execute(
        select(*_ROW_COLUMNS).where(Photo.id == photo_id, Photo.user_id == scope.user_id)
    ).first()
    if row is None:
        raise NotFound("no such photo")
    target = _Row(*row)
    return _start_of_day_before(session, scope, target.key, target.day)


# --- photos without a position --------------------------------------------------------------------------


@dataclass(frozen=True)
class UnlocatedPage:
    """Photos of a scope with no position, a page at a time in time order."""

    photos: list[StoryPhoto]
    total: int
    after: str | None


def unlocated(
    session: Session, scope: Scope, *, after: SortKey | None = None, limit: int = UNLOCATED_PAGE
) -> UnlocatedPage:
    """The next photos without a position, oldest first (photos with no time last)."""
    base = _in_scope(select(*_PHOTO_COLUMNS, Photo.sort_at), scope).where(Photo.lat.is_(None))
    segments = [True, False]
    if after is not None:
        segments = segments[segments.index(after.sort_at is not None) :]
    rows: list[Any] = []
    for i, timed in enumerate(segments):
        stmt = _segment(base, timed, after if i == 0 else None, True)
        rows += session.execute(stmt.limit(limit + 1 - len(rows))).all()
        if len(rows) > limit:
            break
    total = session.scalar(_in_scope(select(func.count()), scope).where(Photo.lat.is_(None))) or 0
    page = rows[:limit]
    cursor = SortKey(page[-1][9], page[-1][0]).token() if len(rows) > limit else None
    return UnlocatedPage([StoryPhoto(*r[:9]) for r in page], total, cursor)


# --- trips on the all-trips page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TripLink:
    """A trip listed on the all-trips map, with its photo count and dates."""

    id: int
    title: str
    photos: int
    first_taken: datetime | None
    last_taken: datetime | None


def trip_links(session: Session, user_id: int) -> list[TripLink]:
    """The user's trips, most recent first, with photo counts and local date spans."""
    stats = {
        trip_id: (count, first, last)
        for trip_id, count, first, last in session.execute(
            select(
                Post.trip_id,
                func.count(Photo.id),
                func.min(plausible(Photo.taken_at)),
                func.max(plausible(Photo.taken_at)),
            )
            .join(Photo, Photo.post_id == Post.id)
            .where(Post.user_id == user_id, Post.trip_id.is_not(None))
            .group_by(Post.trip_id)
        )
    }
    links = [
        TripLink(trip.id, trip.title, *stats.get(trip.id, (0, None, None)))
        for trip in session.scalars(select(Trip).where(Trip.user_id == user_id))
    ]
    # Newest first, ties by id; compared as datetimes (no timestamps: year 1 has none), undated last.
    by_id = sorted(links, key=lambda t: t.id)
    dated = sorted((t for t in by_id if t.first_taken is not None), key=_first_taken, reverse=True)
    return dated + [t for t in by_id if t.first_taken is None]


def _first_taken(link: TripLink) -> datetime:
    assert link.first_taken is not None
    return link.first_taken


# --- offline tile sets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TileLayer:
    """The registered tile sets as one layer: zoom range, coverage and attribution."""

    min_zoom: int
    max_zoom: int
    bounds: tuple[Position, Position] | None
    attribution: str


def register_tile_set(session: Session, settings: Settings, source: Path, *, link: bool = False) -> TileSet:
    """Check a tile set file and record it; copied into the data home's tiles/ unless `link`.

    Registering the same file again updates its record. Flushes, never commits.
    """
    info = tiles.read_info(source)
    path = source.resolve() if link else _copy_into(settings, source)
    row = session.scalar(select(TileSet).where(TileSet.path == str(path))) or TileSet(path=str(path))
    row.name = info.name
    row.format = info.format
    row.tile_type = info.tile_type
    row.min_zoom, row.max_zoom = info.min_zoom, info.max_zoom
    row.west, row.south, row.east, row.north = info.bounds or (None, None, None, None)
    row.attribution = info.attribution
    session.add(row)
    session.flush()
    return row


def _copy_into(settings: Settings, source: Path) -> Path:
    """Copy a tile set into tiles/ (atomically) under its own name; the copy is reused when identical."""
    target = settings.tiles_dir / Path(source.name).name
    if target.resolve() == source.resolve():
        return target.resolve()
    if target.exists() and storage.sha256_file(target) != storage.sha256_file(source):
        raise InvalidInput(f"{target} exists with other content: rename the file, or register it with --link")
    if not target.exists():
        storage.copy_atomic(source, target, staging=settings.staging_dir)
    return target.resolve()


def tile_sets(session: Session) -> list[TileSet]:
    """Registered tile sets, newest first (a newer set wins where sets overlap)."""
    return list(session.scalars(select(TileSet).order_by(TileSet.registered_at.desc(), TileSet.id.desc())))


def tile_layer(session: Session) -> TileLayer | None:
    """All registered tile sets as one layer for the map, or None when there are none."""
    sets = tile_sets(session)
    if not sets:
        return None
    boxes = [box for box in (_box(s) for s in sets) if box is not None]
    bounds = None
    if len(boxes) == len(sets):  # a set without bounds covers the world
        bounds = (
            (min(b[1] for b in boxes), min(b[0] for b in boxes)),
            (max(b[3] for b in boxes), max(b[2] for b in boxes)),
        )
    attribution = " | ".join(dict.fromkeys(s.attribution for s in sets if s.attribution))
    return TileLayer(min(s.min_zoom for s in sets), max(s.max_zoom for s in sets), bounds, attribution)


def _box(tile_set: TileSet) -> tiles.Bounds | None:
    """A set's (west, south, east, north), or None when it covers the world."""
    w, s, e, n = tile_set.west, tile_set.south, tile_set.east, tile_set.north
    return None if w is None or s is None or e is None or n is None else (w, s, e, n)


def find_tile(session: Session, z: int, x: int, y: int) -> tuple[bytes, str] | None:
    """A tile's bytes and media type from the newest set that has it, or None."""
    tiles.check_tile(z, x, y)
    box = tiles.tile_bounds(z, x, y)
    for s in tile_sets(session):
        covered = _box(s)
        if not s.min_zoom <= z <= s.max_zoom or (covered is not None and not tiles.intersects(covered, box)):
            continue
        data = tiles.read_tile(Path(s.path), s.format, z, x, y)
        if data is not None:
            return data, tiles.MEDIA_TYPES.get(s.tile_type, "application/octet-stream")
    return None


# --- page config --------------------------------------------------------------------------------------------


def map_config(
    *,
    urls: Callable[[str], str],
    bounds: tuple[Position, Position] | None,
    lines: Sequence[RouteLine],
    layer: TileLayer | None,
    online_tiles_url: str,
) -> dict[str, Any]:
    """The JSON config journalMap.create() reads; `urls` maps a name to its URL on this site.

    `bounds` may cross the antimeridian (east > 180, as extent() gives them); the routes are drawn
    in the same frame, around the bounds' centre longitude.
    """
    centre = (bounds[0][1] + bounds[1][1]) / 2 if bounds else 0.0
    config: dict[str, Any] = {
        "pointsUrl": urls("points"),
        "detailsUrl": urls("details"),
        "thumbUrl": urls("thumb"),
        "placeUrl": urls("place"),
        "workerUrl": urls("worker"),
        "scripts": {"supercluster": urls("supercluster"), "cluster": urls("cluster")},
        "cluster": dict(CLUSTER_OPTIONS),
        "bounds": draw_bounds(bounds),
        "fitPoints": False,
        "routes": [line.as_json(centre) for line in lines],
        "tiles": None,
        "onlineTiles": {"url": online_tiles_url, "attribution": "Online map"} if online_tiles_url else None,
    }
    if layer is not None:
        config["tiles"] = {
            "url": urls("tiles"),
            "minZoom": layer.min_zoom,
            "maxZoom": layer.max_zoom,
            "bounds": [list(layer.bounds[0]), list(layer.bounds[1])] if layer.bounds else None,
            "attribution": layer.attribution,
        }
    return config


def draw_bounds(bounds: tuple[Position, Position] | None) -> list[list[float]] | None:
    """Bounds as Leaflet fits them: latitudes clamped to Web Mercator (a photo at a pole draws at 85.05)."""
    if bounds is None:
        return None
    (south, west), (north, east) = bounds
    return [[geo.draw_latitude(south), west], [geo.draw_latitude(north), east]]


def config_json(config: dict[str, Any]) -> str:
    """Config as JSON safe inside a <script type="application/json"> block."""
    text = json.dumps(config, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def local_time(value: datetime | None) -> str | None:
    """A photo's local time as the popup shows it ("Thu 5 Aug 2010, 16:40")."""
    return clock.strftime(value, "%a %-d %b %Y, %H:%M") if value else None
