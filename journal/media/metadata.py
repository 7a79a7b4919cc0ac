"""Photo metadata from file headers: format, size, orientation, camera, capture time and position.

The only module that knows exifread and Pillow tag names. It never decodes pixels.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import math
import re
import struct
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

import exifread
from PIL import Image, UnidentifiedImageError

from journal import geo
from journal.config import DEFAULT_MAX_PIXELS
from journal.errors import ImageTooLarge, UnreadableFile
from journal.media.heif import MAX_BLOCK, HeifItems, box_size, boxes_overrun, read_heif_items, tiff_block
from journal.media.signatures import still_format

logger = logging.getLogger(__name__)

# exifread logs damaged tags at WARNING without naming the file, which `journal inspect` would print for
# every odd photo; we log our own debug line per file instead. Left alone if someone configured it.
if logging.getLogger("exifread").level == logging.NOTSET:
    logging.getLogger("exifread").setLevel(logging.ERROR)

OffsetSource = Literal["camera", "gps", "timezone"]
LocationSource = Literal["exif", "xmp"]

#: A tag value after normalisation: text, or numbers (rationals as floats, NaN for a zero denominator).
_Value = str | tuple[float, ...]
_Tags = dict[str, _Value]

_HEAD_BYTES = 64
#: Bounds on walking PNG chunks, so a crafted file cannot keep us busy.
_MAX_CHUNKS = 100_000


@dataclass(frozen=True)
class PhotoMetadata:
    """What the headers of one image say; a field that cannot be read is None."""

    format: str
    width: int
    height: int
    orientation: int | None = None
    make: str | None = None
    model: str | None = None
    lens: str | None = None
    #: Local wall-clock capture time (EXIF DateTimeOriginal + SubSecTimeOriginal), naive.
    taken_at: datetime | None = None
    #: True when SubSecTimeOriginal was recorded (then taken_at's microseconds are meaningful, even 0).
    has_subseconds: bool = False
    #: The offset the camera recorded (EXIF OffsetTimeOriginal), "+HH:MM"; never an inferred one.
    utc_offset: str | None = None
    #: The offset actually used for taken_at_utc, in minutes east of UTC, and where it came from.
    effective_offset_minutes: int | None = None
    offset_source: OffsetSource | None = None
    taken_at_utc: datetime | None = None
    lat: float | None = None
    lon: float | None = None
    alt: float | None = None
    gps_time_utc: datetime | None = None
    timezone: str | None = None
    location_source: LocationSource | None = None

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"not an image size: {self.width}x{self.height}")
        if self.orientation is not None and not 1 <= self.orientation <= 8:
            raise ValueError(f"EXIF orientation must be 1-8, not {self.orientation}")
        if (self.lat is None) != (self.lon is None):
            raise ValueError("latitude and longitude come together")
        if self.lat is not None and self.lon is not None and not geo.is_valid_position(self.lat, self.lon):
            raise ValueError(f"not a position: {self.lat}, {self.lon}")


def read_metadata(
    path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, lookup_timezone: bool = True
) -> PhotoMetadata:
    """Read an image's metadata from its headers; raises UnreadableFile / ImageTooLarge.

    With lookup_timezone=False the time zone is looked up only when the capture time needs it
    (it costs ~0.1 s once per process, which `journal inspect` avoids).
    """
    box = _read_container(path, max_pixels)
    tags = box.tags
    lat, lon, location_source = _position(tags, box.xmp)
    taken_at, has_subseconds = _taken_at(tags)
    camera_offset = _camera_offset(tags)
    gps_time = _gps_time(tags)
    has_position = lat is not None and lon is not None
    tz = _timezone_at(lat, lon) if lookup_timezone and has_position else None
    offset, source = _offset_from_camera_or_gps(taken_at, camera_offset, gps_time)
    if offset is None and taken_at is not None and has_position:
        tz = tz or _timezone_at(lat, lon)
        offset = _zone_offset_minutes(tz, taken_at)
        source = "timezone" if offset is not None else None
    taken_at_utc = _to_utc(taken_at, offset)
    if taken_at_utc is None:  # no offset, or a UTC time outside years 1-9999: the local time stands alone
        offset, source = None, None
    return PhotoMetadata(
        format=box.format,
        width=box.width,
        height=box.height,
        orientation=_orientation(tags),
        make=_text(tags, "Make"),
        model=_text(tags, "Model"),
        lens=_text(tags, "LensModel"),
        taken_at=taken_at,
        has_subseconds=has_subseconds,
        utc_offset=camera_offset,
        effective_offset_minutes=offset,
        offset_source=source,
        taken_at_utc=taken_at_utc,
        lat=lat,
        lon=lon,
        alt=_altitude(tags),
        gps_time_utc=gps_time,
        timezone=tz,
        location_source=location_source,
    )


# --- containers: format, size, the raw EXIF block, XMP ------------------------------------------------


@dataclass(frozen=True)
class _Container:
    format: str
    width: int
    height: int
    tags: _Tags
    xmp: bytes | None


def _read_container(path: Path, max_pixels: int) -> _Container:
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise UnreadableFile(f"cannot open file: {exc.strerror or exc}") from None
    with fh:
        try:
            head = fh.read(_HEAD_BYTES)
        except OSError as exc:  # a directory, an unreadable device
            raise UnreadableFile(f"cannot read file: {exc.strerror or exc}") from None
        if not head:
            raise UnreadableFile("empty file")
        formats = _sniff(head)
        heif = read_heif_items(fh, path) if head[4:8] == b"ftyp" else HeifItems()
        if heif.width and heif.height:
            # ispe is read before libheif sees the file (EXIF/HEIF "decompression bomb" check first).
            _check_pixels(heif.width, heif.height, max_pixels)
        return _read_with_pillow(path, fh, formats, heif, max_pixels)


def _sniff(head: bytes) -> tuple[str, ...] | None:
    """Pillow format names to try for this file start, or None to let Pillow try all it knows."""
    still = still_format(head)
    if still is not None:
        return (still,)  # TIFF: also DNG and other TIFF-based raw files
    if head[4:8] == b"ftyp":
        brands = {head[i : i + 4] for i in range(8, min(len(head), box_size(head)), 4)}
        avif = bool(brands & {b"avif", b"avis"}) and not brands & {b"heic", b"heix", b"heim", b"heis"}
        return ("AVIF", "HEIF") if avif else ("HEIF", "AVIF")
    return None


def _read_with_pillow(
    path: Path, fh: BinaryIO, formats: tuple[str, ...] | None, heif: HeifItems, max_pixels: int
) -> _Container:
    with _quiet_warnings(), _open_image(path, fh, formats, max_pixels) as im:
        width, height = (heif.width, heif.height) if heif.width and heif.height else im.size
        _check_pixels(width, height, max_pixels)
        fmt = im.format or (formats[0] if formats else "unknown")
        if fmt == "TIFF":
            tags = _tags_from_tiff(fh, im)
        else:
            tags = _tags_from_block(_exif_block(fh, im, fmt, heif))
        xmp = im.info.get("xmp")
        return _Container(fmt, width, height, tags, xmp if isinstance(xmp, bytes) else None)


#: What Pillow and its plugins raise for files they cannot parse (pillow-heif: RuntimeError).
_OPEN_ERRORS = (OSError, SyntaxError, EOFError, ValueError, TypeError, IndexError, struct.error, RuntimeError)


def _open_image(path: Path, fh: BinaryIO, formats: tuple[str, ...] | None, max_pixels: int) -> Image.Image:
    """Open (headers only) with Pillow, mapping its failures to UnreadableFile / ImageTooLarge."""
    try:
        if formats:
            _register_plugins(formats)
            # By path, so Pillow skips preinit() (five plugins we do not need) once the plugin is loaded.
            return Image.open(path, formats=list(formats))
        fh.seek(0)
        return Image.open(fh)
    except Image.DecompressionBombError as exc:
        # Pillow refuses > 2 x Image.MAX_IMAGE_PIXELS by itself (its warning below that is silenced: our
        # own limit applies). Its message is the only place that has the pixel count.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pillow_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        pixels = int(found.group(1)) if found else pillow_limit + 1
        limit = max_pixels if pixels > max_pixels else pillow_limit
        raise ImageTooLarge(f"image too large: {pixels} pixels > limit {limit}") from None
    except _OPEN_ERRORS as exc:
        raise UnreadableFile(_open_failure(fh, formats, exc)) from None


def _open_failure(fh: BinaryIO, formats: tuple[str, ...] | None, exc: BaseException) -> str:
    """A one-line reason; never Pillow's own text for unidentified files (it holds the path)."""
    if not formats:
        return "not an image: unrecognised content"
    logger.debug("Pillow cannot open a %s file: %s", formats[0], exc)
    kind = formats[0]
    if _looks_truncated(fh, kind) or "truncated" in str(exc).lower():
        return f"truncated file: the {kind} data ends early"
    if isinstance(exc, UnidentifiedImageError):
        return f"damaged {kind} file: its header cannot be read"
    return f"damaged {kind} file: {exc}"


