"""The metadata a published file keeps: JPEG files scrubbed losslessly, re-encoded ones written clean.

`scrub_jpeg` rewrites only the header segments of a JPEG and streams the entropy-coded data
unchanged, so it is lossless and runs in flat memory. It keeps a whitelist (JFIF without its
thumbnail, the ICC profile, Adobe's colour-transform flags and the segments a decoder needs) and
drops everything else: EXIF and XMP (APP1), MPF (APP2), Photoshop/IPTC (APP13), other APPn,
comments, every frame after the first (MPO) and any trailer after EOI (Samsung and motion-photo
trailers carry positions and video). A fresh EXIF segment holding only the fields of `ExifKeep`
is inserted after SOI/JFIF.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging
import math
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from PIL import ExifTags, Image

from journal import clock
from journal.errors import InvalidInput, UnreadableFile, UnsupportedFile
from journal.publish.location import check_position
from journal.publish.streams import ByteSink, map_file
from journal.storage import CHUNK, atomic_write

logger = logging.getLogger(__name__)

_OFFSET = re.compile(r"[+-](?:[01]\d|2[0-3]):[0-5]\d")
_MAX_TEXT = 128


@dataclass(frozen=True)
class ExifKeep:
    """The only EXIF fields a published file carries; `position` must already be privacy-filtered.

    `taken_at` is the local wall-clock time as ISO 8601 ("YYYY-MM-DDTHH:MM:SS"), `utc_offset`
    "+HH:MM"; None leaves a field out.
    """

    orientation: int | None = None
    taken_at: str | None = None
    utc_offset: str | None = None
    make: str | None = None
    model: str | None = None
    position: tuple[float, float] | None = None
    alt: float | None = None

    def __post_init__(self) -> None:
        if self.orientation is not None and not 1 <= self.orientation <= 8:
            raise InvalidInput("orientation must be 1-8")
        if self.utc_offset is not None and not _OFFSET.fullmatch(self.utc_offset):
            raise InvalidInput("utc_offset must look like +HH:MM")
        if self.position is not None:
            check_position(*self.position)
        if self.alt is not None and (self.position is None or not math.isfinite(self.alt)):
            raise InvalidInput("alt needs a position and a finite value")
        for text in (self.make, self.model):
            if text is not None and (len(text) > _MAX_TEXT or not text.isprintable()):
                raise InvalidInput("make/model must be short printable text")
        if self.taken_at is not None:
            _exif_datetime(self.taken_at)


def _exif_datetime(value: str) -> str:
    """ISO local time -> EXIF "YYYY:MM:DD HH:MM:SS" (EXIF 2.32, DateTimeOriginal)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"not an ISO date-time: {value!r}") from None
    return clock.strftime(moment, "%Y:%m:%d %H:%M:%S")


def build_exif(keep: ExifKeep) -> bytes:
    """A minimal EXIF block ("Exif\\0\\0" + TIFF) holding only the fields of keep."""
    exif = Image.Exif()
    if keep.orientation is not None:
        exif[ExifTags.Base.Orientation] = keep.orientation
    if keep.make:
        exif[ExifTags.Base.Make] = keep.make.strip()
    if keep.model:
        exif[ExifTags.Base.Model] = keep.model.strip()
    if keep.taken_at or keep.utc_offset:
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        sub[ExifTags.Base.ExifVersion] = b"0232"
        if keep.taken_at:
            sub[ExifTags.Base.DateTimeOriginal] = _exif_datetime(keep.taken_at)
        if keep.utc_offset:
            sub[ExifTags.Base.OffsetTimeOriginal] = keep.utc_offset
    if keep.position is not None:
        _add_gps(exif, keep.position, keep.alt)
    return exif.tobytes()


