"""Positions from GPS tracks follow the clock: clock fixes, time zones, tracks added or deleted, the rule.

The walk: a generated 2 h 45 min track (10:00-12:45 UTC) in two segments with a 40 min gap, recorded
every 30 s along a straight line, so the true position at any moment inside a segment is known
exactly. Twelve photos by one camera whose clock was 10 minutes slow: six without GPS on the track,
one after it, four with the camera's own GPS and one placed by hand.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from journal import geotag
from journal.cli import cli
from journal.config import Settings
from journal.geo import haversine_m
from journal.models import Photo, Track, Trip
from journal.services import editing, geotagging
from tests.imaging import make_jpeg
from tests.machine import needs_tool
from tests.web import PASSWORD, csrf_token, sign_in

START = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
SEGMENTS = [
    (START, START + timedelta(hours=1)),
    (START + timedelta(minutes=100), START + timedelta(minutes=165)),
]
KST = timedelta(hours=9)
SLOW = timedelta(minutes=10)  # the camera's clock was 10 minutes behind


def off_m(lat: float | None, lon: float | None, true_lat: float, true_lon: float) -> float:
    """How far a stored position is from the true one, in metres (a photo without one fails here)."""
    assert lat is not None and lon is not None, "no position"
    return haversine_m(lat, lon, true_lat, true_lon)


def true_position(when: datetime) -> tuple[float, float]:
    """Where the walker was (the track is a straight line at constant speed, in both segments)."""
    s = (when - START).total_seconds()
    return 37.5 + s * 0.0002 / 30, 127.0 + s * 0.0001 / 30


def write_gpx(path: Path, segments: list[tuple[datetime, datetime]] = SEGMENTS, step_s: int = 30) -> Path:
    """A GPX file with a point every `step_s` seconds on each segment."""
    parts = []
    for first, last in segments:
        points, moment = [], first
        while moment <= last:
            lat, lon = true_position(moment)
            points.append(
                f'<trkpt lat="{lat:.7f}" lon="{lon:.7f}"><ele>30</ele>'
                f"<time>{moment:%Y-%m-%dT%H:%M:%SZ}</time></trkpt>"
            )
            moment += timedelta(seconds=step_s)
        parts.append("<trkseg>" + "".join(points) + "</trkseg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="test" '
        'xmlns="http://www.topografix.com/GPX/1/1"><trk><name>Seoul walk</name>'
        + "".join(parts)
        + "</trk></gpx>"
    )
    return path


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


#: name -> true UTC time. "a" was recorded 5 min before the track began; "d" was recorded inside the
#: 40 min gap; "g" is after the track whatever the clock.
ON_TRACK = {"a": at(5), "b": at(20.25), "c": at(40.75), "d": at(105.5), "e": at(130.2), "f": at(150)}
AFTER = {"g": at(210)}
WITH_GPS = {"h": at(30), "i": at(60), "j": at(120), "k": at(140)}
MANUAL = {"l": at(240)}
BUSAN = (35.1, 129.04)
BY_HAND = (37.57, 126.98)


def make_photos(folder: Path, *, offset: str = "+09:00", zone: timedelta = KST) -> Path:
    """The twelve photos, their EXIF times as the slow camera recorded them (local time, offset)."""
    everything = {**ON_TRACK, **AFTER, **WITH_GPS, **MANUAL}
    for i, (name, true) in enumerate(sorted(everything.items())):
        gps: dict[str, Any] = dict(zip(("lat", "lon"), BUSAN, strict=True)) if name in WITH_GPS else {}
        local = (true - SLOW + zone).replace(tzinfo=None)
        make_jpeg(folder / f"{name}.jpg", (96, 64), seed=100 + i, taken_at=local, offset=offset, **gps)
    return folder


def photos(settings: Settings, factory: object) -> dict[str, Photo]:
    with factory() as s:  # type: ignore[operator]
        return {Path(p.original_name).stem: p for p in s.scalars(select(Photo))}


@pytest.fixture
def walk(runner: CliRunner, settings: Settings, tmp_path: Path) -> CliRunner:
    """The walk imported with the CLI into trip "Seoul" (one account), one photo then placed by hand."""
    added = runner.invoke(cli, ["user", "add", "alice", "--password-stdin"], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    folder = make_photos(tmp_path / "card")
    write_gpx(folder / "walk.gpx")
    result = runner.invoke(cli, ["import", str(folder), "--trip", "Seoul"])
    assert result.exit_code == 0, result.output
    from journal import db

    factory = db.make_session_factory(db.make_engine(settings.database_url))
    with factory() as s, s.begin():
        manual = s.scalars(select(Photo).where(Photo.original_name.like("%l.jpg"))).one()
        editing.set_position(s, manual, *BY_HAND)
    runner.factory = factory  # type: ignore[attr-defined]
    runner.import_output = result.output  # type: ignore[attr-defined]
    return runner


@pytest.fixture
def alice(walk: CliRunner, app: Flask, client: FlaskClient) -> FlaskClient:
    """A browser signed in as the walk's owner."""
    sign_in(client)
    return client


