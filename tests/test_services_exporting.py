"""Exporting, publishing and privacy zones as services: records, status, zones, files, batches, crashes."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import exifread
import pytest
from PIL import Image, PngImagePlugin
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from journal import storage
from journal.config import Settings
from journal.errors import InvalidInput, NotFound, UnreadableFile
from journal.models import Export, ExportPost, OutgoingMessage, Photo, Post, Publication, Trip
from journal.publish import leaks, scrub, zipbundle
from journal.publish.exportfiles import FileJob, Workers
from journal.publish.platforms import get_platform
from journal.publish.scrub import ExifKeep
from journal.services import exporting, importing, publishing, users, zones
from tests.imaging import exif_bytes, make_jpeg

PYONGYANG = (39.0392, 125.7625)
BERLIN = (52.5200, 13.4050)
SERIAL = "SN-SECRET-4711"
OWNER = "Alice Owner"
GPS_WORDS = ("gps",)


# --- helpers shared with the CLI, web and end-to-end tests -----------------------------------------------


def add_private_metadata(*paths: Path, lat: float | None = None, lon: float | None = None) -> None:
    """Give JPEGs what must never leave: a serial number, an owner name, an EXIF thumbnail and XMP GPS."""
    thumb = paths[0].parent / ".thumb.jpg"
    Image.new("RGB", (32, 24), (10, 200, 10)).save(thumb, "JPEG")
    args = ["exiftool", "-q", "-overwrite_original", f"-SerialNumber={SERIAL}", f"-OwnerName={OWNER}"]
    args += [f"-ThumbnailImage<={thumb}"]
    if lat is not None and lon is not None:
        args += [f"-XMP:GPSLatitude={lat}", f"-XMP:GPSLongitude={lon}"]
    subprocess.run([*args, *map(str, paths)], check=True, capture_output=True)
    thumb.unlink()


def halves_jpeg(path: Path, size: tuple[int, int], *, orientation: int | None = None, **exif: Any) -> Path:
    """A JPEG whose stored left half is red and right half blue (to check rotations)."""
    image = Image.new("RGB", size, (220, 20, 20))
    image.paste((20, 20, 220), (size[0] // 2, 0, size[0], size[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=92, exif=exif_bytes(orientation=orientation, **exif))
    return path


def import_files(
    settings: Settings, factory: sessionmaker[Session], user_id: int, *paths: Path, **options: Any
) -> importing.ImportSummary:
    """Import with the real importer."""
    opts = importing.ImportOptions(user_id=user_id, **options)
    summary = importing.run_import(settings, factory, opts, importing.discover(paths))
    assert not summary.count("failed"), summary.results
    return summary


def export(
    settings: Settings, factory: sessionmaker[Session], user_id: int, **fields: Any
) -> exporting.ExportOutcome:
    """Run an export with the given ExportRequest fields."""
    return exporting.run_export(factory, settings, exporting.ExportRequest(user_id=user_id, **fields))


def read_manifest(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        manifest: dict[str, Any] = json.loads(archive.read("manifest.json"))
    return manifest


def zip_photos(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist() if name.startswith("photos/")}


def exif_tags(data: bytes) -> dict[str, str]:
    """Every EXIF tag exifread finds (thumbnails and maker notes included), as text."""
    tags = exifread.process_file(io.BytesIO(data), details=True, extract_thumbnail=True)
    return {name: str(value) for name, value in tags.items()}


def has_gps(data: bytes) -> bool:
    """GPS in EXIF (exifread) or anywhere in the bytes as an XMP/EXIF GPS field name."""
    return any(name.startswith("GPS") for name in exif_tags(data)) or b"GPSLatitude" in data


@dataclass
class Library:
    """What the library fixture imported: post ids by name."""

    user_id: int
    posts: dict[str, int]
    trip_id: int


def create_user(factory: sessionmaker[Session], name: str = "alice") -> int:
    with factory() as s, s.begin():
        return users.create_user(s, name, "password123").id


def make_library(settings: Settings, factory: sessionmaker[Session], tmp_path: Path) -> Library:
    """alice: single-photo posts in Pyongyang (trip "Korea"), Berlin and nowhere, and a five-photo post."""
    user_id = create_user(factory)
    src = tmp_path / "src"
    korea = make_jpeg(
        src / "korea.jpg",
        (800, 600),
        seed=1,
        taken_at=datetime(2025, 5, 1, 9),
        offset="+09:00",
        lat=PYONGYANG[0],
        lon=PYONGYANG[1],
    )
    berlin = make_jpeg(
        src / "berlin.jpg",
        (800, 600),
        seed=2,
        taken_at=datetime(2025, 6, 1, 9),
        offset="+02:00",
        lat=BERLIN[0],
        lon=BERLIN[1],
    )
    nowhere = make_jpeg(src / "nowhere.jpg", (600, 800), seed=3, taken_at=datetime(2025, 7, 1, 9))
    add_private_metadata(korea, lat=PYONGYANG[0], lon=PYONGYANG[1])
    add_private_metadata(berlin, nowhere)
    import_files(settings, factory, user_id, korea, trip_title="Korea")
    import_files(settings, factory, user_id, berlin, nowhere)
    many = [
        make_jpeg(
            src / "many" / f"{i}.jpg",
            (400, 300),
            seed=10 + i,
            taken_at=datetime(2025, 8, 1, 9, i),
            lat=PYONGYANG[0] + i / 100,
            lon=PYONGYANG[1],
        )
        for i in range(5)
    ]
    import_files(settings, factory, user_id, *many, one_post=True, caption="word " * 120)
    with factory() as s:
        by_name = {Path(p.original_name).name: p.post_id or 0 for p in s.scalars(select(Photo))}
        trip_id = s.scalar(select(Trip.id))
    assert trip_id is not None
    posts = {name.removesuffix(".jpg"): pid for name, pid in by_name.items() if name[0].isalpha()}
    posts["many"] = by_name["0.jpg"]
    return Library(user_id, posts, trip_id)


@pytest.fixture
def user_id(session_factory: sessionmaker[Session]) -> int:
    return create_user(session_factory)


@pytest.fixture
def library(settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path) -> Library:
    return make_library(settings, session_factory, tmp_path)


# --- records and selection -----------------------------------------------------------------------------


def test_original_export_is_recorded_and_lossless(
    settings: Settings, session_factory: sessionmaker[Session], library: Library
) -> None:
    outcome = export(settings, session_factory, library.user_id)
    assert outcome.posts == 4 and outcome.problems == [] and len(outcome.bundles) == 1
    written = outcome.bundles[0]
    assert written.path.parent == settings.exports_dir and written.path.suffix == ".zip"
    assert (
        storage.sha256_file(written.path) == written.sha256 and written.path.stat().st_size == written.bytes
    )
    with session_factory() as s:
        row = s.get(Export, written.export_id)
        assert row is not None
        assert (row.sha256, row.bytes, row.batch, row.batches) == (written.sha256, written.bytes, 1, 1)
        assert (row.platform, row.location_mode, row.format, row.path) == (
            "original",
            "exact",
            "zip",
            str(written.path),
        )
        assert {link.post_id for link in row.posts} == set(library.posts.values())
    manifest = read_manifest(written.path)
    assert manifest["schema"] == "journal.bundle/1" and (manifest["batch"], manifest["batches"]) == (1, 1)
    photos = zip_photos(written.path)
    for post in manifest["posts"]:
        for entry in post["files"]:
            data = photos[entry["path"]]
            assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    korea = next(p for p in manifest["posts"] if p["id"] == library.posts["korea"])
    assert korea["location"] == {"lat": PYONGYANG[0], "lon": PYONGYANG[1]} and korea["place"]
    assert (
        korea["taken_at_utc"] == "2025-05-01T00:00:00Z" and korea["taken_at_local"] == "2025-05-01T09:00:00"
    )
    data = photos[korea["files"][0]["path"]]
    tags = exif_tags(data)
    assert "GPS GPSLatitude" in tags and tags["EXIF DateTimeOriginal"] == "2025:05:01 09:00:00"
    assert SERIAL.encode() not in data and OWNER.encode() not in data and b"<x:xmpmeta" not in data
    assert not any(name.startswith(("Thumbnail", "JPEGThumbnail")) for name in tags)
    with session_factory() as s:
        original = (
            settings.uploads_dir
            / s.scalars(select(Photo.stored_path).where(Photo.post_id == korea["id"])).one()
        )
    with Image.open(original) as before, Image.open(io.BytesIO(data)) as after:
        assert before.tobytes() == after.tobytes()  # scrubbed, not re-encoded


@pytest.mark.parametrize("fmt", ["zip", "eml"])
def test_a_damaged_original_is_left_out_and_the_rest_exported(
    settings: Settings, session_factory: sessionmaker[Session], library: Library, fmt: str
) -> None:
    with session_factory() as s:
        stored = s.scalars(select(Photo.stored_path).where(Photo.post_id == library.posts["berlin"])).one()
    (settings.uploads_dir / stored).write_bytes(b"\x00" * 5000)  # disk rot after the import
    outcome = export(settings, session_factory, library.user_id, format=fmt)
    assert outcome.posts == 4 and len(outcome.bundles) == 1
    assert len(outcome.problems) == 2  # the photo, then its post (it had no other photo)
    assert "not a JPEG" in outcome.problems[0] and f"post {library.posts['berlin']}" in outcome.problems[1]
    if fmt == "zip":
        exported = {post["id"] for post in read_manifest(outcome.bundles[0].path)["posts"]}
        assert exported == set(library.posts.values()) - {library.posts["berlin"]}


@pytest.mark.parametrize("platform", ["original", "instagram"])
def test_the_bundle_map_uses_the_librarys_thumbnails(
    settings: Settings, session_factory: sessionmaker[Session], library: Library, platform: str
) -> None:
    outcome = export(settings, session_factory, library.user_id, platform=platform, location="exact")
    with zipfile.ZipFile(outcome.bundles[0].path) as archive:
        names = archive.namelist()
        thumbs = {name: archive.read(name) for name in names if name.startswith("thumbs/")}
        map_page = archive.read("map.html").decode()
    located = [library.posts[name] for name in ("korea", "berlin", "many")]  # "nowhere" has no position
    assert sorted(thumbs) == sorted(f"thumbs/{post}-1.jpg" for post in located)
    for name, data in thumbs.items():  # small, and nothing but pixels
        assert not exif_tags(data) and not has_gps(data) and SERIAL.encode() not in data, name
        with Image.open(io.BytesIO(data)) as image:
            assert max(image.size) <= settings.thumb_size
    korea = library.posts["korea"]
    assert f'"thumb_url":"thumbs/{korea}-1.jpg"' in map_page and '"thumb_url":"photos/' not in map_page


def test_not_exported_yet_is_per_platform(
    settings: Settings, session_factory: sessionmaker[Session], library: Library
) -> None:
    assert export(settings, session_factory, library.user_id).posts == 4
    again = export(settings, session_factory, library.user_id)
    assert again.posts == 0 and again.bundles == []
    assert export(settings, session_factory, library.user_id, platform="mastodon").posts == 4
    assert export(settings, session_factory, library.user_id, include_exported=True).posts == 4


def test_trip_filter_and_unknown_trip(
    settings: Settings, session_factory: sessionmaker[Session], library: Library
) -> None:
    outcome = export(settings, session_factory, library.user_id, trip_id=library.trip_id)
    assert outcome.posts == 1
    assert "korea" in outcome.bundles[0].path.name
    assert [p["id"] for p in read_manifest(outcome.bundles[0].path)["posts"]] == [library.posts["korea"]]
    with pytest.raises(NotFound):
        export(settings, session_factory, library.user_id, trip_id=9999)
    with session_factory() as s:
        with pytest.raises(NotFound):
            exporting.find_trip(s, library.user_id, "Nowhere")
        assert exporting.find_trip(s, library.user_id, "  Korea ").id == library.trip_id


def test_request_is_checked() -> None:
    with pytest.raises(InvalidInput, match="unknown platform"):
        exporting.ExportRequest(user_id=1, platform="myspace")
    with pytest.raises(InvalidInput):
        exporting.ExportRequest(user_id=1, location="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        exporting.ExportRequest(user_id=1, format="pdf")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        exporting.ExportRequest(user_id=1, format="eml", mail_to="not an address")
    assert exporting.ExportRequest(user_id=1, platform=" Instagram ").platform == "instagram"
    assert exporting.ExportRequest(user_id=1, format="eml").batch_limit == exporting.DEFAULT_EML_MAX_BYTES
    assert exporting.megabytes(1.5) == 1_500_000 and exporting.megabytes(None) is None
    with pytest.raises(InvalidInput):
        exporting.megabytes(0)
    assert (
        exporting.slug("Zürich & Łódź — 2026!") == "zurich-odz-2026" and exporting.slug("東京") == "journal"
    )


# --- location privacy --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["approx", "none"])
def test_approx_and_none_leave_no_gps_in_files(
    settings: Settings, session_factory: sessionmaker[Session], library: Library, mode: str
) -> None:
    outcome = export(settings, session_factory, library.user_id, location=mode)
    manifest = read_manifest(outcome.bundles[0].path)
    for name, data in zip_photos(outcome.bundles[0].path).items():
        assert not has_gps(data), name
        assert SERIAL.encode() not in data and OWNER.encode() not in data
    korea = next(p for p in manifest["posts"] if p["id"] == library.posts["korea"])
    if mode == "none":
        assert all(p["location"] is None for p in manifest["posts"])
        assert korea["place"] == "North Korea"
    else:
        lat, lon = korea["location"]["lat"], korea["location"]["lon"]
        assert (lat, lon) != PYONGYANG and abs(lat - PYONGYANG[0]) < 0.05 and abs(lon - PYONGYANG[1]) < 0.07


def test_privacy_zone_hides_position_even_in_exact_mode(
    settings: Settings, session_factory: sessionmaker[Session], library: Library
) -> None:
    with session_factory() as s, s.begin():
        zones.add_zone(s, library.user_id, zones.ZoneInput("Home", BERLIN[0] + 0.001, BERLIN[1], 500))
    outcome = export(settings, session_factory, library.user_id)
    manifest = read_manifest(outcome.bundles[0].path)
    photos = zip_photos(outcome.bundles[0].path)
    posts = {p["id"]: p for p in manifest["posts"]}
    berlin, korea = posts[library.posts["berlin"]], posts[library.posts["korea"]]
    assert berlin["location"] is None and berlin["place"] == "Germany"
    assert not has_gps(photos[berlin["files"][0]["path"]])
    assert korea["location"] is not None and has_gps(photos[korea["files"][0]["path"]])
    with zipfile.ZipFile(outcome.bundles[0].path) as archive:
        page = archive.read("map.html").decode()
    assert "52.52" not in page and "13.40" not in page


def test_zones_service(session_factory: sessionmaker[Session], user_id: int) -> None:
    with session_factory() as s, s.begin():
        other = users.create_user(s, "bob", "password123").id
        zone = zones.add_zone(s, user_id, zones.ZoneInput.parse(" Home  sweet ", "52,52", "13.405", "250"))
        zones.add_zone(s, other, zones.ZoneInput.parse("", "10", "10", "1000"))
        zone_id = zone.id
    with session_factory() as s:
        mine = zones.list_zones(s, user_id)
        assert [(z.label, z.lat, z.lon, z.radius_m) for z in mine] == [("Home sweet", 52.52, 13.405, 250.0)]
        plain = zones.zones_for(s, user_id)
        assert plain[0].contains(52.5201, 13.405) and not plain[0].contains(52.6, 13.405)
    for bad in (
        ("x", "91", "0", "100"),
        ("x", "a", "0", "100"),
        ("x", "0", "0", "5"),
        ("x", "0", "0", "1e9"),
    ):
        with pytest.raises(InvalidInput):
            zones.ZoneInput.parse(*bad)
    with pytest.raises(InvalidInput):
        zones.ZoneInput("bad\nlabel", 0, 0, 100)
    with session_factory() as s, s.begin():
        with pytest.raises(NotFound):
            zones.delete_zone(s, other, zone_id)
        zones.delete_zone(s, user_id, zone_id)
    with session_factory() as s:
        assert zones.list_zones(s, user_id) == [] and len(zones.list_zones(s, other)) == 1


# --- platforms: renditions, parts, captions -----------------------------------------------------------


def test_instagram_renditions_are_upright_cropped_and_clean(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    turned = halves_jpeg(tmp_path / "turned.jpg", (1600, 1200), orientation=6, lat=BERLIN[0], lon=BERLIN[1])
    wide = halves_jpeg(tmp_path / "wide.jpg", (2400, 1000))
    add_private_metadata(turned, wide)
    import_files(settings, session_factory, user_id, turned, wide)
    outcome = export(settings, session_factory, user_id, platform="instagram", location="exact")
    manifest = read_manifest(outcome.bundles[0].path)
    photos = zip_photos(outcome.bundles[0].path)
    sizes = {}
    for post in manifest["posts"]:
        entry = post["files"][0]
        data = photos[entry["path"]]
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG" and image.size == (entry["width"], entry["height"])
            assert image.getexif().get(0x0112, 1) == 1
            sizes[image.size] = image.convert("RGB")
        assert SERIAL.encode() not in data and not any(k.startswith("Thumbnail") for k in exif_tags(data))
    # 1600x1200 turned upright is 1200x1600 (3:4), cropped to 4:5 and 1080 wide; 2400x1000 is cut to 1.91:1
    # (566 px tall: 565 would be 1.9115:1).
    assert set(sizes) == {(1080, 1350), (1080, 566)}
    portrait = sizes[(1080, 1350)]
    top, bottom = portrait.getpixel((540, 100)), portrait.getpixel((540, 1250))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 180 and bottom[2] > 180  # stored left (red) is on top once turned


def test_platform_files_start_from_the_web_image_and_keep_the_originals_exif(
    settings: Settings,
    session_factory: sessionmaker[Session],
    user_id: int,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each rendition is planned from the web image; without it, from the original, with the same EXIF."""
    src = make_jpeg(
        tmp_path / "big.jpg",
        (4000, 3000),
        taken_at=datetime(2025, 5, 1, 9),
        offset="+09:00",
        lat=PYONGYANG[0],
        lon=PYONGYANG[1],
        orientation=6,
    )
    add_private_metadata(src, lat=PYONGYANG[0], lon=PYONGYANG[1])
    import_files(settings, session_factory, user_id, src)
    with session_factory() as s:
        photo = s.scalars(select(Photo)).one()
        web = settings.uploads_dir / storage.rendition_relpath(photo.user_id, photo.sha256, "web")
        web_size = (photo.web_width, photo.web_height)
    request = exporting.ExportRequest(user_id=user_id, platform="email")
    with session_factory() as s:
        [post] = exporting.select_posts(s, settings, request)
    [job] = exporting.plan_jobs(
        post, get_platform("email"), "exact", [], work=tmp_path, max_pixels=settings.max_pixels
    )
    assert (job.web, job.web_size) == (web, web_size) and web.is_file()
    files = []
    for step in ("with the web image", "without"):
        with caplog.at_level("DEBUG", logger="journal.publish.exportfiles"):
            outcome = export(
                settings,
                session_factory,
                user_id,
                platform="instagram",
                location="exact",
                include_exported=True,
            )
        [data] = zip_photos(outcome.bundles[0].path).values()
        files.append(data)
        made_from = "web" if step == "with the web image" else "original"
        assert f"JPEG from its {made_from}" in caplog.text, step
        caplog.clear()
        web.unlink(missing_ok=True)
    for data in files:
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == (1080, 1350) and image.getexif().get(0x0112, 1) == 1
        assert has_gps(data) and SERIAL.encode() not in data and OWNER.encode() not in data
    assert exif_tags(files[0]) == exif_tags(files[1])  # camera, times and position: from the original's row
    assert "Image Make" in exif_tags(files[0]) and files[0] != files[1]


