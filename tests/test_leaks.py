"""The leak report: written files re-read (leaks.py), privacy.json, index.html, and what is never shipped."""

from __future__ import annotations

import email
import email.policy
import io
import json
import shutil
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from journal.config import Settings
from journal.errors import PrivacyLeak
from journal.models import Export
from journal.publish import emailbundle, leaks, scrub, zipbundle
from journal.publish.scrub import ExifKeep, scrub_jpeg
from journal.publish.zipbundle import BundleFile, BundlePost, write_bundle_zip
from tests.imaging import exif_bytes, make_jpeg
from tests.machine import needs_tool
from tests.samples import EXIF_SAMPLES
from tests.test_scrub import KEEP, dirty_jpeg
from tests.test_services_exporting import add_private_metadata, create_user, export, import_files

EXIFTOOL = shutil.which("exiftool")
CREATED = "2024-06-01T12:00:00Z"
#: One file of each kind an export handles differently, all located, all full of metadata.
SAMPLES = {
    "jpeg": "exifr__issue-exifr-13.jpg",  # GPS, XMP, maker notes, serial numbers, IFD1 thumbnail
    "png": "exifr__png_with_exif_and_gps.png",  # eXIf with GPS, text chunks, XMP
    "heic": "ianare__IMG_5195.HEIC",  # GPS in its EXIF; re-encoded as JPEG
    "webp": "exiv2__exiv2-bug1199.webp",  # EXIF with GPS and maker notes, XMP
}


def gps_jpeg(lat: float = 48.8584, lon: float = 2.2945) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(out, "JPEG", exif=exif_bytes(lat=lat, lon=lon))
    return out.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _in_pieces(data: bytes, size: int) -> list[bytes]:
    return [data[at : at + size] for at in range(0, len(data), size)]


# --- re-reading bytes ---


def test_a_dirty_jpeg_shows_everything_and_its_scrub_only_what_may_stay() -> None:
    dirty = dirty_jpeg()
    found = leaks.inspect_bytes([dirty])
    assert {
        leaks.GPS,
        leaks.XMP,
        leaks.MAKER_NOTE,
        leaks.SERIALS,
        leaks.NAMES,
        leaks.THUMBNAIL,
        leaks.COMMENTS,
        leaks.IPTC,
        leaks.FRAMES,
        leaks.TRAILER,
        leaks.OTHER,
    } <= found.carries
    assert "gps: GPS GPSLatitude" in found.details  # exifread
    assert "gps: GPS IFD GPSLatitude" in found.details  # Pillow
    assert "gps: XMP GPSLatitude" in found.details
    out = io.BytesIO()
    scrub_jpeg(dirty, out, keep=KEEP)
    clean = leaks.inspect_bytes([out.getvalue()])
    assert clean.carries == {leaks.ICC, leaks.CAMERA, leaks.TIME, leaks.ORIENTATION}
    assert clean.camera == "TestCam T-1"
    assert leaks.check(clean, leaks.FileRule()) == []
    entry = leaks.file_entry("photos/1-1.jpg", clean, leaks.FileRule(source=found))
    assert {"gps", "xmp", "maker_note", "serial_numbers", "owner_names", "thumbnail"} <= set(entry["removed"])
    assert entry["kept"] == ["icc_profile", "camera", "capture_time", "orientation"]
    assert entry["gps"] is False and entry["leaks"] == [] and entry["checked_with"] == ["exifread", "pillow"]


def test_gps_is_allowed_only_by_the_rule() -> None:
    found = leaks.inspect_bytes([gps_jpeg()])
    assert found.carries >= {leaks.GPS}
    assert leaks.check(found, leaks.FileRule(gps_allowed=True)) == []
    assert leaks.check(found, leaks.FileRule())[0].startswith("gps (GPS ")


