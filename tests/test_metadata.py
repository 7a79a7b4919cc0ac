"""journal.media.metadata: every sample image against ExifTool's reading, plus small images made here."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import textwrap
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import exifread
import pytest
from PIL import AvifImagePlugin, Image, ImageFile, TiffImagePlugin, WebPImagePlugin

from journal.errors import ImageTooLarge, UnreadableFile
from journal.media import heif, metadata
from journal.media.inspectjson import INSPECT_KEYS, inspect_file, inspect_json
from journal.media.metadata import PhotoMetadata, read_metadata

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "exif"
ORACLE: list[dict[str, Any]] = (
    json.loads((SAMPLES / "oracle.json").read_text(encoding="utf-8"))
    if (SAMPLES / "oracle.json").exists()
    else []
)


# --- the sample images against the ExifTool oracle (rules: samples/exif/README.md) -----------------


def test_samples_are_beside_the_repository() -> None:
    assert ORACLE, f"{SAMPLES / 'oracle.json'} missing: is ../shared beside the repository?"


def _same_number(got: object, want: object, tolerance: float) -> bool:
    if got is None or want is None:
        return got is None and want is None
    assert isinstance(got, int | float) and isinstance(want, int | float)
    return math.isclose(got, want, abs_tol=tolerance, rel_tol=1e-9)


def _clean(value: object) -> str | None:
    return None if value is None else (str(value).replace("\x00", "").strip() or None)


def _exact(a: object, b: object) -> bool:
    return a == b


def _oracle_misses(entry: dict[str, Any], got: dict[str, object]) -> dict[str, tuple[object, object]]:
    """Fields where `got` disagrees with the oracle entry: {field: (got, wanted)}."""
    lenient: dict[str, Any] = entry.get("lenient") or {}
    misses: dict[str, tuple[object, object]] = {}

    def check(field: str, value: object, want: object, same: Callable[[object, object], bool]) -> None:
        if not same(value, want) and not any(same(value, alt) for alt in lenient.get(field, [])):
            misses[field] = (value, want)

    if got["format"] not in entry["format_accept"]:
        misses["format"] = (got["format"], entry["format_accept"])
    size = [got["width"], got["height"]]
    if size != [entry["width"], entry["height"]] and size not in lenient.get("size", []):
        misses["size"] = (size, [entry["width"], entry["height"]])
    check("orientation", got["orientation"], entry["orientation"], _exact)
    for field in ("make", "model"):
        check(field, _clean(got[field]), _clean(entry[field]), lambda a, b: a == _clean(b))
    taken_at = got["taken_at"]
    as_exif = taken_at[:19].replace("-", ":", 2).replace("T", " ") if isinstance(taken_at, str) else None
    check("datetime_original", as_exif, entry["datetime_original"], _exact)
    if got["utc_offset"] != entry["offset_time_original"]:
        misses["utc_offset"] = (got["utc_offset"], entry["offset_time_original"])
    if entry["datetime_original"] and entry["offset_time_original"]:
        local = datetime.strptime(entry["datetime_original"], "%Y:%m:%d %H:%M:%S")
        offset = datetime.strptime(entry["offset_time_original"].replace(":", ""), "%z").utcoffset()
        assert offset is not None
        want = (local - offset).strftime("%Y-%m-%dT%H:%M:%S") + "Z"
        utc = got["taken_at_utc"]
        if not (isinstance(utc, str) and utc.endswith("Z") and utc[:19] + "Z" == want):
            misses["taken_at_utc"] = (utc, want)
    check("gps_lat", got["lat"], entry["gps_lat"], lambda a, b: _same_number(a, b, 1e-6))
    check("gps_lon", got["lon"], entry["gps_lon"], lambda a, b: _same_number(a, b, 1e-6))
    check("gps_alt", got["alt"], entry["gps_alt"], lambda a, b: _same_number(a, b, 0.01))
    check("has_gps", got["lat"] is not None and got["lon"] is not None, entry["has_gps"], _exact)
    return misses


@pytest.mark.parametrize("entry", ORACLE, ids=[e["file"] for e in ORACLE])
def test_sample_agrees_with_exiftool(entry: dict[str, Any]) -> None:
    path = str(SAMPLES / entry["file"])
    got = inspect_file(path)
    assert got["file"] == path
    # The samples the oracle marks broken too (a looping IFD chain, a truncated HEIC, a box that
    # crashes other readers, an odd JPEG): what ExifTool reads from them, we read; none is an error.
    assert got["error"] is None
    assert _oracle_misses(entry, got) == {}


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records every attempt to decode pixels (which reading metadata must never do)."""
    import pillow_heif.as_plugin

    attempts: list[str] = []

    def refuse(self: ImageFile.ImageFile, *args: object, **kwargs: object) -> None:
        attempts.append(str(self.format))
        raise AssertionError("pixels decoded")

    for cls in (
        ImageFile.ImageFile,
        WebPImagePlugin.WebPImageFile,
        TiffImagePlugin.TiffImageFile,
        AvifImagePlugin.AvifImageFile,
        pillow_heif.as_plugin.HeifImageFile,
    ):
        monkeypatch.setattr(cls, "load", refuse)
    yield attempts


