"""JPEG files scrubbed of every identifying tag without re-encoding, and re-encoded ones written clean."""

from __future__ import annotations

import io
import json
import random
import shutil
import struct
import subprocess
from pathlib import Path

import exifread
import pytest
from PIL import ExifTags, Image, ImageCms
from PIL.JpegImagePlugin import JpegImageFile

from journal.errors import InvalidInput, UnreadableFile, UnsupportedFile
from journal.publish.scrub import (
    ExifKeep,
    build_exif,
    plan_scrub,
    save_clean_jpeg,
    scrub_jpeg,
    scrub_jpeg_file,
    scrubbed_size_bound,
    write_scrub_plan,
)
from tests.machine import needs_tool

EXIF_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "exif"
EXIFTOOL = shutil.which("exiftool")
#: Strings planted in the dirty test file; none may survive scrubbing, in any segment.
SECRETS = (b"SERIAL-9876", b"LENS-5555", b"Jane Owner", b"Jane Artist", b"MAKERNOTE", b"48.8584", b"SECRET")
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_bad_exif_fields_are_refused() -> None:
    with pytest.raises(InvalidInput):
        ExifKeep(orientation=9)
    for offset in ("0200", "+02:00\n", "+24:00"):
        with pytest.raises(InvalidInput):
            ExifKeep(utc_offset=offset)
    with pytest.raises(InvalidInput):
        ExifKeep(alt=3.0)


# --- building a JPEG full of metadata ---


def _ifd(entries: list[tuple[int, int, int, bytes]], start: int, next_ifd: int) -> bytes:
    """One little-endian TIFF IFD at offset start; values over 4 bytes follow the entry table."""
    entries = sorted(entries)
    data_at = start + 2 + 12 * len(entries) + 4
    table, blob = struct.pack("<H", len(entries)), b""
    for tag, kind, count, value in entries:
        if len(value) <= 4:
            table += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")
        else:
            table += struct.pack("<HHII", tag, kind, count, data_at + len(blob))
            blob += value + b"\0" * (len(value) % 2)
    return table + struct.pack("<I", next_ifd) + blob


def _ascii(tag: int, text: str) -> tuple[int, int, int, bytes]:
    raw = text.encode() + b"\0"
    return (tag, 2, len(raw), raw)


def _short(tag: int, value: int) -> tuple[int, int, int, bytes]:
    return (tag, 3, 1, struct.pack("<H", value))


def _long(tag: int, value: int) -> tuple[int, int, int, bytes]:
    return (tag, 4, 1, struct.pack("<I", value))


def _rationals(tag: int, values: list[tuple[int, int]]) -> tuple[int, int, int, bytes]:
    return (tag, 5, len(values), b"".join(struct.pack("<II", n, d) for n, d in values))


