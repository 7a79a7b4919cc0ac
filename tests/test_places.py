"""journal.places: offline place names (GeoNames via reverse_geocode) and time zones (tzfpy)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from journal import places
from journal.places import Place

REPO = Path(__file__).resolve().parents[1]


def test_in_a_town() -> None:
    place = places.place_for(39.0392, 125.7625)
    assert place is not None
    assert place.name == "Pyongyang, North Korea"
    assert (place.city, place.country, place.country_code) == ("Pyongyang", "North Korea", "KP")
    assert place.distance_km < 2
    assert place.timezone == "Asia/Pyongyang"


def test_near_a_town() -> None:
    place = places.place_for(-24.104, 133.9036)  # 40 km south of Ross, near Alice Springs
    assert place is not None
    assert place.name == "near Ross, Australia"
    assert place.distance_km == pytest.approx(40, abs=1)


def test_far_from_towns_on_land_gives_the_country() -> None:
    place = places.place_for(-25.0, 134.0)  # the outback, 140 km from the nearest town
    assert place is not None
    assert place.name == "Australia"
    assert (place.city, place.country, place.country_code) == (None, "Australia", "AU")
    assert place.distance_km > places.NEAR_TOWN_KM


def test_at_sea() -> None:
    place = places.place_for(0.0, -150.0)  # mid-Pacific
    assert place is not None
    assert place.name == "at sea"
    assert place.country is None
    assert place.timezone == "Etc/GMT+10"


@pytest.mark.parametrize(("lat", "lon"), [(0.0, 0.0), (91.0, 0.0), (0.0, 200.0), (float("nan"), 1.0)])
def test_no_position_gives_no_place(lat: float, lon: float) -> None:
    assert places.place_for(lat, lon) is None


def test_common_country_names() -> None:
    seoul = places.place_for(37.5665, 126.9780)
    tehran = places.place_for(35.6892, 51.3890)
    assert seoul is not None and seoul.country == "South Korea"
    assert tehran is not None and tehran.country == "Iran"
    assert places.country_name("ru", "Russian Federation") == "Russia"
    assert places.country_name("FR", "France") == "France"


def test_place_many_keeps_order_and_gaps() -> None:
    result = places.place_many([(39.0392, 125.7625), (0.0, 0.0), (0.0, -150.0)])
    assert [p.name if p else None for p in result] == ["Pyongyang, North Korea", None, "at sea"]
    assert places.place_many([]) == []


def test_place_is_a_frozen_value() -> None:
    place = Place("at sea", None, None, None, 800.0, "Etc/GMT+10")
    with pytest.raises(AttributeError):
        place.name = "x"  # type: ignore[misc]


def test_timezone_at() -> None:
    assert places.timezone_at(35.68, 139.69) == "Asia/Tokyo"
    assert places.timezone_at(0.0, -150.0) == "Etc/GMT+10"
    assert places.timezone_at(95.0, 0.0) is None


def test_attribution() -> None:
    assert "GeoNames" in places.ATTRIBUTION and "CC BY 4.0" in places.ATTRIBUTION


def test_missing_geonames_data_gives_no_place_and_no_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(places, "_data_dir", lambda: tmp_path)
    monkeypatch.setattr(places, "_INDEX", [])
    assert places.place_for(39.0392, 125.7625) is None
    assert "geocode.gz" in caplog.text


def test_nearest_town_by_true_distance_at_high_latitude() -> None:
    # In raw degrees (reverse_geocode's own search) Zyryanka looks nearest to 68 N 150 E, but on
    # the sphere it is ~255 km away and Srednekolymsk ~167 km.
    place = places.place_for(68.0, 150.0)
    assert place is not None and place.name == "Russia"  # beyond "near" range: the country
    assert 160 < place.distance_km < 175


def _run(code: str) -> str:
    """Run code in a fresh interpreter (so reverse_geocode's data is loaded from scratch)."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_works_with_the_network_cut() -> None:
    out = _run(
        """
        import socket

        def refuse(*args, **kwargs):
            raise OSError("network access attempted")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from journal import places
        print(places.place_for(39.0392, 125.7625).name)
        """
    )
    assert out == "Pyongyang, North Korea"


def test_importing_places_does_not_load_the_geonames_data() -> None:
    out = _run(
        """
        import sys
        from journal import places
        places.timezone_at(1.0, 1.0)
        print("reverse_geocode" in sys.modules, "scipy" in sys.modules)
        """
    )
    assert out == "False False"