def assert_on_true_track(found: dict[str, Photo], names: list[str]) -> None:
    for name in names:
        photo = found[name]
        assert photo.location_source == "track", name
        assert photo.lat is not None and photo.lon is not None, name
        assert off_m(photo.lat, photo.lon, *true_position(ON_TRACK[name])) < 1.0, name


def assert_untouched(found: dict[str, Photo]) -> None:
    for name in WITH_GPS:
        assert found[name].location_source == "exif"
        assert (found[name].lat, found[name].lon) == pytest.approx(BUSAN, abs=1e-6)
    assert found["l"].location_source == "manual"
    assert (found["l"].lat, found["l"].lon) == pytest.approx(BY_HAND)
    assert found["g"].lat is None and found["g"].location_source is None


def test_import_report_counts_photos_placed_in_the_same_run(walk: CliRunner, settings: Settings) -> None:
    """Item 3: `journal import walk.gpx *.jpg` says how many were placed, and why the others were not."""
    output = walk.import_output  # type: ignore[attr-defined]
    assert "placed 4 photos from tracks; 4 not placed: 3 outside every track's time, " in output
    assert "1 in a gap of the track longer than 5 min" in output
    assert "imported 13, duplicates 0, failed 0" in output  # 12 photos and the track
    found = photos(settings, walk.factory)  # type: ignore[attr-defined]
    # Placed at the (wrong) moments the slow camera recorded.
    for name in ("b", "c", "e", "f"):
        assert found[name].location_source == "track"
        assert off_m(found[name].lat, found[name].lon, *true_position(ON_TRACK[name] - SLOW)) < 1.0
    assert found["a"].lat is None and found["d"].lat is None


def test_clock_fix_on_the_trip_page_places_photos_again(
    walk: CliRunner, settings: Settings, alice: FlaskClient
) -> None:
    """Item 1: +0:10 on the trip page moves the track positions with the times, and places "a" and "d"."""
    factory = walk.factory  # type: ignore[attr-defined]
    with factory() as s:
        trip_id = s.scalar(select(Trip.id).where(Trip.title == "Seoul"))
        camera = editing.trip_cameras(s, 1, trip_id)[0]
    assert camera.photos == 12
    token = csrf_token(alice, f"/trips/{trip_id}")
    response = alice.post(
        f"/trips/{trip_id}/clock", data={"camera": camera.key, "shift": "+0:10", "csrf_token": token}
    )
    assert response.status_code == 303
    page = alice.get(f"/trips/{trip_id}").get_data(as_text=True)
    assert "Moved the time of 12 photos by +0:10; placed 2 photos from tracks, moved 4; " in page
    found = photos(settings, factory)
    assert_on_true_track(found, list(ON_TRACK))
    assert_untouched(found)