def dirty_exif(thumbnail: bytes) -> bytes:
    """EXIF with GPS, serials, owner names, a maker note and an IFD1 thumbnail (built by hand: Pillow
    does not write IFD1)."""
    exif_ifd = [
        _ascii(0x9003, "2024:05:01 10:00:00"),
        _ascii(0x9011, "+02:00"),
        _ascii(0xA431, "SERIAL-9876"),
        _ascii(0xA435, "LENS-5555"),
        _ascii(0xA430, "Jane Owner"),
        (0x927C, 7, 24, b"MAKERNOTE serial SECRET!"),
    ]
    gps_ifd = [
        (0x0000, 1, 4, b"\x02\x02\x00\x00"),
        _ascii(0x0001, "N"),
        _rationals(0x0002, [(48, 1), (51, 1), (3024, 100)]),
        _ascii(0x0003, "E"),
        _rationals(0x0004, [(2, 1), (17, 1), (4000, 100)]),
    ]

    def ifd0(exif_at: int, gps_at: int, ifd1_at: int) -> bytes:
        entries = [
            _ascii(0x010F, "TestCam"),
            _ascii(0x0110, "T-1"),
            _short(0x0112, 6),
            _ascii(0x013B, "Jane Artist"),
            _ascii(0x8298, "(c) Jane Owner"),
            _long(0x8769, exif_at),
            _long(0x8825, gps_at),
        ]
        return _ifd(entries, 8, ifd1_at)

    def ifd1(start: int, thumb_at: int) -> bytes:
        entries = [_short(0x0103, 6), _long(0x0201, thumb_at), _long(0x0202, len(thumbnail))]
        return _ifd(entries, start, 0)

    size0 = len(ifd0(0, 0, 0))
    exif_at = 8 + size0
    exif_blob = _ifd(exif_ifd, exif_at, 0)
    gps_at = exif_at + len(exif_blob)
    gps_blob = _ifd(gps_ifd, gps_at, 0)
    ifd1_at = gps_at + len(gps_blob)
    thumb_at = ifd1_at + len(ifd1(ifd1_at, 0))
    tiff = b"II*\0" + struct.pack("<I", 8) + ifd0(exif_at, gps_at, ifd1_at)
    tiff += exif_blob + gps_blob + ifd1(ifd1_at, thumb_at) + thumbnail
    return b"Exif\0\0" + tiff


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _noise(size: tuple[int, int], seed: int) -> Image.Image:
    rng = random.Random(seed)
    return Image.frombytes("RGB", size, bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3)))


def dirty_jpeg(*, mpo: bool = True) -> bytes:
    """A JPEG/MPO with every kind of metadata the scrubber must drop, an ICC profile and a trailer."""
    thumb = io.BytesIO()
    Image.new("RGB", (16, 12), (200, 10, 10)).save(thumb, "JPEG")
    base = io.BytesIO()
    first, second = _noise((64, 48), 1), _noise((64, 48), 2)
    if mpo:
        first.save(base, "MPO", save_all=True, append_images=[second], icc_profile=SRGB, quality=90)
    else:
        first.save(base, "JPEG", icc_profile=SRGB, quality=90)
    data = base.getvalue()
    assert data[:4] == b"\xff\xd8\xff\xe0"  # Pillow's JFIF APP0 comes first: replace it
    jfif_len = struct.unpack(">H", data[4:6])[0]
    rest = data[4 + jfif_len :]
    jfif_with_thumb = b"JFIF\0\x01\x02\x00\x00\x01\x00\x01\x02\x01" + b"SECRET"
    xmp = b'http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><rdf:Description exif:GPSLatitude="48.8584"/>'
    xmp += b"</x:xmpmeta>"
    iptc = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0e\x1c\x02\x50\x00\x0aJane Owner"
    segments = (
        _segment(0xE0, jfif_with_thumb)
        + _segment(0xE1, dirty_exif(thumb.getvalue()))
        + _segment(0xE1, xmp)
        + _segment(0xED, iptc)
        + _segment(0xFE, b"Owner: Jane Owner")
        + _segment(0xEB, b"JP\0\0SECRET HDR gain map")
    )
    return b"\xff\xd8" + segments + rest + b"SEFH Samsung trailer SECRET 48.8584"


