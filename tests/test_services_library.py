"""Reading the library: order, keyset pages, filters, neighbours and the GeoJSON feed (no request)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from journal.config import Settings
from journal.errors import InvalidInput, NotFound
from journal.models import Photo
from journal.services import importing, library, users
from tests.imaging import make_jpeg

BERLIN = (52.52, 13.405)
BANGKOK = (13.7563, 100.5018)


def import_photos(
    settings: Settings,
    factory: sessionmaker[Session],
    user_id: int,
    paths: list[Path],
    *,
    trip: str | None = None,
) -> list[int]:
    """Import files with the real importer; the new photo ids in the order of `paths`."""
    options = importing.ImportOptions(user_id=user_id, trip_title=trip)
    ids = []
    for path in paths:  # one run per file keeps the ids in the order given
        summary = importing.run_import(settings, factory, options, importing.discover([path]))
        assert summary.count("imported") == 1, summary.results
        photo_id = summary.results[0].photo_id
        assert photo_id is not None
        ids.append(photo_id)
    return ids


def add_user(factory: sessionmaker[Session], name: str) -> int:
    """A new account's id."""
    with factory() as s, s.begin():
        return users.create_user(s, name, "password123").id


@dataclass
class Library:
    """Alice's photos by name, and Bob's one photo."""

    alice: int
    bob: int
    ids: dict[str, int]
    bob_photo: int

    def order(self, *names: str) -> list[int]:
        return [self.ids[n] for n in names]


@pytest.fixture
def lib(settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path) -> Library:
    alice, bob = add_user(session_factory, "alice"), add_user(session_factory, "bob")
    src = tmp_path / "src"
    specs: dict[str, dict[str, Any]] = {
        # offset from the camera: UTC 08:00
        "a": {
            "taken_at": datetime(2024, 5, 1, 10, 0),
            "offset": "+02:00",
            "lat": BERLIN[0],
            "lon": BERLIN[1],
        },
        # UTC 10:00, no position
        "b": {"taken_at": datetime(2024, 5, 1, 12, 0), "offset": "+02:00"},
        # local time only (no offset, no position): sorts by its local time
        "c": {"taken_at": datetime(2024, 5, 3, 9, 0)},
        # no time at all: last
        "d": {},
        "e": {"lat": BANGKOK[0], "lon": BANGKOK[1]},
        # offset from the time zone at the position (Bangkok, +07:00)
        "f": {"taken_at": datetime(2023, 1, 1, 18, 0), "lat": BANGKOK[0], "lon": BANGKOK[1], "model": "T-2"},
    }
    ids: dict[str, int] = {}
    for seed, (name, exif) in enumerate(specs.items()):
        path = make_jpeg(src / f"{name}.jpg", (96, 64), seed=seed, **exif)
        trip = "Berlin" if name in "ab" else None
        ids[name] = import_photos(settings, session_factory, alice, [path], trip=trip)[0]
    bob_photo = import_photos(
        settings, session_factory, bob, [make_jpeg(src / "bob.jpg", seed=99, **specs["a"])]
    )[0]
    return Library(alice, bob, ids, bob_photo)


FULL_ORDER = ("c", "b", "a", "f", "e", "d")


def test_order_newest_first_local_only_by_local_time_untimed_last(session: Session, lib: Library) -> None:
    page = library.list_page(session, lib.alice, library.LibraryFilter())
    assert [item.id for item in page.items] == lib.order(*FULL_ORDER)
    assert page.total == 6 and page.newer is None and page.older is None
    assert lib.bob_photo not in [item.id for item in page.items]


def test_sort_at_is_utc_else_local(session: Session, lib: Library) -> None:
    a, c, d = (session.get(Photo, lib.ids[n]) for n in "acd")
    assert a is not None and c is not None and d is not None
    assert a.sort_at == datetime(2024, 5, 1, 8, 0)
    assert c.sort_at == datetime(2024, 5, 3, 9, 0)
    assert d.sort_at is None


