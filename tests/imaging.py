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


def make_textured_jpeg(
    path: Path, size: tuple[int, int], *, grain: int = 16, quality: int = 90, seed: int = 0
) -> Path:
    """A JPEG of any size, made quickly: colour gradients (red across, green down, so a wrong turn or
    crop shows), sharp rectangles and per-pixel grain from a repeated 256 px noise tile (so the
    encoder cannot take a shortcut on flat areas). `grain` is the noise amplitude (0-128)."""
    rng = random.Random(seed)
    width, height = size
    across = Image.linear_gradient("L").rotate(90).resize(size)
    down = Image.linear_gradient("L").resize(size)
    base = Image.merge("RGB", (across, down, Image.new("L", size, 96)))
    draw = ImageDraw.Draw(base)
    for _ in range(12):
        x, y = rng.randrange(width), rng.randrange(height)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.rectangle((x, y, x + width // 6, y + height // 6), fill=colour)
    tile = Image.frombytes("RGB", (256, 256), rng.randbytes(256 * 256 * 3))
    noise = Image.new("RGB", size)
    for top in range(0, height, 256):
        for left in range(0, width, 256):
            noise.paste(tile, (left, top))
    image = Image.blend(base, noise, grain / 256)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=quality)
    return path


def ssim(first: Image.Image, second: Image.Image, *, window: int = 7) -> float:
    """Mean SSIM (Wang et al. 2004) of the luma of two same-size images, 7x7 uniform windows.

    The constants and window are scikit-image's defaults (structural_similarity), done in numpy
    so the tests need no image-processing package.
    """
    import numpy as np

    if first.size != second.size:
        raise ValueError(f"sizes differ: {first.size} != {second.size}")
    x = np.asarray(first.convert("L"), dtype=np.float64)
    y = np.asarray(second.convert("L"), dtype=np.float64)

    def mean(values: np.ndarray) -> np.ndarray:
        total = np.pad(values, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        w = window
        return (total[w:, w:] - total[:-w, w:] - total[w:, :-w] + total[:-w, :-w]) / (w * w)

    n = window * window
    mx, my = mean(x), mean(y)
    vx = (mean(x * x) - mx * mx) * n / (n - 1)
    vy = (mean(y * y) - my * my) * n / (n - 1)
    cov = (mean(x * y) - mx * my) * n / (n - 1)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    index = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(index.mean())