def _segments(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """Header segments (marker, payload) and the offset of the first SOS marker."""
    assert data[:2] == b"\xff\xd8"
    pos, found = 2, list[tuple[int, bytes]]()
    while True:
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker == 0xDA:
            return found, pos
        found.append((marker, data[pos + 4 : pos + 2 + length]))
        pos += 2 + length


KEEP = ExifKeep(
    orientation=6, taken_at="2024-05-01T10:00:00", utc_offset="+02:00", make="TestCam", model="T-1"
)


@pytest.fixture(scope="module")
def dirty() -> bytes:
    return dirty_jpeg()


@pytest.fixture(scope="module")
def scrubbed(dirty: bytes) -> bytes:
    out = io.BytesIO()
    written = scrub_jpeg(dirty, out, keep=KEEP)
    assert written == len(out.getvalue())
    return out.getvalue()


# --- scrubbing checks ---


def test_dirty_file_really_is_dirty(dirty: bytes) -> None:
    tags = exifread.process_file(io.BytesIO(dirty), details=True)
    assert "GPS GPSLatitude" in tags and "EXIF BodySerialNumber" in tags and "JPEGThumbnail" in tags
    with Image.open(io.BytesIO(dirty)) as image:
        assert image.format == "MPO" and getattr(image, "n_frames", 1) == 2


def test_no_secret_bytes_survive(scrubbed: bytes) -> None:
    for secret in SECRETS:
        assert secret not in scrubbed, secret
    assert b"http://ns.adobe.com/xap" not in scrubbed
    assert b"Photoshop 3.0" not in scrubbed
    assert b"MPF\0" not in scrubbed


def test_exifread_sees_only_the_kept_fields(scrubbed: bytes) -> None:
    tags = exifread.process_file(io.BytesIO(scrubbed), details=True)
    assert not [key for key in tags if key.startswith("GPS")]
    assert not [key for key in tags if "Thumbnail" in key or "MakerNote" in key or "Serial" in key]
    assert "Image Artist" not in tags and "Image Copyright" not in tags and "EXIF CameraOwnerName" not in tags
    assert str(tags["Image Make"]) == "TestCam" and str(tags["Image Model"]) == "T-1"
    assert str(tags["EXIF DateTimeOriginal"]) == "2024:05:01 10:00:00"
    assert str(tags["EXIF OffsetTimeOriginal"]) == "+02:00"
    assert tags["Image Orientation"].values == [6]


def test_pillow_sees_no_metadata_but_icc(scrubbed: bytes, dirty: bytes) -> None:
    with Image.open(io.BytesIO(scrubbed)) as image:
        assert image.format == "JPEG" and getattr(image, "n_frames", 1) == 1
        assert image.info.get("icc_profile") == SRGB
        assert "xmp" not in image.info and "comment" not in image.info and "mp" not in image.info
        exif = image.getexif()
        assert set(exif) <= {ExifTags.Base.Make, ExifTags.Base.Model, ExifTags.Base.Orientation, 0x8769}
        assert exif.get_ifd(ExifTags.IFD.GPSInfo) == {}
        assert exif.get_ifd(ExifTags.IFD.IFD1) == {}
        assert set(exif.get_ifd(ExifTags.IFD.Exif)) == {0x9000, 0x9003, 0x9011}
        assert isinstance(image, JpegImageFile)
        applist = [name for name, _ in image.applist]
        assert applist == ["APP0", "APP1", "APP2"]
        scrubbed_pixels = image.tobytes()
    with Image.open(io.BytesIO(dirty)) as original:
        assert original.tobytes() == scrubbed_pixels


def test_entropy_data_is_copied_byte_for_byte(scrubbed: bytes, dirty: bytes) -> None:
    _, sos_in = _segments(dirty)
    _, sos_out = _segments(scrubbed)
    tail = scrubbed[sos_out:]
    assert dirty[sos_in : sos_in + len(tail)] == tail
    assert tail.endswith(b"\xff\xd9")


def test_jfif_thumbnail_is_zeroed(scrubbed: bytes) -> None:
    segments, _ = _segments(scrubbed)
    jfif = segments[0]
    assert jfif[0] == 0xE0 and len(jfif[1]) == 14 and jfif[1][12:14] == b"\0\0"


def test_orientation_comes_from_the_source_unless_given(dirty: bytes) -> None:
    for keep, expected in ((ExifKeep(), 6), (ExifKeep(orientation=3), 3)):
        out = io.BytesIO()
        scrub_jpeg(dirty, out, keep=keep)
        with Image.open(out) as image:
            assert image.getexif()[ExifTags.Base.Orientation] == expected
    big_endian = io.BytesIO()
    Image.new("RGB", (8, 8)).save(big_endian, "JPEG", exif=build_exif(ExifKeep(orientation=8)))  # "MM" order
    out = io.BytesIO()
    scrub_jpeg(big_endian.getvalue(), out, keep=ExifKeep())
    with Image.open(out) as image:
        assert image.getexif()[ExifTags.Base.Orientation] == 8


def test_position_is_written_only_when_given(dirty: bytes) -> None:
    out = io.BytesIO()
    scrub_jpeg(dirty, out, keep=ExifKeep(position=(-33.8568, 151.2153), alt=-12.5))
    with Image.open(out) as image:
        gps = image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    lat = float(sum(float(v) / 60**i for i, v in enumerate(gps[ExifTags.GPS.GPSLatitude])))
    lon = float(sum(float(v) / 60**i for i, v in enumerate(gps[ExifTags.GPS.GPSLongitude])))
    assert gps[ExifTags.GPS.GPSLatitudeRef] == "S" and gps[ExifTags.GPS.GPSLongitudeRef] == "E"
    assert abs(lat - 33.8568) < 1e-6 and abs(lon - 151.2153) < 1e-6
    assert gps[ExifTags.GPS.GPSAltitudeRef] == b"\x01" and float(gps[ExifTags.GPS.GPSAltitude]) == 12.5


@needs_tool("exiftool")
def test_exiftool_lists_nothing_identifying(tmp_path: Path, scrubbed: bytes) -> None:
    path = tmp_path / "scrubbed.jpg"
    path.write_bytes(scrubbed)
    tags = _exiftool(path)
    forbidden = ("GPS", "Serial", "Thumbnail", "MakerNote", "Artist", "OwnerName", "XMP", "IPTC", "Photoshop")
    # The ICC profile's own ProfileCopyright/DeviceModel describe the colour space, not the person.
    named = [key for key in tags if not key.startswith("ICC_Profile:")]
    leaks = [key for key in named if any(word in key for word in forbidden)]
    assert leaks == []
    assert not [key for key in tags if key.startswith(("MPF:", "Comment", "File:Comment"))]
    assert "ExifTool:Warning" not in tags, tags.get("ExifTool:Warning")
    assert tags["EXIF:Make"] == "TestCam"


def _exiftool(path: Path) -> dict[str, object]:
    """Every tag exiftool finds (all groups, duplicates and unknown tags included)."""
    assert EXIFTOOL is not None
    result = subprocess.run([EXIFTOOL, "-j", "-G", "-a", "-u", str(path)], capture_output=True, check=True)
    tags: dict[str, object] = json.loads(result.stdout)[0]
    return tags


def test_plain_jpeg_without_mpo_and_streaming_sources(tmp_path: Path) -> None:
    data = dirty_jpeg(mpo=False)
    source = tmp_path / "in.jpg"
    source.write_bytes(data)
    scrub_jpeg_file(source, tmp_path / "out.jpg", keep=KEEP)
    from_stream = io.BytesIO()
    with source.open("rb") as handle:
        scrub_jpeg(handle, from_stream, keep=KEEP)
    assert from_stream.getvalue() == (tmp_path / "out.jpg").read_bytes()
    assert len(from_stream.getvalue()) <= scrubbed_size_bound(len(data), KEEP)


def test_markers_split_across_chunks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dirty: bytes, scrubbed: bytes
) -> None:
    monkeypatch.setattr("journal.publish.scrub.CHUNK", 7)
    out = io.BytesIO()
    scrub_jpeg(dirty, out, keep=KEEP)
    assert out.getvalue() == scrubbed
    source = tmp_path / "in.jpg"
    source.write_bytes(dirty)
    plan = plan_scrub(source, keep=KEEP)  # spans of 7-byte search windows are merged
    assert sum(isinstance(piece, tuple) for piece in plan.pieces) == 1
    planned = io.BytesIO()
    write_scrub_plan(plan, source, planned)
    assert planned.getvalue() == scrubbed


