"""Route splitting: timed positions in time order, cut where the traveller jumped (a flight, a long stop).

Pure standard library; distances come from journal.geo. Also a Douglas-Peucker simplifier for drawing
long routes on a page with a bounded number of vertices.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from journal.errors import InvalidInput
from journal.geo import haversine_m

logger = logging.getLogger(__name__)

DEFAULT_MAX_GAP_S = 6 * 3600.0
DEFAULT_MAX_JUMP_KM = 300.0

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
    if dx == 0 and dy == 0:
        return math.hypot(px - ax, py - ay)
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
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