def _png_with_late_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "early")
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG", pnginfo=info)
    data = out.getvalue()
    late = png_chunk(b"tEXt", b"Location\x00GPSLatitude 48.8584")
    return data[:-12] + late + data[-12:]  # before IEND, after IDAT: Pillow reads it only on load()


def _webp_with_xmp_and_gps() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(
        out,
        "WEBP",
        lossless=True,
        exif=exif_bytes(lat=1.5, lon=2.5),
        xmp=b"<x:xmpmeta>exif:GPSLatitude</x:xmpmeta>",
    )
    return out.getvalue()


@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 30])
def test_pieces_of_any_size_give_the_same_findings(size: int) -> None:
    png = leaks.inspect_bytes(_in_pieces(_png_with_late_text(), size))
    assert {leaks.TEXT, leaks.GPS} <= png.carries and png.format == "PNG"
    assert "text_chunks: tEXt 'Location'" in png.details
    webp = leaks.inspect_bytes(_in_pieces(_webp_with_xmp_and_gps(), size))
    assert {leaks.XMP, leaks.GPS} <= webp.carries and webp.format == "WEBP"
    out = io.BytesIO()
    scrub_jpeg(dirty_jpeg(), out, keep=KEEP)
    whole = leaks.inspect_bytes([out.getvalue()])
    assert leaks.inspect_bytes(_in_pieces(out.getvalue(), size)) == whole
    assert (
        leaks.inspect_bytes(_in_pieces(dirty_jpeg(), size)).carries
        == leaks.inspect_bytes([dirty_jpeg()]).carries
    )


def test_what_cannot_be_read_is_not_shipped() -> None:
    clean = io.BytesIO()
    Image.new("RGB", (8, 8)).save(clean, "JPEG")
    data = clean.getvalue()
    for bad in (b"not an image at all", data[:40], data + b"trailer with a position", b"\xff\xd8\xff"):
        found = leaks.inspect_bytes([bad])
        assert leaks.check(found, leaks.FileRule(gps_allowed=True)), bad[:20]
    assert leaks.check(leaks.inspect_bytes([data]), leaks.FileRule()) == []


# --- the bundle writer checks the bytes it writes ---


def _post(file: BundleFile) -> BundlePost:
    return BundlePost(1, "caption", False, None, None, None, None, (file,))


def test_the_bundle_writer_refuses_bytes_that_carry_gps(tmp_path: Path) -> None:
    data = gps_jpeg()
    # Whatever made it, the bytes going into the zip are what is checked.
    file = BundleFile("photos/1-1.jpg", lambda sink: sink.write(data), 16, 16, size_hint=len(data))
    dest = tmp_path / "b.zip"
    with pytest.raises(PrivacyLeak, match=r"photos/1-1\.jpg still carries gps"):
        write_bundle_zip(dest, posts=[_post(file)], batch=1, batches=1, created_at=CREATED, index_html="")
    assert list(tmp_path.iterdir()) == []
    allowed = BundleFile(
        "photos/1-1.jpg",
        data,
        16,
        16,
        rule=leaks.FileRule(gps_allowed=True, source=leaks.inspect_bytes([data])),
    )
    info = write_bundle_zip(
        dest, posts=[_post(allowed)], batch=1, batches=1, created_at=CREATED, index_html="", location="exact"
    )
    with zipfile.ZipFile(info.path) as archive:
        report = json.loads(archive.read("privacy.json"))
    assert report == info.privacy
    assert report["schema"] == "journal.privacy/1" and report["location"] == "exact"
    (entry,) = report["files"]
    assert entry["path"] == "photos/1-1.jpg" and entry["gps"] is True and entry["kept"][0] == "gps"
    assert entry["removed"] == [] and entry["leaks"] == []


# --- exports: every mode, a few formats, exiftool agreeing ---


@pytest.fixture
def located(settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path) -> int:
    """alice with one located photo of each kind in SAMPLES."""
    user_id = create_user(session_factory)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in SAMPLES.values():
        shutil.copy(EXIF_SAMPLES / name, folder / name)
    import_files(settings, session_factory, user_id, folder)
    return user_id