def test_progressive_jpeg_keeps_its_tables_between_scans() -> None:
    source = io.BytesIO()
    _noise((80, 60), 3).save(source, "JPEG", progressive=True, comment=b"SECRET comment")
    out = io.BytesIO()
    scrub_jpeg(source.getvalue(), out, keep=ExifKeep())
    assert b"SECRET" not in out.getvalue()
    with Image.open(io.BytesIO(source.getvalue())) as a, Image.open(out) as b:
        assert a.tobytes() == b.tobytes()


def test_truncated_jpeg_is_closed(caplog: pytest.LogCaptureFixture) -> None:
    source = io.BytesIO()
    _noise((32, 32), 4).save(source, "JPEG")
    out = io.BytesIO()
    scrub_jpeg(source.getvalue()[:-40], out, keep=ExifKeep())
    assert out.getvalue().endswith(b"\xff\xd9")
    assert "without EOI" in caplog.text


def test_files_are_mapped_and_give_the_same_bytes_as_streams(tmp_path: Path, dirty: bytes) -> None:
    """A file is read through mmap (its scan data goes out as read-only views), byte-identical."""

    class Pieces:
        def __init__(self) -> None:
            self.pieces: list[bytes | memoryview] = []

        def write(self, data: bytes | memoryview) -> int:
            self.pieces.append(data)
            return len(data)

    source = tmp_path / "in.jpg"
    source.write_bytes(dirty)
    mapped = Pieces()
    written = scrub_jpeg(source, mapped, keep=KEEP)
    streamed = io.BytesIO()
    scrub_jpeg(io.BytesIO(dirty), streamed, keep=KEEP)
    assert b"".join(bytes(p) for p in mapped.pieces) == streamed.getvalue()
    assert written == len(streamed.getvalue())
    views = [p for p in mapped.pieces if isinstance(p, memoryview)]
    assert views and all(view.readonly for view in views)


