"""The import pipeline: finding files, de-duplication, failures that never stop a batch."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from journal import storage
from journal.config import Settings
from journal.models import ImportFailure, Photo, Post, Trip
from journal.services import importing, users
from tests.imaging import make_jpeg
from tests.samples import EXIF_SAMPLES


@pytest.fixture
def user_id(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as s, s.begin():
        return users.create_user(s, "alice", "password123").id


def run_import(
    settings: Settings, factory: sessionmaker[Session], user_id: int, *paths: Path, **options: object
) -> importing.ImportSummary:
    options_ = importing.ImportOptions(user_id=user_id, **options)  # type: ignore[arg-type]
    return importing.run_import(settings, factory, options_, importing.discover(paths))


def test_sniff_by_content_not_extension(tmp_path: Path) -> None:
    jpeg = make_jpeg(tmp_path / "photo.txt")
    (tmp_path / "fake.jpg").write_text("hello")
    (tmp_path / "track.xml").write_text('<?xml version="1.0"?><gpx version="1.1"></gpx>')
    assert importing.sniff(jpeg) == "image"
    assert importing.sniff(tmp_path / "fake.jpg") == "unknown"
    assert importing.sniff(tmp_path / "track.xml") == "track"


def test_discover_recurses_and_skips_hidden_and_the_journal_itself(tmp_path: Path) -> None:
    make_jpeg(tmp_path / "a" / "b" / "deep.jpg")
    make_jpeg(tmp_path / ".hidden" / "x.jpg")
    make_jpeg(tmp_path / "a" / ".dot.jpg")
    make_jpeg(tmp_path / "uploads" / "web" / "r.jpg")
    names = [Path(c.name).name for c in importing.discover([tmp_path], exclude=[tmp_path / "uploads"])]
    assert names == ["deep.jpg"]


def test_import_stores_files_rows_and_posts(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    src = make_jpeg(
        tmp_path / "in" / "p.jpg",
        (3000, 2000),
        taken_at=datetime(2024, 5, 1, 12, 0),
        offset="+09:00",
        lat=39.0392,
        lon=125.7625,
    )
    summary = run_import(settings, session_factory, user_id, src, trip_title="Korea")
    assert summary.line() == "imported 1, duplicates 0, failed 0"
    with session_factory() as s:
        photo = s.scalars(select(Photo)).one()
        assert photo.sha256 == storage.sha256_file(src)
        assert (settings.uploads_dir / photo.stored_path).read_bytes() == src.read_bytes()
        assert photo.place is not None and "Pyongyang" in photo.place
        assert photo.country and "Korea" in photo.country
        assert photo.offset_source == "camera" and photo.utc_offset_min == 540
        assert photo.taken_at_utc is not None and photo.taken_at_utc.hour == 3
        assert photo.web_width == 2048 and photo.web_height == 1365
        for kind in ("web", "thumb"):
            assert (settings.uploads_dir / storage.rendition_relpath(user_id, photo.sha256, kind)).is_file()
        post = s.get(Post, photo.post_id)
        assert post is not None and post.trip is not None and post.trip.title == "Korea"
    assert not any(settings.uploads_dir.rglob(storage.TEMP_PREFIX + "*"))


def test_duplicates_are_skipped_per_user(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    src = make_jpeg(tmp_path / "in" / "p.jpg")
    copy = tmp_path / "in" / "sub" / "same-bytes.jpg"
    copy.parent.mkdir()
    copy.write_bytes(src.read_bytes())
    summary = run_import(settings, session_factory, user_id, tmp_path / "in")
    assert summary.line() == "imported 1, duplicates 1, failed 0"
    again = run_import(settings, session_factory, user_id, tmp_path / "in")
    assert again.line() == "imported 0, duplicates 2, failed 0"
    with session_factory() as s, s.begin():
        other = users.create_user(s, "bob", "password123").id
    assert run_import(settings, session_factory, other, src).line() == "imported 1, duplicates 0, failed 0"


def test_bad_files_fail_with_reasons_and_the_batch_goes_on(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    make_jpeg(folder / "good.jpg", seed=1)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "liar.png").write_text("I am text")
    good = make_jpeg(tmp_path / "t.jpg", (800, 600), seed=2).read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "notes.txt").write_text("just notes")
    summary = run_import(settings, session_factory, user_id, folder)
    by_name = {Path(r.name).name: r for r in summary.results}
    assert by_name["good.jpg"].status == "imported"
    assert by_name["empty.jpg"].status == "failed" and "empty" in (by_name["empty.jpg"].error or "")
    assert by_name["liar.png"].status == "failed"
    assert by_name["truncated.jpg"].status == "failed" and by_name["truncated.jpg"].error
    assert by_name["notes.txt"].status == "skipped"
    with session_factory() as s:
        reasons = {Path(f.source_name).name: f.reason for f in s.scalars(select(ImportFailure))}
        assert set(reasons) == {"empty.jpg", "liar.png", "truncated.jpg"}
        assert s.scalar(select(func.count(Photo.id))) == 1


def test_bomb_is_refused_before_decoding(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    small = settings.with_(max_pixels=1_000_000)
    src = make_jpeg(tmp_path / "big.jpg", (1500, 1000))
    summary = run_import(small, session_factory, user_id, src)
    result = summary.results[0]
    assert result.status == "failed" and "too large" in (result.error or "")


@pytest.mark.parametrize("name", ["..%2F..%2Fx.jpg", "<script>alert(1)</script>.jpg", "a" * 251 + ".jpg"])
def test_hostile_names_are_data_only(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path, name: str
) -> None:
    src = make_jpeg(tmp_path / name.replace("/", "_"))
    summary = run_import(settings, session_factory, user_id, src)
    assert summary.count("imported") == 1
    with session_factory() as s:
        photo = s.scalars(select(Photo)).one()
        assert photo.stored_path.startswith("originals/") and name not in photo.stored_path
        assert photo.original_name == str(src)


def test_import_with_two_workers(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    for i in range(6):
        make_jpeg(tmp_path / "in" / f"{i}.jpg", seed=i)
    summary = run_import(settings.with_(workers=2), session_factory, user_id, tmp_path / "in")
    assert summary.count("imported") == 6
    with session_factory() as s:
        assert s.scalar(select(func.count(Post.id))) == 6


def test_samples_folder_imports_without_crashing(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int
) -> None:
    summary = run_import(settings.with_(workers=2), session_factory, user_id, EXIF_SAMPLES)
    statuses = {Path(r.name).name: r.status for r in summary.results}
    assert statuses["oracle.json"] == "skipped" and statuses["README.md"] == "skipped"
    assert summary.count("imported") >= 45
    with session_factory() as s:
        rows = s.scalar(select(func.count(Photo.id)))
        assert rows == summary.count("imported")
        assert s.scalar(select(func.count(Trip.id))) == 0


def test_big_heifs_are_prepared_one_at_a_time_in_the_parent(
    settings: Settings,
    session_factory: sessionmaker[Session],
    user_id: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    heic = EXIF_SAMPLES / "photoprism__iphone_15_pro.heic"  # 4032 x 3024
    assert not importing.is_big_heif(heic)
    monkeypatch.setattr(importing, "BIG_HEIF_PIXELS", 10_000_000)
    assert importing.is_big_heif(heic)
    assert not importing.is_big_heif(make_jpeg(tmp_path / "in" / "a.jpg", (4000, 3000)))
    make_jpeg(tmp_path / "in" / "b.jpg", seed=3)
    (tmp_path / "in" / "c.heic").write_bytes(heic.read_bytes())
    monkeypatch.setattr(importing, "prepare", _spy_prepare)
    _HEIF_PIDS.clear()
    summary = run_import(settings.with_(workers=2), session_factory, user_id, tmp_path / "in")
    assert summary.count("imported") == 3
    assert _HEIF_PIDS == [os.getpid()]  # the big HEIF ran here, not in a worker


_REAL_PREPARE = importing.prepare
_HEIF_PIDS: list[int] = []


def _spy_prepare(*args: object, **kwargs: object) -> object:
    """importing.prepare, noting the process that prepared a HEIC (module level: workers unpickle it)."""
    if str(args[2]).endswith(".heic"):
        _HEIF_PIDS.append(os.getpid())
    return _REAL_PREPARE(*args, **kwargs)  # type: ignore[arg-type]