def test_post_split_into_parts_with_cut_captions(
    settings: Settings, session_factory: sessionmaker[Session], library: Library
) -> None:
    outcome = export(settings, session_factory, library.user_id, platform="bluesky", max_batch_bytes=1)
    assert all(b.posts == 1 for b in outcome.bundles) and len(outcome.bundles) == 4
    many = library.posts["many"]
    bundle_path = next(
        b.path for b in outcome.bundles if any(p["id"] == many for p in read_manifest(b.path)["posts"])
    )
    parts = [p for p in read_manifest(bundle_path)["posts"] if p["id"] == many]
    assert [p["part"] for p in parts] == [[1, 2], [2, 2]]
    assert [len(p["files"]) for p in parts] == [3, 2]
    assert all(p["caption_cut"] and len(p["caption"]) <= 300 for p in parts)
    assert parts[0]["caption"].endswith("… (1/2)") and parts[1]["caption"].endswith("… (2/2)")
    assert len({f["path"] for p in parts for f in p["files"]}) == 5
    with session_factory() as s:
        links = s.execute(select(ExportPost.part).where(ExportPost.post_id == many)).scalars().all()
    assert sorted(links) == [1, 2]


def test_x_captions_are_weighed_and_the_bundle_shows_the_count_and_the_cut(
    settings: Settings, session_factory: sessionmaker[Session], library: Library
) -> None:
    korean = "광장시장의 " * 40 + "Seoul, 2026: <markets> & food, day four!"  # 280 characters, 480 on X
    with session_factory() as s, s.begin():
        post = s.get(Post, library.posts["korea"])
        assert post is not None
        post.caption = korean
    outcome = export(settings, session_factory, library.user_id, platform="x", trip_id=library.trip_id)
    manifest = read_manifest(outcome.bundles[0].path)
    entry = next(p for p in manifest["posts"] if p["id"] == library.posts["korea"])
    assert entry["caption_cut"] and entry["caption_limit"] == 280 and 140 <= entry["caption_length"] <= 280
    assert korean.startswith(entry["caption"][:-1]) and korean.endswith(entry["caption_dropped"])
    with zipfile.ZipFile(outcome.bundles[0].path) as archive:
        page = archive.read("index.html").decode()
    assert f"Caption: {entry['caption_length']} of 280, as x counts" in page
    assert "&lt;markets&gt; &amp; food" in page and "<markets>" not in page  # the cut text, escaped


