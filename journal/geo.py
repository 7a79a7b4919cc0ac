"""Plain geometry on WGS84 positions: DMS conversion, distances, bounding boxes. Standard library only."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

#: Mean Earth radius (IUGG), metres; haversine distances are good to about 0.5 %.
EARTH_RADIUS_M = 6_371_008.8

_REF_LIMITS = {"N": 90.0, "S": 90.0, "E": 180.0, "W": 180.0}


def dms_to_decimal(degrees: float, minutes: float, seconds: float, ref: str) -> float | None:
    """Signed decimal degrees from degrees/minutes/seconds and a N/S/E/W reference; None when invalid."""
    ref = ref.strip().upper()
    limit = _REF_LIMITS.get(ref)
    parts = (float(degrees), float(minutes), float(seconds))
    if limit is None or not all(math.isfinite(p) and p >= 0 for p in parts):
        return None
    # No check that minutes/seconds are < 60: cameras write e.g. 37.63 minutes and 0 seconds (EXIF 2.32,
    # GPSLatitude allows "dd/1, mmmm/100, 0/1"); only the result has to be a position.
    value = parts[0] + parts[1] / 60 + parts[2] / 3600
    if value > limit:
        return None
    return -value if ref in ("S", "W") else value


def is_valid_position(lat: float, lon: float) -> bool:
    """True for finite latitude/longitude within [-90, 90] x [-180, 180]."""
    return math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180


def is_null_island(lat: float, lon: float) -> bool:
    """True for exactly 0,0: what devices write when they have no fix, not a real position."""
    return lat == 0 and lon == 0


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two positions in decimal degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class GeoPoint:
    """A WGS84 position in decimal degrees, with an optional altitude in metres."""

    lat: float
    lon: float
    alt: float | None = None

    def __post_init__(self) -> None:
        if not is_valid_position(self.lat, self.lon):
            raise ValueError(f"not a position: lat={self.lat!r}, lon={self.lon!r}")
        if self.alt is not None and not math.isfinite(self.alt):
            raise ValueError(f"not an altitude: {self.alt!r}")


@dataclass(frozen=True)
class BoundingBox:
    """South/west/north/east edges; west > east when the box crosses the antimeridian."""

    south: float
    west: float
    north: float
    east: float

    @property
    def crosses_antimeridian(self) -> bool:
        """True when the box spans 180 degrees longitude (for example a trip around Fiji)."""
        return self.west > self.east


def bounding_box(points: Iterable[GeoPoint]) -> BoundingBox | None:
    """The smallest box holding every point (None for no points), wrapping at the antimeridian if shorter."""
    pts = list(points)
    if not pts:
        return None
    lats = [p.lat for p in pts]
    west, east = _longitude_span(sorted({p.lon for p in pts}))
    return BoundingBox(south=min(lats), west=west, north=max(lats), east=east)


def _longitude_span(lons: list[float]) -> tuple[float, float]:
    """West and east edges of the shortest arc holding all longitudes (sorted, distinct)."""
    # The box is the complement of the widest gap between neighbouring longitudes on the circle.
    gaps = [(lons[i + 1] - lons[i], i + 1) for i in range(len(lons) - 1)]
    gaps.append((lons[0] + 360 - lons[-1], 0))
    # On a tie prefer the box that does not cross the antimeridian (gap index 0 is the wrap-around one).
    _, start = max(gaps, key=lambda gap: (gap[0], gap[1] == 0))
    return lons[start], lons[start - 1]


# --- the antimeridian: longitudes for drawing ---------------------------------------------------------
#
# Leaflet draws a line between two longitudes the straight way: from 179.9 to -179.8 it goes around the
# globe. Drawn longitudes are therefore "unwrapped": each one may leave [-180, 180] by a multiple of 360
# so that it is within 180 degrees of the one before (179.9 then 180.2). Stored values never change.

#: Web Mercator (Leaflet's projection) ends here; positions nearer the poles are drawn at this latitude.
MERCATOR_MAX_LAT = 85.0511287798


def near(lon: float, centre: float) -> float:
    """The longitude plus or minus multiples of 360 that is nearest to centre (the same meridian)."""
    return lon + 360.0 * round((centre - lon) / 360.0)


def wrap_longitude(lon: float) -> float:
    """A longitude in [-180, 180) (180 itself stays 180)."""
    return lon if -180.0 <= lon <= 180.0 else (lon + 180.0) % 360.0 - 180.0


def unwrap_positions(positions: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """(lat, lon) positions in order, each longitude moved by multiples of 360 to be near the one before."""
    out: list[tuple[float, float]] = []
    for lat, lon in positions:
        out.append((lat, near(lon, out[-1][1]) if out else lon))
    return out


def unwrapped_span(lons: Iterable[float]) -> tuple[float, float] | None:
    """(west, east) of the shortest arc holding the longitudes, with west in [-180, 180] and east >= west.

    East exceeds 180 when the arc crosses the antimeridian (179.99 and -179.99 give 179.99, 180.01):
    the form Leaflet fits a view to. None for no longitudes.
    """
    distinct = sorted({wrap_longitude(lon) for lon in lons})
    if not distinct:
        return None
    west, east = _longitude_span(distinct)
    return west, east + 360.0 if east < west else east


def draw_latitude(lat: float) -> float:
    """A latitude clamped to what Web Mercator can draw (the poles are drawn at about 85.05)."""
    return max(-MERCATOR_MAX_LAT, min(MERCATOR_MAX_LAT, lat))