def _looks_truncated(fh: BinaryIO, kind: str) -> bool:
    """Whether a file that Pillow refused ends before its format says it should."""
    size = fh.seek(0, io.SEEK_END)
    fh.seek(max(0, size - 12))
    tail = fh.read(12)
    fh.seek(0)
    head = fh.read(12)
    if kind == "JPEG":
        return not tail.endswith(b"\xff\xd9")  # no EOI marker
    if kind == "PNG":
        return not tail.endswith(b"IEND\xaeB`\x82")  # no IEND chunk
    if kind == "WEBP":
        return int.from_bytes(head[4:8], "little") + 8 > size  # RIFF size beyond the end
    if kind in ("HEIF", "AVIF"):
        return boxes_overrun(fh, size)
    return size < 512


_PLUGIN_MODULES = {
    "JPEG": "PIL.JpegImagePlugin",
    "PNG": "PIL.PngImagePlugin",
    "WEBP": "PIL.WebPImagePlugin",
    "TIFF": "PIL.TiffImagePlugin",
    "AVIF": "PIL.AvifImagePlugin",
}


def _register_plugins(formats: tuple[str, ...]) -> None:
    """Import only the Pillow plugins needed, so Image.open does not load all 40 of them."""
    for name in formats:
        if name in Image.OPEN:
            continue
        if name == "HEIF":
            import pillow_heif  # ~0.1 s to import: only when a HEIF file is met

            pillow_heif.register_heif_opener()
        elif name in _PLUGIN_MODULES:
            importlib.import_module(_PLUGIN_MODULES[name])


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise UnreadableFile(f"not an image: size {width}x{height}")
    if width * height > max_pixels:
        raise ImageTooLarge(f"image too large: {width * height} pixels > limit {max_pixels}")


