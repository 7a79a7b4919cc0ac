"""What a written file still carries: its metadata re-read from the bytes, judged against the location mode.

An export does not trust the scrubber's plan: every photo file is re-read as it is written
(MetadataTap is a ByteSink the bundle writer feeds with the very bytes that go into the zip or
the message) and its metadata is parsed again with exifread and Pillow. Only what a check
needs is kept, so the check costs next to nothing on top of the copy:

- JPEG: the header segments up to the first SOS, and the last two bytes (an EOI, else a
  trailer follows). Segments between progressive scans and data hidden before the final EOI
  are not re-read (that would mean a second marker search over every byte, which is the
  whole cost of an `original` export); the scrubber drops them, and its tests check that.
- PNG and WebP: every chunk's type and size, and the payload of every chunk that is not
  pixel data.

`check` then lists what the file carries that it may not: anything outside the whitelist in
every mode (XMP, maker notes, serial numbers, owner and artist names, thumbnails, text
chunks, comments, IPTC, extra frames, trailers, other EXIF tags) and a GPS position unless
the mode is `exact` and the photo is outside every privacy zone. The whitelist is the one
scrub.build_exif writes: camera make/model, capture time and offset, orientation (and the
GPS fields in `exact` mode); a field added to ExifKeep must be added to _KEPT_IFD0/_KEPT_EXIF.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import exifread
from PIL import ExifTags, Image
from PIL.JpegImagePlugin import JpegImageFile

from journal.media.signatures import still_format
from journal.publish.streams import file_pieces

logger = logging.getLogger(__name__)

SCHEMA = "journal.privacy/1"
FILE_NAME = "privacy.json"

# --- what a file may carry (one word each, as privacy.json names them) ---

GPS = "gps"
XMP = "xmp"
MAKER_NOTE = "maker_note"
SERIALS = "serial_numbers"
NAMES = "owner_names"
THUMBNAIL = "thumbnail"
TEXT = "text_chunks"
COMMENTS = "comments"
IPTC = "iptc"
FRAMES = "extra_frames"
TRAILER = "trailer"
OTHER_EXIF = "other_exif"
OTHER = "other_metadata"
UNREADABLE = "unreadable_metadata"
ICC = "icc_profile"
CAMERA = "camera"
TIME = "capture_time"
ORIENTATION = "orientation"

#: Forbidden whatever the mode (the scrubbers keep none of these).
ALWAYS_FORBIDDEN = (
    XMP,
    MAKER_NOTE,
    SERIALS,
    NAMES,
    THUMBNAIL,
    TEXT,
    COMMENTS,
    IPTC,
    FRAMES,
    TRAILER,
    OTHER_EXIF,
    OTHER,
    UNREADABLE,
)
#: What a published file may keep.
KEEPABLE = (GPS, ICC, CAMERA, TIME, ORIENTATION)
#: Reported as removed when the source had them and the written file has not.
REMOVABLE = (GPS, *ALWAYS_FORBIDDEN[:-1], ICC, CAMERA, TIME)

CHECKED_WITH = ("exifread", "pillow")
#: A file whose metadata (JPEG header, non-pixel chunks) is larger than this is not shipped.
METADATA_LIMIT = 16 * 1024 * 1024

# EXIF tags (EXIF 2.32 / TIFF 6.0 numbers) and what they say.
_IFD0, _EXIF_IFD, _GPS_IFD, _INTEROP_IFD = 0, ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, ExifTags.IFD.Interop
_KEPT_IFD0 = {0x010F: CAMERA, 0x0110: CAMERA, 0x0112: ORIENTATION, _EXIF_IFD: "", _GPS_IFD: ""}
_KEPT_EXIF = {0x9000: "", 0x9003: TIME, 0x9011: TIME}
_TAG_KINDS = {
    0x013B: NAMES,  # Artist
    0x8298: NAMES,  # Copyright
    0xA430: NAMES,  # CameraOwnerName
    0x9C9D: NAMES,  # XPAuthor
    0xA431: SERIALS,  # BodySerialNumber
    0xA435: SERIALS,  # LensSerialNumber
    0xC62F: SERIALS,  # CameraSerialNumber (DNG)
    0xA420: SERIALS,  # ImageUniqueID
    0x927C: MAKER_NOTE,
    0x010E: COMMENTS,  # ImageDescription
    0x9286: COMMENTS,  # UserComment
    0x9C9B: COMMENTS,  # XPTitle
    0x9C9C: COMMENTS,  # XPComment
    0x9C9E: COMMENTS,  # XPKeywords
    0x9C9F: COMMENTS,  # XPSubject
    0x02BC: XMP,  # XMLPacket in a TIFF
    0x83BB: IPTC,  # IPTC-NAA
    0x8649: IPTC,  # Photoshop image resources
    0x8773: ICC,  # InterColorProfile in a TIFF
}
_EXIFREAD_KEPT = {
    "Image Make": CAMERA,
    "Image Model": CAMERA,
    "Image Orientation": ORIENTATION,
    "Image ExifOffset": "",
    "Image GPSInfo": "",
    "EXIF ExifVersion": "",
    "EXIF DateTimeOriginal": TIME,
    "EXIF OffsetTimeOriginal": TIME,
}
_EXIFREAD_NAMES = {"Image Artist", "Image Copyright", "EXIF CameraOwnerName", "Image XPAuthor"}
_EXIFREAD_COMMENTS = {
    "Image ImageDescription",
    "EXIF UserComment",
    "Image XPTitle",
    "Image XPComment",
    "Image XPKeywords",
    "Image XPSubject",
}
_GPS_WORDS = (b"GPSLatitude", b"GPSLongitude", b"GPSPosition", b"GPSCoordinates")


@dataclass(frozen=True)
class Findings:
    """What one file carries, as re-read from its bytes: categories, with the tags or segments behind each."""

    format: str
    carries: frozenset[str]
    details: tuple[str, ...] = ()
    camera: str | None = None
    scope: str = ""
    sha256: str | None = None
    size: int = 0


@dataclass(frozen=True)
class FileRule:
    """What one bundle file may carry: a position only when allowed; `source` is what its original had."""

    gps_allowed: bool = False
    source: Findings | None = None


def forbidden(rule: FileRule) -> tuple[str, ...]:
    """The categories a file under this rule may not carry."""
    return ALWAYS_FORBIDDEN if rule.gps_allowed else (GPS, *ALWAYS_FORBIDDEN)


def check(findings: Findings, rule: FileRule) -> list[str]:
    """What the file carries that the rule forbids, each with the tags or segments that show it."""
    leaks = []
    for category in forbidden(rule):
        if category in findings.carries:
            shown = [d.split(": ", 1)[1] for d in findings.details if d.startswith(category + ": ")]
            leaks.append(f"{category} ({', '.join(shown[:4])})" if shown else category)
    return leaks


def leak_message(name: str, findings: Findings, leaks: Sequence[str]) -> str:
    """One line saying what a written file still carries."""
    return f"{name} still carries {'; '.join(leaks)} after scrubbing ({findings.format}); not shipped"


def file_entry(path: str, findings: Findings, rule: FileRule) -> dict[str, Any]:
    """A file's entry in privacy.json."""
    source = rule.source
    removed = [
        c for c in REMOVABLE if source is not None and c in source.carries and c not in findings.carries
    ]
    return {
        "path": path,
        "format": findings.format,
        "source_format": source.format if source is not None else None,
        "removed": removed,
        "kept": [c for c in KEEPABLE if c in findings.carries],
        "gps": GPS in findings.carries,
        "camera": findings.camera,
        "forbidden": list(forbidden(rule)),
        "leaks": check(findings, rule),
        "checked_with": list(CHECKED_WITH),
        "checked": findings.scope,
    }


