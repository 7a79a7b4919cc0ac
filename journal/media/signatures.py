"""Image formats told by their signatures: a file's first bytes, read without a decoder.

HEIF and AVIF share one container (an ISO BMFF `ftyp` box): telling them apart means reading its
brands, which each caller does its own way (see metadata and renditions).
"""

from __future__ import annotations

#: TIFF's byte orders, classic and BigTIFF (DNG and other TIFF-based raw files start the same way).
_TIFF_STARTS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def still_format(head: bytes) -> str | None:
    """ "JPEG", "PNG", "WEBP" or "TIFF" (Pillow's names) from a file's first 12 bytes; None otherwise."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in _TIFF_STARTS:
        return "TIFF"
    return None