def exiftool_tags(path: Path) -> dict[str, Any]:
    assert EXIFTOOL is not None
    done = subprocess.run([EXIFTOOL, "-j", "-G", "-a", str(path)], capture_output=True, check=True, text=True)
    tags: dict[str, Any] = json.loads(done.stdout)[0]
    return tags


#: exiftool groups and tag words that must never be in a written file.
NEVER_GROUPS = ("XMP", "MakerNotes", "IPTC", "Photoshop", "MPF", "Canon", "Nikon", "Sony", "Apple", "Samsung")
NEVER_WORDS = (
    "Serial",
    "OwnerName",
    "Artist",
    "Copyright",
    "Thumbnail",
    "MakerNote",
    "Comment",
    "UserComment",
)
#: What exiftool may show of a PNG besides text chunks (which it names after their keywords).
PNG_STRUCTURE = {
    "ImageWidth",
    "ImageHeight",
    "BitDepth",
    "ColorType",
    "Compression",
    "Filter",
    "Interlace",
    "SRGBRendering",
    "Gamma",
    "ProfileName",
    "Transparency",
    "PixelsPerUnitX",
    "PixelsPerUnitY",
    "PixelUnits",
}


def exiftool_leaks(tags: dict[str, Any], *, gps_allowed: bool) -> list[str]:
    found = []
    for key in tags:
        group, _, name = key.partition(":")
        if group.startswith("ICC"):
            continue  # the colour profile's own copyright/description describe the profile
        if group.startswith(NEVER_GROUPS) or any(word in name for word in NEVER_WORDS):
            found.append(key)
        elif "GPS" in name and not gps_allowed:
            found.append(key)
        elif group == "PNG" and name not in PNG_STRUCTURE:
            found.append(key)
    return found