def test_batches_stay_under_the_limit_and_never_split_a_post(
    settings: Settings, session_factory: sessionmaker[Session], library: Library
) -> None:
    whole = export(settings, session_factory, library.user_id, platform="email", include_exported=True)
    total = whole.bundles[0].bytes
    limit = total // 2
    outcome = export(
        settings,
        session_factory,
        library.user_id,
        platform="email",
        include_exported=True,
        max_batch_bytes=limit,
    )
    assert len(outcome.bundles) >= 2
    seen: list[int] = []
    for written in outcome.bundles:
        manifest = read_manifest(written.path)
        assert (manifest["batch"], manifest["batches"]) == (written.batch, len(outcome.bundles))
        ids = {p["id"] for p in manifest["posts"]}
        assert written.bytes <= limit or len(ids) == 1
        seen += sorted(ids)
    assert sorted(seen) == sorted(library.posts.values())  # each post in exactly one batch


def test_workers_make_files_in_parallel(
    settings: Settings, session_factory: sessionmaker[Session], library: Library
) -> None:
    outcome = export(
        settings.with_(workers=2), session_factory, library.user_id, platform="x", location="none"
    )
    assert outcome.problems == [] and outcome.posts == 4
    assert all(not has_gps(data) for data in zip_photos(outcome.bundles[0].path).values())


