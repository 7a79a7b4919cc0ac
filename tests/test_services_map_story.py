"""journal.services.map_story: the story by day, in chunks both ways, and the unplaced photos."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy.orm import Session

from journal.errors import InvalidInput, NotFound
from journal.models import Post, Trip
from journal.services import map_story, mapscope, users
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


# --- the story ------------------------------------------------------------------------------------------


def story_ids(chunk: map_story.StoryChunk) -> list[int]:
    return [p.id for day in chunk.days for entry in day.entries for p in entry.photos]


def test_story_days_places_and_posts(session: Session, user_id: int, trip: Trip) -> None:
    post = Post(user_id=user_id, trip_id=trip.id, caption="Old town & castle")
    session.add(post)
    session.flush()
    late = add_photo(session, user_id, at(3), 46.05, 14.5, post=post, place="Ljubljana")
    early = add_photo(session, user_id, at(1), 46.05, 14.5, post=post, place="Ljubljana")
    lake = add_photo(session, user_id, at(2), 46.36, 14.09, trip=trip, place="Bled")
    lost = add_photo(session, user_id, at(26), trip=trip)  # day 2, no position
    undated = add_photo(session, user_id, None, trip=trip)
    chunk = map_story.story_chunk(session, mapscope.Scope(user_id, trip.id), number_days=True)
    assert [(d.key, d.number) for d in chunk.days] == [
        ("2024-05-01", 1),
        ("2024-05-02", 2),
        ("undated", None),
    ]
    first = chunk.days[0]
    assert first.places == ("Ljubljana", "Bled")
    assert [e.post_id for e in first.entries] == [
        post.id,
        lake.post_id,
    ]  # the post sits at its earliest photo
    assert [p.id for p in first.entries[0].photos] == [late.id, early.id]  # in the post's own order
    assert first.entries[0].caption == "Old town & castle"
    assert first.photo_ids == [late.id, early.id, lake.id]
    assert [p.located for p in chunk.days[1].entries[0].photos] == [False]
    assert chunk.days[1].photo_ids == [] and story_ids(chunk)[-2:] == [lost.id, undated.id]
    assert (chunk.before, chunk.after) == (None, None)


def test_story_blocks_group_single_photos_without_caption(session: Session, user_id: int) -> None:
    a = add_photo(session, user_id, at(0))
    b = add_photo(session, user_id, at(1))
    c = add_photo(session, user_id, at(2), caption="Lunch")
    d = add_photo(session, user_id, at(3))
    (day,) = map_story.story_chunk(session, mapscope.Scope(user_id)).days
    assert [(block.grid, [e.lead.id for e in block.entries]) for block in day.blocks] == [
        (True, [a.id, b.id]),
        (False, [c.id]),
        (True, [d.id]),
    ]


def test_story_chunks_cover_everything_once_forward_and_back(session: Session, user_id: int) -> None:
    photos = [add_photo(session, user_id, at(h * 5)) for h in range(40)]  # ~5 photos a day
    photos += [add_photo(session, user_id, None) for _ in range(3)]
    scope = mapscope.Scope(user_id)
    seen: list[int] = []
    chunk = map_story.story_chunk(session, scope, size=7)
    chunks = [chunk]
    while chunk.after:
        chunk = map_story.story_chunk(session, scope, after=map_story.parse_cursor(chunk.after), size=7)
        chunks.append(chunk)
    for c in chunks:
        seen += story_ids(c)
        days = [d.key for d in c.days]
        assert len(days) == len(set(days))
    assert seen == [p.id for p in photos]
    # Chunks end at day boundaries: no day is split between two chunks.
    keys = [[d.key for d in c.days] for c in chunks]
    assert all(a[-1] != b[0] for a, b in itertools.pairwise(keys))
    back: list[int] = []
    chunk = chunks[-1]
    back = story_ids(chunk)
    while chunk.before:
        chunk = map_story.story_chunk(session, scope, before=map_story.parse_cursor(chunk.before), size=7)
        back = story_ids(chunk) + back
    assert back == seen


def test_story_around_a_photo_starts_at_its_day(session: Session, user_id: int) -> None:
    photos = [add_photo(session, user_id, at(h * 6)) for h in range(40)]  # 4 photos a day
    target = photos[29]  # 14:00 on 8 May, the third photo of that day
    chunk = map_story.story_chunk(session, mapscope.Scope(user_id), around=target.id, size=5)
    assert chunk.days[0].key == target.taken_at.date().isoformat()  # type: ignore[union-attr]
    assert story_ids(chunk)[0] == photos[27].id and target.id in story_ids(chunk)
    assert chunk.before is not None and chunk.after is not None
    with pytest.raises(NotFound):
        map_story.story_chunk(session, mapscope.Scope(user_id), around=10**9)


def test_story_cursor_is_checked() -> None:
    with pytest.raises(InvalidInput):
        map_story.parse_cursor("2024-05-01")
    assert map_story.parse_cursor("") is None


def test_unlocated_pages(session: Session, user_id: int, trip: Trip) -> None:
    lost = [add_photo(session, user_id, at(h), trip=trip) for h in range(5)]
    add_photo(session, user_id, at(1), 46.0, 14.0, trip=trip)
    untimed = add_photo(session, user_id, None, trip=trip)
    scope = mapscope.Scope(user_id, trip.id)
    page = map_story.unlocated(session, scope, limit=4)
    assert page.total == 6 and [p.id for p in page.photos] == [p.id for p in lost[:4]]
    rest = map_story.unlocated(session, scope, after=map_story.parse_cursor(page.after), limit=4)
    assert [p.id for p in rest.photos] == [lost[4].id, untimed.id] and rest.after is None
