"""Trips: a title, dates, a description, and the posts made on the way."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from journal.errors import Conflict, InvalidInput
from journal.models import Photo, Post, Track, Trip
from journal.services import editing
from journal.services.library import parse_date, plausible
from journal.services.posts import chronological

logger = logging.getLogger(__name__)

MAX_TITLE_CHARS = 200
MAX_DESCRIPTION_CHARS = 20_000


@dataclass(frozen=True)
class TripForm:
    """A trip's editable fields, checked."""

    title: str
    start_date: date | None
    end_date: date | None
    description: str

    def __post_init__(self) -> None:
        if not self.title:
            raise InvalidInput("a trip needs a title")
        if len(self.title) > MAX_TITLE_CHARS:
            raise InvalidInput(f"a trip title has at most {MAX_TITLE_CHARS} characters")
        if len(self.description) > MAX_DESCRIPTION_CHARS:
            raise InvalidInput(f"a description has at most {MAX_DESCRIPTION_CHARS:,} characters")
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise InvalidInput("the trip ends before it starts")

    @classmethod
    def parse(cls, title: str, start: str, end: str, description: str) -> TripForm:
        """From form fields (dates as YYYY-MM-DD or empty)."""
        return cls(
            title=" ".join(title.split()),
            start_date=parse_date(start, "start date"),
            end_date=parse_date(end, "end date"),
            description=description.replace("\r\n", "\n").strip(),
        )


@dataclass(frozen=True)
class TripSummary:
    """A trip with the numbers the trip list shows."""

    trip: Trip
    posts: int
    photos: int
    first_taken: datetime | None
    last_taken: datetime | None
    cover: Photo | None


@dataclass(frozen=True)
class PostSummary:
    """A post on a trip page: the post and its photos in order."""

    post: Post
    photos: list[Photo]

    @property
    def first_taken(self) -> datetime | None:
        """Local time of its earliest photo whose clock can be right (else of its earliest photo)."""
        times = [p.taken_at for p in self.photos if p.taken_at is not None and not p.clock_wrong]
        times = times or [p.taken_at for p in self.photos if p.taken_at is not None]
        return min(times) if times else None

    @property
    def clock_wrong(self) -> int:
        """How many of its photos have a time that cannot be right."""
        return sum(1 for p in self.photos if p.clock_wrong)


def get_trip(session: Session, user_id: int, trip_id: int) -> Trip:
    """The user's trip; NotFound for a missing id or somebody else's trip."""
    trip = editing.user_trip(session, user_id, trip_id)
    assert trip is not None
    return trip


def _check_title(session: Session, user_id: int, title: str, trip_id: int | None = None) -> None:
    clash = session.scalar(select(Trip.id).where(Trip.user_id == user_id, Trip.title == title))
    if clash is not None and clash != trip_id:
        raise Conflict(f"you already have a trip called {title!r}")


def create_trip(session: Session, user_id: int, form: TripForm) -> Trip:
    """A new trip; Conflict when the user has one with that title."""
    _check_title(session, user_id, form.title)
    trip = Trip(
        user_id=user_id,
        title=form.title,
        start_date=form.start_date,
        end_date=form.end_date,
        description=form.description,
    )
    session.add(trip)
    session.flush()
    return trip


def update_trip(session: Session, trip: Trip, form: TripForm) -> None:
    """Change a trip's title, dates and description."""
    _check_title(session, trip.user_id, form.title, trip.id)
    trip.title = form.title
    trip.start_date = form.start_date
    trip.end_date = form.end_date
    trip.description = form.description
    session.flush()


def delete_trip(session: Session, trip: Trip) -> None:
    """Delete a trip; its posts and photos stay, on no trip."""
    for post in session.scalars(select(Post).where(Post.trip_id == trip.id)):
        post.trip_id = None
    session.delete(trip)
    session.flush()


def trip_summaries(session: Session, user_id: int) -> list[TripSummary]:
    """The user's trips with post and photo counts, their time span and a cover photo; newest first."""
    rows = session.execute(
        select(
            Post.trip_id,
            func.count(func.distinct(Post.id)),
            func.count(Photo.id),
            func.min(plausible(Photo.taken_at)),
            func.max(plausible(Photo.taken_at)),
            func.min(Photo.id),
        )
        .join(Photo, Photo.post_id == Post.id)
        .where(Post.user_id == user_id, Post.trip_id.is_not(None))
        .group_by(Post.trip_id)
    )
    stats: dict[int | None, tuple[int, int, datetime | None, datetime | None, int | None]] = {
        trip_id: (posts, photos, first, last, cover) for trip_id, posts, photos, first, last, cover in rows
    }
    trips = session.scalars(
        select(Trip)
        .where(Trip.user_id == user_id)
        .order_by(Trip.start_date.desc().nulls_last(), Trip.created_at.desc(), Trip.id.desc())
    )
    cover_ids = [row[-1] for row in stats.values() if row[-1] is not None]
    covers = (
        {p.id: p for p in session.scalars(select(Photo).where(Photo.id.in_(cover_ids)))} if cover_ids else {}
    )
    summaries = []
    for trip in trips:
        posts, photos, first, last, cover_id = stats.get(trip.id, (0, 0, None, None, None))
        cover = covers.get(cover_id) if cover_id is not None else None
        summaries.append(TripSummary(trip, posts, photos, first, last, cover))
    return summaries


def trip_posts(session: Session, trip: Trip) -> list[PostSummary]:
    """The trip's posts in the order they happened (by their first photo), each with its photos."""
    posts = session.scalars(
        select(Post)
        .where(Post.trip_id == trip.id, Post.user_id == trip.user_id)
        .options(selectinload(Post.photos))
    )
    summaries = [PostSummary(post, list(post.photos)) for post in posts if post.photos]

    def first(summary: PostSummary) -> tuple[bool, object, int]:
        oldest = min(summary.photos, key=chronological)
        return chronological(oldest)

    return sorted(summaries, key=first)


def trip_tracks(session: Session, trip: Trip) -> list[Track]:
    """The GPS tracks imported into a trip, in time order (tracks without times last)."""
    return list(
        session.scalars(
            select(Track)
            .where(Track.trip_id == trip.id, Track.user_id == trip.user_id)
            .order_by(Track.started_at.is_(None), Track.started_at, Track.id)
        )
    )
