"""Changing photos, posts and trips through the services (no request; the test owns the transaction)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from journal import storage
from journal.config import Settings
from journal.errors import Conflict, InvalidInput, NotFound
from journal.models import Photo, Post, Tag, Trip
from journal.services import editing, library, posts, trips
from tests.imaging import make_jpeg
from tests.test_services_library import BANGKOK, BERLIN, add_user, import_photos


@pytest.fixture
def alice(session_factory: sessionmaker[Session]) -> int:
    return add_user(session_factory, "alice")


@pytest.fixture
def bob(session_factory: sessionmaker[Session]) -> int:
    return add_user(session_factory, "bob")


def photo_with(
    settings: Settings,
    factory: sessionmaker[Session],
    user_id: int,
    tmp_path: Path,
    seed: int = 0,
    *,
    trip: str | None = None,
    **exif: Any,
) -> int:
    """Import one made-up JPEG; its photo id."""
    path = make_jpeg(tmp_path / f"p{seed}.jpg", (80, 60), seed=seed, **exif)
    return import_photos(settings, factory, user_id, [path], trip=trip)[0]


def get(session: Session, photo_id: int) -> Photo:
    photo = session.get(Photo, photo_id)
    assert photo is not None
    return photo


# --- captions, tags, trips -------------------------------------------------------------------------


def test_caption_is_kept_as_text(
    settings: Settings, session_factory: sessionmaker[Session], session: Session, alice: int, tmp_path: Path
) -> None:
    photo = get(session, photo_with(settings, session_factory, alice, tmp_path))
    editing.set_caption(session, editing.post_of(session, photo), "  <script>alert(1)</script>\r\nline 2  ")
    assert photo.post is not None and photo.post.caption == "<script>alert(1)</script>\nline 2"
    with pytest.raises(InvalidInput):
        editing.set_caption(session, photo.post, "x" * (editing.MAX_CAPTION_CHARS + 1))


def test_tags_are_per_user_and_deduplicated(
    settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    alice: int,
    bob: int,
    tmp_path: Path,
) -> None:
    mine = get(session, photo_with(settings, session_factory, alice, tmp_path, 1))
    theirs = get(session, photo_with(settings, session_factory, bob, tmp_path, 2))
    editing.set_tags(session, mine, " Market, food ,market,, Night  sky ")
    assert editing.tags_text(mine) == "Market, food, Night sky"
    editing.set_tags(session, theirs, "market")
    assert {t.user_id for t in theirs.tags} == {bob}
    editing.set_tags(session, mine, "food")
    assert editing.tags_text(mine) == "food"
    assert session.scalar(select(func.count(Tag.id)).where(Tag.user_id == alice)) == 3  # tags stay for reuse
    with pytest.raises(InvalidInput):
        editing.set_tags(session, mine, "x" * 101)
    with pytest.raises(InvalidInput):
        editing.set_tags(session, mine, ",".join(f"t{i}" for i in range(31)))


def test_trip_of_post_and_other_users_trip(
    settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    alice: int,
    bob: int,
    tmp_path: Path,
) -> None:
    photo = get(session, photo_with(settings, session_factory, alice, tmp_path))
    trip = trips.create_trip(session, alice, trips.TripForm.parse("Laos", "", "", ""))
    other = trips.create_trip(session, bob, trips.TripForm.parse("Bob's", "", "", ""))
    post = editing.post_of(session, photo)
    editing.set_trip(session, post, trip.id)
    assert post.trip_id == trip.id
    editing.set_trip(session, post, None)
    assert post.trip_id is None
    with pytest.raises(NotFound):
        editing.set_trip(session, post, other.id)


# --- position ----------------------------------------------------------------------------------------


def test_parse_position() -> None:
    assert editing.parse_position("13.7563", "100.5018") == (13.7563, 100.5018)
    assert editing.parse_position("-33.8688, 151.2093", "") == (-33.8688, 151.2093)
    for lat, lon in (("91", "0"), ("0", "-180.5"), ("abc", "1"), ("nan", "1"), ("", "")):
        with pytest.raises(InvalidInput):
            editing.parse_position(lat, lon)


def test_set_position_names_the_place_and_follows_the_zone(
    settings: Settings, session_factory: sessionmaker[Session], session: Session, alice: int, tmp_path: Path
) -> None:
    # A local time only: placing the photo in Bangkok gives it Bangkok's offset.
    photo = get(
        session, photo_with(settings, session_factory, alice, tmp_path, taken_at=datetime(2024, 1, 5, 20, 0))
    )
    assert photo.taken_at_utc is None and photo.sort_at == datetime(2024, 1, 5, 20, 0)
    editing.set_position(session, photo, *BANGKOK)
    assert photo.location_source == "manual" and photo.country_code == "TH"
    assert photo.place and "Bangkok" in photo.place
    assert (photo.timezone, photo.utc_offset_min, photo.offset_source) == ("Asia/Bangkok", 420, "timezone")
    assert photo.taken_at_utc == datetime(2024, 1, 5, 13, 0, tzinfo=UTC)
    session.flush()
    assert photo.sort_at == datetime(2024, 1, 5, 13, 0)
    # Moved to Berlin: the zone comes from the position again.
    editing.set_position(session, photo, *BERLIN)
    assert (photo.timezone, photo.utc_offset_min) == ("Europe/Berlin", 60)
    assert photo.country == "Germany"


def test_set_position_keeps_a_camera_offset(
    settings: Settings, session_factory: sessionmaker[Session], session: Session, alice: int, tmp_path: Path
) -> None:
    photo = get(
        session,
        photo_with(
            settings, session_factory, alice, tmp_path, taken_at=datetime(2024, 1, 5, 20, 0), offset="+02:00"
        ),
    )
    before = photo.taken_at_utc
    editing.set_position(session, photo, *BANGKOK)
    assert photo.offset_source == "camera" and photo.utc_offset_min == 120 and photo.taken_at_utc == before
    assert photo.timezone == "Asia/Bangkok"


def test_clear_position(
    settings: Settings, session_factory: sessionmaker[Session], session: Session, alice: int, tmp_path: Path
) -> None:
    photo = get(session, photo_with(settings, session_factory, alice, tmp_path, lat=BERLIN[0], lon=BERLIN[1]))
    assert photo.has_location
    editing.clear_position(session, photo)
    assert (photo.lat, photo.lon, photo.place, photo.location_source) == (None, None, None, None)


# --- time ----------------------------------------------------------------------------------------------


def test_set_timezone_by_name_with_daylight_saving(
    settings: Settings, session_factory: sessionmaker[Session], session: Session, alice: int, tmp_path: Path
) -> None:
    summer = get(
        session, photo_with(settings, session_factory, alice, tmp_path, 1, taken_at=datetime(2024, 7, 1, 12))
    )
    winter = get(
        session, photo_with(settings, session_factory, alice, tmp_path, 2, taken_at=datetime(2024, 1, 1, 12))
    )
    for photo, offset in ((summer, 120), (winter, 60)):
        editing.set_timezone(session, photo, "Europe/Berlin")
        assert (photo.timezone, photo.utc_offset_min, photo.offset_source) == (
            "Europe/Berlin",
            offset,
            "manual",
        )
        assert photo.taken_at is not None and photo.taken_at.hour == 12  # the local time stays
        local = datetime(2024, photo.taken_at.month, 1, 12, tzinfo=UTC)
        assert photo.taken_at_utc == local - timedelta(minutes=offset)
    # A position set later keeps the zone chosen by hand.
    editing.set_position(session, summer, *BANGKOK)
    assert summer.timezone == "Europe/Berlin" and summer.utc_offset_min == 120
    for bad in ("Mars/Olympus", "", "../../etc/passwd", "posixrules"):
        with pytest.raises(InvalidInput):
            editing.set_timezone(session, winter, bad)


def test_set_timezone_needs_a_time(
    settings: Settings, session_factory: sessionmaker[Session], session: Session, alice: int, tmp_path: Path
) -> None:
    photo = get(session, photo_with(settings, session_factory, alice, tmp_path))
    with pytest.raises(InvalidInput, match="no recorded time"):
        editing.set_timezone(session, photo, "Asia/Bangkok")


def test_zone_names() -> None:
    names = editing.zone_names()
    assert "Asia/Bangkok" in names and "UTC" in names and "America/Argentina/Buenos_Aires" in names
    assert list(names) == sorted(names) and not any(n.startswith(("posix/", "right/")) for n in names)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+7", timedelta(hours=7)),
        ("+7h", timedelta(hours=7)),
        ("+07:00", timedelta(hours=7)),
        ("-0:30", -timedelta(minutes=30)),
        ("+1d 2:00", timedelta(days=1, hours=2)),
        ("+1d", timedelta(days=1)),
        ("- 0:00:45", -timedelta(seconds=45)),
        ("+8760", timedelta(hours=8760)),
    ],
)
def test_parse_shift(text: str, expected: timedelta) -> None:
    assert editing.parse_shift(text) == expected


@pytest.mark.parametrize("text", ["7", "+", "+0", "+1:60", "+abc", "", "+99999d"])
def test_parse_shift_refuses(text: str) -> None:
    with pytest.raises(InvalidInput):
        editing.parse_shift(text)


def test_shift_camera_clock_moves_one_camera_in_one_trip(
    settings: Settings, session_factory: sessionmaker[Session], session: Session, alice: int, tmp_path: Path
) -> None:
    home_time = {
        "taken_at": datetime(2024, 3, 1, 3, 0),
        "offset": "+07:00",
        "make": "Canon",
        "model": "EOS R6",
    }
    shifted = photo_with(settings, session_factory, alice, tmp_path, 1, trip="Laos", **home_time)
    phone = photo_with(
        settings, session_factory, alice, tmp_path, 2, trip="Laos", taken_at=datetime(2024, 3, 1, 10)
    )
    elsewhere = photo_with(settings, session_factory, alice, tmp_path, 3, trip="Home", **home_time)
    zoned = photo_with(
        settings,
        session_factory,
        alice,
        tmp_path,
        4,
        trip="Laos",
        make="Canon",
        model="EOS R6",
        taken_at=datetime(2024, 3, 1, 4, 0),
        lat=BANGKOK[0],
        lon=BANGKOK[1],
    )
    laos = session.scalar(select(Trip).where(Trip.title == "Laos"))
    assert laos is not None
    cameras = editing.trip_cameras(session, alice, laos.id)
    assert [(c.label, c.photos) for c in cameras] == [("Canon EOS R6", 2), ("TestCam T-1", 1)]
    assert editing.parse_camera(cameras[0].key) == ("Canon", "EOS R6")
    before = {
        i: (get(session, i).taken_at, get(session, i).taken_at_utc)
        for i in (shifted, phone, elsewhere, zoned)
    }
    count = editing.shift_camera_clock(session, alice, laos.id, ("Canon", "EOS R6"), timedelta(hours=7))
    assert count == 2
    s = get(session, shifted)
    assert s.taken_at == datetime(2024, 3, 1, 10, 0)
    assert s.taken_at_utc == before[shifted][1] + timedelta(hours=7)  # type: ignore[operator]
    z = get(session, zoned)
    assert z.taken_at == datetime(2024, 3, 1, 11, 0) and z.utc_offset_min == 420
    assert z.taken_at_utc == datetime(2024, 3, 1, 4, 0, tzinfo=UTC)
    for untouched in (phone, elsewhere):
        assert (get(session, untouched).taken_at, get(session, untouched).taken_at_utc) == before[untouched]
    session.flush()
    assert s.sort_at == datetime(2024, 2, 29, 20, 0) + timedelta(hours=7)


def test_shift_camera_clock_errors(
    settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    alice: int,
    bob: int,
    tmp_path: Path,
) -> None:
    photo = get(session, photo_with(settings, session_factory, alice, tmp_path, 1, trip="Laos"))
    photo.taken_at = datetime(1, 1, 1, 1)  # a reset camera clock
    laos = session.scalar(select(Trip).where(Trip.title == "Laos"))
    assert laos is not None
    with pytest.raises(NotFound):
        editing.shift_camera_clock(session, bob, laos.id, ("TestCam", "T-1"), timedelta(hours=1))
    with pytest.raises(InvalidInput, match="calendar"):
        editing.shift_camera_clock(session, alice, laos.id, ("TestCam", "T-1"), -timedelta(days=2))
    for bad in ("", "not json", '["a"]', "[1, 2]", '{"make": "x"}'):
        with pytest.raises(InvalidInput):
            editing.parse_camera(bad)


def test_camera_label() -> None:
    assert editing.camera_label("Canon", "Canon EOS 5D") == "Canon EOS 5D"
    assert editing.camera_label("NIKON CORPORATION", "NIKON D750") == "NIKON D750"
    assert editing.camera_label("Apple", "iPhone 15 Pro") == "Apple iPhone 15 Pro"
    assert editing.camera_label(None, None) == "unknown camera"


# --- deletion --------------------------------------------------------------------------------------------


def test_delete_photo_rows_first_files_after(
    settings: Settings, session_factory: sessionmaker[Session], alice: int, tmp_path: Path
) -> None:
    first = photo_with(settings, session_factory, alice, tmp_path, 1)
    second = photo_with(settings, session_factory, alice, tmp_path, 2)
    with session_factory() as s, s.begin():
        post = posts.create_post(s, alice, [first, second], caption="two")
        post_id = post.id
    with session_factory() as s:
        photo = get(s, first)
        files = editing.photo_files(settings.uploads_dir, photo)
        assert len(files) == 3 and all(f.is_file() for f in files)
        deleted = editing.delete_photo(s, settings.uploads_dir, photo)
        assert all(f.is_file() for f in files)  # nothing removed before the commit
        s.commit()
        editing.remove_files(s, deleted)
        assert not any(f.exists() for f in files)
        assert s.get(Photo, first) is None
        remaining = posts.get_post(s, alice, post_id)
        assert [(p.id, p.position) for p in remaining.photos] == [(second, 0)]
        # the last photo of a post takes the post with it
        deleted = editing.delete_photo(s, settings.uploads_dir, get(s, second))
        s.commit()
        editing.remove_files(s, deleted)
        assert s.get(Post, post_id) is None
        assert s.scalar(select(func.count(Photo.id))) == 0


def test_delete_keeps_files_of_content_imported_again(
    settings: Settings, session_factory: sessionmaker[Session], alice: int, tmp_path: Path
) -> None:
    photo_id = photo_with(settings, session_factory, alice, tmp_path, 1)
    with session_factory() as s:
        deleted = editing.delete_photo(s, settings.uploads_dir, get(s, photo_id))
        s.commit()
        again = photo_with(settings, session_factory, alice, tmp_path, 1)  # same bytes, imported meanwhile
        editing.remove_files(s, deleted)
        assert all(f.is_file() for f in editing.photo_files(settings.uploads_dir, get(s, again)))


def test_photo_files_refuses_a_path_outside_uploads(
    settings: Settings, session_factory: sessionmaker[Session], session: Session, alice: int, tmp_path: Path
) -> None:
    photo = get(session, photo_with(settings, session_factory, alice, tmp_path))
    photo.stored_path = "../../secret_key"
    with pytest.raises(InvalidInput):
        editing.photo_files(settings.uploads_dir, photo)
    assert storage.RENDITIONS  # the files removed are the original plus every rendition kind


# --- posts -------------------------------------------------------------------------------------------------


def test_create_post_from_photos(
    settings: Settings, session_factory: sessionmaker[Session], session: Session, alice: int, tmp_path: Path
) -> None:
    late = photo_with(
        settings, session_factory, alice, tmp_path, 1, trip="Laos", taken_at=datetime(2024, 1, 2)
    )
    early = photo_with(
        settings, session_factory, alice, tmp_path, 2, trip="Laos", taken_at=datetime(2024, 1, 1)
    )
    untimed = photo_with(settings, session_factory, alice, tmp_path, 3, trip="Laos")
    old_posts = {get(session, i).post_id for i in (late, early, untimed)}
    editing.set_caption(session, editing.post_of(session, get(session, late)), "Night market")
    post = posts.create_post(session, alice, [untimed, late, early, late])
    assert [p.id for p in post.photos] == [early, late, untimed]
    assert [p.position for p in post.photos] == [0, 1, 2]
    assert post.caption == "Night market"  # the old posts' captions are kept
    laos = session.scalar(select(Trip).where(Trip.title == "Laos"))
    assert laos is not None and post.trip_id == laos.id  # the trip they shared
    assert all(session.get(Post, i) is None for i in old_posts)  # emptied posts are gone


def test_create_post_errors(
    settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    alice: int,
    bob: int,
    tmp_path: Path,
) -> None:
    mine = photo_with(settings, session_factory, alice, tmp_path, 1)
    theirs = photo_with(settings, session_factory, bob, tmp_path, 2)
    with pytest.raises(InvalidInput):
        posts.create_post(session, alice, [])
    with pytest.raises(NotFound):
        posts.create_post(session, alice, [mine, theirs])
    with pytest.raises(NotFound):
        posts.create_post(
            session,
            alice,
            [mine],
            trip_id=trips.create_trip(session, bob, trips.TripForm.parse("B", "", "", "")).id,
        )


def test_reorder_take_out_and_split(
    settings: Settings, session_factory: sessionmaker[Session], session: Session, alice: int, tmp_path: Path
) -> None:
    ids = [
        photo_with(settings, session_factory, alice, tmp_path, i, taken_at=datetime(2024, 1, 1, i))
        for i in range(1, 5)
    ]
    post = posts.create_post(session, alice, ids, caption="four")
    posts.move_photo(session, post, ids[0], "down")
    posts.move_photo(session, post, ids[3], "up")
    posts.move_photo(session, post, ids[1], "up")  # first already: stays
    order = [p.id for p in sorted(post.photos, key=lambda p: p.position)]
    assert order == [ids[1], ids[0], ids[3], ids[2]]
    single = posts.remove_photo(session, post, ids[0])
    assert [p.id for p in single.photos] == [ids[0]] and single.caption == ""
    assert sorted(p.position for p in post.photos) == [0, 1, 2]
    with pytest.raises(NotFound):
        posts.move_photo(session, post, ids[0], "up")
    with pytest.raises(InvalidInput):
        posts.parse_direction("sideways")
    assert posts.split_post(session, post) == 3
    assert len(post.photos) == 1
    with pytest.raises(InvalidInput, match="only photo"):
        posts.remove_photo(session, post, post.photos[0].id)


# --- trips --------------------------------------------------------------------------------------------------


def test_trip_create_update_conflict_delete(
    settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    alice: int,
    bob: int,
    tmp_path: Path,
) -> None:
    photo_id = photo_with(settings, session_factory, alice, tmp_path, 1)  # before this session writes
    form = trips.TripForm.parse("  Mekong   2025 ", "2025-03-01", "2025-03-20", "Slow boat\r\ndown")
    trip = trips.create_trip(session, alice, form)
    assert (trip.title, trip.start_date, trip.description) == (
        "Mekong 2025",
        date(2025, 3, 1),
        "Slow boat\ndown",
    )
    trips.create_trip(session, bob, form)  # titles are per user
    with pytest.raises(Conflict):
        trips.create_trip(session, alice, form)
    other = trips.create_trip(session, alice, trips.TripForm.parse("Other", "", "", ""))
    with pytest.raises(Conflict):
        trips.update_trip(session, other, form)
    trips.update_trip(session, trip, trips.TripForm.parse("Mekong 2025", "", "", ""))  # same title: fine
    for bad in (("", "", ""), ("T", "2025-03-02", "2025-03-01"), ("T", "March", ""), ("x" * 201, "", "")):
        with pytest.raises(InvalidInput):
            trips.TripForm.parse(bad[0], bad[1], bad[2], "")
    editing.set_trip(session, editing.post_of(session, get(session, photo_id)), trip.id)
    summaries = {s.trip.title: s for s in trips.trip_summaries(session, alice)}
    assert (summaries["Mekong 2025"].posts, summaries["Mekong 2025"].photos) == (1, 1)
    assert summaries["Mekong 2025"].cover is not None and summaries["Other"].photos == 0
    assert [p.photos[0].id for p in trips.trip_posts(session, trip)] == [photo_id]
    trips.delete_trip(session, trip)
    assert get(session, photo_id).post is not None and get(session, photo_id).post.trip_id is None  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        trips.get_trip(session, bob, other.id)


def test_trip_posts_in_time_order(
    settings: Settings, session_factory: sessionmaker[Session], session: Session, alice: int, tmp_path: Path
) -> None:
    ids = [
        photo_with(
            settings, session_factory, alice, tmp_path, i, trip="T", taken_at=datetime(2024, 1, 10 - i)
        )
        for i in range(1, 4)
    ]
    trip = session.scalar(select(Trip).where(Trip.title == "T"))
    assert trip is not None
    assert [p.photos[0].id for p in trips.trip_posts(session, trip)] == list(reversed(ids))
    assert library.count_photos(session, alice, library.LibraryFilter(trip_id=trip.id)) == 3
