"""The lines a map page draws: recorded tracks, and the way between photos in time order.

The routes are simplified to a vertex budget, so a page stays quick with 100,000 photos.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from journal import route
from journal.models import Photo, Track
from journal.services.geotagging import TRACK_SOURCES
from journal.services.library import plausible
from journal.services.mapscope import Scope, in_scope

logger = logging.getLogger(__name__)

#: A route between photos is cut where consecutive photos are further apart than this (a flight).
#: Overnight at one place is not a gap; two days without a photo is.
ROUTE_MAX_GAP_S = 36 * 3600.0
ROUTE_MAX_JUMP_KM = 300.0
#: Most stops the route between photos is built from (twice the page's vertex budget).
ROUTE_MAX_STOPS = 8000


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


def track_lines(rows: Iterable[Track]) -> list[route.RouteLine]:
    """One line per recorded segment of each track (from its stored simplified geometry)."""
    lines = []
    for row in rows:
        for segment in row.geometry:
            coords = tuple((float(p[0] or 0.0), float(p[1] or 0.0)) for p in segment)
            start = next((float(p[2]) for p in segment if len(p) > 2 and p[2] is not None), None)
            if len(coords) >= 2:
                lines.append(route.RouteLine("track", coords, row.name or None, start))
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


def photo_lines(
    session: Session,
    scope: Scope,
    spans: Sequence[tuple[float, float]],
    *,
    stop_m: float = route.ROUTE_STOP_M,
) -> list[route.RouteLine]:
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
        if lat is not None
        and lon is not None
        and when is not None
        and not (spans and route.in_spans(when, spans))
    ]
    stops = route.thin(rows, stop_m, _latlon)
    while len(stops) > ROUTE_MAX_STOPS:  # scattered photos: coarser stops keep the page quick to build
        stop_m *= 2
        stops = route.thin(stops, stop_m, _latlon)
    points = [route.TimedPoint(lat, lon, datetime.fromtimestamp(when, UTC)) for lat, lon, when in stops]
    parts = route.split_route(points, max_gap_s=ROUTE_MAX_GAP_S, max_jump_km=ROUTE_MAX_JUMP_KM)
    return [
        route.RouteLine("photos", tuple((p.lat, p.lon) for p in part), None, part[0].time.timestamp())
        for part in parts
        if len(part) >= 2
    ]


def _latlon(row: tuple[float, float, float]) -> route.Position:
    return row[0], row[1]


def routes(
    session: Session,
    scope: Scope,
    *,
    bounds: tuple[route.Position, route.Position] | None = None,
    budget: int = route.ROUTE_BUDGET,
) -> route.Routes:
    """Tracks where there are any, the way between photos elsewhere; simplified to the vertex budget.

    `bounds` (the photos' extent) sets how coarse the route between photos may be.
    """
    rows = scope_tracks(session, scope)
    lines = track_lines(rows) + photo_lines(
        session, scope, _spans(rows), stop_m=route.stop_distance_m(bounds)
    )
    lines.sort(key=lambda line: (line.start is None, line.start or 0.0))
    distance = sum(row.distance_m for row in rows) / 1000 + sum(
        route.line_km(line.coords) for line in lines if line.kind == "photos"
    )
    return route.Routes(route.fit_budget(lines, budget), distance)