def test_samples_are_read_without_decoding_pixels(decoded: list[str]) -> None:
    for entry in ORACLE:
        inspect_file(str(SAMPLES / entry["file"]))
    assert decoded == []


def test_heic_orientation_and_size_come_from_the_file_not_from_pillow_heif() -> None:
    # pillow-heif applies irot (270 here) and rewrites EXIF Orientation to 1; the file says 6 and 4032x3024.
    meta = read_metadata(SAMPLES / "photoprism__iphone_15_pro.heic")
    assert (meta.format, meta.width, meta.height, meta.orientation) == ("HEIF", 4032, 3024, 6)


def test_xmp_only_position() -> None:
    meta = read_metadata(SAMPLES / "strelka__test.jpg")
    assert meta.location_source == "xmp"
    assert (meta.lat, meta.lon) == pytest.approx((-22.911366, -43.205916), abs=1e-6)


def test_exif_position_and_altitude_below_sea_level() -> None:
    meta = read_metadata(SAMPLES / "exiv2__FurnaceCreekInn.jpg")
    assert meta.location_source == "exif"
    assert meta.alt == pytest.approx(-14.28)


# --- images made by the tests ----------------------------------------------------------------------


def _exif(
    *,
    make: str | None = None,
    model: str | None = None,
    lens: str | None = None,
    orientation: int | None = None,
    taken_at: str | None = None,
    subsec: str | None = None,
    offset: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    alt: float | None = None,
    gps_date: str | None = None,
    gps_clock: tuple[float, float, float] | None = None,
) -> Image.Exif:
    """An EXIF block written by Pillow with just the given tags (GPS as EXIF writes it: DMS + ref)."""
    exif = Image.Exif()
    for tag, value in ((0x010F, make), (0x0110, model), (0x0112, orientation)):
        if value is not None:
            exif[tag] = value
    sub = exif.get_ifd(0x8769)
    for tag, value in ((0x9003, taken_at), (0x9291, subsec), (0x9011, offset), (0xA434, lens)):
        if value is not None:
            sub[tag] = value
    gps = exif.get_ifd(0x8825)
    if lat is not None and lon is not None:
        gps[1], gps[2] = ("N" if lat >= 0 else "S"), _dms(abs(lat))
        gps[3], gps[4] = ("E" if lon >= 0 else "W"), _dms(abs(lon))
    if alt is not None:
        gps[5], gps[6] = (1 if alt < 0 else 0), abs(alt)
    if gps_date is not None:
        gps[0x1D] = gps_date
    if gps_clock is not None:
        gps[7] = gps_clock
    return exif


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return float(degrees), float(minutes), round((value - degrees - minutes / 60) * 3600, 4)


def _jpeg(
    path: Path, exif: Image.Exif | None = None, size: tuple[int, int] = (32, 24), *, noisy: bool = False
) -> Path:
    """A small JPEG with that EXIF; noisy ones compress like photos (most bytes are pixel data)."""
    image = Image.effect_noise(size, 60).convert("RGB") if noisy else Image.new("RGB", size, "teal")
    image.save(path, "JPEG", exif=exif if exif is not None else Image.Exif())
    return path


