"""journal.services.mapscope: whose photos a map page covers."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from journal.errors import NotFound
from journal.models import Trip
from journal.services import mapscope, users


@pytest.fixture
def user_id(session: Session) -> int:
    return users.create_user(session, "alice", "password123").id


@pytest.fixture
def trip(session: Session, user_id: int) -> Trip:
    trip = Trip(user_id=user_id, title="Balkans")
    session.add(trip)
    session.flush()
    return trip


def test_scope_of_another_users_trip_is_not_found(session: Session, user_id: int, trip: Trip) -> None:
    bob = users.create_user(session, "bob", "password123").id
    with pytest.raises(NotFound):
        mapscope.scope_for(session, bob, trip.id)
    assert mapscope.scope_for(session, user_id, trip.id) == mapscope.Scope(user_id, trip.id)