#: catch_warnings() swaps process-wide state (not thread-safe before Python 3.14), and a web upload reads
#: metadata in a request thread: overlapping swaps could leave our filter installed for good.
_WARNINGS_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet_warnings() -> Iterator[None]:
    """Pillow warns about odd files (corrupt EXIF, bomb sizes); those go to the debug log instead."""
    with _WARNINGS_LOCK:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for item in caught:
            logger.debug("Pillow: %s", item.message)


def _exif_block(fh: BinaryIO, im: Image.Image, fmt: str, heif: HeifItems) -> bytes | None:
    """The raw EXIF (TIFF-structured) block of a non-TIFF file, or None."""
    if heif.exif is not None:
        # pillow-heif rewrites Orientation to 1 in its copy (it applies irot itself); ours is untouched.
        return heif.exif
    data = im.info.get("exif")
    if not data and fmt == "PNG":
        data = _png_exif_chunk(fh)  # eXIf after IDAT: Pillow only sees it after decoding (PNG 1.5 spec)
    return tiff_block(data) if isinstance(data, bytes) else None


def _png_exif_chunk(fh: BinaryIO) -> bytes | None:
    fh.seek(8)
    for _ in range(_MAX_CHUNKS):
        header = fh.read(8)
        if len(header) < 8:
            return None
        length, kind = struct.unpack(">I4s", header)
        if kind == b"eXIf":
            data = fh.read(min(length, MAX_BLOCK))
            return data if len(data) == length else None
        if kind == b"IEND":
            return None
        fh.seek(length + 4, io.SEEK_CUR)
    return None