def read_bundle(path: Path, folder: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    with zipfile.ZipFile(path) as archive:
        archive.extractall(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    report = json.loads((folder / "privacy.json").read_text())
    return manifest, report, (folder / "index.html").read_text()


@needs_tool("exiftool")
@pytest.mark.parametrize("mode", ["exact", "approx", "none"])
def test_privacy_json_lists_the_removals_and_exiftool_agrees(
    settings: Settings, session_factory: sessionmaker[Session], located: int, tmp_path: Path, mode: str
) -> None:
    outcome = export(settings, session_factory, located, location=mode)
    assert outcome.problems == [] and len(outcome.bundles) == 1
    manifest, report, index = read_bundle(outcome.bundles[0].path, tmp_path / "unzipped")
    assert report["schema"] == "journal.privacy/1" and report["location"] == mode
    assert (report["batch"], report["batches"]) == (1, 1)
    photos = [entry["path"] for post in manifest["posts"] for entry in post["files"]]
    entries = {entry["path"]: entry for entry in report["files"]}
    assert set(photos) <= set(entries) and len(photos) == 4
    assert {Path(p).suffix for p in photos} == {".jpg", ".png", ".webp"}
    for path in photos:
        entry = entries[path]
        source = leaks.inspect_source(
            tmp_path / "in" / _source_of(path, manifest, tmp_path), entry["source_format"]
        )
        assert source is not None and leaks.GPS in source.carries
        assert entry["leaks"] == [] and entry["checked_with"] == ["exifread", "pillow"], entry
        assert entry["gps"] is (mode == "exact"), entry
        assert ("gps" in entry["removed"]) is (mode != "exact")
        # Whatever the original carried that no mode allows is listed as removed.
        assert set(source.carries) & set(leaks.ALWAYS_FORBIDDEN) <= set(entry["removed"]), (path, entry)
        tags = exiftool_tags(tmp_path / "unzipped" / path)
        assert exiftool_leaks(tags, gps_allowed=mode == "exact") == [], (path, tags)
        assert any("GPSLatitude" in key for key in tags) is (mode == "exact")
        assert f'<a href="{path}">{path}</a>' in index
    jpeg = next(entries[p] for p in photos if _source_of(p, manifest, tmp_path) == SAMPLES["jpeg"])
    assert {"xmp", "maker_note", "serial_numbers", "thumbnail"} <= set(jpeg["removed"])
    png = entries[next(p for p in photos if p.endswith(".png"))]
    assert "text_chunks" in png["removed"]
    assert f"Location: <strong>{mode}</strong>" in index


def _source_of(path: str, manifest: dict[str, Any], tmp_path: Path) -> str:
    """The sample a bundle file was made from (matched by its post's caption-free order: by format)."""
    suffix = Path(path).suffix
    if suffix == ".png":
        return SAMPLES["png"]
    if suffix == ".webp":
        return SAMPLES["webp"]
    with Image.open(tmp_path / "unzipped" / path) as image:
        width = image.width
    with Image.open(EXIF_SAMPLES / SAMPLES["jpeg"]) as original:
        return SAMPLES["jpeg"] if width in original.size else SAMPLES["heic"]


def test_an_email_bundle_attaches_privacy_json(
    settings: Settings, session_factory: sessionmaker[Session], located: int
) -> None:
    outcome = export(settings, session_factory, located, location="none", format="eml", platform="email")
    assert outcome.problems == [] and outcome.bundles
    for written in outcome.bundles:
        message = email.message_from_bytes(written.path.read_bytes(), policy=email.policy.default)
        parts = {part.get_filename(): part for part in message.iter_attachments()}
        report = json.loads(parts.pop("privacy.json").get_content())
        assert report["location"] == "none"
        assert [entry["path"] for entry in report["files"]] == list(parts)
        assert all(entry["leaks"] == [] and entry["gps"] is False for entry in report["files"])
        body = message.get_body(("plain",))
        assert body is not None and "privacy.json" in body.get_content()


# --- a broken scrubber never ships ---


def test_a_scrubber_that_leaves_the_gps_ifd_loses_the_photo_not_the_privacy(
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user_id = create_user(session_factory)
    leaky = make_jpeg(tmp_path / "in" / "leaky.jpg", lat=48.8584, lon=2.2945, seed=1)
    fine = tmp_path / "in" / "fine.png"
    Image.new("RGB", (40, 30), (1, 2, 3)).save(fine, "PNG")
    import_files(settings, session_factory, user_id, leaky, fine)
    real = scrub._keep_app
    monkeypatch.setattr(scrub, "_keep_app", lambda marker, payload: real(marker, payload) or marker == 0xE1)
    outcome = export(settings, session_factory, user_id, location="approx")
    problem, post_left_out = outcome.problems
    assert problem.startswith("photo ") and "left out" in post_left_out
    assert "still carries gps (GPS GPSLatitude" in problem and "not shipped" in problem
    (written,) = outcome.bundles
    with zipfile.ZipFile(written.path) as archive:
        names = [n for n in archive.namelist() if n.startswith("photos/")]
        assert [Path(n).suffix for n in names] == [".png"]
        report = json.loads(archive.read("privacy.json"))
    assert [entry["path"] for entry in report["files"]] == names
    # The photo left out is not marked exported: it is tried again next time.
    monkeypatch.setattr(scrub, "_keep_app", real)
    again = export(settings, session_factory, user_id, location="approx")
    assert again.problems == [] and again.bundles[0].posts == 1


def test_bytes_written_unlike_the_checked_plan_fail_the_bundle(
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user_id = create_user(session_factory)
    photos = [make_jpeg(tmp_path / "in" / f"{i}.jpg", lat=10.0 + i, lon=20.0, seed=i) for i in range(2)]
    add_private_metadata(*photos)
    import_files(settings, session_factory, user_id, *photos)
    real = scrub.write_scrub_plan

    def write_the_original(plan: scrub.ScrubPlan, src: Path, sink: Any) -> int:
        if isinstance(sink, leaks.MetadataTap):  # the worker's check sees the right plan...
            return real(plan, src, sink)
        sink.write(src.read_bytes()[: plan.size])  # ...the zip gets the original's header, GPS and all
        return plan.size

    monkeypatch.setattr(scrub, "write_scrub_plan", write_the_original)
    with pytest.raises(PrivacyLeak, match="still carries gps"):
        export(settings, session_factory, user_id, location="none")
    assert list(settings.exports_dir.iterdir()) == []
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Export)) == 0


def test_index_html_shows_the_privacy_section_escaped(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    user_id = create_user(session_factory)
    photo = make_jpeg(tmp_path / "in" / "evil.jpg", make="<b>Evil&Cam</b>", model='"x"', lat=1.0, lon=2.0)
    import_files(settings, session_factory, user_id, photo)
    outcome = export(settings, session_factory, user_id, location="none")
    manifest, report, index = read_bundle(outcome.bundles[0].path, tmp_path / "unzipped")
    (entry,) = report["files"]
    assert entry["camera"] == '<b>Evil&Cam</b> "x"'  # plain text in JSON
    assert '<section class="privacy" id="privacy" aria-label="Privacy">' in index
    assert "&lt;b&gt;Evil&amp;Cam&lt;/b&gt; &#34;x&#34;" in index and "<b>Evil" not in index
    assert "Location: <strong>none</strong> (no position at all" in index
    assert "gps" in entry["removed"]


def test_batches_still_fit_with_the_report(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    user_id = create_user(session_factory)
    photos = [
        make_jpeg(tmp_path / "in" / f"{i}.jpg", (160, 120), seed=i, lat=5.0 + i, lon=6.0) for i in range(12)
    ]
    import_files(settings, session_factory, user_id, *photos)
    sizes = [p.stat().st_size for p in photos]
    limit = 3 * max(sizes) + zipbundle.estimate_fixed_bytes(title="Journal", with_map=True)
    outcome = export(settings, session_factory, user_id, max_batch_bytes=limit)
    assert len(outcome.bundles) > 1
    assert all(written.bytes <= limit for written in outcome.bundles)
    for written in outcome.bundles:
        with zipfile.ZipFile(written.path) as archive:
            report = json.loads(archive.read("privacy.json"))
            entries = [n for n in archive.namelist() if n.startswith(("photos/", "thumbs/"))]
        assert sorted(entry["path"] for entry in report["files"]) == sorted(entries)


def test_exif_keep_fields_are_the_whitelist() -> None:
    """Every field scrub.build_exif can write passes the check: the two lists stay in step."""
    keep = ExifKeep(
        orientation=6,
        taken_at="2024-05-01T10:00:00",
        utc_offset="+02:00",
        make="M",
        model="N",
        position=(1.0, 2.0),
        alt=3.0,
    )
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG", exif=scrub.build_exif(keep))
    found = leaks.inspect_bytes([out.getvalue()])
    assert leaks.check(found, leaks.FileRule(gps_allowed=True)) == []
    assert found.carries == {leaks.GPS, leaks.CAMERA, leaks.TIME, leaks.ORIENTATION}
    assert emailbundle.PRIVACY_NOTE.startswith("The attached privacy.json")


def test_a_huge_png_is_read_without_decoding_it() -> None:
    """Only the chunks are read: a PNG declaring 40000 x 40000 pixels is checked, not refused as a bomb."""
    small = _png_with_late_text()
    ihdr = struct.pack(">II", 40_000, 40_000) + small[24:29]
    data = small[:8] + png_chunk(b"IHDR", ihdr) + small[33:]
    found = leaks.inspect_bytes([data])
    assert leaks.UNREADABLE not in found.carries and leaks.TEXT in found.carries
