"""Posts: what gets published, a caption and one or more photos in order.

Every photo belongs to exactly one post (an import makes a post per photo). Grouping photos into a
new post takes them out of their old posts; a post left with no photo is deleted.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from journal.errors import InvalidInput, NotFound
from journal.models import Photo, Post, photo_sort_at, utcnow
from journal.services import editing

logger = logging.getLogger(__name__)

MAX_PHOTOS_PER_POST = 500

Direction = Literal["up", "down"]
_EPOCH = datetime(1, 1, 1)


def get_post(session: Session, user_id: int, post_id: int) -> Post:
    """The user's post with its photos; NotFound for a missing id or somebody else's post."""
    post = session.scalar(
        select(Post).where(Post.id == post_id, Post.user_id == user_id).options(selectinload(Post.photos))
    )
    if post is None:
        raise NotFound("no such post")
    return post


def chronological(photo: Photo) -> tuple[bool, datetime, int]:
    """Sort key: oldest first; photos with no time last, in import order."""
    sort_at = photo_sort_at(photo.taken_at_utc, photo.taken_at)
    return (sort_at is None, sort_at or _EPOCH, photo.id)


def _user_photos(session: Session, user_id: int, photo_ids: list[int]) -> list[Photo]:
    ids = list(dict.fromkeys(photo_ids))
    if not ids:
        raise InvalidInput("select at least one photo")
    if len(ids) > MAX_PHOTOS_PER_POST:
        raise InvalidInput(f"a post has at most {MAX_PHOTOS_PER_POST} photos")
    photos = list(
        session.scalars(
            select(Photo)
            .where(Photo.user_id == user_id, Photo.id.in_(ids))
            .options(selectinload(Photo.post).selectinload(Post.photos))
        )
    )
    if len(photos) != len(ids):
        raise NotFound("no such photo")
    return photos


def _merged_caption(photos: list[Photo]) -> str:
    """The old posts' captions, so grouping photos never loses text someone wrote."""
    captions = dict.fromkeys(
        p.post.caption.strip() for p in photos if p.post is not None and p.post.caption.strip()
    )
    return "\n\n".join(captions)


def _common_trip(photos: list[Photo]) -> int | None:
    trips = {p.post.trip_id if p.post is not None else None for p in photos}
    return trips.pop() if len(trips) == 1 else None


def create_post(
    session: Session, user_id: int, photo_ids: list[int], *, caption: str = "", trip_id: int | None = None
) -> Post:
    """A new post made of these photos, oldest first; they leave their old posts.

    Without a caption the old posts' captions are kept (joined); without a trip the new post is on
    the trip all the photos shared, if they shared one.
    """
    photos = sorted(_user_photos(session, user_id, photo_ids), key=chronological)
    text = editing.clean_caption(caption) or _merged_caption(photos)
    trip = editing.user_trip(session, user_id, trip_id) if trip_id is not None else None
    post = Post(user_id=user_id, caption=text, trip_id=trip.id if trip else _common_trip(photos))
    session.add(post)
    for photo in photos:
        editing.detach(session, photo)
    for i, photo in enumerate(photos):
        photo.post = post
        photo.position = i
    session.flush()
    return post


def _photo_in(post: Post, photo_id: int) -> Photo:
    for photo in post.photos:
        if photo.id == photo_id:
            return photo
    raise NotFound("that photo is not in this post")


def parse_direction(text: str) -> Direction:
    """ "up" or "down" from a form field."""
    if text not in ("up", "down"):
        raise InvalidInput("move a photo up or down")
    return "up" if text == "up" else "down"


def move_photo(session: Session, post: Post, photo_id: int, direction: Direction) -> None:
    """Move a photo one place up (earlier) or down (later) in its post."""
    photos = sorted(post.photos, key=lambda p: (p.position, p.id))
    i = photos.index(_photo_in(post, photo_id))
    j = i - 1 if direction == "up" else i + 1
    if 0 <= j < len(photos):
        photos[i], photos[j] = photos[j], photos[i]
    for position, photo in enumerate(photos):
        photo.position = position
    post.updated_at = utcnow()
    session.flush()


def remove_photo(session: Session, post: Post, photo_id: int) -> Post:
    """Take a photo out of a post into a post of its own (on the same trip); returns the new post."""
    photo = _photo_in(post, photo_id)
    if len(post.photos) < 2:
        raise InvalidInput("this is the post's only photo: delete the photo instead")
    editing.detach(session, photo)
    single = Post(user_id=post.user_id, trip_id=post.trip_id, caption="")
    session.add(single)
    photo.post = single
    photo.position = 0
    session.flush()
    return single


def split_post(session: Session, post: Post) -> int:
    """Give every photo of a post but the first a post of its own; returns how many posts now exist."""
    photos = sorted(post.photos, key=lambda p: (p.position, p.id))
    for photo in photos[1:]:
        remove_photo(session, post, photo.id)
    return len(photos)
