"""The map journal page: its summary, the trips listed on it, and the config JSON journal-map.js reads.

A page covers a *scope* (journal.services.mapscope): all of a user's photos, or one trip's. Its
points, routes and story come from map_points, map_routes and map_story; its tiles from tilesets.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from journal import clock, geo
from journal.models import Photo, Post, Trip
from journal.route import Position, RouteLine
from journal.services.library import plausible
from journal.services.mapscope import Scope, in_scope
from journal.services.tilesets import TileLayer

logger = logging.getLogger(__name__)

#: supercluster's options: clusters from the world view (zoom 2) to 17; at 18 every photo stands alone.
CLUSTER_OPTIONS = {"radius": 80, "minZoom": 2, "maxZoom": 17}


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
    stmt = in_scope(
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
