"""journal.services.tracks: storing GPX tracks and placing photos without GPS on them by time.

The photos are made with Pillow with capture times inside cerknicko-jezero.gpx's span
(2010-08-05 14:23:59Z to 16:23:49Z, seven segments); Mojstrovka.gpx's 1901 times place nothing.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from journal import geotag, gpx, route
from journal.config import Settings
from journal.geo import haversine_m
from journal.models import Photo, Track, Trip
from journal.services import geotagging, importing, tracks, users
from tests.imaging import make_jpeg
from tests.samples import GPX_SAMPLES

CERKNICA = GPX_SAMPLES / "cerknicko-jezero.gpx"
CEST = timedelta(hours=2)


@pytest.fixture
def user_id(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as s, s.begin():
        return users.create_user(s, "alice", "password123").id


def run_import(
    settings: Settings, factory: sessionmaker[Session], user_id: int, *paths: Path, **options: object
) -> importing.ImportSummary:
    opts = importing.ImportOptions(user_id=user_id, **options)  # type: ignore[arg-type]
    return importing.run_import(settings, factory, opts, importing.discover(paths))


def photo_at(
    folder: Path, name: str, utc: datetime, *, seed: int, offset: str | None = "+02:00", **exif: Any
) -> Path:
    """A JPEG taken at `utc`, its EXIF holding the local (CEST) time and, by default, the offset."""
    local = (utc + CEST).replace(tzinfo=None)
    return make_jpeg(folder / name, (64, 48), seed=seed, taken_at=local, offset=offset, **exif)


def utc(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2010, 8, 5, hh, mm, ss, tzinfo=UTC)


#: (file name, UTC time, expected to be placed): inside segments 1, 2, 4 and 7; between segments 2
#: and 3 (the device was off); after the track ended.
WALK = [
    ("a-seg1.jpg", utc(14, 40), True),
    ("b-seg2.jpg", utc(15, 12, 30), True),
    ("c-seg4.jpg", utc(15, 40), True),
    ("d-seg7.jpg", utc(16, 10), True),
    ("e-between.jpg", utc(15, 20), False),
    ("f-after.jpg", utc(16, 40), False),
]


def make_walk(folder: Path) -> Path:
    for i, (name, when, _) in enumerate(WALK):
        photo_at(folder, name, when, seed=i)
    return folder


def photos_by_name(factory: sessionmaker[Session]) -> dict[str, Photo]:
    with factory() as s:
        return {Path(p.original_name).name: p for p in s.scalars(select(Photo))}


def expected_position(when: datetime) -> tuple[float, float]:
    found = geotag.locate_by_time(gpx.read_track(CERKNICA), when, max_gap_s=300)
    assert found is not None
    return found[0], found[1]


def assert_walk_placed(factory: sessionmaker[Session]) -> None:
    photos = photos_by_name(factory)
    for name, when, placed in WALK:
        photo = photos[name]
        if not placed:
            assert photo.lat is None and photo.location_source is None, name
            continue
        assert photo.location_source == "track", name
        assert photo.lat is not None and photo.lon is not None
        lat, lon = expected_position(when)
        assert haversine_m(photo.lat, photo.lon, lat, lon) < 1.0, name
        assert photo.place and "Slovenia" in (photo.country or "")
        assert photo.timezone == "Europe/Ljubljana"


def test_store_and_record_a_track(settings: Settings, session: Session, user_id: int) -> None:
    stored = tracks.store_track(settings, user_id, CERKNICA)
    assert (settings.uploads_dir / stored.stored_path).read_bytes() == CERKNICA.read_bytes()
    assert stored.stored_path == f"tracks/{user_id}/{stored.sha256[:2]}/{stored.sha256}.gpx"
    row = tracks.record_track(session, user_id, stored, original_name="walks/cerknicko-jezero.gpx")
    assert row.name == "ACTIVE LOG" and row.original_name == "walks/cerknicko-jezero.gpx"
    assert row.started_at == utc(14, 23, 59) and row.ended_at == utc(16, 23, 49)
    assert row.point_count == 296
    assert row.distance_m == pytest.approx(4580, rel=0.01)  # gpxpy length_2d: 4,580 m
    assert len(row.geometry) == 7
    first = row.geometry[0][0]
    assert first[0] == pytest.approx(45.772175, abs=1e-6) and first[2] == utc(14, 23, 59).timestamp()


def test_geometry_is_simplified_to_a_budget() -> None:
    track = gpx.read_track(CERKNICA)
    small = tracks.track_geometry(track, max_points=60)
    assert sum(len(segment) for segment in small) <= 60
    full = tracks.track_geometry(track)
    assert sum(len(segment) for segment in full) <= 296
    # Ends of every segment are kept.
    assert [s[0][:2] for s in small] == [s[0][:2] for s in full]


def test_track_imported_after_the_photos_places_them(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    summary = run_import(settings, session_factory, user_id, make_walk(tmp_path / "photos"))
    assert summary.count("imported") == len(WALK)
    assert all(p.lat is None for p in photos_by_name(session_factory).values())
    shutil.copy(CERKNICA, tmp_path / "walk.gpx")
    summary = run_import(settings, session_factory, user_id, tmp_path / "walk.gpx", trip_title="Slovenia")
    (result,) = summary.results
    assert result.status == "imported" and result.track_id is not None
    assert result.note == "placed 4 photos already in the journal"
    assert (
        summary.placement_line()
        == "placed 0 photos from tracks; the tracks also placed 4 photos imported before"
    )
    assert_walk_placed(session_factory)
    with session_factory() as s:
        track = s.get(Track, result.track_id)
        assert track is not None and track.trip_id == s.scalar(
            select(Trip.id).where(Trip.title == "Slovenia")
        )


def test_photos_imported_after_the_track_are_placed(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    summary = run_import(settings, session_factory, user_id, CERKNICA)
    assert summary.results[0].note == "recorded; no photo already in the journal falls on it"
    summary = run_import(settings, session_factory, user_id, make_walk(tmp_path / "photos"))
    assert_walk_placed(session_factory)
    assert summary.placement_line() == (
        "placed 4 photos from tracks; 2 not placed: 1 in a gap of the track longer than 5 min, "
        "1 outside every track's time"
    )


def test_one_run_with_photos_and_track_places_them(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    folder = make_walk(tmp_path / "card")
    shutil.copy(CERKNICA, folder / "zz-track.gpx")  # found after the photos; imported first all the same
    summary = run_import(settings, session_factory, user_id, folder)
    assert summary.count("imported") == len(WALK) + 1 and summary.count("failed") == 0
    assert_walk_placed(session_factory)
    # The photos of the same run count as placed (they were placed as they were recorded).
    assert summary.placement_line() is not None
    assert summary.placement_line().startswith("placed 4 photos from tracks; 2 not placed")  # type: ignore[union-attr]
    by_name = {Path(r.name).name: r for r in summary.results}
    assert by_name["a-seg1.jpg"].position_source == "track"
    assert by_name["e-between.jpg"].not_placed == "in a gap of the track longer than 5 min"
    assert by_name["f-after.jpg"].not_placed == "outside every track's time"


def test_camera_gps_and_manual_positions_are_kept(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    photo_at(tmp_path, "gps.jpg", utc(14, 40), seed=1, lat=35.0, lon=139.0)
    run_import(settings, session_factory, user_id, tmp_path / "gps.jpg", CERKNICA)
    photo = photos_by_name(session_factory)["gps.jpg"]
    assert photo.location_source == "exif" and photo.lat == pytest.approx(35.0, abs=1e-4)


def test_local_time_only_photo_is_read_in_the_tracks_time_zone(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    when = utc(14, 40)
    photo_at(tmp_path, "no-offset.jpg", when, seed=3, offset=None)
    run_import(settings, session_factory, user_id, CERKNICA)
    run_import(settings, session_factory, user_id, tmp_path / "no-offset.jpg")
    photo = photos_by_name(session_factory)["no-offset.jpg"]
    assert photo.location_source == "track"
    assert photo.taken_at_utc == when
    assert photo.utc_offset_min == 120 and photo.offset_source == "timezone"
    lat, lon = expected_position(when)
    assert photo.lat is not None and photo.lon is not None
    assert haversine_m(photo.lat, photo.lon, lat, lon) < 1.0


def test_nonsense_1901_times_place_nothing(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    make_jpeg(tmp_path / "old.jpg", (64, 48), seed=9, taken_at=datetime(1901, 12, 13, 21, 0), offset="+01:00")
    folder = make_walk(tmp_path / "walk")
    summary = run_import(
        settings, session_factory, user_id, GPX_SAMPLES / "Mojstrovka.gpx", tmp_path / "old.jpg", folder
    )
    track_result = summary.results[0]
    assert track_result.status == "imported"
    assert track_result.note == "track has no usable times: drawn, but it cannot place photos"
    with session_factory() as s:
        track = s.get(Track, track_result.track_id)
        assert track is not None and track.started_at is None and track.point_count == 184
        assert len(track.geometry) == 1 and len(track.geometry[0]) >= 2
        assert s.scalar(select(Photo).where(Photo.lat.is_not(None))) is None


@pytest.mark.parametrize(
    ("sample", "status", "error"),
    [
        ("unicode_with_bom.gpx", "failed", "no track points"),
        ("route.gpx", "skipped", "a planned route, not a recorded track"),
    ],
)
def test_files_with_nothing_to_place_photos_with(
    settings: Settings,
    session_factory: sessionmaker[Session],
    user_id: int,
    sample: str,
    status: str,
    error: str,
) -> None:
    (result,) = run_import(settings, session_factory, user_id, GPX_SAMPLES / sample).results
    assert (result.status, result.error) == (status, error)
    with session_factory() as s:
        assert s.scalar(select(Track)) is None


def test_broken_gpx_fails_with_its_reason(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.gpx"
    broken.write_bytes(CERKNICA.read_bytes()[:3000])
    (result,) = run_import(settings, session_factory, user_id, broken).results
    assert result.status == "failed" and result.error and result.error.startswith("broken GPX")
    assert not (settings.uploads_dir / "tracks").exists()


def test_the_same_track_twice_is_a_duplicate(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    first = run_import(settings, session_factory, user_id, CERKNICA).results[0]
    renamed = tmp_path / "renamed.gpx"
    shutil.copy(CERKNICA, renamed)
    again = run_import(settings, session_factory, user_id, renamed).results[0]
    assert again.status == "duplicate" and again.track_id == first.track_id and again.sha256 == first.sha256


def test_tracks_of_another_user_place_nothing(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    with session_factory() as s, s.begin():
        bob = users.create_user(s, "bob", "password123").id
    run_import(settings, session_factory, bob, CERKNICA)
    run_import(settings, session_factory, user_id, make_walk(tmp_path / "photos"))
    assert all(p.lat is None for p in photos_by_name(session_factory).values())


def test_the_gap_setting_is_honoured(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    # 14:39:00Z lies in segment 1 between points 196 s apart: placed with the default 300 s, not with 60 s.
    photo_at(tmp_path, "gap.jpg", utc(14, 39, 0), seed=4)
    strict = settings.with_(track_max_gap_s=60)
    track = gpx.read_track(CERKNICA)
    assert geotag.locate_by_time(track, utc(14, 39, 0), max_gap_s=60) is None
    assert geotag.locate_by_time(track, utc(14, 39, 0), max_gap_s=300) is not None
    run_import(strict, session_factory, user_id, CERKNICA, tmp_path / "gap.jpg")
    assert photos_by_name(session_factory)["gap.jpg"].lat is None


# --- hostile tracks (issue 10 item 1) ------------------------------------------------------------------


def synthetic(points: list[tuple[float, float]], *, timed: bool = True) -> gpx.Track:
    """A one-segment track of these positions, one second apart (in the given order)."""
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    segment = tuple(
        gpx.TrackPoint(lat, lon, t0 + timedelta(seconds=i) if timed else None, None)
        for i, (lat, lon) in enumerate(points)
    )
    return gpx.Track(name=None, segments=(segment,))


def test_geometry_of_a_huge_crafted_track_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # 400,000 points in a zig-zag across the globe whose amplitude grows: plain Douglas-Peucker over all
    # of them would make 400,000 searches of up to 400,000 points.
    n = 400_000
    track = synthetic([((-1) ** i * 80 * i / n, -180 + 360 * i / n) for i in range(n)])
    ranked: list[int] = []
    real = route.simplify_ranks

    def counted(points: list[tuple[float, float]]) -> list[float]:
        ranked.append(len(points))
        return real(points)

    monkeypatch.setattr(tracks, "simplify_ranks", counted)
    geometry = tracks.track_geometry(track)
    assert sum(ranked) <= tracks.CANDIDATE_FACTOR * tracks.MAX_GEOMETRY_POINTS + 1
    assert 2 <= sum(len(s) for s in geometry) <= tracks.MAX_GEOMETRY_POINTS
    assert geometry[0][0][:2] == [0.0, -180.0] and geometry[0][-1][1] == pytest.approx(
        180 - 360 / n, abs=1e-5
    )


def test_geometry_across_the_antimeridian_keeps_the_ends_and_the_short_way() -> None:
    # A ferry from 179.9 E to 179.8 W, 1,000 points: ranked unwrapped, the straight line needs 2 points.
    ferry = synthetic([(-17.0, gpx_lon(179.9 + 0.3 * i / 999)) for i in range(1000)])
    geometry = tracks.track_geometry(ferry)
    assert [p[1] for p in geometry[0]] == [179.9, -179.8]


def gpx_lon(unwrapped: float) -> float:
    """A longitude as a file stores it, in [-180, 180]."""
    return round((unwrapped + 180) % 360 - 180, 6)


@pytest.mark.parametrize("order", ["reversed", "shuffled", "same-point"])
def test_placing_on_a_track_in_any_point_order(order: str) -> None:
    walk = [(46.0 + i * 1e-4, 14.0) for i in range(50_000)]
    track = synthetic(walk)
    segment = list(track.segments[0])
    if order == "reversed":
        segment.reverse()
    elif order == "shuffled":
        segment.sort(key=lambda p: (p.lat * 1e6 * 7919) % 50_000)
    else:
        segment = [p._replace(lat=46.0) for p in segment]
    hostile = gpx.Track(name=None, segments=(tuple(segment),))
    when = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=30_000)
    found = geotag.locate_by_time(hostile, when, max_gap_s=300)
    assert found is not None
    assert found[0] == pytest.approx(46.0 if order == "same-point" else 49.0)
    # Many photos: the points are sorted once (timed_series is cached), each photo is a binary search.
    assert hostile.timed_series is hostile.timed_series


def test_gpx_limits_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, session_factory: sessionmaker[Session], user_id: int
) -> None:
    monkeypatch.setenv("JOURNAL_GPX_MAX_MB", "7")
    monkeypatch.setenv("JOURNAL_GPX_MAX_POINTS", "100")
    monkeypatch.setenv("JOURNAL_GPX_CPU_S", "1.5")
    settings = Settings.from_env(tmp_path / "env-home", workers=1)
    assert (settings.gpx_max_bytes, settings.gpx_max_points, settings.gpx_cpu_s) == (7_000_000, 100, 1.5)
    assert geotagging.read_limits(settings) == gpx.ReadLimits(7_000_000, 100, 1.5)


def test_import_refuses_a_track_over_the_point_limit(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int
) -> None:
    done = tracks.run_import_track(
        settings.with_(gpx_max_points=100), session_factory, user_id, CERKNICA, original_name="walk.gpx"
    )
    assert done.status == "failed" and done.error == "more than 100 points"