def test_inspect_json_has_exactly_the_contract_keys(tmp_path: Path) -> None:
    photo = _jpeg(tmp_path / "p.jpg", _exif(make="Canon", taken_at="2024:05:01 12:34:56", offset="+02:00"))
    got = inspect_file(str(photo))
    assert tuple(got) == INSPECT_KEYS
    assert got == {
        "file": str(photo),
        "format": "JPEG",
        "width": 32,
        "height": 24,
        "orientation": None,
        "make": "Canon",
        "model": None,
        "taken_at": "2024-05-01T12:34:56",
        "utc_offset": "+02:00",
        "taken_at_utc": "2024-05-01T10:34:56Z",
        "lat": None,
        "lon": None,
        "alt": None,
        "error": None,
    }
    json.dumps(got)


def test_exif_strings_are_plain_data(tmp_path: Path) -> None:
    html = "<script>alert('x')</script> & <b>"
    photo = _jpeg(
        tmp_path / "p.jpg", _exif(make=f"  {html}\x00\x00", model="Model\x00junk", lens=" 24mm <i>f/2</i> ")
    )
    meta = read_metadata(photo)
    assert meta.make == html
    assert meta.model == "Model"  # EXIF ASCII ends at the first NUL
    assert meta.lens == "24mm <i>f/2</i>"
    assert json.loads(json.dumps(inspect_file(str(photo))))["make"] == html


def test_blank_strings_are_none(tmp_path: Path) -> None:
    meta = read_metadata(_jpeg(tmp_path / "p.jpg", _exif(make="   ", model="\x00\x00")))
    assert (meta.make, meta.model) == (None, None)


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (6, 6), (8, 8), (0, None), (9, None)])
def test_orientation(tmp_path: Path, value: int, expected: int | None) -> None:
    assert read_metadata(_jpeg(tmp_path / "p.jpg", _exif(orientation=value))).orientation == expected


def test_size_is_as_stored(tmp_path: Path) -> None:
    meta = read_metadata(_jpeg(tmp_path / "p.jpg", _exif(orientation=6), size=(40, 10)))
    assert (meta.width, meta.height, meta.orientation) == (40, 10, 6)


# --- capture time -----------------------------------------------------------------------------------


def test_camera_offset(tmp_path: Path) -> None:
    exif = _exif(taken_at="2024:05:01 12:34:56", subsec="5", offset="-04:00")
    meta = read_metadata(_jpeg(tmp_path / "p.jpg", exif))
    assert meta.taken_at == datetime(2024, 5, 1, 12, 34, 56, 500000)
    assert (meta.utc_offset, meta.offset_source, meta.effective_offset_minutes) == ("-04:00", "camera", -240)
    assert meta.taken_at_utc == datetime(2024, 5, 1, 16, 34, 56, 500000, tzinfo=UTC)
    got = inspect_json(meta, "p.jpg")
    assert (got["taken_at"], got["taken_at_utc"]) == (
        "2024-05-01T12:34:56.500000",
        "2024-05-01T16:34:56.500000Z",
    )


def test_recorded_zero_subseconds_are_shown(tmp_path: Path) -> None:
    meta = read_metadata(_jpeg(tmp_path / "p.jpg", _exif(taken_at="2024:05:01 12:34:56", subsec="00")))
    assert meta.has_subseconds
    assert inspect_json(meta, "p.jpg")["taken_at"] == "2024-05-01T12:34:56.000000"


def test_offset_inferred_from_gps_time_rounds_to_a_quarter_hour(tmp_path: Path) -> None:
    # Kathmandu is UTC+05:45; the camera clock is 2 min 36 s off the GPS time.
    exif = _exif(
        taken_at="2024:05:01 12:34:56", lat=27.7, lon=85.3, gps_date="2024:05:01", gps_clock=(6.0, 47.0, 10.0)
    )
    meta = read_metadata(_jpeg(tmp_path / "p.jpg", exif))
    assert meta.gps_time_utc == datetime(2024, 5, 1, 6, 47, 10, tzinfo=UTC)
    assert (meta.offset_source, meta.effective_offset_minutes, meta.utc_offset) == ("gps", 345, None)
    assert meta.taken_at_utc == datetime(2024, 5, 1, 6, 49, 56, tzinfo=UTC)
    got = inspect_json(meta, "p.jpg")
    assert (got["utc_offset"], got["taken_at_utc"]) == (None, "2024-05-01T06:49:56Z")


