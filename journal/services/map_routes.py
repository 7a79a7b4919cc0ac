"""The lines a map page draws: recorded tracks, and the way between photos in time order.

The routes are simplified to a vertex budget, so a page stays quick with 100,000 photos.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Float, and_, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from journal import geo, route
from journal.models import Photo, Track
from journal.services.geotagging import TRACK_SOURCES
from journal.services.library import plausible
from journal.services.mapscope import Scope, in_scope

logger = logging.getLogger(__name__)

#: Most route vertices put on one page (all lines together).
ROUTE_BUDGET = 4000
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
        in_scope(
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
    stmt = in_scope(select(Photo.lat, Photo.lon, _epoch(session, Photo.sort_at)), scope).where(
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
