"""Photo rows for the map services' tests: placed at a local time (UTC+2), with or without a position."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from journal.models import Photo, Post, Trip

_ids = itertools.count(1)
T0 = datetime(2024, 5, 1, 8, 0)  # local time, UTC+2


def add_photo(
    session: Session,
    user_id: int,
    local: datetime | None,
    lat: float | None = None,
    lon: float | None = None,
    *,
    post: Post | None = None,
    trip: Trip | None = None,
    caption: str = "",
    place: str | None = None,
    source: str | None = None,
) -> Photo:
    """A photo row (and a post of its own unless given), taken at `local` (UTC+2)."""
    if post is None:
        post = Post(user_id=user_id, trip_id=trip.id if trip else None, caption=caption)
        session.add(post)
        session.flush()
    n = next(_ids)
    sha = hashlib.sha256(f"photo-{n}".encode()).hexdigest()
    photo = Photo(
        user_id=user_id,
        post_id=post.id,
        position=len(post.photos),
        sha256=sha,
        original_name=f"IMG_{n}.jpg",
        stored_path=f"originals/{user_id}/{sha[:2]}/{sha}.jpg",
        bytes=1000,
        format="JPEG",
        width=40,
        height=30,
        web_width=40,
        web_height=30,
        taken_at=local,
        utc_offset_min=120 if local else None,
        taken_at_utc=(local - timedelta(hours=2)).replace(tzinfo=UTC) if local else None,
        lat=lat,
        lon=lon,
        location_source=source or ("exif" if lat is not None else None),
        place=place,
    )
    session.add(photo)
    session.flush()
    session.refresh(post)
    return photo


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)
