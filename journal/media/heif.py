"""HEIF / AVIF boxes (ISO/IEC 14496-12 and 23008-12): what metadata.py reads itself before libheif.

The primary item's `ispe` size (checked against the pixel limit before pillow-heif opens the file)
and its Exif item, found through the `meta` box's item list, references and locations. Every walk
is bounded, so a crafted file cannot keep us busy. tiff_block and MAX_BLOCK, the framing and the
size bound of an EXIF block, serve metadata.py's other containers too.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger(__name__)

#: Largest EXIF block we read into memory (here and in metadata.py); real ones are well under 1 MB.
MAX_BLOCK = 16 * 1024 * 1024
#: Bound on walking ISO-BMFF boxes.
_MAX_BOXES = 10_000
#: HEIF `meta` boxes are a few KB (item list, properties, locations); anything huge is not worth parsing.
_MAX_META = 1024 * 1024


@dataclass(frozen=True)
class HeifItems:
    """What we read ourselves from a HEIF/AVIF `meta` box: the primary item's `ispe` size and Exif."""

    width: int | None = None
    height: int | None = None
    exif: bytes | None = None


class _BoxError(ValueError):
    """A malformed ISO-BMFF box structure."""


def box_size(head: bytes) -> int:
    """The size field of the box a file starts with (0 for a head too short to hold one)."""
    return int.from_bytes(head[:4], "big") if len(head) >= 4 else 0


def boxes_overrun(fh: BinaryIO, size: int) -> bool:
    """Whether a top-level ISO-BMFF box claims more bytes than the file has."""
    pos = 0
    for _ in range(_MAX_BOXES):
        if pos + 8 > size:
            return pos != size
        fh.seek(pos)
        claimed = int.from_bytes(fh.read(4), "big")
        if claimed == 1:
            fh.seek(pos + 8)
            claimed = int.from_bytes(fh.read(8), "big")
        if claimed == 0:
            return False
        if claimed < 8:
            return False  # not a box structure at all: damaged, not truncated
        pos += claimed
    return False


def tiff_block(data: bytes) -> bytes | None:
    """Strip the JPEG-style "Exif\\0\\0" prefix that some WebP/PNG/HEIF writers keep; None if not TIFF."""
    if data.startswith(b"Exif\x00\x00"):
        data = data[6:]
    return data if data[:4] in (b"II*\x00", b"MM\x00*") else None


def read_heif_items(fh: BinaryIO, path: Path) -> HeifItems:
    """Primary item size and Exif from the `meta` box; empty when the structure is not understood."""
    try:
        meta = _top_level_box(fh, b"meta")
        return _parse_meta(fh, meta[4:]) if meta is not None else HeifItems()
    except (_BoxError, IndexError, OSError) as exc:  # IndexError: a box too short for its fields
        logger.debug("%s: HEIF boxes not understood (%s); relying on pillow-heif", path, exc)
        return HeifItems()


def _top_level_box(fh: BinaryIO, wanted: bytes) -> bytes | None:
    fh.seek(0)
    for _ in range(_MAX_BOXES):
        start = fh.tell()
        header = fh.read(8)
        if len(header) < 8:
            return None
        size, kind = struct.unpack(">I4s", header)
        header_size = 8
        if size == 1:
            size = int.from_bytes(fh.read(8), "big")
            header_size = 16
        if kind == wanted:
            if size == 0 or size - header_size > _MAX_META:
                raise _BoxError(f"{wanted!r} box of unusable size {size}")
            return _read_exactly(fh, size - header_size)
        if size == 0:
            return None
        if size < header_size:
            raise _BoxError(f"box {kind!r} of size {size}")
        fh.seek(start + size)
    return None