# --- EXIF tags --------------------------------------------------------------------------------------

# exifread's "IFD TagName" keys -> EXIF tag names (CIPA DC-008 / EXIF 2.32).
_EXIFREAD_NAMES = {
    "Image Make": "Make",
    "Image Model": "Model",
    "Image Orientation": "Orientation",
    "EXIF LensModel": "LensModel",
    "EXIF DateTimeOriginal": "DateTimeOriginal",
    "EXIF SubSecTimeOriginal": "SubSecTimeOriginal",
    "EXIF OffsetTimeOriginal": "OffsetTimeOriginal",
    "GPS GPSLatitudeRef": "GPSLatitudeRef",
    "GPS GPSLatitude": "GPSLatitude",
    "GPS GPSLongitudeRef": "GPSLongitudeRef",
    "GPS GPSLongitude": "GPSLongitude",
    "GPS GPSAltitudeRef": "GPSAltitudeRef",
    "GPS GPSAltitude": "GPSAltitude",
    "GPS GPSTimeStamp": "GPSTimeStamp",
    "GPS GPSDate": "GPSDateStamp",
}

_NUMERIC = {"Orientation", "GPSLatitude", "GPSLongitude", "GPSAltitudeRef", "GPSAltitude", "GPSTimeStamp"}

# Pillow: IFD pointer tag (0 for IFD0) -> {tag number: EXIF tag name}.
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_PILLOW_NAMES = {
    0: {0x010F: "Make", 0x0110: "Model", 0x0112: "Orientation"},
    _EXIF_IFD: {
        0xA434: "LensModel",
        0x9003: "DateTimeOriginal",
        0x9291: "SubSecTimeOriginal",
        0x9011: "OffsetTimeOriginal",
    },
    _GPS_IFD: {
        0x01: "GPSLatitudeRef",
        0x02: "GPSLatitude",
        0x03: "GPSLongitudeRef",
        0x04: "GPSLongitude",
        0x05: "GPSAltitudeRef",
        0x06: "GPSAltitude",
        0x07: "GPSTimeStamp",
        0x1D: "GPSDateStamp",
    },
}


def _tags_from_block(block: bytes | None) -> _Tags:
    """Tags of a raw EXIF block: exifread first, Pillow's parser if exifread fails."""
    if not block:
        return {}
    return _tags_with_fallback(lambda: io.BytesIO(block), lambda: _pillow_exif_from(block))


def _tags_from_tiff(fh: BinaryIO, im: Image.Image) -> _Tags:
    """Tags of a TIFF-structured file (TIFF, DNG): its IFD0 is the EXIF IFD0."""
    return _tags_with_fallback(lambda: fh, im.getexif)


def _pillow_exif_from(block: bytes) -> Image.Exif:
    exif = Image.Exif()
    exif.load(block)
    return exif


def _tags_with_fallback(stream: Callable[[], BinaryIO], pillow_exif: Callable[[], Image.Exif]) -> _Tags:
    try:
        source = cast(BinaryIO, _ReadBudget(stream(), _EXIFREAD_MAX_READS))
        raw = exifread.process_file(source, details=False, extract_thumbnail=False)
        return _from_exifread(raw)
    except Exception as exc:  # exifread is pure Python over untrusted bytes: any error, then Pillow's parser
        logger.debug("exifread failed (%s: %s); trying Pillow's EXIF parser", type(exc).__name__, exc)
    try:
        return _from_pillow(pillow_exif())
    except Exception as exc:  # documented fallback: no EXIF at all, the file is still a readable image
        logger.debug("Pillow's EXIF parser failed too (%s: %s); no EXIF", type(exc).__name__, exc)
        return {}


