"""Export files: every platform rendition is the preset's size exactly, upright, in range, under its bytes."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from journal.config import Settings
from journal.media import renditions
from journal.publish.exportfiles import FileJob, MadeFile, file_kind, make_file
from journal.publish.platforms import PLATFORMS, Platform, get_platform
from journal.publish.scrub import ExifKeep
from tests.imaging import make_textured_jpeg, ssim

MAX_PIXELS = 10**8

#: Long edges that are exact multiples of 1000, 1024 and 1080, with their halves and quarters (4:3),
#: where a DCT-scaled decode lands just under a preset (4000 / 2 = 2000 < 2048), plus the common
#: phone and camera frames.
_EDGES = (250, 500, 1000, 2000, 4000, 256, 512, 1024, 2048, 4096, 270, 540, 1080, 2160, 4320)
SOURCES: tuple[tuple[int, int], ...] = (
    *((edge, edge * 3 // 4) for edge in _EDGES),
    (4032, 3024),
    (3000, 4000),
    (8000, 2000),
    (2160, 3840),
    (1080, 1080),
    (800, 600),
    (4096, 4096),
)
ORIENTATIONS = (1, 6, 8)


Source = Callable[[tuple[int, int]], Path]


WebImage = Callable[[tuple[int, int], int], tuple[Path, tuple[int, int]]]


@pytest.fixture(scope="module")
def web_image(source: Source, tmp_path_factory: pytest.TempPathFactory) -> WebImage:
    """web_image(size, orientation): the library's web image of that source, made as the import does."""
    folder = tmp_path_factory.mktemp("web")
    made: dict[tuple[tuple[int, int], int], tuple[Path, tuple[int, int]]] = {}

    def get(size: tuple[int, int], orientation: int) -> tuple[Path, tuple[int, int]]:
        if (size, orientation) not in made:
            made[size, orientation] = make_web_image(source(size), folder, orientation)
        return made[size, orientation]

    return get


def make_web_image(src: Path, folder: Path, orientation: int) -> tuple[Path, tuple[int, int]]:
    """The web image and thumbnail of src with the import's settings; (web path, its recorded size)."""
    settings = Settings(home=folder)
    stem = f"{src.stem}-{orientation}"
    result = renditions.make_web_renditions(
        src,
        web_path=folder / f"{stem}-web.jpg",
        thumb_path=folder / f"{stem}-thumb.jpg",
        web_size=settings.web_size,
        thumb_size=settings.thumb_size,
        quality=settings.jpeg_quality,
        orientation=orientation,
        max_pixels=MAX_PIXELS,
        draft_tolerance=settings.web_size_tolerance,
    )
    return folder / f"{stem}-web.jpg", (result.web_width, result.web_height)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """source(size): that JPEG, made once per module (per xdist worker) on first use."""
    folder = tmp_path_factory.mktemp("sources")
    made: dict[tuple[int, int], Path] = {}

    def get(size: tuple[int, int]) -> Path:
        if size not in made:
            made[size] = make_textured_jpeg(folder / f"{size[0]}x{size[1]}.jpg", size)
        return made[size]

    return get


def job_for(
    src: Path,
    size: tuple[int, int],
    platform: Platform,
    orientation: int,
    dest: Path,
    web: tuple[Path, tuple[int, int]] | None = None,
) -> FileJob:
    """The FileJob the export plans for a JPEG of `size` stored with `orientation` (and its web image)."""
    return FileJob(
        photo_id=1,
        post_id=1,
        number=1,
        src=src,
        dest=dest,
        kind=file_kind("JPEG", platform),
        keep=ExifKeep(orientation=orientation),
        platform=platform,
        format="JPEG",
        width=size[0],
        height=size[1],
        orientation=orientation,
        max_pixels=MAX_PIXELS,
        web=web[0] if web else None,
        web_size=web[1] if web else None,
    )


def preset_size(width: int, height: int, platform: Platform) -> tuple[float, float, bool]:
    """The size the preset defines for an upright source, worked out here from the preset's own words.

    Centre crop to the aspect range, then scale down (never up) so that the width (Instagram) or
    the long edge is the preset's. Returns the exact (unrounded) size and whether it was scaled.
    """
    if platform.aspect_range is not None:
        low, high = platform.aspect_range
        if width / height > high:
            width = math.floor(height * high)
        elif width / height < low:
            height = math.floor(width / low)
    scale = 1.0
    if platform.width is not None:
        scale = min(scale, platform.width / width)
    if platform.long_edge is not None:
        scale = min(scale, platform.long_edge / max(width, height))
    return width * scale, height * scale, scale < 1.0


