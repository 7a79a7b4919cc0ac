"""What a published post may say of where it was: exact, coarse (town or ~5 km cell) or no position.

The location modes of an export (exact, approx, none), privacy zones inside which no position is
ever published, and the coarsening of `approx`. The positions that go into a file's EXIF
(exif_position) follow the same rules; scrub.py writes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from journal.errors import InvalidInput
from journal.geo import haversine_m, is_valid_position, near

LocationMode = Literal["exact", "approx", "none"]
LOCATION_MODES: tuple[str, ...] = get_args(LocationMode)

#: Grid step of `approx`: 0.05 degree of latitude is 5.56 km; longitude steps are widened by 1/cos(lat).
GRID_DEG = 0.05
#: `approx` gives the town centre when the photo is at most this far from it.
TOWN_RADIUS_M = 10_000.0


@dataclass(frozen=True)
class PrivacyZone:
    """A circle (home, family) inside which no position is ever published."""

    lat: float
    lon: float
    radius_m: float
    label: str = ""

    def __post_init__(self) -> None:
        check_position(self.lat, self.lon)
        if not self.radius_m > 0:
            raise InvalidInput("privacy zone radius must be positive")

    def contains(self, lat: float, lon: float) -> bool:
        """True when the point lies inside the zone (border included)."""
        return haversine_m(self.lat, self.lon, lat, lon) <= self.radius_m


def check_location_mode(mode: str) -> LocationMode:
    """Return mode if it is exact/approx/none, else raise InvalidInput."""
    for known in get_args(LocationMode):
        if mode == known:
            return known  # type: ignore[no-any-return]
    raise InvalidInput(f"unknown location mode {mode!r}; choose one of: {', '.join(LOCATION_MODES)}")


def in_any_zone(lat: float, lon: float, zones: Sequence[PrivacyZone]) -> bool:
    """True when the point lies in one of the zones."""
    return any(zone.contains(lat, lon) for zone in zones)


def _segment_distance_m(zone: PrivacyZone, a: tuple[float, float], b: tuple[float, float]) -> float:
    """About how far the zone's centre is from the straight piece a-b (local flat projection, metres)."""
    scale = math.cos(math.radians(zone.lat))
    a_lon = near(a[1], zone.lon)
    b_lon = near(b[1], a_lon)  # the short way from a, across the antimeridian if need be
    ax, ay = (a_lon - zone.lon) * scale, a[0] - zone.lat
    bx, by = (b_lon - zone.lon) * scale, b[0] - zone.lat
    dx, dy = bx - ax, by - ay
    length = dx * dx + dy * dy
    t = 0.0 if length == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length))
    return math.hypot(ax + t * dx, ay + t * dy) * 111_320.0


def line_in_any_zone(line: Sequence[tuple[float, float]], zones: Sequence[PrivacyZone]) -> bool:
    """True when a drawn line of (lat, lon) touches a zone: at a position or on a piece between two."""
    if any(in_any_zone(lat, lon, zones) for lat, lon in line):
        return True
    pieces = zip(line, line[1:], strict=False)
    # 1 % margin: the flat projection is a little off over a zone's few kilometres.
    return any(_segment_distance_m(zone, a, b) <= zone.radius_m * 1.01 for a, b in pieces for zone in zones)


def public_location(
    lat: float,
    lon: float,
    mode: LocationMode,
    zones: Sequence[PrivacyZone],
    *,
    town: tuple[float, float] | None = None,
) -> tuple[float, float] | None:
    """The position a post may show: exact, coarse (town centre or ~5 km grid cell centre) or None.

    A point inside a privacy zone gives None in every mode, and so does a coarse position that
    would itself fall inside a zone (a town centre next to home would point at home).
    """
    mode = check_location_mode(mode)
    check_position(lat, lon)
    if mode == "none" or in_any_zone(lat, lon, zones):
        return None
    if mode == "exact":
        return (lat, lon)
    if town is not None and haversine_m(lat, lon, *town) <= TOWN_RADIUS_M:
        coarse = town
    else:
        coarse = snap_to_grid(lat, lon)
    return None if in_any_zone(*coarse, zones) else coarse


def exif_position(
    lat: float | None,
    lon: float | None,
    mode: LocationMode,
    zones: Sequence[PrivacyZone],
) -> tuple[float, float] | None:
    """The position that may go into a file's EXIF: only in `exact` mode and outside every zone."""
    mode = check_location_mode(mode)
    if lat is None or lon is None or mode != "exact":
        return None
    return public_location(lat, lon, mode, zones)


def snap_to_grid(lat: float, lon: float) -> tuple[float, float]:
    """Centre of the ~5.5 km cell holding the point; no two cell centres are closer than ~5.4 km."""
    rows = round(180 / GRID_DEG)
    row = min(rows - 1, math.floor((lat + 90) / GRID_DEG))
    centre_lat = -90 + (row + 0.5) * GRID_DEG
    columns = _grid_columns(centre_lat)
    step = 360 / columns
    column = math.floor((lon + 180) / step) % columns
    centre_lon = -180 + (column + 0.5) * step
    return (round(centre_lat, 6), round(centre_lon, 6))


def _grid_columns(centre_lat: float) -> int:
    """Cells in a latitude band: each at least GRID_DEG of latitude wide, dividing 360 evenly."""
    circumference_deg = 360 * math.cos(math.radians(centre_lat))
    columns = math.floor(circumference_deg / GRID_DEG)
    # On the tiny circles next to a pole, chords between a handful of cells get shorter than the
    # arc; one cell for the whole band keeps every output at least a cell apart.
    return columns if columns > 6 else 1


def public_place(place: str | None, country: str | None, mode: LocationMode) -> str | None:
    """The place name a post may show: the place (town) unless mode is `none`, then the country only."""
    mode = check_location_mode(mode)
    if mode == "none":
        return country or None
    return place or country or None


def check_position(lat: float, lon: float) -> None:
    """Raise InvalidInput unless lat/lon are finite WGS84 degrees."""
    if not is_valid_position(lat, lon):
        raise InvalidInput(f"not a position: {lat}, {lon}")