#: exifread reads one value at a time and believes every entry count (up to 65,535 per IFD, IFD after IFD),
#: so a crafted file could keep it busy for minutes. Real files need under 1,000 reads (measured on the
#: samples); past this budget it gives up and Pillow's parser, which reads each IFD in one go, takes over.
_EXIFREAD_MAX_READS = 50_000


class _ReadBudgetExceeded(Exception):
    """exifread needed more reads than any real EXIF block does."""


class _ReadBudget:
    """The read/seek/tell of a binary file, failing after a given number of reads."""

    def __init__(self, raw: BinaryIO, reads: int) -> None:
        self._raw = raw
        self._left = reads

    def read(self, size: int = -1) -> bytes:
        self._left -= 1
        if self._left < 0:
            raise _ReadBudgetExceeded("EXIF structure too large to be real")
        return self._raw.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


def _from_exifread(raw: dict[str, Any]) -> _Tags:
    tags: _Tags = {}
    for key, name in _EXIFREAD_NAMES.items():
        tag = raw.get(key)
        value = _normalise(getattr(tag, "values", None), name in _NUMERIC) if tag is not None else None
        if value is not None:
            tags[name] = value
    return tags


def _from_pillow(exif: Image.Exif) -> _Tags:
    tags: _Tags = {}
    for ifd_tag, names in _PILLOW_NAMES.items():
        ifd = exif.get_ifd(ifd_tag) if ifd_tag else exif
        for number, name in names.items():
            value = _normalise(ifd.get(number), name in _NUMERIC)
            if value is not None:
                tags[name] = value
    return tags


