"""journal.services.map_points: the map's points and its popups' details."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session

from journal.errors import InvalidInput
from journal.models import Trip
from journal.services import map_points, mapscope, users
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


def test_points_are_the_users_located_photos(session: Session, user_id: int, trip: Trip) -> None:
    bob = users.create_user(session, "bob", "password123").id
    a = add_photo(session, user_id, at(0), 46.0512345678, 14.5, trip=trip)
    b = add_photo(session, user_id, at(1), 45.3, 13.6)
    add_photo(session, user_id, at(2))  # no position
    add_photo(session, bob, at(0), 10.0, 10.0)
    everything = json.loads(map_points.points_json(session, mapscope.Scope(user_id)))
    assert everything == {"count": 2, "points": [[a.id, 46.051235, 14.5], [b.id, 45.3, 13.6]]}
    on_trip = json.loads(map_points.points_json(session, mapscope.Scope(user_id, trip.id)))
    assert on_trip["points"] == [[a.id, 46.051235, 14.5]]


def test_photo_cards_only_for_the_owner(session: Session, user_id: int) -> None:
    bob = users.create_user(session, "bob", "password123").id
    mine = add_photo(
        session, user_id, at(0), 46.0, 14.5, caption="<img src=x onerror=alert(1)>", place="Ljubljana"
    )
    theirs = add_photo(session, bob, at(0), 1.0, 1.0)
    cards = map_points.photo_cards(session, user_id, [mine.id, theirs.id])
    assert [(c.id, c.caption, c.place) for c in cards] == [
        (mine.id, "<img src=x onerror=alert(1)>", "Ljubljana")
    ]


@pytest.mark.parametrize("text", ["", "1,a", "-1", ",".join(["1"] * 201), "1;2"])
def test_parse_ids_refuses_bad_lists(text: str) -> None:
    if text == ",".join(["1"] * 201):
        assert map_points.parse_ids(",".join(str(i) for i in range(200))) == list(range(200))
        text = ",".join(str(i) for i in range(201))
    with pytest.raises(InvalidInput):
        map_points.parse_ids(text)