def test_camera_offset_wins_over_gps_time(tmp_path: Path) -> None:
    exif = _exif(
        taken_at="2024:05:01 12:00:00", offset="+02:00", gps_date="2024:05:01", gps_clock=(9.0, 0.0, 0.0)
    )
    meta = read_metadata(_jpeg(tmp_path / "p.jpg", exif))
    assert (meta.offset_source, meta.effective_offset_minutes) == ("camera", 120)


def test_implausible_gps_time_falls_back_to_the_time_zone(tmp_path: Path) -> None:
    # GPS time a day and a bit off (clock never set): no offset from it; Tokyo's zone gives +09:00.
    exif = _exif(
        taken_at="2024:05:01 12:00:00",
        lat=35.68,
        lon=139.69,
        gps_date="2024:04:30",
        gps_clock=(9.0, 0.0, 0.0),
    )
    meta = read_metadata(_jpeg(tmp_path / "p.jpg", exif))
    assert (meta.offset_source, meta.effective_offset_minutes, meta.timezone) == (
        "timezone",
        540,
        "Asia/Tokyo",
    )
    assert meta.taken_at_utc == datetime(2024, 5, 1, 3, 0, tzinfo=UTC)


def test_time_zone_fallback_knows_daylight_saving(tmp_path: Path) -> None:
    summer = read_metadata(
        _jpeg(tmp_path / "s.jpg", _exif(taken_at="2024:07:04 12:00:00", lat=40.71, lon=-74.0))
    )
    winter = read_metadata(
        _jpeg(tmp_path / "w.jpg", _exif(taken_at="2024:01:04 12:00:00", lat=40.71, lon=-74.0))
    )
    assert (summer.offset_source, summer.effective_offset_minutes) == ("timezone", -240)
    assert (winter.offset_source, winter.effective_offset_minutes) == ("timezone", -300)
    assert inspect_json(summer, "s.jpg")["utc_offset"] is None
    assert inspect_json(summer, "s.jpg")["taken_at_utc"] == "2024-07-04T16:00:00Z"


def test_time_zone_is_looked_up_only_when_asked_or_needed(tmp_path: Path) -> None:
    photo = _jpeg(
        tmp_path / "p.jpg", _exif(taken_at="2024:05:01 12:00:00", offset="+09:00", lat=35.68, lon=139.69)
    )
    assert read_metadata(photo).timezone == "Asia/Tokyo"
    assert read_metadata(photo, lookup_timezone=False).timezone is None


def test_no_time_at_all_is_not_an_error(tmp_path: Path) -> None:
    meta = read_metadata(_jpeg(tmp_path / "p.jpg", _exif(make="Canon", lat=35.68, lon=139.69)))
    assert (meta.taken_at, meta.taken_at_utc, meta.offset_source, meta.effective_offset_minutes) == (
        None,
        None,
        None,
        None,
    )
    got = inspect_file(str(tmp_path / "p.jpg"))
    assert (got["taken_at"], got["taken_at_utc"], got["error"]) == (None, None, None)


def test_no_offset_and_no_position_leaves_utc_unknown(tmp_path: Path) -> None:
    meta = read_metadata(_jpeg(tmp_path / "p.jpg", _exif(taken_at="2024:05:01 12:00:00")))
    assert meta.taken_at == datetime(2024, 5, 1, 12, 0)
    assert (meta.taken_at_utc, meta.offset_source) == (None, None)


@pytest.mark.parametrize(
    "text",
    [
        "0000:00:00 00:00:00",
        "2024:13:45 10:00:00",
        "2024:05:01",
        "    :  :     :  :  ",
        "2024-05-01 10:00:00",
    ],
)
def test_invalid_capture_times_are_none(tmp_path: Path, text: str) -> None:
    assert read_metadata(_jpeg(tmp_path / "p.jpg", _exif(taken_at=text))).taken_at is None


