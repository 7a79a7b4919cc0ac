"""journal.services.map_routes: the lines a map draws (order, splits, tracks, the vertex budget)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from journal import route
from journal.config import Settings
from journal.models import Trip
from journal.services import map_routes, maps, mapscope, tracks, users
from tests.mapdata import add_photo, at
from tests.samples import GPX_SAMPLES


@pytest.fixture
def user_id(session: Session) -> int:
    return users.create_user(session, "alice", "password123").id


@pytest.fixture
def trip(session: Session, user_id: int) -> Trip:
    trip = Trip(user_id=user_id, title="Balkans")
    session.add(trip)
    session.flush()
    return trip


def test_route_between_photos_is_in_time_order_and_split(session: Session, user_id: int) -> None:
    # Inserted out of order; a 40-hour gap and a flight (> 300 km) cut the route.
    add_photo(session, user_id, at(2), 46.10, 14.60)
    add_photo(session, user_id, at(0), 46.00, 14.50)
    add_photo(session, user_id, at(1), 46.05, 14.55)
    add_photo(session, user_id, at(42), 46.20, 14.70)  # 40 h later: a new part
    add_photo(session, user_id, at(43), 46.25, 14.75)
    add_photo(session, user_id, at(45), 41.90, 12.50)  # Rome: a flight
    lines = map_routes.routes(session, mapscope.Scope(user_id)).lines
    assert [line.kind for line in lines] == ["photos", "photos"]
    assert [line.coords for line in lines] == [
        ((46.0, 14.5), (46.05, 14.55), (46.1, 14.6)),
        ((46.2, 14.7), (46.25, 14.75)),
    ]


def test_route_merges_photos_taken_at_one_stop(session: Session, user_id: int) -> None:
    for i in range(5):
        add_photo(session, user_id, at(i / 10), 46.0 + i * 1e-5, 14.5)  # within a few metres
    add_photo(session, user_id, at(1), 46.01, 14.5)
    (line,) = map_routes.routes(session, mapscope.Scope(user_id)).lines
    assert line.coords == ((46.0, 14.5), (46.01, 14.5))


def test_tracks_are_drawn_and_photos_on_them_left_out(
    session: Session, settings: Settings, user_id: int, trip: Trip
) -> None:
    stored = tracks.store_track(settings, user_id, GPX_SAMPLES / "cerknicko-jezero.gpx")
    tracks.record_track(session, user_id, stored, original_name="walk.gpx", trip_id=trip.id)
    # 2010-08-05 14:40Z is during the walk: the track is drawn there, not a line between photos.
    walk = datetime(2010, 8, 5, 16, 40)
    add_photo(session, user_id, walk, 45.77, 14.36, trip=trip)
    add_photo(session, user_id, walk + timedelta(minutes=5), 45.78, 14.37, trip=trip)
    add_photo(session, user_id, walk + timedelta(hours=5), 46.05, 14.50, trip=trip)
    add_photo(session, user_id, walk + timedelta(hours=6), 46.06, 14.51, trip=trip)
    result = map_routes.routes(session, mapscope.Scope(user_id, trip.id))
    assert [line.kind for line in result.lines] == ["track"] * 7 + ["photos"]  # in time order
    starts = [line.start for line in result.lines]
    assert all(a is not None and b is not None and a <= b for a, b in itertools.pairwise(starts))
    assert result.lines[0].name == "ACTIVE LOG"
    photos_line = next(line for line in result.lines if line.kind == "photos")
    assert photos_line.coords == ((46.05, 14.5), (46.06, 14.51))
    assert result.distance_km == pytest.approx(4.58 + 1.37, abs=0.05)


def test_unassigned_tracks_show_on_trips_they_overlap(
    session: Session, settings: Settings, user_id: int, trip: Trip
) -> None:
    stored = tracks.store_track(settings, user_id, GPX_SAMPLES / "cerknicko-jezero.gpx")
    tracks.record_track(session, user_id, stored, original_name="walk.gpx")
    assert map_routes.scope_tracks(session, mapscope.Scope(user_id, trip.id)) == []
    add_photo(session, user_id, datetime(2010, 8, 5, 17, 0), trip=trip)
    assert len(map_routes.scope_tracks(session, mapscope.Scope(user_id, trip.id))) == 1


FIJI_EAST, FIJI_WEST = (-17.0, 179.99), (-16.8, -179.99)


def test_route_between_photos_across_the_antimeridian_is_one_short_line(
    session: Session, user_id: int, trip: Trip
) -> None:
    add_photo(session, user_id, at(0), *FIJI_EAST, trip=trip)
    add_photo(session, user_id, at(1), *FIJI_WEST, trip=trip)  # a 20 km ferry hop: no 300 km jump
    scope = mapscope.Scope(user_id, trip.id)
    info = maps.summary(session, scope)
    found = map_routes.routes(session, scope, bounds=info.bounds)
    assert len(found.lines) == 1 and found.distance_km == pytest.approx(30.0, abs=10)
    bounds = route.extent(info.bounds, found.lines)
    config = maps.map_config(urls=str, bounds=bounds, lines=found.lines, layer=None, online_tiles_url="")
    assert config["bounds"] == [[-17.0, 179.99], [-16.8, pytest.approx(180.01)]]
    assert config["routes"][0]["coords"] == [[-17.0, 179.99], [-16.8, pytest.approx(180.01)]]