def report(
    location: str | None, files: Iterable[dict[str, Any]], *, batch: int, batches: int, created_at: str
) -> dict[str, Any]:
    """The privacy.json document of one bundle."""
    return {
        "schema": SCHEMA,
        "location": location,
        "batch": batch,
        "batches": batches,
        "created_at": created_at,
        "files": list(files),
    }


# --- re-reading the written bytes ---


class MetadataTap:
    """A ByteSink that keeps what the metadata check of a JPEG, PNG or WebP needs from the bytes passing by.

    Feed it every byte of one file, in order, then call findings(). It copies only the JPEG
    header (up to SOS), the last two bytes, and PNG/WebP chunks that are not pixel data.
    """

    def __init__(self, *, limit: int = METADATA_LIMIT, hashed: bool = False) -> None:
        self._limit = limit
        self._digest = hashlib.sha256() if hashed else None
        self._kind: str | None = None
        self._start = bytearray()  # the first bytes, until the format is known
        self._head = bytearray()  # JPEG: the header; PNG/WebP: the chunk being read
        self._head_done = False
        self._overflow = False
        self._tail = b""
        self._size = 0
        self._skip = 0  # PNG/WebP: bytes of pixel data still to pass over
        self._want = 0  # PNG/WebP: bytes of the chunk still to collect
        self._chunks: list[tuple[bytes, bytes | None, int]] = []  # (type, payload or None, size)
        self._pending: tuple[bytes, int] = (b"", 0)
        self._started = False

    def write(self, data: bytes | memoryview, /) -> int:
        """Look at data (it is not kept unless it is metadata)."""
        view = memoryview(data).cast("B")
        count = len(view)
        if not count:
            return 0
        if self._digest is not None:
            self._digest.update(view)
        self._size += count
        self._tail = (self._tail + bytes(view[-2:]))[-2:]
        if self._kind is None:
            need = 12 - len(self._start)
            self._start += view[:need]
            if len(self._start) < 12:
                return count
            self._kind = _sniff(bytes(self._start)) or "unknown"
            self._feed(memoryview(bytes(self._start)))
            view = view[need:]
        self._feed(view)
        return count

    def _feed(self, view: memoryview) -> None:
        if self._kind == "JPEG":
            self._feed_jpeg(view)
        elif self._kind in ("PNG", "WEBP"):
            self._feed_chunks(view)

    def _feed_jpeg(self, view: memoryview) -> None:
        # 64 KiB at a time: a header is a few KiB, and the first piece may be a whole MiB of scan data.
        for at in range(0, len(view), 1 << 16):
            if self._head_done or self._overflow:
                return
            room = self._limit - len(self._head)
            piece = view[at : at + min(room, 1 << 16)]
            self._head += piece
            end = _jpeg_header_end(self._head)
            if end is not None:
                del self._head[end:]
                self._head_done = True
            elif len(piece) < min(len(view) - at, 1 << 16):
                self._overflow = True

    def _feed_chunks(self, view: memoryview) -> None:
        at, count = 0, len(view)
        if not self._started:
            self._started = True
            self._skip = 8 if self._kind == "PNG" else 12  # signature / RIFF header, checked by _sniff
        while at < count:
            if self._skip:
                step = min(self._skip, count - at)
                self._skip -= step
                at += step
                continue
            if self._want:
                step = min(self._want, count - at)
                self._head += view[at : at + step]
                self._want -= step
                at += step
                if not self._want:
                    self._end_chunk()
                continue
            header = 8
            step = min(header - len(self._head), count - at)
            self._head += view[at : at + step]
            at += step
            if len(self._head) == header:
                self._begin_chunk()

    def _begin_chunk(self) -> None:
        """A chunk header is complete: collect its payload, or pass over pixel data."""
        if self._kind == "PNG":
            length, kind = struct.unpack(">I4s", self._head)
            total = length + 4  # the CRC
            pixels = kind in (b"IDAT", b"fdAT")
        else:
            kind, length = struct.unpack("<4sI", self._head)
            total = length + (length & 1)  # RIFF chunks are padded to even sizes
            pixels = kind in (b"VP8 ", b"VP8L", b"ALPH", b"ANMF")
        collected = sum(len(p) for _, p, _ in self._chunks if p is not None)
        if pixels or collected + total > self._limit:
            if not pixels:
                self._overflow = True
            self._chunks.append((kind, None, length))
            self._head = bytearray()
            self._skip = total
            return
        self._pending = (kind, length)
        self._head = bytearray()
        self._want = total
        if total == 0:
            self._end_chunk()

    def _end_chunk(self) -> None:
        kind, length = self._pending
        self._chunks.append((kind, bytes(self._head[:length]), length))
        self._head = bytearray()

    def findings(self, *, detailed: bool = True) -> Findings:
        """What the bytes seen carry (call after the last write); `detailed` decodes maker notes too."""
        sha = self._digest.hexdigest() if self._digest is not None else None
        try:
            found = self._inspect(detailed)
        except Exception as exc:  # exifread and Pillow on hostile metadata: anything; never shipped then
            logger.warning("metadata that cannot be read: %s: %s", type(exc).__name__, exc)
            found = _Found(self._kind or "unknown", "")
            found.add(UNREADABLE, f"{type(exc).__name__}: {exc}")
        return found.freeze(sha, self._size)

    def _inspect(self, detailed: bool) -> _Found:
        if self._kind == "JPEG":
            found = _Found("JPEG", "JPEG header up to SOS and the end of the file")
            if self._overflow or not self._head_done:
                found.add(UNREADABLE, "header not complete" if not self._overflow else "header too large")
                return found
            _inspect_jpeg(bytes(self._head), found, detailed=detailed)
            if self._tail != b"\xff\xd9":
                found.add(TRAILER, "bytes after the last EOI")
            return found
        if self._kind in ("PNG", "WEBP"):
            found = _Found(self._kind, f"every {self._kind} chunk")
            if self._overflow or self._want or self._skip or self._head:
                found.add(UNREADABLE, "chunks not complete" if not self._overflow else "metadata too large")
                return found
            (_inspect_png if self._kind == "PNG" else _inspect_webp)(self._chunks, found, detailed=detailed)
            return found
        found = _Found("unknown", "")
        found.add(UNREADABLE, "not a JPEG, PNG or WebP file")
        return found