def test_truncated_and_empty_files_read_from_disk(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = io.BytesIO()
    _noise((256, 256), 4).save(source, "JPEG")
    cut = source.getvalue()[:-40]
    cut = cut[: cut.rindex(b"\xff") + 1]  # ends on a lone FF: held back, then dropped
    path = tmp_path / "cut.jpg"
    path.write_bytes(cut)
    out = io.BytesIO()
    scrub_jpeg(path, out, keep=ExifKeep())
    streamed = io.BytesIO()
    scrub_jpeg(cut, streamed, keep=ExifKeep())
    assert out.getvalue() == streamed.getvalue()
    assert out.getvalue().endswith(b"\xff\xd9") and not out.getvalue().endswith(b"\xff\xff\xd9")
    assert "without EOI" in caplog.text
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")  # cannot be mapped: read as a stream, refused as usual
    with pytest.raises(UnsupportedFile):
        scrub_jpeg(empty, io.BytesIO(), keep=ExifKeep())


def test_a_plan_holds_only_the_new_bytes_and_notices_a_changed_file(tmp_path: Path, dirty: bytes) -> None:
    source = tmp_path / "in.jpg"
    source.write_bytes(dirty)
    plan = plan_scrub(source, keep=KEEP)
    spans = [piece for piece in plan.pieces if isinstance(piece, tuple)]
    # The scan data is one span up to the first EOI, not copied into the plan.
    assert len(spans) == 1 and dirty[spans[0][1] : spans[0][1] + 2] == b"\xff\xd9"
    assert plan.new_bytes < 4096 and plan.source_size == len(dirty)
    out = io.BytesIO()
    write_scrub_plan(plan, source, out)
    direct = io.BytesIO()
    scrub_jpeg(dirty, direct, keep=KEEP)
    assert out.getvalue() == direct.getvalue()
    source.write_bytes(dirty[:-100])
    with pytest.raises(UnreadableFile, match="changed"):
        write_scrub_plan(plan, source, io.BytesIO())


def test_not_a_jpeg_is_refused() -> None:
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, "PNG")
    with pytest.raises(UnsupportedFile):
        scrub_jpeg(png.getvalue(), io.BytesIO(), keep=ExifKeep())
    with pytest.raises(UnsupportedFile):
        scrub_jpeg(b"", io.BytesIO(), keep=ExifKeep())


