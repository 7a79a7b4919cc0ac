"""Edges of the calendar (issue 17): one bad file never ends a batch; undated and far-off times never
break a page; clocks that cannot be right are marked and left out of spans."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from journal.cli import cli
from journal.media import inspectjson, metadata
from journal.models import ImportFailure, Photo
from journal.services import importing
from tests.databases import journal_env
from tests.edgefiles import jpeg_with
from tests.web import csrf_token

OVERFLOWING = [
    ("9999:12:31 23:59:59", "-12:00"),
    ("0001:01:01 00:00:00", "+14:00"),
]


def _sessions(app: Flask) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = app.extensions["journal.sessions"]
    return factory


def _failing_reader(bad_name: str) -> Callable[..., metadata.PhotoMetadata]:
    """read_metadata, raising an unexpected error (naming the process it ran in) for one file name."""
    real = metadata.read_metadata

    def read(path: Path, **kwargs: Any) -> metadata.PhotoMetadata:
        if Path(path).name == bad_name:
            raise RuntimeError(f"injected failure in process {os.getpid()}")
        return real(path, **kwargs)

    return read


# --- item 1: one out-of-range time, or one unexpected error, is that file's failure alone -------------


@pytest.mark.parametrize(("taken", "offset"), OVERFLOWING)
def test_a_time_beyond_the_calendar_in_utc_is_kept_local_with_no_utc(
    tmp_path: Path, taken: str, offset: str
) -> None:
    path = jpeg_with(tmp_path / "far.jpg", taken_at=taken, offset=offset)
    meta = metadata.read_metadata(path)
    expected = taken.replace(":", "-", 2).replace(" ", "T")
    assert meta.taken_at is not None and meta.taken_at.isoformat() == expected
    assert meta.utc_offset == offset
    assert meta.taken_at_utc is None
    found = inspectjson.inspect_file(str(path))
    assert found["error"] is None
    assert found["taken_at_utc"] is None
    assert found["taken_at"] == expected


def test_gps_time_on_the_last_second_of_the_calendar_is_no_time(tmp_path: Path) -> None:
    gps = {0x1D: "9999:12:31", 0x07: (23.0, 59.0, 60.5)}
    path = jpeg_with(tmp_path / "leap.jpg", taken_at="9999:12:31 23:59:59", gps=gps)
    meta = metadata.read_metadata(path)
    assert meta.gps_time_utc is None
    assert meta.taken_at_utc is None


def test_inspect_reports_an_unexpected_error_for_its_file_only(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = jpeg_with(tmp_path / "good.jpg", taken_at="2024:05:01 12:00:00")
    bad = jpeg_with(tmp_path / "bad.jpg", colour=1)
    far = jpeg_with(tmp_path / "far.jpg", colour=2, taken_at="9999:12:31 23:59:59", offset="-12:00")
    monkeypatch.setattr(metadata, "read_metadata", _failing_reader("bad.jpg"))
    result = runner.invoke(cli, ["inspect", str(good), str(bad), str(far)])
    assert result.exit_code == 1
    good_json, bad_json, far_json = json.loads(result.stdout)
    assert good_json["error"] is None and good_json["taken_at"] == "2024-05-01T12:00:00"
    assert "internal error" in bad_json["error"] and "injected failure" in bad_json["error"]
    assert far_json["error"] is None and far_json["taken_at_utc"] is None
    assert "Traceback" not in result.stdout


def _folder_with_a_bad_file(root: Path) -> Path:
    for i in range(4):
        jpeg_with(root / f"ok{i}.jpg", colour=10 + i, taken_at=f"2024:05:0{i + 1} 12:00:00", offset="+02:00")
    jpeg_with(root / "bad.jpg", colour=3)
    jpeg_with(root / "far.jpg", colour=4, taken_at="9999:12:31 23:59:59", offset="-12:00")
    jpeg_with(root / "early.jpg", colour=5, taken_at="0001:01:01 00:00:00", offset="+14:00")
    return root


def test_cli_import_with_workers_turns_an_error_in_a_worker_into_that_files_failure(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_factory: sessionmaker[Session]
) -> None:
    folder = _folder_with_a_bad_file(tmp_path / "in")
    # The pool forks after this, so the workers read with the failing reader too.
    monkeypatch.setattr(importing, "read_metadata", _failing_reader("bad.jpg"))
    monkeypatch.setenv("JOURNAL_WORKERS", "2")
    assert (
        runner.invoke(cli, ["user", "add", "alice", "--password-stdin"], input="password123\n").exit_code == 0
    )
    result = runner.invoke(cli, ["import", str(folder)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines()[-1] == "imported 6, duplicates 0, failed 1"
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "bad.jpg" in failed[0] and "injected failure" in failed[0]
    worker_pid = int(failed[0].rsplit(" ", 1)[-1])
    assert worker_pid != os.getpid()  # it really failed inside a worker process
    with session_factory() as s:
        photos = {Path(p.original_name).name: p for p in s.scalars(select(Photo))}
        assert sorted(photos) == ["early.jpg", "far.jpg", "ok0.jpg", "ok1.jpg", "ok2.jpg", "ok3.jpg"]
        assert photos["far.jpg"].taken_at is not None and photos["far.jpg"].taken_at.year == 9999
        assert photos["far.jpg"].taken_at_utc is None
        failures = list(s.scalars(select(ImportFailure)))
        assert [Path(f.source_name).name for f in failures] == ["bad.jpg"]


def test_cli_import_of_far_off_times_in_a_real_process_pool(tmp_path: Path, database_url: str | None) -> None:
    """The real bug, no injection: `journal import` with two workers, in its own process."""
    folder = _folder_with_a_bad_file(tmp_path / "in")
    (folder / "bad.jpg").unlink()
    env = journal_env(tmp_path / "home", database_url, JOURNAL_WORKERS="2")
    journal = [sys.executable, "-m", "journal"]
    subprocess.run(
        [*journal, "user", "add", "a", "--password-stdin"], input=b"password123\n", env=env, check=True
    )
    done = subprocess.run([*journal, "import", str(folder)], env=env, capture_output=True, timeout=300)
    assert b"Traceback" not in done.stderr, done.stderr.decode()
    assert done.stdout.decode().strip() == "imported 6, duplicates 0, failed 0"
    assert done.returncode == 0


def test_upload_api_answers_failed_for_the_bad_file_and_imports_the_rest(
    app: Flask, user_client: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder_with_a_bad_file(tmp_path / "in")
    names = ["ok0.jpg", "bad.jpg", "far.jpg", "early.jpg"]
    # Staged uploads keep only the extension: the injected reader looks at the original name instead.
    monkeypatch.setattr(importing, "read_metadata", _failing_staged(names.index("bad.jpg"), folder))
    data = {"file": [(io.BytesIO((folder / n).read_bytes()), n) for n in names]}
    token = csrf_token(user_client, "/upload")
    response = user_client.post(
        "/api/photos", data=data, headers={"X-CSRFToken": token}, content_type="multipart/form-data"
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == ["imported", "failed", "imported", "imported"]
    assert "injected failure" in results[1]["error"]
    with _sessions(app)() as s:
        far = s.get(Photo, results[2]["id"])
        assert far is not None and far.taken_at_utc is None and far.taken_at is not None
        assert [f.source_name for f in s.scalars(select(ImportFailure))] == ["bad.jpg"]


def _failing_staged(index: int, folder: Path) -> Callable[..., metadata.PhotoMetadata]:
    """read_metadata raising for the staged copy of one file (recognised by its bytes)."""
    real = metadata.read_metadata
    bad = (folder / "bad.jpg").read_bytes()

    def read(path: Path, **kwargs: Any) -> metadata.PhotoMetadata:
        if Path(path).read_bytes() == bad:
            raise RuntimeError(f"injected failure in process {os.getpid()}")
        return real(path, **kwargs)

    return read


# --- item 2: photos with no time, and times in year 1 and year 9999, break no page or export ---------

#: (file name, DateTimeOriginal, OffsetTimeOriginal, position) for a library at the edges of the calendar.
CALENDAR_EDGES: list[tuple[str, str | None, str | None, tuple[float, float] | None]] = [
    ("first-local.jpg", "0001:01:01 00:00:00", None, (48.85, 2.35)),
    ("first-east.jpg", "0001:01:01 00:00:00", "+14:00", None),
    ("first-west.jpg", "0001:01:01 00:00:00", "-12:00", (-17.7, 178.0)),
    ("last-local.jpg", "9999:12:31 23:59:59", None, (89.9, -179.9)),
    ("last-west.jpg", "9999:12:31 23:59:59", "-12:00", None),
    ("last-east.jpg", "9999:12:31 23:59:59", "+14:00", (-89.9, 179.9)),
    ("dated.jpg", "2024:05:01 12:00:00", "+02:00", (52.5, 13.4)),
    ("undated.jpg", None, None, (35.0, 139.0)),
]


def _gps(position: tuple[float, float] | None) -> dict[int, object] | None:
    if position is None:
        return None
    lat, lon = position
    return {
        1: "N" if lat >= 0 else "S",
        2: (abs(lat), 0.0, 0.0),
        3: "E" if lon >= 0 else "W",
        4: (abs(lon), 0.0, 0.0),
    }


def _import(app: Flask, folder: Path, trip: str) -> importing.ImportSummary:
    from journal.services import users

    factory = _sessions(app)
    with factory() as s:
        user_id = users.get_user(s, None).id
    options = importing.ImportOptions(user_id=user_id, trip_title=trip)
    summary = importing.run_import(
        app.config["JOURNAL_SETTINGS"], factory, options, importing.discover([folder])
    )
    assert summary.count("failed") == 0, summary.results
    return summary


def _ids(app: Flask) -> tuple[list[int], list[int], list[int]]:
    from journal.models import Post, Trip

    with _sessions(app)() as s:
        return (
            list(s.scalars(select(Photo.id))),
            list(s.scalars(select(Post.id))),
            list(s.scalars(select(Trip.id))),
        )


def test_a_trip_of_undated_photos_shows_its_map_and_the_all_trips_map(
    app: Flask, user_client: FlaskClient, tmp_path: Path
) -> None:
    from PIL import Image

    folder = tmp_path / "shots"
    folder.mkdir()
    Image.new("RGB", (40, 30), "white").save(folder / "screenshot.png")
    _import(app, folder, "Screenshots")
    _import(app, _calendar_edges(tmp_path / "edges"), "Edges")
    trip_ids = _ids(app)[2]
    for url in ["/map", *(f"/trips/{t}/map" for t in trip_ids), "/trips"]:
        response = user_client.get(url)
        assert response.status_code == 200, (url, response.get_data(as_text=True)[:500])


def _calendar_edges(folder: Path) -> Path:
    for i, (name, taken, offset, position) in enumerate(CALENDAR_EDGES):
        jpeg_with(folder / name, colour=40 + i, taken_at=taken, offset=offset, gps=_gps(position))
    return folder


def test_every_page_api_and_export_copes_with_year_1_and_year_9999(
    app: Flask, user_client: FlaskClient, tmp_path: Path
) -> None:
    from tests import walker

    _import(app, _calendar_edges(tmp_path / "edges"), "Edges")
    photo_ids, post_ids, trip_ids = _ids(app)
    # One post holding every photo too, so post pages, story entries and bundles mix the edges.
    token = csrf_token(user_client, "/library")
    made = user_client.post("/posts", data={"photo": photo_ids[:4], "csrf_token": token})
    assert made.status_code < 400, made.get_data(as_text=True)[:500]
    photo_ids, post_ids, trip_ids = _ids(app)
    walker.walk(user_client, photo_ids, post_ids, trip_ids)
    # Paging through the story and the library, one photo at a time, reaches every photo both ways.
    _page_through_story(app, trip_ids[0], len(photo_ids))
    _page_through_library(app, len(photo_ids))
    _export_everything(app, tmp_path / "out", trip_ids[0])


def _page_through_story(app: Flask, trip_id: int, photos: int) -> None:
    from journal.services import map_story, mapscope, users

    with _sessions(app)() as s:
        scope = mapscope.Scope(users.get_user(s, None).id, trip_id)
        seen: list[int] = []
        chunk = map_story.story_chunk(s, scope, size=1, number_days=True)
        while True:
            seen += [p.id for day in chunk.days for e in day.entries for p in e.photos]
            if chunk.after is None:
                break
            after = map_story.parse_cursor(chunk.after)
            chunk = map_story.story_chunk(s, scope, after=after, size=1, number_days=True)
        assert len(set(seen)) == photos
        before = map_story.parse_cursor(chunk.after or chunk.before)
        back = map_story.story_chunk(s, scope, before=before, size=1)
        assert back.days is not None


def _page_through_library(app: Flask, photos: int) -> None:
    from journal.services import library, users

    with _sessions(app)() as s:
        user_id = users.get_user(s, None).id
        flt = library.LibraryFilter()
        page = library.list_page(s, user_id, flt, limit=1)
        seen = [item.id for item in page.items]
        while page.older:
            page = library.list_page(s, user_id, flt, after=page.older, limit=1)
            seen += [item.id for item in page.items]
        assert len(seen) == photos == len(set(seen))
        while page.newer:
            page = library.list_page(s, user_id, flt, before=page.newer, limit=1)
            seen.pop()
        assert len(seen) == 1


def _export_everything(app: Flask, out: Path, trip_id: int) -> None:
    import email
    import zipfile

    from journal.services import exporting, users
    from tests import walker

    settings = app.config["JOURNAL_SETTINGS"]
    with _sessions(app)() as s:
        user_id = users.get_user(s, None).id
    for fmt in ("zip", "eml"):
        request = exporting.ExportRequest(
            user_id=user_id,
            format=fmt,
            out_dir=out / fmt,
            include_exported=True,
            trip_id=trip_id,
        )
        outcome = exporting.run_export(_sessions(app), settings, request)
        assert outcome.bundles, outcome
        for bundle in outcome.bundles:
            if fmt == "zip":
                with zipfile.ZipFile(bundle.path) as archive:
                    manifest = json.loads(archive.read("manifest.json"))
                    index = archive.read("index.html").decode()
                for post in manifest["posts"]:
                    walker.check_utc_text(post["taken_at_utc"], "manifest")
                    local = post["taken_at_local"]
                    assert local is None or datetime.fromisoformat(local), local
                assert "0001" in index or "9999" in index
            else:
                message = email.message_from_bytes(bundle.path.read_bytes())
                assert email.utils.parsedate_to_datetime(message["Date"]) is not None


# --- item 4: clocks that cannot be right are marked and left out of spans --------------------------


def test_the_clock_rule_is_one_for_photos_and_tracks() -> None:
    from datetime import timedelta

    from journal import clock, gpx

    imported = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    wrong = clock.photo_clock_wrong
    assert not wrong(imported + timedelta(hours=23), None, imported)
    assert wrong(imported + timedelta(hours=25), None, imported)
    assert wrong(datetime(2099, 9, 29, 10, 10, 10, tzinfo=UTC), None, imported)
    assert wrong(datetime(1899, 12, 31, tzinfo=UTC), None, imported)
    assert not wrong(datetime(1965, 7, 1, tzinfo=UTC), None, imported)  # a scanned print
    # A local time with no offset: wrong only if no offset in use (-12..+14) would make it right.
    assert not wrong(None, datetime(2026, 3, 3, 1, 0), imported)  # at +14:00 that is 2 Mar 11:00 UTC
    assert wrong(None, datetime(2026, 3, 3, 3, 0), imported)
    assert wrong(None, datetime(9999, 12, 31, 23, 59, 59), imported)
    assert wrong(None, datetime(1, 1, 1), imported)
    assert not wrong(None, None, imported)
    assert gpx.FUTURE_SLACK == clock.FUTURE_SLACK and gpx.EARLIEST_PLAUSIBLE == clock.EARLIEST_TRACK


def test_a_photo_from_2099_is_marked_and_left_out_of_spans_days_and_headings(
    app: Flask, user_client: FlaskClient, tmp_path: Path, sample: Callable[[str], Path]
) -> None:
    import shutil

    from journal.models import Trip

    folder = tmp_path / "trip"
    folder.mkdir()
    shutil.copy(sample("pillow__exif_gps.jpg"), folder / "future.jpg")  # DateTimeOriginal 2099:09:29 10:10:10
    jpeg_with(folder / "day1.jpg", colour=1, taken_at="2001:01:01 09:00:00", offset="+01:00")
    jpeg_with(folder / "day3.jpg", colour=2, taken_at="2001:01:03 18:00:00", offset="+01:00")
    _import(app, folder, "Millennium")
    with _sessions(app)() as s:
        trip_id = s.scalars(select(Trip.id)).one()
        by_name = {Path(p.original_name).name: p for p in s.scalars(select(Photo))}
        future = by_name["future.jpg"]
        assert future.clock_wrong and not by_name["day1.jpg"].clock_wrong
        assert future.taken_at == datetime(2099, 9, 29, 10, 10, 10)  # kept as recorded
        future_id = future.id

    all_trips = user_client.get("/map").get_data(as_text=True)
    header = all_trips.split("</header>")[1]  # the map's summary (the first header is the site's)
    assert "2001" in header and "2099" not in header
    assert "36,066" not in all_trips and "<strong>3</strong> days" in all_trips
    trip_map = user_client.get(f"/trips/{trip_id}/map").get_data(as_text=True)
    assert "<strong>3</strong> days" in trip_map
    assert "September 2099" not in trip_map  # no day heading for it
    assert "Day 3" in trip_map and "Day 36" not in trip_map
    trips_page = user_client.get("/trips").get_data(as_text=True)
    assert "01 Jan 2001 – 03 Jan 2001" in trips_page and "2099" not in trips_page

    # Still first in the library (newest first by its recorded time), and marked there.
    library = user_client.get("/library").get_data(as_text=True)
    tiles = library.split('<li class="tile')[1:]
    assert f"/photos/{future_id}" in tiles[0] and "clock looks wrong" in tiles[0].lower()
    assert "clock looks wrong" not in "".join(tiles[1:]).lower()
    photo = user_client.get(f"/photos/{future_id}").get_data(as_text=True)
    assert "clock looks wrong" in photo.lower() and f"/trips/{trip_id}#clock" in photo
    trip_page = user_client.get(f"/trips/{trip_id}").get_data(as_text=True)
    assert "clock looks wrong" in trip_page.lower() and 'id="clock"' in trip_page


def test_fixing_the_time_clears_the_mark(app: Flask, user_client: FlaskClient, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    jpeg_with(folder / "ahead.jpg", taken_at="2090:01:01 09:00:00", offset="+01:00")
    _import(app, folder, "Ahead")
    with _sessions(app)() as s, s.begin():
        photo = s.scalars(select(Photo)).one()
        assert photo.clock_wrong
        photo.taken_at = datetime(2020, 1, 1, 9, 0)
        photo.taken_at_utc = datetime(2020, 1, 1, 8, 0, tzinfo=UTC)
    with _sessions(app)() as s:
        assert not s.scalars(select(Photo)).one().clock_wrong


def test_machine_readable_times_keep_four_digit_years() -> None:
    from journal.publish import scrub, zipbundle
    from journal.services import exporting
    from journal.services.library import SortKey
    from journal.web.filters import format_datetime

    assert exporting._utc_text(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"
    assert scrub._exif_datetime("0001-01-01T00:00:00") == "0001:01:01 00:00:00"
    assert zipbundle._format_when("0001-01-01T12:00:00Z") == "0001-01-01 12:00 UTC"
    assert zipbundle._format_when("0001-01-01T00:00:00+14:00") == "0001-01-01T00:00:00+14:00"
    key = SortKey(datetime(1, 1, 1), 7)
    assert SortKey.parse(key.token()) == key
    assert format_datetime(datetime(1, 1, 1), "%d %b %Y") == "01 Jan 0001"


def test_migration_0007_marks_the_photos_already_stored(empty_database_url: str) -> None:
    from sqlalchemy import text

    from journal import db

    engine = db.make_engine(empty_database_url)
    db.upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, name, password_hash, is_owner, created_at)"
                " VALUES (1, 'a', 'x', :owner, '2026-01-01')"
            ),
            {"owner": True},
        )
        rows = [
            (1, "2099-09-29 10:10:10", None),
            (2, "2024-05-01 12:00:00", "2024-05-01 10:00:00"),
            (3, None, None),
            (4, "0001-01-01 00:00:00", None),
            (5, "2025-12-31 23:00:00", "2026-01-02 12:00:00"),
        ]
        for photo_id, local, utc in rows:
            conn.execute(
                text(
                    "INSERT INTO photos (id, user_id, position, original_name, web_width, web_height,"
                    " sha256, stored_path, bytes, format, width, height, taken_at, taken_at_utc,"
                    " imported_at) VALUES (:id, 1, 0, '', 1, 1, :sha, 'p', 1, 'JPEG', 1, 1,"
                    " :local, :utc, '2026-01-01 00:00:00')"
                ),
                {"id": photo_id, "sha": str(photo_id) * 64, "local": local, "utc": utc},
            )
    db.ensure_schema(engine)
    with engine.connect() as conn:
        marked: dict[int, int] = dict(conn.execute(text("SELECT id, clock_wrong FROM photos")).all())
    assert marked == {1: 1, 2: 0, 3: 0, 4: 1, 5: 1}
    engine.dispose()