@pytest.mark.parametrize("text", ["+2:00", "02:00", "+25:00", "+05:75", "Z"])
def test_malformed_camera_offsets_are_ignored(tmp_path: Path, text: str) -> None:
    meta = read_metadata(_jpeg(tmp_path / "p.jpg", _exif(taken_at="2024:05:01 12:00:00", offset=text)))
    assert (meta.utc_offset, meta.offset_source) == (None, None)


# --- position -------------------------------------------------------------------------------------


def test_position_and_altitude(tmp_path: Path) -> None:
    meta = read_metadata(_jpeg(tmp_path / "p.jpg", _exif(lat=-33.45347, lon=-70.6693, alt=-3.5)))
    assert (meta.lat, meta.lon) == pytest.approx((-33.45347, -70.6693), abs=1e-6)
    assert meta.alt == pytest.approx(-3.5)
    assert meta.location_source == "exif"


def test_null_island_is_no_position(tmp_path: Path) -> None:
    meta = read_metadata(_jpeg(tmp_path / "p.jpg", _exif(lat=0.0, lon=0.0, alt=0.0)))
    assert (meta.lat, meta.lon, meta.location_source) == (None, None, None)


def test_coordinate_without_its_reference_is_ignored(tmp_path: Path) -> None:
    exif = _exif(lat=10.0, lon=20.0)
    del exif.get_ifd(0x8825)[3]  # GPSLongitudeRef
    meta = read_metadata(_jpeg(tmp_path / "p.jpg", exif))
    assert (meta.lat, meta.lon) == (None, None)


# --- damaged, hostile and non-image files -----------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(UnreadableFile, match="^empty file$"):
        read_metadata(tmp_path / "empty.jpg")
    got = inspect_file(str(tmp_path / "empty.jpg"))
    assert got == dict.fromkeys(INSPECT_KEYS) | {"file": str(tmp_path / "empty.jpg"), "error": "empty file"}


def test_text_file_named_jpg(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("dear diary, today we saw a volcano\n" * 30, encoding="utf-8")
    with pytest.raises(UnreadableFile, match="^not an image"):
        read_metadata(tmp_path / "notes.jpg")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    for path in (tmp_path / "nope.jpg", tmp_path):
        with pytest.raises(UnreadableFile, match="^cannot open file"):
            read_metadata(path)


def test_jpeg_truncated_in_its_header(tmp_path: Path) -> None:
    data = _jpeg(tmp_path / "p.jpg", _exif(make="Canon"), size=(640, 480)).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[:150])
    with pytest.raises(UnreadableFile, match="^truncated file"):
        read_metadata(tmp_path / "cut.jpg")
    assert inspect_file(str(tmp_path / "cut.jpg"))["error"] == "truncated file: the JPEG data ends early"