def _read_exactly(fh: BinaryIO, n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise _BoxError("file ends inside a box")
    return data


def _child_boxes(data: bytes, start: int = 0) -> dict[bytes, bytes]:
    """Child boxes by type (the first of each type); payloads without their size/type header."""
    boxes: dict[bytes, bytes] = {}
    for kind, payload in _iter_boxes(data, start):
        boxes.setdefault(kind, payload)
    return boxes


def _iter_boxes(data: bytes, start: int = 0) -> Iterator[tuple[bytes, bytes]]:
    pos = start
    while pos + 8 <= len(data):
        size = _uint(data, pos, 4)
        kind = data[pos + 4 : pos + 8]
        header = 8
        if size == 1:
            size, header = _uint(data, pos + 8, 8), 16
        elif size == 0:
            size = len(data) - pos
        if size < header or pos + size > len(data):
            raise _BoxError(f"box {kind!r} overruns its parent")
        yield kind, data[pos + header : pos + size]
        pos += size


def _uint(data: bytes, pos: int, size: int) -> int:
    if pos < 0 or pos + size > len(data):
        raise _BoxError("field beyond the end of its box")
    return int.from_bytes(data[pos : pos + size], "big")


def _parse_meta(fh: BinaryIO, meta: bytes) -> HeifItems:
    boxes = _child_boxes(meta)
    if b"pitm" not in boxes:
        return HeifItems()
    pitm = boxes[b"pitm"]
    primary = _uint(pitm, 4, 2 if pitm[0] == 0 else 4)
    width, height = _primary_size(boxes.get(b"iprp"), primary)
    exif = None
    exif_id = _exif_item_id(boxes.get(b"iinf"), boxes.get(b"iref"), primary)
    if exif_id is not None and b"iloc" in boxes:
        payload = _item_data(fh, boxes[b"iloc"], exif_id, boxes.get(b"idat"))
        exif = _heif_exif_block(payload) if payload else None
    return HeifItems(width, height, exif)


def _primary_size(iprp: bytes | None, primary: int) -> tuple[int | None, int | None]:
    """The primary item's `ispe` (image spatial extents): its size before irot/imir are applied."""
    if iprp is None:
        return None, None
    children = _child_boxes(iprp)
    ipco, ipma = children.get(b"ipco"), children.get(b"ipma")
    if ipco is None or ipma is None:
        return None, None
    properties = list(_iter_boxes(ipco))
    for index in _property_indexes(ipma, primary):
        if 0 < index <= len(properties) and properties[index - 1][0] == b"ispe":
            ispe = properties[index - 1][1]
            return _uint(ispe, 4, 4), _uint(ispe, 8, 4)
    return None, None


def _property_indexes(ipma: bytes, item_id: int) -> list[int]:
    version, flags = ipma[0], _uint(ipma, 1, 3)
    id_size, pos = (2 if version < 1 else 4), 8
    for _ in range(_uint(ipma, 4, 4)):
        current = _uint(ipma, pos, id_size)
        count = _uint(ipma, pos + id_size, 1)
        pos += id_size + 1
        width = 2 if flags & 1 else 1
        mask = 0x7FFF if width == 2 else 0x7F
        indexes = [_uint(ipma, pos + i * width, width) & mask for i in range(count)]
        pos += count * width
        if current == item_id:
            return indexes
    return []


def _exif_item_id(iinf: bytes | None, iref: bytes | None, primary: int) -> int | None:
    """The Exif item describing the primary image (via a `cdsc` reference), else the first Exif item."""
    if iinf is None:
        return None
    exif_ids = [item_id for item_id, kind in _item_types(iinf) if kind == b"Exif"]
    if not exif_ids:
        return None
    described = _items_describing(iref, primary) if iref is not None else set()
    return next((i for i in exif_ids if i in described), exif_ids[0])


def _item_types(iinf: bytes) -> Iterator[tuple[int, bytes]]:
    start = 6 if iinf[0] == 0 else 8
    for kind, infe in _iter_boxes(iinf, start):
        if kind != b"infe" or infe[0] < 2:
            continue  # infe versions 0/1 carry no item_type
        id_size = 2 if infe[0] == 2 else 4
        yield _uint(infe, 4, id_size), infe[4 + id_size + 2 : 4 + id_size + 6]


def _items_describing(iref: bytes, primary: int) -> set[int]:
    id_size = 2 if iref[0] == 0 else 4
    found: set[int] = set()
    for kind, ref in _iter_boxes(iref, 4):
        if kind != b"cdsc":
            continue
        source, count = _uint(ref, 0, id_size), _uint(ref, id_size, 2)
        targets = {_uint(ref, id_size + 2 + i * id_size, id_size) for i in range(count)}
        if primary in targets:
            found.add(source)
    return found


def _item_data(fh: BinaryIO, iloc: bytes, item_id: int, idat: bytes | None) -> bytes | None:
    """An item's bytes from its `iloc` extents (in the file, or in `idat` for construction method 1)."""
    version = iloc[0]
    offset_size, length_size = iloc[4] >> 4, iloc[4] & 15
    base_size, index_size = iloc[5] >> 4, (iloc[5] & 15 if version in (1, 2) else 0)
    id_size = 2 if version < 2 else 4
    if any(size not in (0, 4, 8) for size in (offset_size, length_size, base_size, index_size)):
        raise _BoxError("iloc field sizes other than 0, 4 or 8 bytes")
    count, pos = _uint(iloc, 6, id_size), 6 + id_size
    for _ in range(count):
        current = _uint(iloc, pos, id_size)
        pos += id_size
        method = 0
        if version in (1, 2):
            method = _uint(iloc, pos, 2) & 15
            pos += 2
        base = _uint(iloc, pos + 2, base_size)
        extent_count = _uint(iloc, pos + 2 + base_size, 2)
        if extent_count and not offset_size + length_size + index_size:
            raise _BoxError("iloc extents of zero bytes")  # each extent must move on, or this loop could spin
        pos += 4 + base_size
        extents = []
        for _ in range(extent_count):
            pos += index_size
            extents.append((_uint(iloc, pos, offset_size), _uint(iloc, pos + offset_size, length_size)))
            pos += offset_size + length_size
        if current == item_id:
            return _read_extents(fh, idat, method, base, extents)
    return None


def _read_extents(
    fh: BinaryIO, idat: bytes | None, method: int, base: int, extents: list[tuple[int, int]]
) -> bytes | None:
    if method not in (0, 1) or (method == 1 and idat is None):
        return None
    if sum(length for _, length in extents) > MAX_BLOCK or any(length == 0 for _, length in extents):
        return None
    parts = []
    for offset, length in extents:
        if method == 1 and idat is not None:
            parts.append(idat[base + offset : base + offset + length])
        else:
            fh.seek(base + offset)
            parts.append(fh.read(length))
    return b"".join(parts)


def _heif_exif_block(payload: bytes) -> bytes | None:
    """An Exif item starts with a 4-byte offset to the TIFF header (ISO/IEC 23008-12, Annex A.2.1)."""
    start = 4 + _uint(payload, 0, 4)
    block = tiff_block(payload[start:])
    if block is None:  # a wrong offset: look for the header near the start, as libheif does
        found = re.search(rb"II\*\x00|MM\x00\*", payload[4:64])
        block = payload[4 + found.start() :] if found else None
    return block