def _sniff(start: bytes) -> str | None:
    """The format of a file from its first 12 bytes (None: not one an export writes)."""
    if start.startswith(b"\xff\xd8"):  # SOI alone: whatever follows, the segments are walked as JPEG's
        return "JPEG"
    still = still_format(start)
    return still if still in ("PNG", "WEBP") else None


class _Found:
    """Findings being gathered."""

    def __init__(self, fmt: str, scope: str) -> None:
        self.format = fmt
        self.scope = scope
        self.carries: set[str] = set()
        self.details: list[str] = []
        self.camera: str | None = None

    def add(self, category: str, detail: str = "") -> None:
        self.carries.add(category)
        if detail and f"{category}: {detail}" not in self.details:
            self.details.append(f"{category}: {detail}")

    def freeze(self, sha256: str | None, size: int) -> Findings:
        return Findings(
            self.format, frozenset(self.carries), tuple(self.details), self.camera, self.scope, sha256, size
        )


# --- JPEG ---

_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def _jpeg_segments(data: bytes | bytearray) -> Iterable[tuple[int, int, int]]:
    """(marker, payload start, payload end) of each header segment, up to and including SOS."""
    at = 2
    while at + 2 <= len(data):
        if data[at] != 0xFF:
            raise ValueError(f"JPEG marker expected at {at}")
        while at + 1 < len(data) and data[at + 1] == 0xFF:  # fill bytes
            at += 1
        if at + 2 > len(data):
            return
        marker = data[at + 1]
        if marker in _STANDALONE:
            yield marker, at + 2, at + 2
            at += 2
            continue
        if marker == 0xD9:
            raise ValueError("JPEG ends before its image data")
        if at + 4 > len(data):
            return
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        if length < 2:
            raise ValueError("JPEG segment with a bad length")
        end = at + 2 + length
        if end > len(data):
            return
        yield marker, at + 4, end
        if marker == 0xDA:
            return
        at = end


