"""Images with raw, possibly malformed EXIF values (tests/imaging.py writes only valid ones)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def raw_exif(
    *,
    taken_at: str | None = None,
    offset: str | None = None,
    subsec: str | None = None,
    gps: dict[int, object] | None = None,
    orientation: int | None = None,
) -> Image.Exif:
    """An EXIF block holding exactly the given strings and GPS IFD entries, checked by nothing."""
    exif = Image.Exif()
    exif[0x010F] = "EdgeCam"
    if orientation is not None:
        exif[0x0112] = orientation
    sub = exif.get_ifd(0x8769)
    if taken_at is not None:
        sub[0x9003] = taken_at
    if offset is not None:
        sub[0x9011] = offset
    if subsec is not None:
        sub[0x9291] = subsec
    if gps:
        exif.get_ifd(0x8825).update(gps)
    return exif


def jpeg_with(path: Path, size: tuple[int, int] = (64, 48), colour: int = 0, **fields: object) -> Path:
    """A small JPEG with raw EXIF fields (see raw_exif); `colour` makes the bytes differ."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, (colour % 256, (colour * 7) % 256, (colour * 13) % 256))
    image.save(path, "JPEG", exif=raw_exif(**fields))  # type: ignore[arg-type]
    return path
