"""Coarse and hidden positions: the location modes, privacy zones and the ~5 km grid of `approx`."""

from __future__ import annotations

import itertools
import random

import pytest

from journal.errors import InvalidInput
from journal.geo import haversine_m
from journal.publish.location import (
    PrivacyZone,
    check_location_mode,
    exif_position,
    public_location,
    public_place,
    snap_to_grid,
)

PARIS = (48.8566, 2.3522)
HOME = PrivacyZone(48.85, 2.35, 2_000, "home")


def test_exact_keeps_the_position() -> None:
    assert public_location(*PARIS, "exact", []) == PARIS


def test_none_hides_the_position() -> None:
    assert public_location(*PARIS, "none", []) is None


@pytest.mark.parametrize("mode", ["exact", "approx", "none"])
def test_zone_wins_in_every_mode(mode: str) -> None:
    assert public_location(*PARIS, mode, [HOME], town=PARIS) is None  # type: ignore[arg-type]
    assert exif_position(*PARIS, mode, [HOME]) is None  # type: ignore[arg-type]


def test_zone_border_is_inside() -> None:
    zone = PrivacyZone(0.0, 0.0, 1_000)
    # 1 km north is 0.008993 degrees of latitude.
    assert public_location(0.00899, 0.0, "exact", [zone]) is None
    assert public_location(0.0091, 0.0, "exact", [zone]) == (0.0091, 0.0)


def test_approx_hides_a_coarse_position_that_falls_inside_a_zone() -> None:
    town = (45.0, 7.0)
    zone = PrivacyZone(*town, 500, "parents")
    point = (45.05, 7.0)  # 5.6 km from the town centre, outside the zone
    assert public_location(*point, "exact", [zone]) == point
    assert public_location(*point, "approx", [zone], town=town) is None
    centre = snap_to_grid(*point)
    assert public_location(*point, "approx", [PrivacyZone(*centre, 100)]) is None


def test_approx_prefers_a_nearby_town_centre() -> None:
    town = (48.8566, 2.3522)
    assert public_location(48.90, 2.30, "approx", [], town=town) == town
    far = public_location(49.20, 2.30, "approx", [], town=town)
    assert far == snap_to_grid(49.20, 2.30)


def test_approx_is_close_to_the_truth_and_stable() -> None:
    rng = random.Random(1)
    for _ in range(2000):
        lat, lon = rng.uniform(-70, 70), rng.uniform(-180, 180)
        out = public_location(lat, lon, "approx", [])
        assert out is not None
        # A cell is 0.05 degree high and at most ~6 km wide: its centre is within ~4.5 km.
        assert haversine_m(lat, lon, *out) < 4_500
        assert public_location(lat, lon, "approx", []) == out


@pytest.mark.parametrize(
    "origin",
    [(0.0, 0.0), (45.3, 7.1), (-33.9, 151.2), (69.9, 25.0), (-78.0, 166.0), (64.0, 179.97), (89.97, 10.0)],
)
def test_approx_is_never_finer_than_5_km(origin: tuple[float, float]) -> None:
    rng = random.Random(str(origin))
    outputs: set[tuple[float, float]] = set()
    for _ in range(3000):
        lat = max(-90.0, min(90.0, origin[0] + rng.uniform(-0.2, 0.2)))
        lon = (origin[1] + rng.uniform(-0.4, 0.4) + 180) % 360 - 180
        out = public_location(lat, lon, "approx", [])
        assert out is not None
        outputs.add(out)
    assert len(outputs) > 1
    for a, b in itertools.combinations(outputs, 2):
        assert haversine_m(*a, *b) > 5_000, (a, b)


def test_grid_cells_cover_the_antimeridian_without_slivers() -> None:
    east = snap_to_grid(10.0, 179.999)
    west = snap_to_grid(10.0, -179.999)
    assert haversine_m(*east, *west) > 5_000 or east == west


def test_public_place_by_mode() -> None:
    assert public_place("Lyon", "France", "exact") == "Lyon"
    assert public_place("Lyon", "France", "approx") == "Lyon"
    assert public_place("Lyon", "France", "none") == "France"
    assert public_place(None, "France", "approx") == "France"
    assert public_place(None, None, "none") is None


def test_bad_inputs() -> None:
    with pytest.raises(InvalidInput):
        check_location_mode("fuzzy")
    with pytest.raises(InvalidInput):
        public_location(91.0, 0.0, "exact", [])
    with pytest.raises(InvalidInput):
        PrivacyZone(0.0, 0.0, 0)