def _jpeg_header_end(data: bytes | bytearray) -> int | None:
    """Where the SOS segment of a JPEG header ends, once data holds all of it; None before."""
    if len(data) < 2:
        return None
    try:
        for marker, _, end in _jpeg_segments(data):
            if marker == 0xDA:
                return end
    except ValueError:
        return len(data)  # not a header that can be read: stop collecting, _inspect_jpeg says why
    return None


def _inspect_jpeg(header: bytes, found: _Found, *, detailed: bool) -> None:
    """Every header segment by its marker and signature; each EXIF with exifread and Pillow."""
    exif_segments: list[bytes] = []
    for marker, start, end in _jpeg_segments(header):
        payload = header[start:end]
        if marker == 0xE0:
            if payload.startswith(b"JFIF\x00") and len(payload) >= 14:
                if payload[12:14] != b"\x00\x00" or len(payload) > 14:
                    found.add(THUMBNAIL, "JFIF thumbnail")
            else:
                found.add(THUMBNAIL if payload.startswith(b"JFXX") else OTHER, f"APP0 {payload[:5]!r}")
        elif marker == 0xE1 and payload.startswith(b"Exif\x00\x00"):
            exif_segments.append(payload)
            if len(exif_segments) > 1:
                found.add(OTHER, "a second EXIF segment")
            inspect_exif(payload[6:], found, detailed=detailed)
        elif marker == 0xE1 and payload.startswith(
            (b"http://ns.adobe.com/xap/1.0/", b"http://ns.adobe.com/xmp/")
        ):
            found.add(XMP, "APP1 XMP")
            _gps_words(payload, found, "XMP")
        elif marker == 0xE2 and payload.startswith(b"ICC_PROFILE\x00"):
            found.add(ICC)
        elif marker == 0xE2 and payload.startswith(b"MPF\x00"):
            found.add(FRAMES, "APP2 MPF")
        elif marker == 0xED:
            found.add(IPTC, "APP13")
        elif marker == 0xEE and payload.startswith(b"Adobe"):
            pass  # colour transform flags, needed to decode
        elif marker == 0xFE:
            found.add(COMMENTS, "COM segment")
        elif 0xE0 <= marker <= 0xEF:
            found.add(OTHER, f"APP{marker - 0xE0} {payload[:12]!r}")
    _pillow_jpeg(header, found, exif_segments, detailed=detailed)