def _scrub_jobs(tmp_path: Path, count: int) -> list[FileJob]:
    return [
        FileJob(
            photo_id=n,
            post_id=n,
            number=1,
            src=make_jpeg(tmp_path / f"{n}.jpg", (64, 48), seed=n),
            dest=tmp_path / f"{n}.out",
            kind="scrub",
            keep=ExifKeep(),
            platform=get_platform("original"),
            format="JPEG",
            width=64,
            height=48,
            orientation=None,
            max_pixels=10**8,
            streamed=True,
        )
        for n in range(1, count + 1)
    ]


def test_workers_plan_streamed_scrubs_in_other_processes(tmp_path: Path) -> None:
    jobs = _scrub_jobs(tmp_path, 6)
    with Workers(2) as workers:
        assert workers.submit(os.getpid).result() != os.getpid()  # a worker process
        planned = list(workers.make_files(jobs))
        made = list(workers.make_files([dataclasses.replace(job, streamed=False) for job in jobs]))
    assert sorted(m.photo_id for m in planned) == sorted(m.photo_id for m in made) == [1, 2, 3, 4, 5, 6]
    by_id = {job.photo_id: job for job in jobs}
    for result in planned:  # planned only, hashed by the worker: the hash of what will be written
        job = by_id[result.photo_id]
        assert result.path is None and result.plan == scrub.plan_scrub(job.src, keep=job.keep)
        assert result.plan.sha256 == hashlib.sha256(_scrubbed(job)).hexdigest()
    for result in made:  # written out (as for e-mail)
        assert result.path is not None and result.path.read_bytes() == _scrubbed(by_id[result.photo_id])


