"""Small images made by tests with Pillow (nothing binary is committed)."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageDraw


def _rational(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60, 4)
    return (float(degrees), float(minutes), seconds)


def exif_bytes(
    *,
    taken_at: datetime | None = None,
    offset: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    make: str | None = "TestCam",
    model: str | None = "T-1",
    orientation: int | None = None,
) -> bytes:
    """An EXIF block with the given fields (GPS in the GPS IFD with N/S/E/W refs)."""
    exif = Image.Exif()
    if make is not None:
        exif[0x010F] = make
    if model is not None:
        exif[0x0110] = model
    if orientation is not None:
        exif[0x0112] = orientation
    sub = exif.get_ifd(0x8769)
    if taken_at is not None:
        sub[0x9003] = taken_at.strftime("%Y:%m:%d %H:%M:%S")
    if offset is not None:
        sub[0x9011] = offset
    if lat is not None and lon is not None:
        gps = exif.get_ifd(0x8825)
        gps[1] = "N" if lat >= 0 else "S"
        gps[2] = _rational(abs(lat))
        gps[3] = "E" if lon >= 0 else "W"
        gps[4] = _rational(abs(lon))
    return exif.tobytes()


def make_jpeg(
    path: Path, size: tuple[int, int] = (640, 480), *, seed: int = 0, quality: int = 85, **exif: object
) -> Path:
    """A noisy JPEG (compresses like a photo) with EXIF; different seeds give different bytes."""
    rng = random.Random(seed)
    image = Image.effect_noise(size, 40).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.rectangle((x, y, x + size[0] // 4, y + size[1] // 4), fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=quality, exif=exif_bytes(**exif))  # type: ignore[arg-type]
    return path
