"""Route splitting: timed positions in time order, cut where the traveller jumped (a flight, a long stop).

Pure standard library. Has its own haversine until geo.py's is settled; the two will be merged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from journal.errors import InvalidInput

logger = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088
DEFAULT_MAX_GAP_S = 6 * 3600.0
DEFAULT_MAX_JUMP_KM = 300.0


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
    """Great-circle distance in kilometres between two positions in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlam = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


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