def _pillow_jpeg(header: bytes, found: _Found, exif_seen: list[bytes], *, detailed: bool) -> None:
    """Pillow's own reading of the header (JpegImageFile directly: the MPO factory would seek frames).

    The EXIF Pillow finds is one of the segments already read by both libraries; another one is read too.
    """
    with JpegImageFile(io.BytesIO(header + b"\xff\xd9")) as image:
        info = image.info
        for key, category in (("xmp", XMP), ("comment", COMMENTS), ("mp", FRAMES), ("photoshop", IPTC)):
            if info.get(key):
                found.add(category, f"Pillow info[{key!r}]")
        if info.get("icc_profile"):
            found.add(ICC)
        exif = info.get("exif")
        if isinstance(exif, bytes) and exif not in exif_seen:
            found.add(OTHER, "an EXIF block only Pillow finds")
            inspect_exif(exif.removeprefix(b"Exif\x00\x00"), found, detailed=detailed)


def _gps_words(payload: bytes, found: _Found, where: str) -> None:
    """A GPS field name in XMP or text (exif:GPSLatitude, GPSCoordinates...) counts as a position."""
    for word in _GPS_WORDS:
        if word in payload:
            found.add(GPS, f"{where} {word.decode()}")


# --- EXIF, read twice ---


def inspect_exif(tiff: bytes, found: _Found, *, detailed: bool = True) -> None:
    """A TIFF-structured EXIF block, read by exifread and by Pillow; every tag is categorised.

    Without `detailed` (an original, for the report's `removed` only) Pillow alone reads it.
    """
    if not tiff:
        return
    if detailed:
        _exifread_exif(tiff, found)
    exif = Image.Exif()
    exif.load(tiff)
    _pillow_exif(exif, found)


def _exifread_exif(tiff: bytes, found: _Found) -> None:
    """exifread's reading: tag names like 'GPS GPSLatitude', 'EXIF MakerNote', 'JPEGThumbnail'."""
    tags = exifread.process_file(io.BytesIO(tiff), details=True, extract_thumbnail=True)
    make = model = None
    for name, value in tags.items():
        category = _exifread_kind(name)
        if category:
            found.add(category, name)
        if name == "Image Make":
            make = str(value).strip(" \x00")
        elif name == "Image Model":
            model = str(value).strip(" \x00")
    camera = " ".join(part for part in (make, model) if part)
    if camera and found.camera is None:
        found.camera = camera