RENDITION_PRESETS = [name for name, platform in PLATFORMS.items() if platform.format != "original"]


@pytest.mark.slow
@pytest.mark.parametrize("name", RENDITION_PRESETS)
@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("size", SOURCES, ids=[f"{w}x{h}" for w, h in SOURCES])
def test_every_preset_gives_its_exact_size(
    source: Source, size: tuple[int, int], orientation: int, name: str, tmp_path: Path
) -> None:
    made = make_file(job_for(source(size), size, get_platform(name), orientation, tmp_path / name))
    assert made.made_from == "original"
    check_exact_size(made, size, orientation, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", RENDITION_PRESETS)
@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("size", SOURCES, ids=[f"{w}x{h}" for w, h in SOURCES])
def test_every_preset_gives_its_exact_size_with_a_web_image(
    source: Source, web_image: WebImage, size: tuple[int, int], orientation: int, name: str, tmp_path: Path
) -> None:
    """The same sizes when the library's web image is there; it is used exactly when it is large enough."""
    web = web_image(size, orientation)
    platform = get_platform(name)
    made = make_file(job_for(source(size), size, platform, orientation, tmp_path / name, web=web))
    assert made.made_from == ("web" if web_is_enough(size, orientation, web[1], platform) else "original")
    check_exact_size(made, size, orientation, name)


def web_is_enough(size: tuple[int, int], orientation: int, web: tuple[int, int], platform: Platform) -> bool:
    """True when the web image is smaller than the source but, cropped as the preset crops, still at least
    the preset's size (worked out here from the preset's words, as preset_size does)."""
    upright = (size[1], size[0]) if orientation in (6, 8) else size
    if web[0] >= upright[0]:
        return False
    want_w, want_h, _ = preset_size(*upright, platform)
    crop_w, crop_h, _ = preset_size(*upright, dataclasses.replace(platform, width=None, long_edge=None))
    scale = web[0] / upright[0]
    return crop_w * scale >= round(want_w) - 1e-6 and crop_h * web[1] / upright[1] >= round(want_h) - 1e-6


def check_exact_size(made: MadeFile, size: tuple[int, int], orientation: int, name: str) -> None:
    """The table test's checks: the preset's exact size, upright, in its aspect range, under its bytes."""
    upright = (size[1], size[0]) if orientation in (6, 8) else size
    platform = get_platform(name)
    assert made.error is None and made.path is not None
    with Image.open(made.path) as written:
        out = written.size
        assert written.format == "JPEG" and written.getexif().get(0x0112, 1) == 1
    assert (made.width, made.height) == out
    want_w, want_h, scaled = preset_size(*upright, platform)
    if scaled and platform.width is not None:
        assert out[0] == platform.width, (upright, out)
    elif scaled:
        assert max(out) == platform.long_edge, (upright, out)
    else:  # never upscaled: the (cropped) source as it is
        assert max(out) == round(max(want_w, want_h)), (upright, out)
    assert abs(out[0] - want_w) <= 1 and abs(out[1] - want_h) <= 1, (upright, out)
    assert out[0] <= upright[0] and out[1] <= upright[1], (upright, out)
    if platform.aspect_range is not None:
        low, high = platform.aspect_range
        assert low <= out[0] / out[1] <= high, (upright, out)
    if platform.max_file_bytes is not None:
        assert made.path.stat().st_size <= platform.max_file_bytes


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_the_original_preset_keeps_the_source_size(source: Source, orientation: int, tmp_path: Path) -> None:
    platform = get_platform("original")
    for size in ((4000, 3000), (8000, 2000), (800, 600)):
        made = make_file(job_for(source(size), size, platform, orientation, tmp_path / "original"))
        upright = (size[1], size[0]) if orientation in (6, 8) else size
        assert made.path is not None and (made.width, made.height) == upright
        with Image.open(made.path) as written:  # a lossless scrub: stored pixels, the tag tells the turn
            assert written.size == size and written.getexif().get(0x0112) == orientation


@pytest.mark.parametrize("name", [name for name, p in PLATFORMS.items() if p.max_file_bytes is not None])
def test_byte_limits_are_met_at_the_exact_size(name: str, tmp_path: Path) -> None:
    platform = get_platform(name)
    assert platform.long_edge is not None and platform.max_file_bytes is not None
    edge = platform.long_edge * 2
    size = (edge, edge * 3 // 4)
    src = make_textured_jpeg(tmp_path / "grainy.jpg", size, grain=48, quality=95)
    made = make_file(job_for(src, size, platform, 1, tmp_path / "out"))
    assert made.path is not None and max(made.width, made.height) == platform.long_edge
    assert made.path.stat().st_size <= platform.max_file_bytes


#: SSIM floor of a rendition against the slow reference (full decode, Lanczos, same crop). Measured
#: 0.955-0.99 on these grainy sources (bench/export.py prints them); what is lost is mostly the
#: grain, in the q90 re-encode (a Lanczos last pass instead of bicubic gains < 0.003). A wrong turn,
#: an off-centre crop or a blurred pass falls far below.
SSIM_FLOOR = 0.95


@pytest.mark.parametrize("name", RENDITION_PRESETS)
def test_renditions_look_like_a_slow_lanczos_resize(source: Source, name: str, tmp_path: Path) -> None:
    platform = get_platform(name)
    for size, orientation in (((4000, 3000), 6), ((4032, 3024), 1), ((8000, 2000), 8)):
        made = make_file(job_for(source(size), size, platform, orientation, tmp_path / name))
        assert made.path is not None
        with Image.open(made.path) as written:
            got = written.convert("RGB")
        reference = reference_rendition(source(size), orientation, got.size, platform)
        assert ssim(got, reference) >= SSIM_FLOOR, (name, size)


def reference_rendition(
    src: Path, orientation: int, size: tuple[int, int], platform: Platform
) -> Image.Image:
    """The slow way: full decode, upright, centre crop to the output's aspect, one Lanczos resize."""
    with Image.open(src) as image:
        image.load()
        full = renditions.upright(image.convert("RGB"), orientation)
    width, height = full.size
    aspect = size[0] / size[1]
    wide = width / height > aspect
    crop_w, crop_h = (height * aspect, height) if wide else (width, width / aspect)
    box = ((width - crop_w) / 2, (height - crop_h) / 2, (width + crop_w) / 2, (height + crop_h) / 2)
    return full.resize(size, Image.Resampling.LANCZOS, box=box)


@pytest.mark.parametrize("name", RENDITION_PRESETS)
def test_renditions_from_the_web_image_look_like_a_slow_lanczos_resize(
    source: Source, web_image: WebImage, name: str, tmp_path: Path
) -> None:
    """The same floor for a rendition made from the web image (a second resample, a q85 generation)."""
    platform = get_platform(name)
    for size, orientation in (((4000, 3000), 6), ((4032, 3024), 1), ((8000, 2000), 8)):
        web = web_image(size, orientation)
        made = make_file(job_for(source(size), size, platform, orientation, tmp_path / name, web=web))
        assert made.path is not None
        with Image.open(made.path) as written:
            got = written.convert("RGB")
        reference = reference_rendition(source(size), orientation, got.size, platform)
        assert ssim(got, reference) >= SSIM_FLOOR, (name, size, made.made_from)


# --- the web image as a starting point: when it may not be used -----------------------------------------


def _damage(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _garbage(path: Path) -> None:
    path.write_bytes(b"not an image at all" * 100)


@pytest.mark.parametrize("problem", ["missing", "truncated", "garbage", "stale", "another shape"])
def test_a_web_image_that_cannot_be_used_falls_back_to_the_original(
    source: Source, problem: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    size = (4000, 3000)
    web_path, web_size = make_web_image(source(size), tmp_path, 1)
    if problem == "missing":
        web_path.unlink()
    elif problem == "truncated":
        _damage(web_path)
    elif problem == "garbage":
        _garbage(web_path)
    elif problem == "stale":  # the row records another size (e.g. the web size setting changed since)
        web_size = (1024, 768)
    else:  # the right recorded size, but not this photo's shape
        Image.new("RGB", web_size).crop((0, 0, web_size[0], web_size[1] // 2)).save(web_path, "JPEG")
        web_size = (web_size[0], web_size[1] // 2)
    platform = get_platform("instagram")
    made = make_file(job_for(source(size), size, platform, 1, tmp_path / "out", web=(web_path, web_size)))
    assert made.error is None and made.made_from == "original"
    assert (made.width, made.height) == (1080, 810)
    with Image.open(made.path or tmp_path / "none") as written:
        assert written.size == (1080, 810)


def test_a_web_image_no_smaller_than_the_original_is_not_used(source: Source, tmp_path: Path) -> None:
    """A 1200x900 original: its web image is a re-encoded copy at the same size; the original is as cheap."""
    size = (1200, 900)
    web = make_web_image(source(size), tmp_path, 1)
    assert web[1] == size
    made = make_file(job_for(source(size), size, get_platform("email"), 1, tmp_path / "out", web=web))
    assert made.made_from == "original" and (made.width, made.height) == size


def test_the_web_image_gives_the_same_exif_and_passes_the_leak_check(tmp_path: Path) -> None:
    """The web image has no EXIF: the kept fields come from the job (the original's metadata), as before."""
    size = (4000, 3000)
    src = make_textured_jpeg(tmp_path / "src.jpg", size)
    web = make_web_image(src, tmp_path, 6)
    keep = ExifKeep(
        orientation=1,
        taken_at="2025-05-01T09:00:00",
        utc_offset="+09:00",
        make="TestCam",
        model="T-1",
        position=(39.03, 125.75),
        alt=30.0,
    )
    platform = get_platform("instagram")
    files = {}
    for used in (web, None):
        job = job_for(src, size, platform, 6, tmp_path / f"out-{used is None}", web=used)
        made = make_file(dataclasses.replace(job, keep=keep, gps_allowed=True))
        assert made.error is None and made.path is not None
        files[made.made_from] = made.path
    assert set(files) == {"web", "original"}
    with Image.open(files["web"]) as from_web, Image.open(files["original"]) as from_original:
        assert from_web.size == from_original.size == (1080, 1350)
        assert from_web.info["exif"] == from_original.info["exif"]
        exif = from_web.getexif()
        assert exif[0x010F] == "TestCam" and exif.get_ifd(0x8825)  # camera and GPS kept (exact mode)
    refused = make_file(
        dataclasses.replace(job_for(src, size, platform, 6, tmp_path / "leak", web=web), keep=keep)
    )
    assert (
        refused.path is None and refused.error is not None and "GPS" in refused.error
    )  # leak check re-reads


def _halves(mode: str, size: tuple[int, int], left: tuple[int, ...], right: tuple[int, ...]) -> Image.Image:
    image = Image.new(mode, size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


@pytest.mark.parametrize("kind", ["cmyk", "display p3", "large profile"])
def test_colours_and_profile_are_the_same_from_the_web_image(kind: str, tmp_path: Path) -> None:
    """CMYK is converted once (at import for the web image); RGB profiles kept or converted as render() is."""
    size = (4000, 3000)
    samples = Path(__file__).resolve().parents[2] / "shared" / "samples" / "exif"
    if kind == "cmyk":
        image = _halves("CMYK", size, (0, 255, 255, 0), (255, 255, 0, 0))
        icc = None
    else:
        sample = "photoprism__Iceland-P3.jpg" if kind == "display p3" else "immich__thompson-springs.jpg"
        with Image.open(samples / sample) as profiled:
            icc = profiled.info["icc_profile"]
        image = _halves("RGB", size, (220, 40, 30), (30, 60, 200))
    src = tmp_path / "src.jpg"
    image.save(src, "JPEG", quality=95, **({"icc_profile": icc} if icc else {}))
    web = make_web_image(src, tmp_path, 1)
    platform = get_platform("email")
    out: dict[str, tuple[tuple[int, ...], tuple[int, ...], bytes | None]] = {}
    for used in (web, None):
        made = make_file(job_for(src, size, platform, 1, tmp_path / f"out-{used is None}", web=used))
        assert made.path is not None
        with Image.open(made.path) as written:
            rgb = written.convert("RGB")
            left, right = rgb.getpixel((200, 600)), rgb.getpixel((1400, 600))
            assert isinstance(left, tuple) and isinstance(right, tuple)
            out[made.made_from] = (left, right, written.info.get("icc_profile"))
    assert set(out) == {"web", "original"}
    for from_web, from_original in zip(out["web"][:2], out["original"][:2], strict=True):
        assert all(abs(a - b) <= 4 for a, b in zip(from_web, from_original, strict=True)), out
    assert undated(out["web"][2]) == undated(out["original"][2])
    if kind == "cmyk":  # no profile: Pillow's plain conversion, as at import
        assert out["web"][2] is None
    elif kind == "display p3":
        assert out["web"][2] == icc  # a small RGB profile stays as it is
    else:  # one conversion to sRGB (at import for the web image), not a second one
        assert undated(out["web"][2]) == undated(renditions._srgb_profile_bytes())


def undated(icc: bytes | None) -> bytes | None:
    """An ICC profile without its creation time (header bytes 24-36): LittleCMS stamps each one it makes."""
    return None if icc is None else icc[:24] + icc[36:]