def test_clock_command_and_place_command(walk: CliRunner, settings: Settings) -> None:
    """Item 5: `journal clock` and `journal place` do the same from the command line."""
    factory = walk.factory  # type: ignore[attr-defined]
    gap = walk.invoke(cli, ["place", "--trip", "Seoul", "--max-gap", "45m"])
    assert gap.exit_code == 0, gap.output
    assert "placed 1 photo from tracks" in gap.output  # "d", recorded in the 40 min gap: now bridged
    with factory() as s:
        trip = s.scalars(select(Trip)).one()
        assert (trip.track_max_gap_s, trip.track_nearest_s) == (2700, 0)  # kept on the trip
    bad = walk.invoke(cli, ["clock", "--trip", "Seoul", "--camera", "Nikon D1", "--shift", "+0:10"])
    assert bad.exit_code != 0 and 'its cameras: "TestCam T-1"' in bad.output
    fixed = walk.invoke(cli, ["clock", "--trip", "Seoul", "--camera", "TestCam T-1", "--shift", "+0:10"])
    assert fixed.exit_code == 0, fixed.output
    assert fixed.output.startswith(
        "moved the time of 12 photos by +0:10; placed 1 photo from tracks, moved 5"
    )
    found = photos(settings, factory)
    assert_on_true_track(found, list(ON_TRACK))
    assert_untouched(found)
    # Back again: the positions follow the times back (still under the trip's 45 min rule).
    back = walk.invoke(cli, ["clock", "--trip", "Seoul", "--camera", "TestCam T-1", "--shift", "-0:10"])
    assert "took the track position off 1" in back.output  # "a" is before the track again
    found = photos(settings, factory)
    assert found["a"].lat is None and found["a"].location_source is None
    assert found["d"].location_source == "track"  # in the gap, bridged under 45 min


def test_nearest_rule_is_off_by_default_and_marked(walk: CliRunner, settings: Settings) -> None:
    """Item 4: the nearest-point rule places "a" (5 min before the track) at the first point."""
    result = walk.invoke(cli, ["place", "--trip", "Seoul", "--nearest", "30m"])
    assert result.exit_code == 0, result.output
    found = photos(settings, walk.factory)  # type: ignore[attr-defined]
    assert found["a"].location_source == "track-nearest"
    assert (found["a"].lat, found["a"].lon) == pytest.approx(true_position(START), abs=1e-7)
    assert found["g"].lat is None  # 70 min after the end: beyond 30 min
    assert walk.invoke(cli, ["place", "--trip", "Seoul", "--max-gap", "25h"]).exit_code != 0


def test_deleting_a_track_takes_its_positions_away(
    walk: CliRunner, settings: Settings, alice: FlaskClient
) -> None:
    factory = walk.factory  # type: ignore[attr-defined]
    with factory() as s:
        trip_id = s.scalar(select(Trip.id))
        track_id = s.scalar(select(Track.id))
    page = alice.get(f"/trips/{trip_id}").get_data(as_text=True)
    assert "Seoul walk" in page and "Place photos from tracks again" in page
    token = csrf_token(alice, f"/trips/{trip_id}")
    response = alice.post(f"/trips/{trip_id}/tracks/{track_id}/delete", data={"csrf_token": token})
    assert response.status_code == 303
    assert "took the track position off 4" in alice.get(f"/trips/{trip_id}").get_data(as_text=True)
    found = photos(settings, factory)
    assert all(found[name].lat is None for name in ON_TRACK)
    assert_untouched(found)
    assert not list((settings.uploads_dir / "tracks").rglob("*.gpx"))


def test_time_zone_set_by_hand_moves_the_track_position(
    runner: CliRunner, settings: Settings, tmp_path: Path, app: Flask, client: FlaskClient
) -> None:
    """A camera with local time only, read in the wrong zone: correcting the zone re-places the photo."""
    folder = tmp_path / "card"
    write_gpx(folder / "walk.gpx")
    true = at(45)  # read at +08:00 it is at(105): on the second segment
    make_jpeg(folder / "b.jpg", (96, 64), seed=1, taken_at=(true + KST).replace(tzinfo=None), offset="+08:00")
    assert (
        runner.invoke(cli, ["user", "add", "alice", "--password-stdin"], input=PASSWORD + "\n").exit_code == 0
    )
    assert runner.invoke(cli, ["import", str(folder)]).exit_code == 0
    from journal import db

    factory = db.make_session_factory(db.make_engine(settings.database_url))
    (photo,) = photos(settings, factory).values()
    alice = client
    sign_in(alice)
    assert photo.lat is not None  # placed at the wrong moment (one hour off)
    assert off_m(photo.lat, photo.lon, *true_position(true + timedelta(hours=1))) < 1.0
    token = csrf_token(alice, f"/photos/{photo.id}")
    response = alice.post(
        f"/photos/{photo.id}/timezone", data={"timezone": "Asia/Seoul", "csrf_token": token}
    )
    assert response.status_code == 303
    (photo,) = photos(settings, factory).values()
    assert off_m(photo.lat, photo.lon, *true_position(true)) < 1.0