def _normalise(value: object, numeric: bool) -> _Value | None:
    """Text stays text (bytes decoded), numbers become a tuple of floats."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        # Pillow gives BYTE-typed tags (GPSAltitudeRef) as bytes.
        return tuple(float(b) for b in value) if numeric else _decode(value)
    items = value if isinstance(value, list | tuple) else [value]
    numbers = tuple(_number(item) for item in items)
    return numbers if numbers else None


def _number(item: object) -> float:
    """A float from an int, float, Fraction, exifread Ratio or Pillow IFDRational; NaN if impossible."""
    if isinstance(item, tuple):  # exifread wraps FLOAT/DOUBLE values in 1-tuples
        item = item[0] if item else math.nan
    if isinstance(item, float):
        return item
    numerator, denominator = getattr(item, "numerator", None), getattr(item, "denominator", None)
    if isinstance(numerator, int | float) and isinstance(denominator, int | float):
        return numerator / denominator if denominator else math.nan
    return math.nan


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # EXIF ASCII is 7-bit; old cameras wrote Latin-1


def _text(tags: _Tags, name: str) -> str | None:
    """A text tag with NULs and surrounding whitespace removed; None when missing or empty."""
    value = tags.get(name)
    if isinstance(value, tuple):  # text stored as BYTE/UNDEFINED
        if not all(v.is_integer() and 0 <= v < 256 for v in value):
            return None
        value = _decode(bytes(int(v) for v in value))
    if value is None:
        return None
    return value.replace("\x00", "").strip() or None


def _numbers(tags: _Tags, name: str) -> tuple[float, ...] | None:
    value = tags.get(name)
    if isinstance(value, str):  # a number written as text, e.g. GPSAltitudeRef "1"
        try:
            return (float(value.replace("\x00", "").strip()),)
        except ValueError:
            return None
    return value


def _orientation(tags: _Tags) -> int | None:
    """IFD0 Orientation 1-8 (EXIF 2.32, 4.6.4 A); anything else (digiKam writes 0) is None."""
    values = _numbers(tags, "Orientation")
    if not values or not values[0].is_integer() or not 1 <= values[0] <= 8:
        return None
    return int(values[0])


# --- time --------------------------------------------------------------------------------------------

_DATETIME_RE = re.compile(r"(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})")
_OFFSET_RE = re.compile(r"([+-])(\d{2}):(\d{2})")
_DATE_RE = re.compile(r"(\d{4}):(\d{2}):(\d{2})")
#: Offsets in use on Earth run from UTC-12 to UTC+14.
_MIN_OFFSET, _MAX_OFFSET = -12 * 60, 14 * 60


def _taken_at(tags: _Tags) -> tuple[datetime | None, bool]:
    """DateTimeOriginal (+ SubSecTimeOriginal); "0000:00:00 00:00:00" and other non-dates are None."""
    text = _text(tags, "DateTimeOriginal")
    found = _DATETIME_RE.fullmatch(text) if text else None
    if found is None:
        return None, False
    year, month, day, hour, minute, second = (int(part) for part in found.groups())
    try:
        taken_at = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None, False
    subsec = _text(tags, "SubSecTimeOriginal")
    if subsec and subsec.isdigit() and subsec.isascii():
        # SubSecTime digits are a decimal fraction of a second: "1" is 0.1 s, "072" is 0.072 s.
        return taken_at.replace(microsecond=int(subsec[:6].ljust(6, "0"))), True
    return taken_at, False


def _camera_offset(tags: _Tags) -> str | None:
    """OffsetTimeOriginal (EXIF 2.31) when it is "+HH:MM"/"-HH:MM" within the offsets in use."""
    text = _text(tags, "OffsetTimeOriginal")
    return text if text is not None and _offset_minutes(text) is not None else None


def _offset_minutes(text: str) -> int | None:
    found = _OFFSET_RE.fullmatch(text)
    if found is None:
        return None
    sign, hours, minutes = found.groups()
    value = (int(hours) * 60 + int(minutes)) * (-1 if sign == "-" else 1)
    return value if int(minutes) < 60 and _MIN_OFFSET <= value <= _MAX_OFFSET else None


def _gps_time(tags: _Tags) -> datetime | None:
    """GPSDateStamp + GPSTimeStamp as an aware UTC datetime (both are UTC by the EXIF spec)."""
    date_text = _text(tags, "GPSDateStamp")
    clock = _numbers(tags, "GPSTimeStamp")
    # match() not fullmatch(): some writers append the time to the date stamp ("2008:05:08 09:54:28").
    found = _DATE_RE.match(date_text) if date_text else None
    if found is None or clock is None or len(clock) != 3:
        return None
    hours, minutes, seconds = clock
    if not (0 <= hours < 24 and 0 <= minutes < 60 and 0 <= seconds < 61):  # also rejects NaN
        return None
    year, month, day = (int(part) for part in found.groups())
    try:
        return datetime(year, month, day, tzinfo=UTC) + timedelta(
            hours=hours, minutes=minutes, seconds=seconds
        )
    except (ValueError, OverflowError):  # no such date, or past 9999-12-31 23:59:59
        return None


def _offset_from_camera_or_gps(
    taken_at: datetime | None, camera_offset: str | None, gps_time: datetime | None
) -> tuple[int | None, OffsetSource | None]:
    """The camera's recorded offset, else local time minus GPS time rounded to a quarter hour."""
    if camera_offset is not None:
        return _offset_minutes(camera_offset), "camera"
    if taken_at is None or gps_time is None:
        return None, None
    difference = (taken_at - gps_time.replace(tzinfo=None)).total_seconds() / 60
    # Quarter hours cover every offset in use (+05:45 Nepal, +12:45 Chatham) and absorb a camera clock
    # a few minutes off or a GPS time stamp from a fix taken a little earlier.
    offset = round(difference / 15) * 15
    if not _MIN_OFFSET <= offset <= _MAX_OFFSET:
        return None, None  # not a plausible offset: clock never set, or GPS time from another day
    return offset, "gps"


def _to_utc(local: datetime | None, offset_minutes: int | None) -> datetime | None:
    """Local time minus its offset; None when unknown or when UTC falls outside years 1-9999."""
    if local is None or offset_minutes is None:
        return None
    try:
        return (local - timedelta(minutes=offset_minutes)).replace(tzinfo=UTC)
    except OverflowError:  # 9999-12-31 23:59 at -12:00, 0001-01-01 00:00 at +14:00
        logger.debug("UTC time of %s at offset %d min is outside the calendar", local, offset_minutes)
        return None


