"""Route splitting: timed positions in time order, cut where the traveller jumped (a flight, a long stop).

Pure standard library; distances come from journal.geo. Also a Douglas-Peucker simplifier for drawing
long routes on a page with a bounded number of vertices, and the lines a map draws (RouteLine): fitted
to that budget, measured, and framed (extent) the short way across the antimeridian.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from journal import geo
from journal.errors import InvalidInput
from journal.geo import haversine_m

logger = logging.getLogger(__name__)

DEFAULT_MAX_GAP_S = 6 * 3600.0
DEFAULT_MAX_JUMP_KM = 300.0
#: Most route vertices put on one page (all lines together).
ROUTE_BUDGET = 4000
#: Photos closer than this to the previous stop are one stop of the route between photos; on a
#: page covering a large area the stops are further apart (diagonal / 2000), up to ROUTE_STOP_MAX_M.
ROUTE_STOP_M = 150.0
ROUTE_STOP_MAX_M = 5000.0

Position = tuple[float, float]

_T = TypeVar("_T")


@dataclass(frozen=True)
class TimedPoint:
    """A position (WGS84 degrees) at a moment; all points of one route are either aware or naive."""

    lat: float
    lon: float
    time: datetime

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and -90 <= self.lat <= 90):
            raise InvalidInput(f"latitude out of range: {self.lat!r}")
        if not (math.isfinite(self.lon) and -180 <= self.lon <= 180):
            raise InvalidInput(f"longitude out of range: {self.lon!r}")


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres between two positions in degrees (geo.haversine_m / 1000)."""
    return haversine_m(lat1, lon1, lat2, lon2) / 1000.0


def is_break(previous: TimedPoint, current: TimedPoint, *, max_gap_s: float, max_jump_km: float) -> bool:
    """True when two consecutive points are too far apart in time or in space to join with a line."""
    if (current.time - previous.time).total_seconds() > max_gap_s:
        return True
    return haversine_km(previous.lat, previous.lon, current.lat, current.lon) > max_jump_km


def split_route(
    points: Sequence[TimedPoint],
    *,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    max_jump_km: float = DEFAULT_MAX_JUMP_KM,
) -> list[list[TimedPoint]]:
    """Order points by time (stable for equal times) and cut at long gaps in time or distance.

    Every point lands in exactly one part; a part may hold a single point (a lone photo between
    two flights), which a caller drawing lines can skip.
    """
    if max_gap_s <= 0 or max_jump_km <= 0:
        raise InvalidInput("max_gap_s and max_jump_km must be positive")
    try:
        ordered = sorted(points, key=lambda point: point.time)
    except TypeError as exc:  # comparing naive with aware datetimes
        raise InvalidInput("route points mix naive and time-zone-aware times") from exc
    parts: list[list[TimedPoint]] = []
    for point in ordered:
        if parts and not is_break(parts[-1][-1], point, max_gap_s=max_gap_s, max_jump_km=max_jump_km):
            parts[-1].append(point)
        else:
            parts.append([point])
    return parts


