"""journal.services.maps: the map page's summary and its config JSON (bounds, routes, poles)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from journal import route
from journal.models import Trip
from journal.services import maps, mapscope, users
from tests.mapdata import add_photo, at


@pytest.fixture
def user_id(session: Session) -> int:
    return users.create_user(session, "alice", "password123").id


@pytest.fixture
def trip(session: Session, user_id: int) -> Trip:
    trip = Trip(user_id=user_id, title="Balkans")
    session.add(trip)
    session.flush()
    return trip


def test_summary(session: Session, user_id: int, trip: Trip) -> None:
    add_photo(session, user_id, at(0), 46.0, 14.0, trip=trip)
    add_photo(session, user_id, at(50), 45.0, 16.0, trip=trip)
    add_photo(session, user_id, at(60), trip=trip)
    info = maps.summary(session, mapscope.Scope(user_id, trip.id))
    assert (info.title, info.located, info.unlocated, info.total, info.days) == ("Balkans", 2, 1, 3, 3)
    assert info.bounds == ((45.0, 14.0), (46.0, 16.0))
    empty = maps.summary(session, mapscope.Scope(users.create_user(session, "bob", "password123").id))
    assert (empty.title, empty.total, empty.bounds, empty.days) == ("All trips", 0, None, 0)


# --- the 180th meridian (issue 17 item 3) ------------------------------------------------------------

FIJI_EAST, FIJI_WEST = (-17.0, 179.99), (-16.8, -179.99)


def test_summary_bounds_take_the_short_way_across_the_antimeridian(
    session: Session, user_id: int, trip: Trip
) -> None:
    add_photo(session, user_id, at(0), *FIJI_EAST, trip=trip)
    add_photo(session, user_id, at(1), *FIJI_WEST, trip=trip)
    bounds = maps.summary(session, mapscope.Scope(user_id, trip.id)).bounds
    assert bounds is not None and bounds[0] == (-17.0, 179.99) and bounds[1] == pytest.approx((-16.8, 180.01))


def test_summary_bounds_away_from_the_antimeridian_are_plain(
    session: Session, user_id: int, trip: Trip
) -> None:
    add_photo(session, user_id, at(0), 46.0, -10.0, trip=trip)
    add_photo(session, user_id, at(1), 46.5, 14.5, trip=trip)
    assert maps.summary(session, mapscope.Scope(user_id, trip.id)).bounds == ((46.0, -10.0), (46.5, 14.5))


def test_track_across_the_antimeridian_is_drawn_the_short_way() -> None:
    line = route.RouteLine("track", ((-17.0, 179.9), (-17.0, 179.99), (-16.9, -179.9), (-16.9, -179.8)))
    bounds = route.extent(None, [line])
    assert bounds is not None and bounds[0] == (-17.0, 179.9) and bounds[1] == pytest.approx((-16.9, 180.2))
    drawn = maps.map_config(urls=str, bounds=bounds, lines=[line], layer=None, online_tiles_url="")["routes"][
        0
    ]
    assert [c[1] for c in drawn["coords"]] == pytest.approx([179.9, 179.99, 180.1, 180.2])
    # The same line on a page centred on Samoa's side (west of 180) is drawn there instead.
    west = maps.map_config(
        urls=str, bounds=((-17, -181), (-16, -170)), lines=[line], layer=None, online_tiles_url=""
    )
    assert [c[1] for c in west["routes"][0]["coords"]] == pytest.approx([-180.1, -180.01, -179.9, -179.8])


def test_poles_are_drawn_at_the_edge_of_web_mercator() -> None:
    config = maps.map_config(
        urls=str, bounds=((-90.0, 0.0), (90.0, 10.0)), lines=[], layer=None, online_tiles_url=""
    )
    assert config["bounds"] == [[-85.0511287798, 0.0], [85.0511287798, 10.0]]