def _timezone_at(lat: float | None, lon: float | None) -> str | None:
    if lat is None or lon is None:
        return None
    # Imported here: journal.places (tzfpy) is only needed for this, and `journal inspect` starts faster.
    from journal import places

    return places.timezone_at(lat, lon)


def _zone_offset_minutes(tz: str | None, local: datetime) -> int | None:
    """UTC offset of an IANA zone at a local wall-clock time (the earlier one in an ambiguous hour)."""
    if tz is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only needed for this last-resort fallback

    try:
        offset = local.replace(tzinfo=ZoneInfo(tz)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError, OverflowError) as exc:
        logger.debug("no time zone data for %s: %s", tz, exc)
        return None
    return None if offset is None else round(offset.total_seconds() / 60)


# --- position ----------------------------------------------------------------------------------------

_XMP_GPS_RE = {
    axis: re.compile(
        rf'exif:GPS{axis}\s*=\s*["\']([^"\']*)["\']|<exif:GPS{axis}>([^<]*)</exif:GPS{axis}>'.encode()
    )
    for axis in ("Latitude", "Longitude")
}
# XMP GPSCoordinate (XMP spec part 2, 1.2.7.4): "DDD,MM,SSk" or "DDD,MM.mmk", k one of N/S/E/W.
_XMP_COORDINATE_RE = re.compile(r"(\d+(?:\.\d+)?),(\d+(?:\.\d+)?)(?:,(\d+(?:\.\d+)?))?([NSEW])")


def _position(tags: _Tags, xmp: bytes | None) -> tuple[float | None, float | None, LocationSource | None]:
    """Latitude/longitude from the EXIF GPS IFD, else from XMP; never 0,0 or out of range."""
    lat = _exif_coordinate(tags, "GPSLatitude")
    lon = _exif_coordinate(tags, "GPSLongitude")
    if lat is not None and lon is not None and not geo.is_null_island(lat, lon):
        return lat, lon, "exif"
    if xmp:
        lat, lon = _xmp_coordinate(xmp, "Latitude"), _xmp_coordinate(xmp, "Longitude")
        if lat is not None and lon is not None and not geo.is_null_island(lat, lon):
            return lat, lon, "xmp"
    return None, None, None


def _exif_coordinate(tags: _Tags, name: str) -> float | None:
    values, ref = _numbers(tags, name), _text(tags, name + "Ref")
    # Like ExifTool, no reference means no coordinate: its sign would be a guess.
    if not values or ref is None or len(values) > 3:
        return None
    degrees, minutes, seconds = (*values, 0.0, 0.0)[:3]
    return _signed_coordinate(name, degrees, minutes, seconds, ref)


def _signed_coordinate(name: str, degrees: float, minutes: float, seconds: float, ref: str) -> float | None:
    """dms_to_decimal, refusing a reference of the other axis (a latitude marked "E")."""
    refs = "NS" if name.endswith("Latitude") else "EW"
    if ref.strip().upper() not in tuple(refs):
        return None
    return geo.dms_to_decimal(degrees, minutes, seconds, ref)


def _xmp_coordinate(xmp: bytes, axis: str) -> float | None:
    found = _XMP_GPS_RE[axis].search(xmp)
    if found is None:
        return None
    text = (found.group(1) or found.group(2) or b"").decode("ascii", "replace").strip()
    parts = _XMP_COORDINATE_RE.fullmatch(text)
    if parts is None:
        return None
    degrees, minutes, seconds, ref = parts.groups()
    return _signed_coordinate(axis, float(degrees), float(minutes), float(seconds or 0), ref)


def _altitude(tags: _Tags) -> float | None:
    """GPSAltitude in metres, negative below sea level; needs GPSAltitudeRef, as ExifTool does."""
    values, ref = _numbers(tags, "GPSAltitude"), _numbers(tags, "GPSAltitudeRef")
    if not values or not ref or not math.isfinite(values[0]):
        return None
    # GPSAltitudeRef: 0 above / 1 below sea level (EXIF 2.32); 2/3 above/below the ellipsoid (EXIF 3.0).
    return -values[0] if ref[0] in (1, 3) else values[0]