def _offset(point: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance (in degrees, flat) from point to the segment a-b."""
    (py, px), (ay, ax), (by, bx) = point, a, b
    dx, dy = bx - ax, by - ay
    length = math.hypot(dx, dy)  # hypot neither underflows nor overflows where dx*dx + dy*dy would
    if length == 0:
        return math.hypot(px - ax, py - ay)
    along = ((px - ax) * (dx / length) + (py - ay) * (dy / length)) / length
    t = max(0.0, min(1.0, along))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


#: Douglas-Peucker's searches may look at this many points per point and level (log2 n levels) before
#: the rest of the spans are split at their middle: DP is quadratic on crafted input (a zig-zag whose
#: amplitude grows makes every search peel off one point), the middle split is never worse than n log n.
SEARCH_BUDGET = 2


def simplify_ranks(points: Sequence[tuple[float, float]]) -> list[float]:
    """For each (lat, lon) point, the Douglas-Peucker tolerance (degrees) up to which it is kept.

    One pass gives every tolerance at once: ``simplify(points, t)`` keeps exactly the points whose
    rank is above t (the ends rank infinite). A point's rank is its distance from the segment it
    splits, capped by the rank of the point that made that segment, so ranks shrink down the tree.
    Iterative (no recursion limit on long tracks); flat degrees are fine for drawing. Exact while
    the searches stay within SEARCH_BUDGET x n x log2(n) looks; past that, the spans left are split
    at their middle point (ranked the same way), so crafted input costs O(n log n), never O(n^2).
    """
    ranks = [0.0] * len(points)
    if not points:
        return ranks
    ranks[0] = ranks[-1] = math.inf
    budget = SEARCH_BUDGET * len(points) * max(1, len(points).bit_length())
    stack = [(0, len(points) - 1, math.inf)]
    while stack:
        first, last, cap = stack.pop()
        if last - first < 2:
            continue
        a, b = points[first], points[last]
        if budget > 0:
            budget -= last - first - 1
            worst, index = 0.0, -1
            for i in range(first + 1, last):
                distance = _offset(points[i], a, b)
                if distance > worst:
                    worst, index = distance, i
        else:
            index = (first + last) // 2
            worst = _offset(points[index], a, b)
        if index >= 0:
            rank = min(worst, cap)
            ranks[index] = rank
            stack.append((first, index, rank))
            stack.append((index, last, rank))
    return ranks


def simplify_indexes(points: Sequence[tuple[float, float]], tolerance: float) -> list[int]:
    """Indexes of the (lat, lon) points Douglas-Peucker keeps at `tolerance` degrees; ends always kept."""
    return [i for i, rank in enumerate(simplify_ranks(points)) if rank > tolerance]


def simplify(points: Sequence[tuple[float, float]], tolerance: float) -> list[tuple[float, float]]:
    """The (lat, lon) points Douglas-Peucker keeps at `tolerance` degrees (first and last always)."""
    return [points[i] for i in simplify_indexes(points, tolerance)]


def thin(points: Sequence[_T], min_m: float, position: Callable[[_T], tuple[float, float]]) -> list[_T]:
    """Drop points closer than min_m to the last one kept (many photos at one stop become one vertex).

    `position` gives a point's (lat, lon). The first and last points are always kept. Uses a
    flat-earth distance: exact enough at these short ranges.
    """
    if len(points) <= 2:
        return list(points)
    kept = [points[0]]
    last_lat, last_lon = position(points[0])
    scale = math.cos(math.radians(last_lat))
    limit = (min_m / 111_195.0) ** 2  # metres to degrees of latitude, squared
    for point in points[1:-1]:
        lat, lon = position(point)
        dx, dy = ((lon - last_lon + 180) % 360 - 180) * scale, lat - last_lat  # the short way round
        if dx * dx + dy * dy >= limit:
            kept.append(point)
            last_lat, last_lon, scale = lat, lon, math.cos(math.radians(lat))
    kept.append(points[-1])
    return kept


# --- lines to draw on a map ---------------------------------------------------------------------------


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


def stop_distance_m(bounds: tuple[Position, Position] | None) -> float:
    """How far apart two stops of the route between photos must be: finer for a town than for the world."""
    if bounds is None:
        return ROUTE_STOP_M
    (south, west), (north, east) = bounds
    diagonal_m = haversine_km(south, west, north, east) * 1000
    return min(ROUTE_STOP_MAX_M, max(ROUTE_STOP_M, diagonal_m / 2000))


def in_spans(when: float, spans: Sequence[tuple[float, float]]) -> bool:
    """True when a time falls in one of the spans (sorted by start)."""
    i = bisect.bisect_right(spans, (when, math.inf))
    return i > 0 and spans[i - 1][0] <= when <= spans[i - 1][1]


def line_km(coords: Sequence[Position]) -> float:
    """Length of a line in kilometres."""
    return sum(haversine_km(*a, *b) for a, b in zip(coords, coords[1:], strict=False))


def fit_budget(lines: Sequence[RouteLine], budget: int = ROUTE_BUDGET) -> list[RouteLine]:
    """The lines simplified (Douglas-Peucker) just enough to hold at most `budget` vertices together.

    Each line is ranked once (simplify_ranks); the tolerance is then the one that keeps the
    `budget` best-ranked vertices. Coordinates are rounded to 5 decimals (about 1 m).
    """
    ranks = [simplify_ranks(geo.unwrap_positions(line.coords)) for line in lines]
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