def _add_gps(exif: Image.Exif, position: tuple[float, float], alt: float | None) -> None:
    """Fill the GPS IFD with latitude, longitude and (optionally) altitude."""
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    lat, lon = position
    gps[ExifTags.GPS.GPSVersionID] = b"\x02\x02\x00\x00"
    gps[ExifTags.GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
    gps[ExifTags.GPS.GPSLatitude] = _dms(lat)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
    gps[ExifTags.GPS.GPSLongitude] = _dms(lon)
    if alt is not None:
        # GPSAltitudeRef: 0 above sea level, 1 below (EXIF 2.32, 4.6.6).
        gps[ExifTags.GPS.GPSAltitudeRef] = b"\x00" if alt >= 0 else b"\x01"
        gps[ExifTags.GPS.GPSAltitude] = round(abs(alt), 2)


def _dms(value: float) -> tuple[float, float, float]:
    """Unsigned degrees, minutes, seconds (seconds to 1/10000, a few millimetres)."""
    value = abs(value)
    degrees = math.floor(value)
    minutes = math.floor((value - degrees) * 60)
    seconds = round((value - degrees - minutes / 60) * 3600, 4)
    return (float(degrees), float(minutes), seconds)


def exif_segment(keep: ExifKeep) -> bytes:
    """The APP1 segment (marker, length, payload) carrying build_exif(keep)."""
    payload = build_exif(keep)
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def scrubbed_size_bound(source_bytes: int, keep: ExifKeep) -> int:
    """Upper bound of scrub_jpeg's output size for a source of that many bytes."""
    # Output = source minus dropped segments plus the new EXIF, plus an EOI for a truncated file.
    return source_bytes + len(exif_segment(keep)) + 2


# --- lossless JPEG scrubbing ---

_EOI, _SOS = 0xD9, 0xDA
_APP0, _APP1, _APP2, _APP14, _APP15, _COM = 0xE0, 0xE1, 0xE2, 0xEE, 0xEF, 0xFE
#: A marker inside entropy-coded data: FF followed by anything but stuffing (00), RSTn or fill (FF).
_DATA_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_JFIF_HEADER_LEN = 14


class _Reader:
    """A chunked reader with look-ahead over a binary stream, or over a whole file already in `buf`.

    A memory-mapped file (raw None) is read without copying: the scan data goes out as read-only
    views of the mapping, which keep it mapped until the last one is written.
    """

    def __init__(self, raw: BinaryIO | None, buf: bytes | memoryview = b"") -> None:
        self.raw = raw
        self.buf: bytes | memoryview = buf
        self.pos = 0
        self.offset = 0  # where buf starts in the source

    def span(self, start: int, end: int) -> bytes | memoryview:
        """Source bytes start..end (offsets in the source), which must still be buffered."""
        return self.buf[start - self.offset : end - self.offset]

    def more(self, at_least: int = 1) -> bool:
        """Append the next chunk to the buffer (dropping consumed bytes); False at end of file."""
        if self.raw is None:
            return False
        data = self.raw.read(max(CHUNK, at_least))
        if not data:
            return False
        self.buf = bytes(self.buf[self.pos :]) + data
        self.offset += self.pos
        self.pos = 0
        return True

    def need(self, count: int) -> None:
        """Make sure count bytes are buffered, else raise UnreadableFile."""
        while len(self.buf) - self.pos < count:
            if not self.more(count):
                raise UnreadableFile("JPEG ends inside a segment")

    def take(self, count: int) -> bytes:
        """Consume count bytes."""
        self.need(count)
        data = bytes(self.buf[self.pos : self.pos + count])
        self.pos += count
        return data


@contextlib.contextmanager
def _open_reader(src: bytes | BinaryIO | Path) -> Iterator[_Reader]:
    """A reader over src: a file is memory-mapped when it can be; only files opened here are closed here.

    A mapped file must not be truncated while it is read (SIGBUS): stored originals never are
    (content-named, written once by rename, removed only by unlink).
    """
    if isinstance(src, Path):
        with src.open("rb") as handle:
            mapped = map_file(handle)
            yield _Reader(None, mapped) if mapped is not None else _Reader(handle)
    elif isinstance(src, bytes | bytearray | memoryview):
        yield _Reader(io.BytesIO(src))
    else:
        yield _Reader(src)


def scrub_jpeg(src: bytes | BinaryIO | Path, dest: ByteSink, *, keep: ExifKeep) -> int:
    """Copy a JPEG to dest without metadata, pixels untouched, plus a minimal EXIF; returns bytes written.

    Orientation is keep.orientation, else the source's own: the pixels are not rotated here.
    """
    written = 0
    with _open_reader(src) as reader:
        for _, data in _pieces_with_data(reader, keep):
            dest.write(data)
            written += len(data)
    return written


#: A piece of a scrubbed JPEG: new bytes, or a (start, end) span of the source copied as is.
Piece = bytes | tuple[int, int]


#: A plan holding more new bytes than this (a huge ICC profile) is not kept in memory: the file is
#: written out instead (exportfiles.make_file).
PLAN_MAX_NEW_BYTES = 64 * 1024


@dataclass(frozen=True)
class ScrubPlan:
    """A scrubbed JPEG as pieces of new bytes and spans of its source, with its size and SHA-256.

    Parsing is the slow part of scrubbing (a marker search over every byte, holding the GIL):
    plan_scrub does it, in a worker process for an export, hashing the result on the way while
    the file is at hand, and write_scrub_plan later copies the spans from the mapped file. The
    source's size and modification time are kept: a plan is not used on a file that changed.
    """

    pieces: tuple[Piece, ...]
    size: int
    sha256: str
    source_size: int
    source_mtime_ns: int

    @property
    def new_bytes(self) -> int:
        """How many bytes of the plan are held in memory."""
        return sum(len(piece) for piece in self.pieces if isinstance(piece, bytes))


def plan_scrub(src: Path, *, keep: ExifKeep) -> ScrubPlan:
    """The pieces scrub_jpeg would write for the file src (adjacent spans merged), and their SHA-256."""
    before = src.stat()
    pieces: list[Piece] = []
    digest = hashlib.sha256()
    size = 0
    with _open_reader(src) as reader:
        for piece, data in _pieces_with_data(reader, keep):
            digest.update(data)
            size += len(data)
            last = pieces[-1] if pieces else None
            if isinstance(piece, tuple) and isinstance(last, tuple) and last[1] == piece[0]:
                pieces[-1] = (last[0], piece[1])
            else:
                pieces.append(piece)
    return ScrubPlan(tuple(pieces), size, digest.hexdigest(), before.st_size, before.st_mtime_ns)


def write_scrub_plan(plan: ScrubPlan, src: Path, dest: ByteSink) -> int:
    """Write a planned scrub of src to dest; spans go out as read-only views of the mapped file."""
    with src.open("rb") as handle:
        now = os.fstat(handle.fileno())
        view = map_file(handle)
    if view is None or (now.st_size, now.st_mtime_ns) != (plan.source_size, plan.source_mtime_ns):
        raise UnreadableFile(f"{src.name} changed after it was read")
    for piece in plan.pieces:
        if isinstance(piece, bytes):
            dest.write(piece)
            continue
        start, end = piece
        for at in range(start, end, CHUNK):
            dest.write(view[at : min(at + CHUNK, end)])
    return plan.size


def _pieces_with_data(reader: _Reader, keep: ExifKeep) -> Iterator[tuple[Piece, bytes | memoryview]]:
    """Each piece of the scrubbed JPEG with its bytes (a span's from the reader's buffer)."""
    for piece in _pieces(reader, keep):
        yield piece, piece if isinstance(piece, bytes) else reader.span(*piece)


def _pieces(reader: _Reader, keep: ExifKeep) -> Iterator[Piece]:
    """The scrubbed JPEG: SOI, JFIF, the new EXIF, the kept header segments, then the scans.

    A span is yielded while the reader still buffers it (the caller takes it before resuming).
    """
    header, orientation = _read_jpeg_header(reader)
    if keep.orientation is None and orientation is not None:
        keep = dataclasses.replace(keep, orientation=orientation)
    yield b"\xff\xd8"
    if header and header[0][0] == _APP0:
        yield _segment(*header.pop(0))
    yield exif_segment(keep)
    for marker, payload in header:
        yield _segment(marker, payload)
    yield from _scan_pieces(reader)


def _read_jpeg_header(reader: _Reader) -> tuple[list[tuple[int, bytes | None]], int | None]:
    """Check SOI and read the header (see _read_header)."""
    reader.more(2)
    if reader.buf[:2] != b"\xff\xd8":
        raise UnsupportedFile("not a JPEG file")
    reader.pos = 2
    return _read_header(reader)


def scrub_jpeg_file(src: Path, dest: Path, *, keep: ExifKeep, staging: Path | None = None) -> int:
    """scrub_jpeg from one file to another, written atomically."""
    with atomic_write(dest, staging=staging) as handle:
        return scrub_jpeg(src, handle, keep=keep)


def _segment(marker: int, payload: bytes | None) -> bytes:
    """One marker with its length-prefixed payload (None for a standalone marker)."""
    if payload is None:
        return bytes((0xFF, marker))
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _read_marker(reader: _Reader) -> int:
    """Consume one marker (skipping fill bytes) and return its code."""
    if reader.take(1) != b"\xff":
        raise UnreadableFile("JPEG marker expected")
    code = reader.take(1)[0]
    while code == 0xFF:
        code = reader.take(1)[0]
    return code


def _read_payload(reader: _Reader) -> bytes:
    """Consume a segment's length field and return its payload."""
    length = struct.unpack(">H", reader.take(2))[0]
    if length < 2:
        raise UnreadableFile("JPEG segment with a bad length")
    return reader.take(length - 2)


def _read_header(reader: _Reader) -> tuple[list[tuple[int, bytes | None]], int | None]:
    """Kept segments from SOI up to and including the first SOS, and the source's EXIF Orientation."""
    kept: list[tuple[int, bytes | None]] = []
    orientation: int | None = None
    while True:
        marker = _read_marker(reader)
        if marker == _EOI:
            raise UnreadableFile("JPEG has no image data")
        if marker in _STANDALONE:
            kept.append((marker, None))
            continue
        payload = _read_payload(reader)
        if marker == _APP1 and orientation is None and payload.startswith(b"Exif\x00\x00"):
            orientation = _tiff_orientation(payload[6:])
        cleaned = _clean_segment(marker, payload)
        if cleaned is not None:
            kept.append((marker, cleaned))
        if marker == _SOS:
            return kept, orientation


def _tiff_orientation(tiff: bytes) -> int | None:
    """Orientation (tag 0x0112, SHORT) from IFD0 of a TIFF block; None when absent or unreadable."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return None
    try:
        ifd = struct.unpack(order + "I", tiff[4:8])[0]
        count = struct.unpack(order + "H", tiff[ifd : ifd + 2])[0]
        for index in range(count):
            at = ifd + 2 + 12 * index
            tag, kind = struct.unpack(order + "HH", tiff[at : at + 4])
            if tag == 0x0112 and kind == 3:
                value: int = struct.unpack(order + "H", tiff[at + 8 : at + 10])[0]
                return value if 1 <= value <= 8 else None
    except struct.error:
        logger.debug("unreadable EXIF IFD0; no orientation carried over")
    return None


def _clean_segment(marker: int, payload: bytes) -> bytes | None:
    """The payload to keep for a segment, or None to drop it (a whitelist, see the module docstring)."""
    if marker == _COM or (_APP0 <= marker <= _APP15 and not _keep_app(marker, payload)):
        logger.debug("dropping JPEG segment %#04x (%d bytes)", marker, len(payload))
        return None
    if marker == _APP0:
        # JFIF may embed an RGB thumbnail after its 14 header bytes: zero its size and drop it.
        return payload[: _JFIF_HEADER_LEN - 2] + b"\x00\x00"
    return payload


def _keep_app(marker: int, payload: bytes) -> bool:
    """Whitelisted APPn segments: JFIF, ICC profile chunks and Adobe's colour transform."""
    if marker == _APP0:
        return payload.startswith(b"JFIF\x00") and len(payload) >= _JFIF_HEADER_LEN
    if marker == _APP2:
        return payload.startswith(b"ICC_PROFILE\x00")
    # Adobe APP14 says whether 3/4-channel data is YCbCr/YCCK; dropping it changes the colours.
    return marker == _APP14 and payload.startswith(b"Adobe")


def _scan_pieces(reader: _Reader) -> Iterator[Piece]:
    """Entropy-coded data and the segments between scans, up to the first EOI; the rest is dropped.

    Markers are searched for CHUNK bytes at a time and each span is yielded as it is found.
    """
    while True:
        buf, start = reader.buf, reader.pos
        stop = min(len(buf), start + CHUNK)
        match = _DATA_MARKER.search(buf, start, stop)
        if match is None:
            # Hold back a final FF: its marker byte is past `stop`.
            end = stop - (1 if stop > start and buf[stop - 1] == 0xFF else 0)
            if end > start:
                yield (reader.offset + start, reader.offset + end)
            reader.pos = end
            if stop < len(buf) or reader.more():
                continue
            logger.warning("JPEG ends without EOI; closing it")
            yield bytes(reader.buf[reader.pos :]).rstrip(b"\xff") + b"\xff\xd9"
            return
        if match.start() > start:
            yield (reader.offset + start, reader.offset + match.start())
        reader.pos = match.start()
        marker = _read_marker(reader)
        if marker == _EOI:
            yield b"\xff\xd9"
            return
        if marker in _STANDALONE:
            yield _segment(marker, None)
            continue
        cleaned = _clean_segment(marker, _read_payload(reader))
        if cleaned is not None:
            yield _segment(marker, cleaned)


# --- re-encoded images ---


def encode_clean_jpeg(
    image: Image.Image,
    *,
    keep: ExifKeep,
    quality: int = 85,
    max_bytes: int | None = None,
    keep_icc: bool = True,
) -> bytes:
    """Encode image as a JPEG carrying only keep's EXIF (and its ICC profile); fit under max_bytes.

    When the file is too large, the highest quality down to 20 that fits is used, then the
    image is scaled down until it fits.
    """
    icc = image.info.get("icc_profile") if keep_icc else None
    exif = build_exif(keep)
    current = _jpeg_ready(image)
    for _ in range(8):
        data = _encode_best_quality(current, exif, icc, quality, max_bytes)
        if data is not None:
            return data
        assert max_bytes is not None
        smallest = len(_encode(current, exif, icc, _MIN_QUALITY))
        factor = max(0.3, min(0.95, math.sqrt(max_bytes / smallest) * 0.95))
        size = (max(1, round(current.width * factor)), max(1, round(current.height * factor)))
        logger.debug("JPEG over %d bytes at quality %d; scaling to %s", max_bytes, _MIN_QUALITY, size)
        current = current.resize(size, Image.Resampling.LANCZOS)
    raise InvalidInput(f"cannot encode the image under {max_bytes} bytes")


_MIN_QUALITY = 20


def _encode_best_quality(
    image: Image.Image, exif: bytes, icc: bytes | None, quality: int, max_bytes: int | None
) -> bytes | None:
    """The highest-quality encoding (<= quality) that fits max_bytes, or None when none does."""
    data = _encode(image, exif, icc, quality)
    if max_bytes is None or len(data) <= max_bytes:
        return data
    best: bytes | None = None
    low, high = _MIN_QUALITY, quality - 1
    while low <= high:
        middle = (low + high) // 2
        candidate = _encode(image, exif, icc, middle)
        if len(candidate) <= max_bytes:
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    return best


def _encode(image: Image.Image, exif: bytes, icc: bytes | None, quality: int) -> bytes:
    """One JPEG encoding; comment=b"" stops Pillow from copying image.info["comment"]."""
    out = io.BytesIO()
    options: dict[str, object] = {"quality": quality, "optimize": True, "exif": exif, "comment": b""}
    if icc:
        options["icc_profile"] = icc
    image.save(out, "JPEG", **options)
    return out.getvalue()


def _jpeg_ready(image: Image.Image) -> Image.Image:
    """image in a mode JPEG stores (alpha flattened onto white)."""
    if image.mode in ("RGB", "L", "CMYK"):
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def save_clean_jpeg(
    image: Image.Image,
    dest: Path | ByteSink,
    *,
    keep: ExifKeep,
    transposed: bool = True,
    quality: int = 85,
    max_bytes: int | None = None,
    staging: Path | None = None,
) -> int:
    """Write a re-encoded image with only keep's EXIF; Orientation is 1 when pixels are already upright."""
    if transposed:
        keep = dataclasses.replace(keep, orientation=1)
    data = encode_clean_jpeg(image, keep=keep, quality=quality, max_bytes=max_bytes)
    if isinstance(dest, Path):
        with atomic_write(dest, staging=staging) as handle:
            handle.write(data)
    else:
        dest.write(data)
    return len(data)