def test_position_source_everywhere(walk: CliRunner, settings: Settings, alice: FlaskClient) -> None:
    """Item 2: where a position came from, on the photo page, the popup, the GeoJSON and the manifest."""
    found = photos(settings, walk.factory)  # type: ignore[attr-defined]
    geojson = alice.get("/api/photos.geojson").get_json()
    sources = {f["properties"]["id"]: f["properties"]["position_source"] for f in geojson["features"]}
    assert sources[found["b"].id] == "track"
    assert sources[found["h"].id] == "camera"
    assert sources[found["l"].id] == "manual"
    page = alice.get(f"/photos/{found['b'].id}").get_data(as_text=True)
    assert "from a GPS track (between two points)" in page
    ids = ",".join(str(found[n].id) for n in ("b", "h"))
    cards = alice.get(f"/api/map/photos?ids={ids}").get_json()["photos"]
    assert cards[str(found["b"].id)]["position_source"] == "track"
    assert cards[str(found["h"].id)]["position_source"] == "camera"
    out = settings.home / "bundles"
    result = walk.invoke(cli, ["export", "--trip", "Seoul", "--location", "exact", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (bundle,) = out.glob("*.zip")
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        index = archive.read("index.html").decode()
    by_source = {p["position_source"] for p in manifest["posts"] if p["location"]}
    assert by_source == {"track", "camera", "manual"}
    assert all(p["position_source"] is None for p in manifest["posts"] if p["location"] is None)
    assert "position from a GPS track" in index


def test_clock_from_a_photo_of_a_clock(walk: CliRunner, settings: Settings, alice: FlaskClient) -> None:
    """Item 6: photo "b" shows a phone reading the true local time; the preview changes nothing."""
    factory = walk.factory  # type: ignore[attr-defined]
    found = photos(settings, factory)
    with factory() as s:
        trip_id = s.scalar(select(Trip.id))
    before = {name: (p.taken_at, p.lat) for name, p in found.items()}
    shown = (ON_TRACK["b"] + KST).strftime("%H:%M:%S")
    token = csrf_token(alice, f"/trips/{trip_id}")
    preview = alice.post(
        f"/trips/{trip_id}/clock-photo", data={"photo": found["b"].id, "shown": shown, "csrf_token": token}
    )
    assert preview.status_code == 200
    text = preview.get_data(as_text=True)
    assert "off by <strong>+0:10</strong>" in text
    assert "12 photos of this camera" in text and "placed 2 photos from tracks, moved 4" in text
    assert {name: (p.taken_at, p.lat) for name, p in photos(settings, factory).items()} == before
    applied = alice.post(
        f"/trips/{trip_id}/clock-photo/apply",
        data={"photo": found["b"].id, "shown": shown, "csrf_token": token},
    )
    assert applied.status_code == 303
    found = photos(settings, factory)
    assert_on_true_track(found, list(ON_TRACK))
    assert_untouched(found)


def test_clock_shift_from_a_shown_time() -> None:
    recorded = datetime(2026, 5, 4, 23, 55)
    assert geotagging.clock_shift_from_photo(recorded, datetime(2026, 1, 1, 0, 5).time()) == timedelta(
        minutes=10
    )
    assert geotagging.clock_shift_from_photo(recorded, datetime(2026, 1, 1, 23, 45).time()) == timedelta(
        minutes=-10
    )
    assert geotagging.parse_shown_time("2:05 pm").hour == 14
    with pytest.raises(Exception, match="not a time of day"):
        geotagging.parse_shown_time("noon-ish")


# --- against ExifTool --------------------------------------------------------------------------------


def exiftool_positions(
    folder: Path, gpx: Path, *, max_gap_s: int, nearest_s: int
) -> dict[str, tuple[float, float]]:
    """Let `exiftool -geotag` tag copies of the photos under the same limits, and read what it wrote."""
    subprocess.run(
        [
            "exiftool",
            "-q",
            "-q",
            "-overwrite_original",
            "-geotag",
            str(gpx),
            "-api",
            f"GeoMaxIntSecs={max_gap_s}",
            "-api",
            f"GeoMaxExtSecs={nearest_s}",
            str(folder),
        ],
        check=False,  # exit 1 when some photo could not be tagged: that is part of the comparison
        env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
        capture_output=True,
    )
    out = subprocess.run(
        ["exiftool", "-j", "-n", "-GPSLatitude", "-GPSLongitude", str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    return {
        Path(item["SourceFile"]).stem: (item["GPSLatitude"], item["GPSLongitude"])
        for item in json.loads(out.stdout)
        if "GPSLatitude" in item
    }


@needs_tool("exiftool")
@pytest.mark.parametrize(
    ("max_gap", "nearest", "max_gap_s", "nearest_s"), [(None, None, 300, 0), ("45m", "30m", 2700, 1800)]
)
def test_placement_matches_exiftool_geotag(
    runner: CliRunner,
    settings: Settings,
    tmp_path: Path,
    max_gap: str | None,
    nearest: str | None,
    max_gap_s: int,
    nearest_s: int,
) -> None:
    """Item 4: the same photos placed as `exiftool -geotag` under the same limits, within 1 m."""
    # Photos every 7 min from 40 min before the walk to 40 min after it, times in UTC (+00:00).
    folder = tmp_path / "utc"
    for i in range(38):
        when = START - timedelta(minutes=40) + timedelta(minutes=7 * i, seconds=13 * i)
        make_jpeg(
            folder / f"p{i:02d}.jpg", (32, 24), seed=i, taken_at=when.replace(tzinfo=None), offset="+00:00"
        )
    gpx = write_gpx(tmp_path / "walk.gpx", step_s=150)  # 2.5 min between points: some gaps over 5 min below
    gpx_text = gpx.read_text().replace("<trkpt", "\n<trkpt")
    # Thin part of the first segment to 7.5 min steps, so the 5 min limit matters inside a segment too.
    lines = [line for i, line in enumerate(gpx_text.split("\n")) if not (12 < i < 24 and i % 3 != 0)]
    gpx.write_text("\n".join(lines))
    tagged = tmp_path / "tagged"
    shutil.copytree(folder, tagged)
    expected = exiftool_positions(tagged, gpx, max_gap_s=max_gap_s, nearest_s=nearest_s)
    assert (
        runner.invoke(cli, ["user", "add", "bob", "--password-stdin"], input="password123\n").exit_code == 0
    )
    args = ["import", str(gpx), str(folder)]
    if max_gap:
        args += ["--max-gap", max_gap, "--nearest", str(nearest)]
    assert runner.invoke(cli, args).exit_code == 0
    from journal import db

    factory = db.make_session_factory(db.make_engine(settings.database_url))
    ours = {name: (p.lat, p.lon) for name, p in photos(settings, factory).items() if p.lat is not None}
    assert 5 < len(expected) < 38  # the comparison covers placed and unplaced photos
    assert set(ours) == set(expected)
    for name, (lat, lon) in expected.items():
        assert off_m(ours[name][0], ours[name][1], lat, lon) < 1.0, name


def test_policy_checks_its_limits() -> None:
    with pytest.raises(ValueError):
        geotag.PlacePolicy(max_gap_s=-1)
    with pytest.raises(ValueError):
        geotag.PlacePolicy(nearest_s=float("inf"))
    assert re.fullmatch(r"\d+ h \d+ min", geotag.format_duration(5400))


def test_upload_api_says_per_file_where_the_tracks_put_it(user_client: FlaskClient, tmp_path: Path) -> None:
    """Item 3 on the upload path: each photo's result says it was placed from a track, or why not."""
    from tests.test_web_api import upload

    token = csrf_token(user_client, "/upload")
    gpx = write_gpx(tmp_path / "walk.gpx").read_bytes()
    folder = make_photos(tmp_path / "card", offset="+00:00", zone=timedelta(0))
    files = [(gpx, "walk.gpx")] + [
        ((folder / f"{n}.jpg").read_bytes(), f"{n}.jpg") for n in ("b", "d", "g", "h")
    ]
    results = {r["name"]: r for r in upload(user_client, *files, token=token).json["results"]}
    assert results["walk.gpx"]["status"] == "imported"
    assert results["b.jpg"]["position_source"] == "track"
    assert results["d.jpg"]["not_placed"] == "in a gap of the track longer than 5 min"
    assert results["g.jpg"]["not_placed"] == "outside every track's time"
    assert "position_source" not in results["h.jpg"] and "not_placed" not in results["h.jpg"]  # camera GPS