SAMPLE_JPEGS = sorted(p for p in EXIF_SAMPLES.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".mpo"))


@pytest.mark.parametrize("sample", SAMPLE_JPEGS, ids=[p.name for p in SAMPLE_JPEGS])
def test_real_camera_files(sample: Path) -> None:
    out = io.BytesIO()
    scrub_jpeg(sample, out, keep=ExifKeep(orientation=1))
    streamed = io.BytesIO()
    with sample.open("rb") as handle:  # not mapped: the chunked reader must agree byte for byte
        scrub_jpeg(handle, streamed, keep=ExifKeep(orientation=1))
    assert streamed.getvalue() == out.getvalue()
    plan = plan_scrub(sample, keep=ExifKeep(orientation=1))  # parsed once, copied later from the map
    planned = io.BytesIO()
    assert write_scrub_plan(plan, sample, planned) == plan.size == len(out.getvalue())
    assert planned.getvalue() == out.getvalue()
    tags = exifread.process_file(io.BytesIO(out.getvalue()), details=True)
    leaks = [k for k in tags if k.startswith("GPS") or "MakerNote" in k or "Serial" in k or "Thumbnail" in k]
    assert leaks == []
    with Image.open(sample) as original:
        try:
            original.load()
        except OSError:
            # A damaged original: pixels cannot be compared, but the scan data must be copied as is.
            data = sample.read_bytes()
            scan = data[data.index(b"\xff\xda") :]
            assert scan.rstrip(b"\xff\xd9")[:65536] in out.getvalue()
            return
        with Image.open(io.BytesIO(out.getvalue())) as clean:
            assert clean.tobytes() == original.tobytes()
            assert clean.info.get("icc_profile") == original.info.get("icc_profile")


# --- re-encoded images ---


def test_save_clean_jpeg_drops_inherited_metadata(tmp_path: Path, dirty: bytes) -> None:
    with Image.open(io.BytesIO(dirty)) as image:
        image.load()
        image.info["comment"] = b"SECRET comment"
        dest = tmp_path / "clean.jpg"
        save_clean_jpeg(image, dest, keep=KEEP)
    data = dest.read_bytes()
    for secret in SECRETS:
        assert secret not in data
    with Image.open(dest) as clean:
        assert clean.getexif()[ExifTags.Base.Orientation] == 1  # pixels are upright now
        assert clean.info.get("icc_profile") == SRGB
        assert "comment" not in clean.info and "xmp" not in clean.info


def test_save_clean_jpeg_fits_a_byte_limit() -> None:
    image = _noise((600, 400), 5)
    out = io.BytesIO()
    written = save_clean_jpeg(image, out, keep=ExifKeep(), max_bytes=60_000)
    assert written == len(out.getvalue()) <= 60_000
    with Image.open(out) as clean:
        assert clean.size == (600, 400)
    tiny = io.BytesIO()
    save_clean_jpeg(image, tiny, keep=ExifKeep(), max_bytes=15_000)
    assert len(tiny.getvalue()) <= 15_000
    with Image.open(tiny) as clean:
        assert clean.width < 600  # quality alone was not enough: scaled down


def test_save_clean_jpeg_flattens_alpha() -> None:
    image = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    out = io.BytesIO()
    save_clean_jpeg(image, out, keep=ExifKeep())
    with Image.open(out) as clean:
        assert clean.mode == "RGB" and clean.getpixel((4, 4)) == (255, 255, 255)


def test_minimal_exif_is_small() -> None:
    assert len(build_exif(ExifKeep())) < 40
    assert len(build_exif(ExifKeep(position=(1.0, 2.0), alt=3.0, make="A", model="B", orientation=1))) < 400
