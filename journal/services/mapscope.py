"""Whose photos a map page covers: all of a user's, or one of their trips (shared by the map's services)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from journal.models import Photo, Post, Trip
from journal.services.owned import owned

logger = logging.getLogger(__name__)

_S = TypeVar("_S", bound="Select[*tuple[Any, ...]]")


@dataclass(frozen=True)
class Scope:
    """Whose photos a map page shows: all of a user's, or one of their trips."""

    user_id: int
    trip_id: int | None = None


def scope_for(session: Session, user_id: int, trip_id: int | None = None) -> Scope:
    """A scope; NotFound for a trip that is missing or somebody else's."""
    if trip_id is not None:
        owned(session, Trip, trip_id, user_id, "trip")
    return Scope(user_id, trip_id)


def in_scope(stmt: _S, scope: Scope) -> _S:
    """Photos of the scope (the trip alone selects the owner's photos: only they go on the trip's posts)."""
    stmt = stmt.select_from(Photo)
    if scope.trip_id is not None:
        return stmt.join(Post, Post.id == Photo.post_id).where(Post.trip_id == scope.trip_id)
    return stmt.where(Photo.user_id == scope.user_id)