def _exifread_kind(name: str) -> str:
    """The category of an exifread tag name ('' for a whitelisted one)."""
    if name in _EXIFREAD_KEPT:
        return _EXIFREAD_KEPT[name]
    if name.startswith("GPS "):
        return GPS
    if "MakerNote" in name:
        return MAKER_NOTE
    if "Thumbnail" in name:
        return THUMBNAIL
    if "Serial" in name or name == "EXIF ImageUniqueID":
        return SERIALS
    if name in _EXIFREAD_NAMES:
        return NAMES
    if name in _EXIFREAD_COMMENTS:
        return COMMENTS
    if name == "Image ApplicationNotes":
        return XMP
    if name in ("Image IPTC/NAA", "Image PhotoshopSettings"):
        return IPTC
    return OTHER_EXIF


def _pillow_exif(exif: Image.Exif, found: _Found) -> None:
    """Pillow's reading of the same EXIF: IFD0, the Exif, GPS, Interop and IFD1 directories."""
    for tag in exif:
        _pillow_tag(_IFD0, tag, found)
    for tag in exif.get_ifd(_EXIF_IFD):
        _pillow_tag(_EXIF_IFD, tag, found)
    for tag in exif.get_ifd(_GPS_IFD):
        found.add(GPS, f"GPS IFD {ExifTags.GPSTAGS.get(tag, hex(tag))}")
    if exif.get_ifd(_INTEROP_IFD):
        found.add(OTHER_EXIF, "Interop IFD")
    if exif.get_ifd(ExifTags.IFD.IFD1):
        found.add(THUMBNAIL, "IFD1")


def _pillow_tag(ifd: int, tag: int, found: _Found) -> None:
    kept = _KEPT_IFD0 if ifd == _IFD0 else _KEPT_EXIF
    if tag in kept:
        if kept[tag]:
            found.add(kept[tag])
        return
    name = ExifTags.TAGS.get(tag, hex(tag))
    found.add(_TAG_KINDS.get(tag, OTHER_EXIF), f"{'IFD0' if ifd == _IFD0 else 'Exif IFD'} {name}")


# --- PNG and WebP ---

_PNG_HARMLESS = {
    b"IHDR",
    b"PLTE",
    b"IDAT",
    b"IEND",
    b"tRNS",
    b"gAMA",
    b"cHRM",
    b"sRGB",
    b"sBIT",
    b"pHYs",
    b"bKGD",
}
_WEBP_HARMLESS = {b"VP8 ", b"VP8L", b"ALPH", b"VP8X"}


def _inspect_png(chunks: Sequence[tuple[bytes, bytes | None, int]], found: _Found, *, detailed: bool) -> None:
    """Every chunk by type; eXIf through exifread and Pillow; then Pillow's reading of the chunks."""
    for kind, payload, _ in chunks:
        name = kind.decode("latin-1")
        if kind in _PNG_HARMLESS:
            continue
        if kind == b"iCCP":
            found.add(ICC)
        elif kind == b"eXIf" and payload is not None:
            inspect_exif(payload.removeprefix(b"Exif\x00\x00"), found, detailed=detailed)
        elif kind in (b"tEXt", b"zTXt", b"iTXt"):
            keyword = (payload or b"").split(b"\x00", 1)[0].decode("latin-1")
            found.add(XMP if keyword == "XML:com.adobe.xmp" else TEXT, f"{name} {keyword!r}")
            _gps_words(payload or b"", found, name)
        elif kind in (b"acTL", b"fcTL"):
            found.add(FRAMES, name)
        else:
            found.add(OTHER, f"{name} chunk")
    _pillow_png(chunks, found)


def _pillow_png(chunks: Sequence[tuple[bytes, bytes | None, int]], found: _Found) -> None:
    """The metadata chunks as a PNG without pixel data, opened by Pillow: its info must hold no text."""
    rebuilt = bytearray(b"\x89PNG\r\n\x1a\n")
    for kind, payload, length in chunks:
        if payload is None or len(payload) != length:
            continue
        if kind == b"IHDR" and length >= 8:  # 1 x 1: Pillow's decompression-bomb check is for pixels
            payload = struct.pack(">II", 1, 1) + payload[8:]
        rebuilt += struct.pack(">I", length) + kind + payload + struct.pack(">I", _crc(kind + payload))
    harmless = {"dpi", "gamma", "transparency", "icc_profile", "exif", "srgb", "chromaticity", "aspect"}
    with Image.open(io.BytesIO(bytes(rebuilt)), formats=["PNG"]) as image:
        for key in image.info:
            if key not in harmless and key != "background":
                found.add(XMP if key == "xmp" else TEXT, f"Pillow info[{key!r}]")


