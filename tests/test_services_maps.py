"""journal.services.maps: points, routes (order, splits, tracks), the story by day, unplaced photos."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from journal.config import Settings
from journal.errors import InvalidInput, NotFound
from journal.models import Photo, Post, Trip
from journal.services import maps, tracks, users
from tests.conftest import GPX_SAMPLES

_ids = itertools.count(1)
T0 = datetime(2024, 5, 1, 8, 0)  # local time, UTC+2


@pytest.fixture
def user_id(session: Session) -> int:
    return users.create_user(session, "alice", "password123").id


@pytest.fixture
def trip(session: Session, user_id: int) -> Trip:
    trip = Trip(user_id=user_id, title="Balkans")
    session.add(trip)
    session.flush()
    return trip


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


# --- points, cards, summary -------------------------------------------------------------------------


def test_points_are_the_users_located_photos(session: Session, user_id: int, trip: Trip) -> None:
    bob = users.create_user(session, "bob", "password123").id
    a = add_photo(session, user_id, at(0), 46.0512345678, 14.5, trip=trip)
    b = add_photo(session, user_id, at(1), 45.3, 13.6)
    add_photo(session, user_id, at(2))  # no position
    add_photo(session, bob, at(0), 10.0, 10.0)
    everything = json.loads(maps.points_json(session, maps.Scope(user_id)))
    assert everything == {"count": 2, "points": [[a.id, 46.051235, 14.5], [b.id, 45.3, 13.6]]}
    on_trip = json.loads(maps.points_json(session, maps.Scope(user_id, trip.id)))
    assert on_trip["points"] == [[a.id, 46.051235, 14.5]]


def test_scope_of_another_users_trip_is_not_found(session: Session, user_id: int, trip: Trip) -> None:
    bob = users.create_user(session, "bob", "password123").id
    with pytest.raises(NotFound):
        maps.scope_for(session, bob, trip.id)
    assert maps.scope_for(session, user_id, trip.id) == maps.Scope(user_id, trip.id)


def test_photo_cards_only_for_the_owner(session: Session, user_id: int) -> None:
    bob = users.create_user(session, "bob", "password123").id
    mine = add_photo(
        session, user_id, at(0), 46.0, 14.5, caption="<img src=x onerror=alert(1)>", place="Ljubljana"
    )
    theirs = add_photo(session, bob, at(0), 1.0, 1.0)
    cards = maps.photo_cards(session, user_id, [mine.id, theirs.id])
    assert [(c.id, c.caption, c.place) for c in cards] == [
        (mine.id, "<img src=x onerror=alert(1)>", "Ljubljana")
    ]


@pytest.mark.parametrize("text", ["", "1,a", "-1", ",".join(["1"] * 201), "1;2"])
def test_parse_ids_refuses_bad_lists(text: str) -> None:
    if text == ",".join(["1"] * 201):
        assert maps.parse_ids(",".join(str(i) for i in range(200))) == list(range(200))
        text = ",".join(str(i) for i in range(201))
    with pytest.raises(InvalidInput):
        maps.parse_ids(text)


def test_summary(session: Session, user_id: int, trip: Trip) -> None:
    add_photo(session, user_id, at(0), 46.0, 14.0, trip=trip)
    add_photo(session, user_id, at(50), 45.0, 16.0, trip=trip)
    add_photo(session, user_id, at(60), trip=trip)
    info = maps.summary(session, maps.Scope(user_id, trip.id))
    assert (info.title, info.located, info.unlocated, info.total, info.days) == ("Balkans", 2, 1, 3, 3)
    assert info.bounds == ((45.0, 14.0), (46.0, 16.0))
    empty = maps.summary(session, maps.Scope(users.create_user(session, "bob", "password123").id))
    assert (empty.title, empty.total, empty.bounds, empty.days) == ("All trips", 0, None, 0)


# --- routes ---------------------------------------------------------------------------------------------


def test_route_between_photos_is_in_time_order_and_split(session: Session, user_id: int) -> None:
    # Inserted out of order; a 40-hour gap and a flight (> 300 km) cut the route.
    add_photo(session, user_id, at(2), 46.10, 14.60)
    add_photo(session, user_id, at(0), 46.00, 14.50)
    add_photo(session, user_id, at(1), 46.05, 14.55)
    add_photo(session, user_id, at(42), 46.20, 14.70)  # 40 h later: a new part
    add_photo(session, user_id, at(43), 46.25, 14.75)
    add_photo(session, user_id, at(45), 41.90, 12.50)  # Rome: a flight
    lines = maps.routes(session, maps.Scope(user_id)).lines
    assert [line.kind for line in lines] == ["photos", "photos"]
    assert [line.coords for line in lines] == [
        ((46.0, 14.5), (46.05, 14.55), (46.1, 14.6)),
        ((46.2, 14.7), (46.25, 14.75)),
    ]


def test_route_merges_photos_taken_at_one_stop(session: Session, user_id: int) -> None:
    for i in range(5):
        add_photo(session, user_id, at(i / 10), 46.0 + i * 1e-5, 14.5)  # within a few metres
    add_photo(session, user_id, at(1), 46.01, 14.5)
    (line,) = maps.routes(session, maps.Scope(user_id)).lines
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
    result = maps.routes(session, maps.Scope(user_id, trip.id))
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
    assert maps.scope_tracks(session, maps.Scope(user_id, trip.id)) == []
    add_photo(session, user_id, datetime(2010, 8, 5, 17, 0), trip=trip)
    assert len(maps.scope_tracks(session, maps.Scope(user_id, trip.id))) == 1


def test_fit_budget_keeps_ends_and_the_budget() -> None:
    line = maps.RouteLine("track", tuple((46 + i * 1e-3, 14 + (i % 7) * 1e-3) for i in range(3000)))
    other = maps.RouteLine("photos", ((45.0, 13.0), (45.5, 13.5)))
    fitted = maps.fit_budget([line, other], budget=500)
    assert sum(len(f.coords) for f in fitted) <= 500
    assert fitted[0].coords[0] == line.coords[0] and fitted[0].coords[-1] == (48.999, 14.003)
    assert fitted[1].coords == other.coords
    assert maps.fit_budget([other], budget=10)[0].coords == other.coords


def test_stop_distance_grows_with_the_area() -> None:
    assert maps.stop_distance_m(None) == maps.ROUTE_STOP_M
    assert maps.stop_distance_m(((46.0, 14.0), (46.1, 14.1))) == maps.ROUTE_STOP_M
    assert maps.stop_distance_m(((-60.0, -170.0), (70.0, 170.0))) == maps.ROUTE_STOP_MAX_M


# --- the story ------------------------------------------------------------------------------------------


def story_ids(chunk: maps.StoryChunk) -> list[int]:
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
    chunk = maps.story_chunk(session, maps.Scope(user_id, trip.id), number_days=True)
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
    (day,) = maps.story_chunk(session, maps.Scope(user_id)).days
    assert [(block.grid, [e.lead.id for e in block.entries]) for block in day.blocks] == [
        (True, [a.id, b.id]),
        (False, [c.id]),
        (True, [d.id]),
    ]


def test_story_chunks_cover_everything_once_forward_and_back(session: Session, user_id: int) -> None:
    photos = [add_photo(session, user_id, at(h * 5)) for h in range(40)]  # ~5 photos a day
    photos += [add_photo(session, user_id, None) for _ in range(3)]
    scope = maps.Scope(user_id)
    seen: list[int] = []
    chunk = maps.story_chunk(session, scope, size=7)
    chunks = [chunk]
    while chunk.after:
        chunk = maps.story_chunk(session, scope, after=maps.parse_cursor(chunk.after), size=7)
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
        chunk = maps.story_chunk(session, scope, before=maps.parse_cursor(chunk.before), size=7)
        back = story_ids(chunk) + back
    assert back == seen


def test_story_around_a_photo_starts_at_its_day(session: Session, user_id: int) -> None:
    photos = [add_photo(session, user_id, at(h * 6)) for h in range(40)]  # 4 photos a day
    target = photos[29]  # 14:00 on 8 May, the third photo of that day
    chunk = maps.story_chunk(session, maps.Scope(user_id), around=target.id, size=5)
    assert chunk.days[0].key == target.taken_at.date().isoformat()  # type: ignore[union-attr]
    assert story_ids(chunk)[0] == photos[27].id and target.id in story_ids(chunk)
    assert chunk.before is not None and chunk.after is not None
    with pytest.raises(NotFound):
        maps.story_chunk(session, maps.Scope(user_id), around=10**9)


def test_story_cursor_is_checked() -> None:
    with pytest.raises(InvalidInput):
        maps.parse_cursor("2024-05-01")
    assert maps.parse_cursor("") is None


def test_unlocated_pages(session: Session, user_id: int, trip: Trip) -> None:
    lost = [add_photo(session, user_id, at(h), trip=trip) for h in range(5)]
    add_photo(session, user_id, at(1), 46.0, 14.0, trip=trip)
    untimed = add_photo(session, user_id, None, trip=trip)
    scope = maps.Scope(user_id, trip.id)
    page = maps.unlocated(session, scope, limit=4)
    assert page.total == 6 and [p.id for p in page.photos] == [p.id for p in lost[:4]]
    rest = maps.unlocated(session, scope, after=maps.parse_cursor(page.after), limit=4)
    assert [p.id for p in rest.photos] == [lost[4].id, untimed.id] and rest.after is None


# --- the 180th meridian (issue 17 item 3) ------------------------------------------------------------

FIJI_EAST, FIJI_WEST = (-17.0, 179.99), (-16.8, -179.99)


def test_summary_bounds_take_the_short_way_across_the_antimeridian(
    session: Session, user_id: int, trip: Trip
) -> None:
    add_photo(session, user_id, at(0), *FIJI_EAST, trip=trip)
    add_photo(session, user_id, at(1), *FIJI_WEST, trip=trip)
    bounds = maps.summary(session, maps.Scope(user_id, trip.id)).bounds
    assert bounds == ((-17.0, 179.99), (-16.8, pytest.approx(180.01)))


def test_summary_bounds_away_from_the_antimeridian_are_plain(
    session: Session, user_id: int, trip: Trip
) -> None:
    add_photo(session, user_id, at(0), 46.0, -10.0, trip=trip)
    add_photo(session, user_id, at(1), 46.5, 14.5, trip=trip)
    assert maps.summary(session, maps.Scope(user_id, trip.id)).bounds == ((46.0, -10.0), (46.5, 14.5))


def test_route_between_photos_across_the_antimeridian_is_one_short_line(
    session: Session, user_id: int, trip: Trip
) -> None:
    add_photo(session, user_id, at(0), *FIJI_EAST, trip=trip)
    add_photo(session, user_id, at(1), *FIJI_WEST, trip=trip)  # a 20 km ferry hop: no 300 km jump
    scope = maps.Scope(user_id, trip.id)
    info = maps.summary(session, scope)
    found = maps.routes(session, scope, bounds=info.bounds)
    assert len(found.lines) == 1 and found.distance_km == pytest.approx(30.0, abs=10)
    bounds = maps.extent(info.bounds, found.lines)
    config = maps.map_config(urls=str, bounds=bounds, lines=found.lines, layer=None, online_tiles_url="")
    assert config["bounds"] == [[-17.0, 179.99], [-16.8, pytest.approx(180.01)]]
    assert config["routes"][0]["coords"] == [[-17.0, 179.99], [-16.8, pytest.approx(180.01)]]


def test_track_across_the_antimeridian_is_drawn_the_short_way() -> None:
    line = maps.RouteLine("track", ((-17.0, 179.9), (-17.0, 179.99), (-16.9, -179.9), (-16.9, -179.8)))
    bounds = maps.extent(None, [line])
    assert bounds == ((-17.0, 179.9), (-16.9, pytest.approx(180.2)))
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