def test_keyset_pages_forward_and_back(session: Session, lib: Library) -> None:
    flt = library.LibraryFilter()
    seen, after, pages = [], None, []
    while True:
        page = library.list_page(session, lib.alice, flt, after=after, limit=2)
        pages.append(page)
        seen += [item.id for item in page.items]
        if page.older is None:
            break
        after = page.older
    assert seen == lib.order(*FULL_ORDER)
    assert len(pages) == 3 and pages[0].newer is None and pages[1].newer is not None
    # and back again from the last page
    back = library.list_page(session, lib.alice, flt, before=pages[2].newer, limit=2)
    assert [i.id for i in back.items] == [i.id for i in pages[1].items]
    assert back.older == pages[1].older and back.newer == pages[1].newer


def test_keyset_pages_with_ties(
    settings: Settings, session_factory: sessionmaker[Session], session: Session, tmp_path: Path
) -> None:
    user = add_user(session_factory, "carol")
    same: dict[str, Any] = {"taken_at": datetime(2022, 2, 2, 2, 2), "offset": "+00:00"}
    paths = [
        make_jpeg(tmp_path / f"t{i}.jpg", (32, 32), seed=i, **(same if i % 3 else {})) for i in range(11)
    ]
    ids = import_photos(settings, session_factory, user, paths)
    timed = sorted((i for n, i in enumerate(ids) if n % 3), reverse=True)
    untimed = sorted((i for n, i in enumerate(ids) if not n % 3), reverse=True)
    for size in (1, 2, 3, 4, 20):
        seen, after = [], None
        while True:
            page = library.list_page(session, user, library.LibraryFilter(), after=after, limit=size)
            seen += [item.id for item in page.items]
            if not (after := page.older):
                break
        assert seen == timed + untimed, size


def test_filters_trip_dates_no_location(session: Session, lib: Library) -> None:
    trip_id = library.list_trips(session, lib.alice)[0].id
    by_trip = library.list_page(session, lib.alice, library.LibraryFilter(trip_id=trip_id))
    assert [i.id for i in by_trip.items] == lib.order("b", "a")
    may = library.LibraryFilter(date_from=date(2024, 5, 1), date_to=date(2024, 5, 2))
    assert [i.id for i in library.list_page(session, lib.alice, may).items] == lib.order("b", "a")
    after = library.LibraryFilter(date_from=date(2024, 5, 3))
    assert [i.id for i in library.list_page(session, lib.alice, after).items] == lib.order("c")
    unplaced = library.list_page(session, lib.alice, library.LibraryFilter(no_location=True))
    assert [i.id for i in unplaced.items] == lib.order("c", "b", "d")
    assert unplaced.total == 3


def test_counts(session: Session, lib: Library) -> None:
    counts = library.library_counts(session, lib.alice)
    assert (counts.all_photos, counts.without_location) == (6, 3)


def test_other_users_trip_is_not_found(session: Session, lib: Library) -> None:
    trip_id = library.list_trips(session, lib.alice)[0].id
    with pytest.raises(NotFound):
        library.list_page(session, lib.bob, library.LibraryFilter(trip_id=trip_id))


def test_parse_filter_and_cursor() -> None:
    flt = library.parse_filter({"trip": "3", "from": "2024-05-01", "to": "", "nolocation": "1"})
    assert flt == library.LibraryFilter(trip_id=3, date_from=date(2024, 5, 1), no_location=True)
    assert flt.query_args() == {"trip": "3", "from": "2024-05-01", "nolocation": "1"}
    for bad in ({"trip": "x"}, {"from": "May"}, {"from": "2024-05-02", "to": "2024-05-01"}):
        with pytest.raises(InvalidInput):
            library.parse_filter(bad)
    key = library.SortKey(datetime(2024, 5, 1, 8, 0, 0, 123), 42)
    assert library.SortKey.parse(key.token()) == key
    assert library.SortKey.parse("n-7") == library.SortKey(None, 7)
    for bad_token in ("", "x-1", "20241301T000000000000-1", "n-1' OR 1=1"):
        with pytest.raises(InvalidInput):
            library.SortKey.parse(bad_token)


def test_neighbours_follow_the_grid(session: Session, lib: Library) -> None:
    def around(name: str, flt: library.LibraryFilter | None = None) -> tuple[int | None, int | None]:
        photo = library.get_photo(session, lib.alice, lib.ids[name])
        n = library.neighbours(session, photo, flt)
        return n.newer, n.older

    assert around("c") == (None, lib.ids["b"])
    assert around("f") == (lib.ids["a"], lib.ids["e"])
    assert around("e") == (lib.ids["f"], lib.ids["d"])
    assert around("d") == (lib.ids["e"], None)
    assert around("b", library.LibraryFilter(no_location=True)) == (lib.ids["c"], lib.ids["d"])