def _crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def _inspect_webp(
    chunks: Sequence[tuple[bytes, bytes | None, int]], found: _Found, *, detailed: bool
) -> None:
    """Every RIFF chunk by type; EXIF through exifread and Pillow (Pillow needs the pixels to open a WebP)."""
    frames = 0
    for kind, payload, _ in chunks:
        name = kind.decode("latin-1").strip()
        if kind in _WEBP_HARMLESS:
            continue
        if kind == b"ICCP":
            found.add(ICC)
        elif kind == b"EXIF" and payload is not None:
            inspect_exif(payload.removeprefix(b"Exif\x00\x00"), found, detailed=detailed)
        elif kind == b"XMP ":
            found.add(XMP, "XMP chunk")
            _gps_words(payload or b"", found, "XMP")
        elif kind in (b"ANIM", b"ANMF"):
            frames += 1
            found.add(FRAMES, f"{name} chunk")
        else:
            found.add(OTHER, f"{name} chunk")


# --- whole files: made files, e-mail attachments, originals ---


def inspect_bytes(
    pieces: Iterable[bytes | memoryview], *, hashed: bool = False, detailed: bool = True
) -> Findings:
    """Findings of a JPEG, PNG or WebP given as pieces of its bytes."""
    tap = MetadataTap(hashed=hashed)
    for piece in pieces:
        tap.write(piece)
    return tap.findings(detailed=detailed)


def inspect_file(path: Path, *, hashed: bool = False, detailed: bool = True) -> Findings:
    """Findings of a file an export wrote (JPEG, PNG or WebP), read from disk."""
    return inspect_bytes(file_pieces(path), hashed=hashed, detailed=detailed)


def inspect_source(path: Path, fmt: str) -> Findings | None:
    """What an original carries (for the report's `removed`); None when it cannot be read.

    JPEG, PNG and WebP are read as written files are; other formats (HEIF, AVIF, TIFF, DNG)
    through Pillow's EXIF and XMP (maker notes are not decoded: their tag is enough).
    """
    with contextlib.suppress(OSError):
        if fmt in ("JPEG", "MPO", "PNG", "WEBP"):
            findings = inspect_file(path, detailed=False)
            return None if UNREADABLE in findings.carries else findings
    found = _Found(fmt, "metadata read by Pillow")
    try:
        with Image.open(path) as image:
            info = image.info
            raw = info.get("exif")
            if isinstance(raw, bytes):
                inspect_exif(raw.removeprefix(b"Exif\x00\x00"), found, detailed=False)
            else:
                _pillow_exif(image.getexif(), found)
            if info.get("xmp"):
                found.add(XMP, "XMP")
                _gps_words(
                    bytes(info["xmp"]) if not isinstance(info["xmp"], str) else info["xmp"].encode(),
                    found,
                    "XMP",
                )
            if info.get("icc_profile"):
                found.add(ICC)
    except (OSError, ValueError, SyntaxError, struct.error, Image.DecompressionBombError) as exc:
        logger.debug("cannot read the metadata of %s: %s", path.name, exc)
        return None
    return found.freeze(None, 0)


@dataclass
class BundleChecks:
    """The findings of a bundle's files as they were written, in order: (entry name, findings, rule)."""

    files: list[tuple[str, Findings, FileRule]] = field(default_factory=list)

    def leaks(self) -> list[str]:
        """One message per file that carries what its rule forbids."""
        return [
            leak_message(name, findings, found)
            for name, findings, rule in self.files
            if (found := check(findings, rule))
        ]

    def entries(self) -> list[dict[str, Any]]:
        """privacy.json's files."""
        return [file_entry(name, findings, rule) for name, findings, rule in self.files]
