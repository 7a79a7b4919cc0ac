"""Cutting an export into batches under a size limit, and estimating zip and e-mail sizes.

The estimates are upper bounds of what `zipbundle.write_bundle_zip` and `mail.build_eml` produce,
so a batch planned with them stays under the limit once written.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Zip record sizes (APPNOTE.TXT 6.3.10, sections 4.3.7-4.3.16).
ZIP_LOCAL_HEADER = 30
ZIP_CENTRAL_HEADER = 46
ZIP_END_RECORD = 22
#: Zip64 end record (56) plus its locator (20), written when an archive passes 4 GiB or 65,535 entries.
ZIP64_END_RECORDS = 56 + 20
#: Data descriptor after each entry (zip64 form: signature, CRC, 8-byte sizes). The bundle writer
#: streams to a non-seekable output so that it can hash the zip while writing, which makes
#: zipfile add one to every entry.
ZIP_DATA_DESCRIPTOR = 24
#: Zip64 extra fields: local header (sizes) and central header (sizes and offset).
ZIP64_LOCAL_EXTRA = 20
ZIP64_CENTRAL_EXTRA = 28

#: Base64 line length used by the e-mail package (RFC 2045 allows at most 76).
B64_LINE = 76
#: Headers of one attachment part (boundary, Content-Type, -Disposition, -Transfer-Encoding) with
#: the file name written twice (name= and filename=), possibly RFC 2231-encoded (x3).
MIME_PART_OVERHEAD = 300
#: Top-level headers (From, To, Subject, Date, Message-ID, MIME-Version, Content-Type) and closing boundary.
MIME_MESSAGE_OVERHEAD = 2_000


def plan_batches(
    posts: Sequence[T], size_of: Callable[[T], int], max_bytes: int | None, *, fixed_bytes: int = 0
) -> list[list[T]]:
    """Group posts in order into batches of at most max_bytes; a post larger than that gets a batch alone.

    Every batch also carries fixed_bytes (its index page, map assets, end records). Posts are never
    split or reordered. With max_bytes None everything is one batch (none when there are no posts).
    """
    if (max_bytes is not None and max_bytes <= 0) or fixed_bytes < 0:
        raise ValueError("max_bytes must be positive and fixed_bytes not negative")
    batches: list[list[T]] = []
    current: list[T] = []
    used = fixed_bytes
    for post in posts:
        size = size_of(post)
        if size < 0:
            raise ValueError("size_of returned a negative size")
        if current and max_bytes is not None and used + size > max_bytes:
            batches.append(current)
            current, used = [], fixed_bytes
        if max_bytes is not None and fixed_bytes + size > max_bytes:
            logger.info("a post alone needs %d bytes, over the %d-byte limit", fixed_bytes + size, max_bytes)
        current.append(post)
        used += size
    if current:
        batches.append(current)
    return batches


def zip_entry_overhead(name: str) -> int:
    """Bytes a zip adds around one entry's data: local + central headers, names, descriptor, zip64 extras."""
    name_bytes = len(name.encode("utf-8"))
    return (
        ZIP_LOCAL_HEADER
        + ZIP_CENTRAL_HEADER
        + 2 * name_bytes
        + ZIP_DATA_DESCRIPTOR
        + ZIP64_LOCAL_EXTRA
        + ZIP64_CENTRAL_EXTRA
    )


def zip_entry_size(name: str, data_bytes: int) -> int:
    """Upper bound of what one stored (uncompressed) entry adds to a zip."""
    return data_bytes + zip_entry_overhead(name)


def zip_archive_overhead() -> int:
    """Bytes a zip adds once: end of central directory records (zip64 form included)."""
    return ZIP_END_RECORD + ZIP64_END_RECORDS


def estimate_zip_bytes(entries: Iterable[tuple[str, int]]) -> int:
    """Upper bound of a zip's size with these (name, size) entries stored uncompressed."""
    return zip_archive_overhead() + sum(zip_entry_size(name, size) for name, size in entries)


def base64_bytes(raw_bytes: int) -> int:
    """Size of raw_bytes base64-encoded in 76-character lines ending in CRLF."""
    encoded = 4 * math.ceil(raw_bytes / 3)
    lines = math.ceil(encoded / B64_LINE)
    return encoded + 2 * lines


def eml_attachment_bytes(raw_bytes: int, name: str = "") -> int:
    """Upper bound of what one base64 attachment of raw_bytes adds to a message."""
    # RFC 2231 percent-encoding may triple a non-ASCII name; it appears twice (name, filename).
    return base64_bytes(raw_bytes) + MIME_PART_OVERHEAD + 6 * len(name.encode("utf-8"))


def eml_size(raw_bytes_list: Iterable[int], text_bytes: int, *, names: Sequence[str] = ()) -> int:
    """Upper bound of a MIME message's size: a text part of text_bytes (UTF-8) plus base64 attachments."""
    sizes = list(raw_bytes_list)
    padded_names = list(names) + [""] * (len(sizes) - len(names))
    # The e-mail package sends the body as 7bit (each LF becomes CRLF: at most double), quoted-printable
    # or base64, whichever is shorter; the larger of the first and the last bounds all three.
    body = max(base64_bytes(text_bytes), 2 * text_bytes)
    total = MIME_MESSAGE_OVERHEAD + MIME_PART_OVERHEAD + body
    pairs = zip(sizes, padded_names, strict=True)
    return total + sum(eml_attachment_bytes(size, name) for size, name in pairs)