def test_get_photo_of_another_user_is_not_found(session: Session, lib: Library) -> None:
    with pytest.raises(NotFound):
        library.get_photo(session, lib.alice, lib.bob_photo)
    with pytest.raises(NotFound):
        library.photo_page(session, lib.alice, lib.bob_photo)


def test_day_groups(session: Session, lib: Library) -> None:
    page = library.list_page(session, lib.alice, library.LibraryFilter())
    days = [(g.day, len(g.items)) for g in page.days]
    assert days == [(date(2024, 5, 3), 1), (date(2024, 5, 1), 2), (date(2023, 1, 1), 1), (None, 2)]


def test_thumb_dimensions() -> None:
    assert library.thumb_dimensions(2048, 1536, 400) == (400, 300)
    assert library.thumb_dimensions(1000, 2000, 400) == (200, 400)
    assert library.thumb_dimensions(300, 200, 400) == (300, 200)
    assert library.thumb_dimensions(0, 0, 400) == (400, 400)


def _geojson(session: Session, user_id: int, **kwargs: Any) -> dict[str, Any]:
    chunks = library.geojson_chunks(session, user_id, lambda i, sha: f"/t/{i}?v={sha[:4]}", **kwargs)
    parsed: dict[str, Any] = json.loads("".join(chunks))
    return parsed


def test_geojson_shape_isolation_and_trip(session: Session, lib: Library) -> None:
    data = _geojson(session, lib.alice)
    assert data["type"] == "FeatureCollection"
    features = data["features"]
    assert isinstance(features, list)
    by_id = {f["properties"]["id"]: f for f in features}
    assert set(by_id) == {lib.ids[n] for n in "aef"}
    a = by_id[lib.ids["a"]]
    assert a["type"] == "Feature" and a["geometry"]["type"] == "Point"
    lon, lat = a["geometry"]["coordinates"]
    assert lat == pytest.approx(BERLIN[0], abs=1e-4) and lon == pytest.approx(BERLIN[1], abs=1e-4)
    props = a["properties"]
    assert set(props) >= {"id", "caption", "taken_at_utc", "place", "thumb_url"}
    assert props["taken_at_utc"] == "2024-05-01T08:00:00Z"
    assert "Germany" in props["place"] and props["thumb_url"].startswith(f"/t/{lib.ids['a']}?v=")
    assert by_id[lib.ids["e"]]["properties"]["taken_at_utc"] is None
    trip_id = library.list_trips(session, lib.alice)[0].id
    assert [f["properties"]["id"] for f in _geojson(session, lib.alice, trip_id=trip_id)["features"]] == [
        lib.ids["a"]
    ]
    assert [f["properties"]["id"] for f in _geojson(session, lib.bob)["features"]] == [lib.bob_photo]
    with pytest.raises(NotFound):
        _geojson(session, lib.bob, trip_id=trip_id)


def test_geojson_streams_in_chunks_and_cuts_long_captions(session: Session, lib: Library) -> None:
    photo = session.get(Photo, lib.ids["a"])
    assert photo is not None and photo.post is not None
    photo.post.caption = "x" * 500 + ' "quoted" </script>'
    session.flush()
    chunks = list(library.geojson_chunks(session, lib.alice, lambda i, s: "", chunk_rows=1))
    assert len(chunks) == 2 + 3  # head, one chunk per located photo, tail
    features = json.loads("".join(chunks))["features"]
    caption = next(f for f in features if f["properties"]["id"] == lib.ids["a"])["properties"]["caption"]
    assert len(caption) == library.GEOJSON_CAPTION_CHARS and caption.endswith("…")
    empty = json.loads(
        "".join(library.geojson_chunks(session, add_user_in(session, "dora"), lambda i, s: ""))
    )
    assert empty == {"type": "FeatureCollection", "features": []}


def add_user_in(session: Session, name: str) -> int:
    """A user created in an open session (flushed, not committed)."""
    return users.create_user(session, name, "password123").id