def test_jpeg_truncated_in_its_pixels_still_has_metadata(tmp_path: Path) -> None:
    data = _jpeg(tmp_path / "p.jpg", _exif(make="Canon"), size=(640, 480), noisy=True).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    meta = read_metadata(tmp_path / "cut.jpg")
    assert (meta.make, meta.width, meta.height) == ("Canon", 640, 480)


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A small PNG whose IHDR (with a correct CRC) claims another size: a decompression bomb header."""
    Image.new("L", (4, 4)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR data follows signature, length and type
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def _jpeg_claiming(path: Path, width: int, height: int) -> Path:
    data = bytearray(_jpeg(path).read_bytes())
    sof = data.index(b"\xff\xc0")  # baseline SOF0: marker, length, precision, height, width
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))
    return path


def test_bomb_png_is_refused_before_decoding(tmp_path: Path, decoded: list[str]) -> None:
    with pytest.raises(ImageTooLarge, match=r"^image too large: 3600000000 pixels > limit 200000000$"):
        read_metadata(_png_claiming(tmp_path / "bomb.png", 60000, 60000))
    assert decoded == []


def test_bomb_jpeg_is_refused_before_decoding(tmp_path: Path, decoded: list[str]) -> None:
    bomb = _jpeg_claiming(tmp_path / "bomb.jpg", 60000, 60000)
    with pytest.raises(ImageTooLarge, match=r"^image too large: 3600000000 pixels > limit 200000000$"):
        read_metadata(bomb)
    assert inspect_file(str(bomb))["error"] == "image too large: 3600000000 pixels > limit 200000000"
    assert decoded == []


def test_pillows_bomb_warning_does_not_override_our_limit(tmp_path: Path, decoded: list[str]) -> None:
    # 100 MP: over Pillow's default warning threshold (89 MP), under our 200 MP limit; the warning would be an
    # error under this test configuration (filterwarnings = error) if it escaped.
    filters_before = list(warnings.filters)
    meta = read_metadata(_png_claiming(tmp_path / "big.png", 10_000, 10_000))
    assert (meta.format, meta.width, meta.height) == ("PNG", 10_000, 10_000)
    assert warnings.filters == filters_before
    assert decoded == []


def test_our_own_pixel_limit(tmp_path: Path, decoded: list[str]) -> None:
    photo = _jpeg(tmp_path / "p.jpg", size=(100, 100))
    with pytest.raises(ImageTooLarge, match=r"^image too large: 10000 pixels > limit 9999$"):
        read_metadata(photo, max_pixels=9999)
    assert read_metadata(photo, max_pixels=10000).width == 100
    assert decoded == []


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, payload: bytes, version: int = 0, flags: int = 0) -> bytes:
    return _box(kind, bytes([version]) + flags.to_bytes(3, "big") + payload)


def _heif(width: int, height: int, exif: bytes | None = None) -> bytes:
    """A HEIF skeleton: ftyp, a meta box with pitm and ispe for item 1, optionally an Exif item in idat."""
    boxes = [_full_box(b"hdlr", b"\0" * 4 + b"pict" + b"\0" * 13), _full_box(b"pitm", struct.pack(">H", 1))]
    if exif is not None:
        infe = _full_box(b"infe", struct.pack(">HH", 2, 0) + b"Exif\0", version=2)
        boxes.append(_full_box(b"iinf", struct.pack(">H", 1) + infe))
        payload = struct.pack(">I", 6) + b"Exif\0\0" + exif
        # iloc v1: offset/length 4 bytes, no base offset; item 2 built from idat (construction method 1).
        iloc = (
            bytes([0x44, 0x00]) + struct.pack(">HHHHH", 1, 2, 1, 0, 1) + struct.pack(">II", 0, len(payload))
        )
        boxes += [_full_box(b"iloc", iloc, version=1), _box(b"idat", payload)]
    ispe = _full_box(b"ispe", struct.pack(">II", width, height))
    ipma = _full_box(b"ipma", struct.pack(">IHB", 1, 1, 1) + bytes([0x81]))
    boxes.append(_box(b"iprp", _box(b"ipco", ispe) + ipma))
    return _box(b"ftyp", b"heic\0\0\0\0mif1heic") + _full_box(b"meta", b"".join(boxes))


def test_bomb_heif_is_refused_from_its_ispe_before_libheif_sees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("Image.open called")

    monkeypatch.setattr(Image, "open", no_open)
    (tmp_path / "bomb.heic").write_bytes(_heif(60000, 60000))
    with pytest.raises(ImageTooLarge, match=r"^image too large: 3600000000 pixels > limit 200000000$"):
        read_metadata(tmp_path / "bomb.heic")


def test_heif_exif_item_in_idat(tmp_path: Path) -> None:
    exif = _exif(make="Heifcam", orientation=8).tobytes()[6:]  # the TIFF block, without "Exif\0\0"
    (tmp_path / "x.heic").write_bytes(_heif(64, 48, exif))
    with (tmp_path / "x.heic").open("rb") as fh:
        items = heif.read_heif_items(fh, tmp_path / "x.heic")
    assert (items.width, items.height) == (64, 48)
    assert items.exif is not None and metadata._tags_from_block(items.exif)["Make"] == "Heifcam"


def _tiff_block_with_loops() -> bytes:
    """IFD0 whose Exif and GPS pointers and next-IFD link all point back at IFD0 itself."""
    entries = [
        struct.pack(">HHI", 0x010F, 2, 4) + b"Cam\0",
        struct.pack(">HHII", 0x8769, 4, 1, 8),
        struct.pack(">HHII", 0x8825, 4, 1, 8),
    ]
    return (
        b"MM\x00*"
        + struct.pack(">I", 8)
        + struct.pack(">H", len(entries))
        + b"".join(entries)
        + struct.pack(">I", 8)
    )


def test_looping_ifds_do_not_hang(tmp_path: Path) -> None:
    photo = tmp_path / "loop.jpg"
    Image.new("RGB", (8, 8)).save(photo, "JPEG", exif=b"Exif\x00\x00" + _tiff_block_with_loops())
    result: list[dict[str, object]] = []
    worker = threading.Thread(target=lambda: result.append(inspect_file(str(photo))), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "reading a looping IFD chain did not finish"
    assert result[0]["error"] is None
    assert result[0]["make"] == "Cam"


def test_exif_claiming_endless_entries_is_cut_short(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # IFD0 is real; the next IFD claims 65,535 entries that are not there (exifread would walk them all).
    entries = struct.pack(">HHI", 0x010F, 2, 4) + b"Cam\0"
    ifd1 = 8 + 2 + 12 + 4
    block = b"MM\x00*" + struct.pack(">IH", 8, 1) + entries + struct.pack(">IH", ifd1, 0xFFFF) + b"\0" * 64
    photo = tmp_path / "greedy.jpg"
    Image.new("RGB", (8, 8)).save(photo, "JPEG", exif=b"Exif\x00\x00" + block)
    with caplog.at_level("DEBUG", logger="journal.media.metadata"):
        meta = read_metadata(photo)
    assert meta.make == "Cam"  # from Pillow's parser, which reads IFD0 only
    assert "_ReadBudgetExceeded" in caplog.text


def test_exifread_failure_falls_back_to_pillow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise AssertionError("exifread gave up")

    monkeypatch.setattr(exifread, "process_file", broken)
    exif = _exif(
        make="Canon", orientation=3, taken_at="2024:05:01 12:00:00", lat=-33.45, lon=-70.66, alt=520.0
    )
    meta = read_metadata(_jpeg(tmp_path / "p.jpg", exif))
    assert (meta.make, meta.orientation, meta.taken_at) == ("Canon", 3, datetime(2024, 5, 1, 12, 0))
    assert (meta.lat, meta.lon, meta.alt) == pytest.approx((-33.45, -70.66, 520.0))


def test_unparseable_exif_leaves_a_readable_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("nope")

    monkeypatch.setattr(exifread, "process_file", broken)
    monkeypatch.setattr(Image.Exif, "load", broken)
    meta = read_metadata(_jpeg(tmp_path / "p.jpg", _exif(make="Canon")))
    assert (meta.format, meta.make) == ("JPEG", None)


def test_inspect_file_never_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(*args: object, **kwargs: object) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(metadata, "_read_container", bug)
    got = inspect_file(str(tmp_path / "p.jpg"))
    assert got["error"] == "internal error: KeyError: 'surprise'"
    assert got["file"] == str(tmp_path / "p.jpg") and got["format"] is None


def test_photo_metadata_is_frozen_and_checks_itself() -> None:
    meta = PhotoMetadata("JPEG", 1, 1)
    with pytest.raises(AttributeError):
        meta.width = 2  # type: ignore[misc]
    for bad in ({"width": 0}, {"orientation": 0}, {"lat": 1.0}, {"lat": 91.0, "lon": 0.0}):
        with pytest.raises(ValueError):
            PhotoMetadata(**({"format": "JPEG", "width": 1, "height": 1} | bad))  # type: ignore[arg-type]


def test_importing_and_inspecting_stays_light() -> None:
    """`journal inspect` must start fast: no web stack, no GeoNames data, no pillow-heif for a JPEG."""
    code = f"""
        import sys
        from journal.media.inspectjson import inspect_file
        assert inspect_file({str(SAMPLES / "exiftool__Google.jpg")!r})["error"] is None
        heavy = ("flask", "sqlalchemy", "reverse_geocode", "scipy", "numpy", "pillow_heif", "tzfpy")
        print(sorted(name for name in heavy if name in sys.modules))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
