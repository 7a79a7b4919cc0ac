"""journal.geo: DMS conversion, distances, points and bounding boxes."""

from __future__ import annotations

import dataclasses
import math

import pytest

from journal import geo
from journal.geo import BoundingBox, GeoPoint


@pytest.mark.parametrize(
    ("dms", "ref", "expected"),
    [
        ((43, 28, 2.814), "N", 43.467448),
        ((33, 27.2082, 0), "S", -33.45347),
        ((116, 51, 18), "W", -116.855),
        ((177, 21, 56.7), "E", 177.36575),
        ((47, 37.63, 0), "n", 47.627167),  # minutes with decimals and 0 seconds, lower-case ref
        ((0, 0, 0), "S", 0.0),
    ],
)
def test_dms_to_decimal(dms: tuple[float, float, float], ref: str, expected: float) -> None:
    value = geo.dms_to_decimal(*dms, ref)
    assert value is not None
    assert value == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("dms", "ref"),
    [
        ((91, 0, 0), "N"),
        ((48, 15, 595404), "N"),  # a corrupt rational: 213.64 degrees
        ((181, 0, 0), "E"),
        ((10, 0, 0), "X"),
        ((10, 0, 0), ""),
        ((-10, 0, 0), "N"),
        ((math.nan, 0, 0), "N"),
        ((10, math.inf, 0), "E"),
    ],
)
def test_dms_to_decimal_rejects_impossible_values(dms: tuple[float, float, float], ref: str) -> None:
    assert geo.dms_to_decimal(*dms, ref) is None


def test_haversine_paris_london() -> None:
    metres = geo.haversine_m(48.8566, 2.3522, 51.5074, -0.1278)
    assert metres == pytest.approx(343_500, rel=0.005)


def test_haversine_zero_and_antipodes() -> None:
    assert geo.haversine_m(10.0, 20.0, 10.0, 20.0) == 0.0
    assert geo.haversine_m(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * geo.EARTH_RADIUS_M)


def test_null_island() -> None:
    assert geo.is_null_island(0.0, 0.0)
    assert not geo.is_null_island(0.0, 0.0001)
    assert not geo.is_null_island(-0.3713, 36.056417)


def test_geopoint_validates_its_ranges() -> None:
    assert GeoPoint(-90, 180, -14.28).alt == -14.28
    for lat, lon in ((90.5, 0), (0, -180.5), (math.nan, 0), (0, math.inf)):
        with pytest.raises(ValueError, match="not a position"):
            GeoPoint(lat, lon)
    with pytest.raises(ValueError, match="not an altitude"):
        GeoPoint(1, 1, math.nan)


def test_geopoint_is_frozen() -> None:
    point = GeoPoint(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.lat = 3  # type: ignore[misc]


def test_bounding_box() -> None:
    points = [GeoPoint(52.2, -0.9), GeoPoint(40.4, -3.7), GeoPoint(47.6, 10.2)]
    assert geo.bounding_box(points) == BoundingBox(south=40.4, west=-3.7, north=52.2, east=10.2)
    assert geo.bounding_box([]) is None
    single = geo.bounding_box([GeoPoint(1, 2)])
    assert single == BoundingBox(1, 2, 1, 2)
    assert single is not None and not single.crosses_antimeridian


def test_bounding_box_across_the_antimeridian() -> None:
    fiji = [GeoPoint(-17.77, 177.37), GeoPoint(-16.5, 179.9), GeoPoint(-16.8, -179.9)]
    box = geo.bounding_box(fiji)
    assert box == BoundingBox(south=-17.77, west=177.37, north=-16.5, east=-179.9)
    assert box.crosses_antimeridian


def test_bounding_box_prefers_not_crossing_on_a_tie() -> None:
    box = geo.bounding_box([GeoPoint(0, -90), GeoPoint(0, 90)])
    assert box == BoundingBox(0, -90, 0, 90)


# --- the antimeridian (issue 17 item 3) ------------------------------------------------------------


def test_unwrap_positions_takes_the_short_way() -> None:
    from journal.geo import unwrap_positions

    assert unwrap_positions([(0, 179.9), (0, -179.8), (0, -179.5)]) == [(0, 179.9), (0, 180.2), (0, 180.5)]
    assert unwrap_positions([(0, -179.9), (0, 179.9)]) == [(0, -179.9), (0, -180.1)]
    assert unwrap_positions([(0, 10.0), (0, 20.0)]) == [(0, 10.0), (0, 20.0)]


def test_unwrapped_span_crosses_when_shorter() -> None:
    from journal.geo import unwrapped_span

    assert unwrapped_span([179.99, -179.99]) == pytest.approx((179.99, 180.01))
    assert unwrapped_span([10, 20]) == (10, 20)
    assert unwrapped_span([]) is None


def test_distance_across_the_antimeridian_is_great_circle() -> None:
    assert geo.haversine_m(-17.0, 179.99, -17.0, -179.99) == pytest.approx(2126, rel=0.01)


def test_draw_latitude_clamps_to_web_mercator() -> None:
    from journal.geo import MERCATOR_MAX_LAT, draw_latitude

    assert draw_latitude(90.0) == MERCATOR_MAX_LAT and draw_latitude(-90.0) == -MERCATOR_MAX_LAT
    assert draw_latitude(45.0) == 45.0