def test_without_workers_everything_runs_here_in_turn(tmp_path: Path) -> None:
    jobs = _scrub_jobs(tmp_path, 2)
    with Workers(1) as workers:
        assert workers.submit(os.getpid).result() == os.getpid()
        failed = workers.submit(scrub.plan_scrub, tmp_path / "missing.jpg", keep=ExifKeep())
        assert isinstance(failed.exception(), FileNotFoundError)
        assert [m.plan is not None for m in workers.make_files(jobs)] == [True, True]


def _scrubbed(job: FileJob) -> bytes:
    out = io.BytesIO()
    scrub.scrub_jpeg(job.src, out, keep=job.keep)
    return out.getvalue()


# --- other originals --------------------------------------------------------------------------------


def test_png_and_heic_originals(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    png = tmp_path / "shot.png"
    image = Image.new("RGBA", (60, 40), (200, 30, 30, 128))
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", OWNER)
    image.save(png, "PNG", pnginfo=info, exif=exif_bytes(lat=BERLIN[0], lon=BERLIN[1], orientation=6))
    heic = tmp_path / "phone.heic"
    Image.new("RGB", (64, 48), (20, 200, 20)).save(heic, exif=exif_bytes(lat=BERLIN[0], lon=BERLIN[1]))
    import_files(settings, session_factory, user_id, png, heic)
    outcome = export(settings, session_factory, user_id, location="none")
    photos = zip_photos(outcome.bundles[0].path)
    names = sorted(name.rsplit(".", 1)[1] for name in photos)
    assert names == ["jpg", "png"]
    for name, data in photos.items():
        assert not has_gps(data) and OWNER.encode() not in data, name
        with Image.open(io.BytesIO(data)) as out:
            if name.endswith(".png"):
                assert out.mode == "RGBA" and out.size == (40, 60)  # lossless, turned upright
                assert out.getpixel((0, 0)) == (200, 30, 30, 128) and "Author" not in out.info
            else:
                assert out.format == "JPEG" and out.size == (64, 48)


# --- e-mail bundles --------------------------------------------------------------------------------


def test_eml_export_records_pending_messages(
    settings: Settings, session_factory: sessionmaker[Session], library: Library
) -> None:
    outcome = export(
        settings,
        session_factory,
        library.user_id,
        platform="email",
        format="eml",
        max_batch_bytes=400_000,
        mail_to="blog@example.org",
        location="none",
    )
    assert len(outcome.bundles) >= 2
    with session_factory() as s:
        rows = {m.message_id: m for m in s.scalars(select(OutgoingMessage))}
    for written in outcome.bundles:
        assert written.path.suffix == ".eml" and written.bytes <= 400_000
        row = rows[written.message_id or ""]
        assert row.sent_at is None and row.attempts == 0 and row.path == str(written.path)
        message = email.message_from_bytes(written.path.read_bytes(), policy=email.policy.default)
        assert message["Message-ID"] == written.message_id and message["To"] == "blog@example.org"
        attachments = [part for part in message.iter_attachments() if part.get_filename() != "privacy.json"]
        assert attachments and all(part.get_content_type() == "image/jpeg" for part in attachments)
        report = next(part for part in message.iter_attachments() if part.get_filename() == "privacy.json")
        assert report.get_content_type() == "application/json"
        names = [entry["path"] for entry in json.loads(report.get_content())["files"]]
        assert names == [part.get_filename() for part in attachments]
        for part in attachments:
            assert not has_gps(part.get_content())
        body = message.get_body(("plain",))
        assert body is not None and "Photos:" in body.get_content()
    single = next(b for b in outcome.bundles if b.posts == 1)
    assert email.message_from_bytes(single.path.read_bytes())["Subject"]


# --- crashes ---------------------------------------------------------------------------------------


def _no_temp_files(settings: Settings) -> bool:
    return not [p for p in settings.staging_dir.rglob("*") if p.name.startswith(storage.TEMP_PREFIX)]


def test_a_failing_record_leaves_no_file(
    settings: Settings,
    session_factory: sessionmaker[Session],
    library: Library,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Export:
        raise RuntimeError("database went away")

    monkeypatch.setattr(exporting, "record_export", broken)
    with pytest.raises(RuntimeError):
        export(settings, session_factory, library.user_id)
    assert list(settings.exports_dir.iterdir()) == [] and _no_temp_files(settings)
    with session_factory() as s:
        assert s.scalar(select(func.count(Export.id))) == 0


def test_a_file_failing_mid_zip_leaves_no_half_zip(
    settings: Settings,
    session_factory: sessionmaker[Session],
    library: Library,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []

    real = scrub.write_scrub_plan

    def write_plan(plan: Any, src: Path, sink: Any) -> int:
        if isinstance(sink, leaks.MetadataTap):  # the worker's check of a planned scrub
            return real(plan, src, sink)
        calls.append(src)
        if len(calls) == 3:
            sink.write(b"\xff\xd8 partial bytes")
            raise OSError("disk read error")
        return real(plan, src, sink)

    monkeypatch.setattr(scrub, "write_scrub_plan", write_plan)
    with pytest.raises(UnreadableFile, match="disk read error"):
        export(settings, session_factory, library.user_id)
    assert list(settings.exports_dir.iterdir()) == [] and _no_temp_files(settings)
    with session_factory() as s:
        assert s.scalar(select(func.count(Export.id))) == 0


_CRASH = """
import os, sys
from journal import db
from journal.publish import zipbundle
from journal.config import Settings
from journal.services import exporting
written = zipbundle._write_text
def crash(archive, name, text, stamp):
    if name == "index.html":
        os._exit(9)  # no cleanup at all, as with SIGKILL or a power cut
    written(archive, name, text, stamp)
zipbundle._write_text = crash
settings = Settings(home=__import__("pathlib").Path(sys.argv[1]), database_url=sys.argv[3], workers=1)
factory = db.make_session_factory(db.make_engine(settings.database_url))
exporting.run_export(factory, settings, exporting.ExportRequest(user_id=int(sys.argv[2])))
"""


def test_a_killed_export_leaves_no_zip_and_no_record(
    settings: Settings, session_factory: sessionmaker[Session], library: Library
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _CRASH, str(settings.home), str(library.user_id), settings.database_url],
        capture_output=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert result.returncode == 9, result.stderr.decode()
    assert not settings.exports_dir.exists() or list(settings.exports_dir.glob("*.zip")) == []
    with session_factory() as s:
        assert s.scalar(select(func.count(Export.id))) == 0
    # The next export finds every post still waiting.
    assert export(settings, session_factory, library.user_id).posts == 4


# --- status, publication, bundle list -----------------------------------------------------------------


def test_post_status_through_export_and_publication(
    settings: Settings, session_factory: sessionmaker[Session], library: Library
) -> None:
    korea, berlin = library.posts["korea"], library.posts["berlin"]
    with session_factory() as s:
        assert publishing.post_status(s, library.user_id, [korea]) == {korea: ("not exported", [])}
    first = export(settings, session_factory, library.user_id, trip_id=library.trip_id).bundles[0]
    second = export(settings, session_factory, library.user_id, platform="x").bundles[0]
    with session_factory() as s:
        status = publishing.post_status(s, library.user_id, [korea, berlin, 999999])
        bob = users.create_user(s, "bob", "password123").id
        assert publishing.post_status(s, bob, [korea]) == {korea: ("not exported", [])}
    assert status[korea] == ("exported", [first.path.name, second.path.name])
    assert status[berlin] == ("exported", [second.path.name]) and status[999999] == ("not exported", [])
    with session_factory() as s, s.begin():
        export_row = publishing.find_export_by_file(s, library.user_id, first.path)
        assert export_row.id == first.export_id
        assert publishing.mark_published(s, export_row, url="https://example.org/p/1") == 1
    with session_factory() as s, s.begin():
        export_row = publishing.get_export(s, library.user_id, first.export_id)
        publishing.mark_published(s, export_row)  # again: no second record, URL kept
    with session_factory() as s:
        assert publishing.post_status(s, library.user_id, [korea])[korea][0] == "published"
        pubs = s.scalars(select(Publication)).all()
        assert [(p.post_id, p.export_id, p.url) for p in pubs] == [
            (korea, first.export_id, "https://example.org/p/1")
        ]
        rows = {row.export.id: row for row in publishing.list_bundles(s, library.user_id)}
    assert (
        rows[first.export_id].status == "published" and rows[first.export_id].url == "https://example.org/p/1"
    )
    assert rows[second.export_id].status == "exported" and rows[second.export_id].posts == 4
    assert rows[second.export_id].on_disk


def test_published_needs_a_recorded_bundle(
    settings: Settings, session_factory: sessionmaker[Session], library: Library, tmp_path: Path
) -> None:
    written = export(settings, session_factory, library.user_id).bundles[0]
    stranger = zipbundle.build_bundle(
        tmp_path / "other.zip", zipbundle.Batch([], 1, 1, "2026-01-01T00:00:00Z", "t")
    )
    not_bundle = tmp_path / "plain.zip"
    with zipfile.ZipFile(not_bundle, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with session_factory() as s:
        bob = users.create_user(s, "bob", "password123").id
        s.commit()
        with pytest.raises(NotFound, match="not a bundle this journal exported"):
            publishing.find_export_by_file(s, library.user_id, stranger.path)
        with pytest.raises(InvalidInput):
            publishing.find_export_by_file(s, library.user_id, not_bundle)
        with pytest.raises(NotFound):
            publishing.find_export_by_file(s, bob, written.path)
        with pytest.raises(NotFound):
            publishing.get_export(s, bob, written.export_id)
    for bad in ("javascript:alert(1)", "ftp://x.org/a", "https://exa mple.org", "https://" + "a" * 2050):
        with pytest.raises(InvalidInput):
            publishing.check_url(bad)
    assert publishing.check_url("  ") is None


@pytest.fixture
def exported_ids(
    settings: Settings, session_factory: sessionmaker[Session], library: Library
) -> Iterator[list[int]]:
    outcome = export(settings, session_factory, library.user_id)
    yield [b.export_id for b in outcome.bundles]


def test_deleting_a_post_keeps_the_bundle_record(
    session_factory: sessionmaker[Session], library: Library, exported_ids: list[int]
) -> None:
    with session_factory() as s, s.begin():
        s.delete(s.get(Post, library.posts["nowhere"]))
    with session_factory() as s:
        row = publishing.list_bundles(s, library.user_id)[0]
        assert row.export.id == exported_ids[0] and row.posts == 3


def test_platform_sizes_are_exact_even_where_the_decoder_could_scale_below_them(
    settings: Settings, session_factory: sessionmaker[Session], user_id: int, tmp_path: Path
) -> None:
    big = make_jpeg(tmp_path / "big.jpg", (4000, 3000), seed=5)
    import_files(settings, session_factory, user_id, big)
    for platform, size in (("instagram", (1080, 810)), ("facebook", (2048, 1536)), ("bluesky", (2000, 1500))):
        outcome = export(settings, session_factory, user_id, platform=platform)
        entry = read_manifest(outcome.bundles[0].path)["posts"][0]["files"][0]
        # libjpeg's 1/4 and 1/2 scales (1000 and 2000 px wide) are under these: never shipped.
        assert (entry["width"], entry["height"]) == size, platform
        with (
            zipfile.ZipFile(outcome.bundles[0].path) as archive,
            Image.open(io.BytesIO(archive.read(entry["path"]))) as image,
        ):
            assert image.size == size


def test_captions_are_escaped_in_pages_and_cannot_inject_mail_headers(
    settings: Settings, session_factory: sessionmaker[Session], library: Library
) -> None:
    hostile = '<script>alert("x")</script>\r\nBcc: victim@example.org\n<img src=x onerror=alert(1)>'
    with session_factory() as s, s.begin():
        post = s.get(Post, library.posts["korea"])
        assert post is not None
        post.caption = hostile
    zipped = export(settings, session_factory, library.user_id, trip_id=library.trip_id).bundles[0]
    with zipfile.ZipFile(zipped.path) as archive:
        page = archive.read("index.html").decode()
        map_page = archive.read("map.html").decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "<script>alert" not in map_page and "<img src=x" not in map_page
    mailed = export(
        settings, session_factory, library.user_id, trip_id=library.trip_id, format="eml", platform="email"
    )
    raw = mailed.bundles[0].path.read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Bcc"] is None and b"\r\nBcc:" not in raw.split(b"\r\n\r\n", 1)[0]
    assert "\n" not in str(message["Subject"]) and str(message["Subject"]).startswith("<script>")
