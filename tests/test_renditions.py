"""Renditions: sizes, modes, orientation, colour, metadata stripping, bombs and broken files."""

from __future__ import annotations

import io
import json
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image, ImageChops, ImageCms, ImageStat

from journal.errors import ImageTooLarge, UnreadableFile
from journal.media import renditions
from journal.media.renditions import RenditionResult, make_web_renditions, render, save_jpeg

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "exif"
RED = (255, 0, 0)
BLUE = (0, 0, 255)
LIMIT = 50_000_000


@pytest.fixture(autouse=True)
def _restore_pillow_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """render() sets Image.MAX_IMAGE_PIXELS; put it back so other tests see Pillow's default."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    yield
    renditions.set_decode_lock(None)


# --- helpers -------------------------------------------------------------------------------


def marked(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Blue image with a red block in the top-left corner (a quarter of each side)."""
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (0, 0, size[0] // 4, size[1] // 4))
    return image.convert(mode) if mode != "RGB" else image


def noisy(size: tuple[int, int]) -> Image.Image:
    """Photo-like content: noise over soft colour blocks, so resampling errors would show."""
    base = Image.linear_gradient("L").resize(size).convert("RGB")
    noise = Image.effect_noise(size, 30).convert("RGB")
    image = Image.blend(base, noise, 0.4)
    image.paste((200, 40, 40), (size[0] // 3, size[1] // 3, size[0] // 2, size[1] // 2))
    return image


def save(image: Image.Image, path: Path, **params: object) -> Path:
    image.save(path, **params)  # type: ignore[arg-type]
    return path


def outputs(tmp_path: Path) -> dict[str, Path]:
    return {"web_path": tmp_path / "out" / "web.jpg", "thumb_path": tmp_path / "out" / "thumb.jpg"}


def renditions_of(src: Path, tmp_path: Path, **options: object) -> RenditionResult:
    params: dict[str, object] = {"orientation": None, "max_pixels": LIMIT, **options}
    return make_web_renditions(src, **outputs(tmp_path), **params)  # type: ignore[arg-type]


def difference(a: Image.Image, b: Image.Image, size: tuple[int, int] = (64, 48)) -> float:
    """Mean absolute difference (0-255) of two images compared at a small common size."""
    small_a = a.convert("RGB").resize(size, Image.Resampling.BOX)
    small_b = b.convert("RGB").resize(size, Image.Resampling.BOX)
    return sum(ImageStat.Stat(ImageChops.difference(small_a, small_b)).mean) / 3


def near(pixel: object, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(int(p) - c) <= tolerance for p, c in zip(pixel, colour, strict=False))


def corner_colours(image: Image.Image) -> dict[str, object]:
    """Colour a little inside each corner (inside the red block when it is there)."""
    w, h = image.size
    dx, dy = max(1, w // 16), max(1, h // 16)
    return {
        "top-left": image.getpixel((dx, dy)),
        "top-right": image.getpixel((w - 1 - dx, dy)),
        "bottom-left": image.getpixel((dx, h - 1 - dy)),
        "bottom-right": image.getpixel((w - 1 - dx, h - 1 - dy)),
    }


def png_with_size(width: int, height: int) -> bytes:
    """A small valid PNG whose IHDR claims width x height (CRC fixed), as a decompression bomb."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


def tiff_rgb16(width: int, height: int, left: tuple[int, int, int], right: tuple[int, int, int]) -> bytes:
    """Uncompressed 16-bit RGB TIFF (Pillow cannot write one): left half one colour, right the other."""
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 3, 134),  # BitsPerSample: offset of (16, 16, 16)
        (259, 3, 1, 1),
        (262, 3, 1, 2),
        (273, 4, 1, 140),  # pixel data offset
        (277, 3, 1, 3),
        (278, 4, 1, height),
        (279, 4, 1, width * height * 6),
        (284, 3, 1, 1),
    ]
    out = bytearray(b"II*\x00" + struct.pack("<IH", 8, len(entries)))
    for tag, kind, count, value in entries:
        packed = struct.pack("<HH", value, 0) if kind == 3 and count == 1 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, count) + packed
    out += struct.pack("<I", 0) + struct.pack("<HHH", 16, 16, 16)
    row = struct.pack("<3H", *left) * (width // 2) + struct.pack("<3H", *right) * (width - width // 2)
    return bytes(out + row * height)


def exif_with_gps(orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    if orientation is not None:
        exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (48.0, 51.0, 24.0), "E", (2.0, 21.0, 3.0)
    return exif.tobytes()


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# --- sizes and modes -------------------------------------------------------------------------


def test_web_and_thumb_sizes_and_mode(tmp_path: Path) -> None:
    src = save(noisy((1200, 900)), tmp_path / "in.jpg", quality=90)
    result = renditions_of(src, tmp_path, web_size=600, thumb_size=200)
    assert result == RenditionResult(600, 450, 200, 150)
    for name, size in (("web.jpg", (600, 450)), ("thumb.jpg", (200, 150))):
        with Image.open(tmp_path / "out" / name) as out:
            assert (out.format, out.mode, out.size) == ("JPEG", "RGB", size)


def test_default_sizes_keep_the_aspect_of_a_portrait(tmp_path: Path) -> None:
    src = save(noisy((750, 1500)), tmp_path / "in.png")
    assert renditions_of(src, tmp_path, web_size=1024, thumb_size=200) == RenditionResult(512, 1024, 100, 200)


def test_small_images_are_never_upscaled(tmp_path: Path) -> None:
    src = save(noisy((300, 200)), tmp_path / "in.jpg")
    assert renditions_of(src, tmp_path) == RenditionResult(300, 200, 300, 200)


def test_draft_scaled_jpeg_matches_a_full_decode(tmp_path: Path) -> None:
    source = noisy((2400, 1800))
    src = save(source, tmp_path / "in.jpg", quality=95)
    image = render(src, long_edge=500, orientation=None, max_pixels=LIMIT)  # decoded at 1/4 (600 px)
    assert image.size == (500, 375)
    reference = source.resize((500, 375), Image.Resampling.LANCZOS)
    assert difference(image, reference) < 2.0


def test_draft_tolerance_lets_jpeg_decode_at_half_scale(tmp_path: Path) -> None:
    src = save(noisy((1000, 750)), tmp_path / "in.jpg")
    exact = render(src, long_edge=512, orientation=None, max_pixels=LIMIT)
    quick = render(src, long_edge=512, orientation=None, max_pixels=LIMIT, draft_tolerance=0.03)
    assert exact.size == (512, 384)
    assert quick.size == (500, 375)  # DCT scale 1/2, 2.3 % short of 512: no resampling at all
    assert difference(exact, quick) < 2.0


def test_draft_tolerance_also_skips_resampling_of_other_formats(tmp_path: Path) -> None:
    src = save(noisy((1000, 750)), tmp_path / "in.png")
    for tolerance, size in ((0.03, (500, 375)), (0.01, (512, 384))):
        image = render(src, long_edge=512, orientation=None, max_pixels=LIMIT, draft_tolerance=tolerance)
        assert image.size == size


def test_long_edge_none_keeps_the_full_size(tmp_path: Path) -> None:
    src = save(noisy((640, 480)), tmp_path / "in.webp")
    assert render(src, long_edge=None, orientation=6, max_pixels=LIMIT).size == (480, 640)


# --- orientation -----------------------------------------------------------------------------

#: Where the stored top-left corner ends up once the EXIF orientation is applied.
CORNER_AFTER = {
    1: "top-left",
    2: "top-right",
    3: "bottom-right",
    4: "bottom-left",
    5: "top-left",
    6: "top-right",
    7: "bottom-right",
    8: "bottom-left",
}


@pytest.mark.parametrize("orientation", [3, 6, 8, 1, 2, 4, 5, 7])
def test_orientation_rotates_the_pixels(tmp_path: Path, orientation: int) -> None:
    src = save(marked((320, 240)), tmp_path / "in.jpg", quality=95, exif=exif_with_gps(orientation))
    result = renditions_of(src, tmp_path, web_size=160, thumb_size=40, orientation=orientation)
    upright = (120, 160) if orientation >= 5 else (160, 120)
    assert (result.web_width, result.web_height) == upright
    for name in ("web.jpg", "thumb.jpg"):
        with Image.open(tmp_path / "out" / name) as out:
            colours = corner_colours(out)
        red = [corner for corner, colour in colours.items() if near(colour, RED)]
        assert red == [CORNER_AFTER[orientation]], (name, colours)


@pytest.mark.parametrize("orientation", [None, 0, 9])
def test_missing_or_invalid_orientation_leaves_pixels_alone(tmp_path: Path, orientation: int | None) -> None:
    src = save(marked((160, 120)), tmp_path / "in.png")
    image = render(src, long_edge=None, orientation=orientation, max_pixels=LIMIT)
    assert image.size == (160, 120)
    assert near(corner_colours(image)["top-left"], RED)


def test_heic_sample_comes_out_upright() -> None:
    """iPhone 15 Pro: stored 4032x3024 with irot, EXIF Orientation 6; libheif already rotates."""
    src = SAMPLES / "photoprism__iphone_15_pro.heic"
    if not src.exists():
        pytest.skip("shared EXIF samples not present")
    image = render(src, long_edge=2048, orientation=6, max_pixels=LIMIT)
    assert image.size == (1536, 2048)


def test_heic_rotation_is_applied_once(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    src = tmp_path / "in.heic"
    pillow_heif.from_pillow(marked((64, 48))).save(src, quality=90, exif=exif_with_gps(6))  # stored with irot
    image = render(src, long_edge=None, orientation=6, max_pixels=LIMIT)  # 6 as read from the raw EXIF
    assert image.size == (48, 64)
    assert [c for c, colour in corner_colours(image).items() if near(colour, RED)] == ["top-right"]


def test_avif_orientation_comes_from_the_container(tmp_path: Path) -> None:
    src = save(marked((64, 48)), tmp_path / "in.avif", quality=90, exif=exif_with_gps(6))  # irot/imir
    image = render(src, long_edge=None, orientation=None, max_pixels=LIMIT)
    assert image.size == (48, 64)
    assert [c for c, colour in corner_colours(image).items() if near(colour, RED)] == ["top-right"]


def test_heic_is_shrunk_in_strips_without_changing_the_picture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    monkeypatch.setattr(renditions, "STRIP_ROWS", 8)  # reduce(4) in strips of 32 rows, the last one of 14
    source = noisy((400, 302))
    src = tmp_path / "in.heic"
    pillow_heif.from_pillow(source).save(src, quality=95)
    image = render(src, long_edge=100, orientation=None, max_pixels=LIMIT)
    assert (image.mode, image.size) == ("RGB", (100, 76))
    assert difference(image, source.resize((100, 76), Image.Resampling.LANCZOS)) < 3.0


# --- modes and colour ------------------------------------------------------------------------


def test_png_alpha_is_flattened_on_white(tmp_path: Path) -> None:
    image = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (50, 25, 150, 75))
    src = save(image, tmp_path / "in.png")
    renditions_of(src, tmp_path, web_size=100, thumb_size=50)
    with Image.open(tmp_path / "out" / "web.jpg") as out:
        assert out.mode == "RGB"
        assert near(out.getpixel((2, 2)), (255, 255, 255), 8)
        assert near(out.getpixel((50, 25)), RED)


def test_grey_png_with_alpha_is_flattened(tmp_path: Path) -> None:
    image = Image.new("LA", (40, 40), (0, 0))
    image.paste((0, 255), (10, 10, 30, 30))
    out = render(save(image, tmp_path / "in.png"), long_edge=None, orientation=None, max_pixels=LIMIT)
    assert out.mode == "RGB"
    assert out.getpixel((1, 1)) == (255, 255, 255)
    assert out.getpixel((20, 20)) == (0, 0, 0)


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_png(tmp_path: Path, transparent: bool) -> None:
    image = marked((80, 60)).quantize(4)
    params: dict[str, object] = {}
    if transparent:
        blue_index = image.getpixel((79, 59))
        params["transparency"] = blue_index
    src = save(image, tmp_path / "in.png", **params)
    out = render(src, long_edge=40, orientation=None, max_pixels=LIMIT)
    assert (out.mode, out.size) == ("RGB", (40, 30))
    assert near(out.getpixel((2, 2)), RED)
    assert near(out.getpixel((38, 28)), (255, 255, 255) if transparent else BLUE)


def test_sixteen_bit_grey_tiff_is_scaled_not_clipped(tmp_path: Path) -> None:
    image = Image.new("I;16", (64, 16))
    image.paste(32896, (0, 0, 32, 16))  # mid grey in 16 bits
    image.paste(65535, (32, 0, 64, 16))
    out = render(save(image, tmp_path / "in.tif"), long_edge=None, orientation=None, max_pixels=LIMIT)
    assert out.mode == "RGB"
    assert near(out.getpixel((8, 8)), (128, 128, 128), 2)
    assert out.getpixel((56, 8)) == (255, 255, 255)


def test_sixteen_bit_rgb_tiff(tmp_path: Path) -> None:
    src = tmp_path / "in.tiff"
    src.write_bytes(tiff_rgb16(64, 32, left=(65535, 0, 0), right=(0, 32896, 65535)))
    renditions_of(src, tmp_path)
    with Image.open(tmp_path / "out" / "web.jpg") as out:
        assert (out.mode, out.size) == ("RGB", (64, 32))
        assert near(out.getpixel((8, 16)), RED, 12)
        assert near(out.getpixel((56, 16)), (0, 128, 255), 12)


def test_sixteen_bit_grey_png(tmp_path: Path) -> None:
    image = Image.new("I;16", (32, 32), 65535)
    out = render(save(image, tmp_path / "in.png"), long_edge=16, orientation=None, max_pixels=LIMIT)
    assert (out.mode, out.size) == ("RGB", (16, 16))
    assert out.getpixel((8, 8)) == (255, 255, 255)


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    image = Image.new("CMYK", (200, 100), (0, 255, 255, 0))  # red
    image.paste((255, 255, 0, 0), (100, 0, 200, 100))  # blue
    src = save(image, tmp_path / "in.jpg", quality=95)
    renditions_of(src, tmp_path, web_size=100, thumb_size=50)
    with Image.open(tmp_path / "out" / "web.jpg") as out:
        assert (out.mode, out.size) == ("RGB", (100, 50))
        assert near(out.getpixel((20, 25)), RED)
        assert near(out.getpixel((80, 25)), BLUE)


def test_one_bit_and_grey_images(tmp_path: Path) -> None:
    for mode in ("1", "L"):
        src = save(marked((64, 48), mode), tmp_path / f"in-{mode}.png")
        out = render(src, long_edge=32, orientation=None, max_pixels=LIMIT)
        assert (out.mode, out.size) == ("RGB", (32, 24))


def test_rgb_icc_profile_is_kept(tmp_path: Path) -> None:
    icc = srgb_icc()
    src = save(noisy((400, 300)), tmp_path / "in.jpg", icc_profile=icc)
    renditions_of(src, tmp_path, web_size=200, thumb_size=100)
    for name in ("web.jpg", "thumb.jpg"):
        with Image.open(tmp_path / "out" / name) as out:
            assert out.info.get("icc_profile") == icc


def test_no_profile_in_means_no_profile_out(tmp_path: Path) -> None:
    src = save(noisy((400, 300)), tmp_path / "in.jpg")
    renditions_of(src, tmp_path)
    with Image.open(tmp_path / "out" / "web.jpg") as out:
        assert not out.info.get("icc_profile")


def test_to_srgb_converts_and_embeds_srgb(tmp_path: Path) -> None:
    sample = SAMPLES / "photoprism__Iceland-P3.jpg"
    if not sample.exists():
        pytest.skip("shared EXIF samples not present")
    with Image.open(sample) as photo:
        icc = photo.info["icc_profile"]  # Display P3
    src = save(noisy((200, 150)), tmp_path / "in.png", icc_profile=icc)
    kept = render(src, long_edge=None, orientation=None, max_pixels=LIMIT)
    converted = render(src, long_edge=None, orientation=None, max_pixels=LIMIT, to_srgb=True)
    assert kept.info == {"icc_profile": icc}
    # LittleCMS stamps each profile it makes with the time (header bytes 24-36); the cached one may be older.
    made = converted.info["icc_profile"]
    want = srgb_icc()
    assert set(converted.info) == {"icc_profile"} and made[:24] + made[36:] == want[:24] + want[36:]
    assert converted.getpixel((80, 60)) != kept.getpixel((80, 60))  # saturated red: P3 != sRGB


def test_grey_profile_on_rgb_pixels_is_dropped(tmp_path: Path) -> None:
    grey = bytearray(srgb_icc())
    grey[16:20] = b"GRAY"  # a profile that cannot describe RGB pixels
    src = save(noisy((100, 80)), tmp_path / "in.png", icc_profile=bytes(grey))
    assert render(src, long_edge=None, orientation=None, max_pixels=LIMIT).info == {}


# --- metadata stripping ----------------------------------------------------------------------


def test_renditions_carry_no_exif_gps_xmp_or_comment(tmp_path: Path) -> None:
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><exif:GPSLatitude>48,51N</exif:GPSLatitude></x:xmpmeta>'
    src = save(noisy((800, 600)), tmp_path / "in.jpg", exif=exif_with_gps(1), comment=b"secret", xmp=xmp)
    with Image.open(src) as original:
        assert original.getexif().get_ifd(0x8825)  # the source does have GPS
    renditions_of(src, tmp_path, web_size=400, thumb_size=100)
    for name in ("web.jpg", "thumb.jpg"):
        path = tmp_path / "out" / name
        with Image.open(path) as out:
            assert len(out.getexif()) == 0
            assert not out.getexif().get_ifd(0x8825)
            assert not {"exif", "xmp", "comment"} & set(out.info)
        data = path.read_bytes()
        assert b"Exif\x00\x00" not in data and b"TestCam" not in data and b"secret" not in data


def test_png_exif_chunk_is_not_copied(tmp_path: Path) -> None:
    src = save(noisy((100, 80)), tmp_path / "in.png", exif=exif_with_gps(1))
    renditions_of(src, tmp_path)
    with Image.open(tmp_path / "out" / "web.jpg") as out:
        assert len(out.getexif()) == 0


def test_render_returns_only_the_profile_in_info(tmp_path: Path) -> None:
    params = {"exif": exif_with_gps(1), "comment": b"c", "icc_profile": srgb_icc()}
    src = save(noisy((100, 80)), tmp_path / "in.jpg", **params)
    assert set(render(src, long_edge=50, orientation=1, max_pixels=LIMIT).info) == {"icc_profile"}


def test_save_jpeg_writes_given_exif_only(tmp_path: Path) -> None:
    image = noisy((100, 80))
    image.info["comment"] = b"from the source"
    exif = Image.Exif()
    exif[0x0110] = "Export"
    staging = tmp_path / "staging"
    save_jpeg(image, tmp_path / "a" / "out.jpg", quality=80, staging=staging, exif=exif.tobytes())
    with Image.open(tmp_path / "a" / "out.jpg") as out:
        assert out.getexif().get(0x0110) == "Export"
        assert "comment" not in out.info
    assert leftovers(staging) == []


# --- export renditions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "orientation", "expected"),
    [
        ((1600, 900), 1, (1080, 608)),  # 1.78 is within 4:5..1.91: no crop
        ((2000, 800), 1, (1080, 565)),  # 2.5 -> cropped to 1.91
        ((900, 1600), 1, (864, 1080)),  # 0.5625 -> cropped to 4:5
        ((1600, 900), 6, (864, 1080)),  # stored landscape, upright portrait: crop in upright axes
    ],
)
def test_crop_aspect_clamps_centred(
    tmp_path: Path, size: tuple[int, int], orientation: int, expected: tuple[int, int]
) -> None:
    src = save(noisy(size), tmp_path / "in.jpg")
    image = render(src, long_edge=1080, orientation=orientation, max_pixels=LIMIT, crop_aspect=(4 / 5, 1.91))
    assert image.size == expected


def test_crop_is_centred(tmp_path: Path) -> None:
    image = Image.new("RGB", (300, 100), RED)
    image.paste(BLUE, (100, 0, 200, 100))  # blue middle third
    src = save(image, tmp_path / "in.png")
    out = render(src, long_edge=None, orientation=None, max_pixels=LIMIT, crop_aspect=(1.0, 1.0))
    assert out.size == (100, 100)
    assert all(near(colour, BLUE) for colour in corner_colours(out).values())


# --- refusals --------------------------------------------------------------------------------


def test_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    src = tmp_path / "bomb.png"
    src.write_bytes(png_with_size(100_000, 100_000))
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge, match=r"10000000000 pixels \(limit 50000000\)"):
        renditions_of(src, tmp_path)
    assert time.perf_counter() - started < 1.0
    assert leftovers(tmp_path / "out") == []


@pytest.mark.parametrize("warnings_are_errors", [True, False])
def test_image_just_over_the_limit_is_refused(tmp_path: Path, warnings_are_errors: bool) -> None:
    """Between 1x and 2x the limit Pillow only warns: refused either way, whatever the filters."""
    src = save(noisy((100, 80)), tmp_path / "in.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error" if warnings_are_errors else "ignore")
        with pytest.raises(ImageTooLarge, match="8000 pixels"):
            render(src, long_edge=50, orientation=None, max_pixels=5_000)


def test_image_at_the_limit_is_accepted(tmp_path: Path) -> None:
    src = save(noisy((100, 80)), tmp_path / "in.jpg")
    assert render(src, long_edge=50, orientation=None, max_pixels=8_000).size == (50, 40)


def test_heif_over_the_limit_is_refused_before_decoding() -> None:
    src = SAMPLES / "photoprism__iphone_15_pro.heic"
    if not src.exists():
        pytest.skip("shared EXIF samples not present")
    with pytest.raises(ImageTooLarge, match="12192768 pixels"):
        render(src, long_edge=2048, orientation=6, max_pixels=1_000_000)


def test_truncated_jpeg_is_unreadable_and_leaves_no_file(tmp_path: Path) -> None:
    data = save(noisy((800, 600)), tmp_path / "whole.jpg", quality=90).read_bytes()
    src = tmp_path / "cut.jpg"
    src.write_bytes(data[: len(data) // 2])
    staging = tmp_path / "staging"
    with pytest.raises(UnreadableFile, match="truncated") as caught:
        renditions_of(src, tmp_path, staging=staging)
    assert "\n" not in str(caught.value)
    assert leftovers(tmp_path / "out") == []
    assert leftovers(staging) == []


def test_zero_byte_file_is_unreadable(tmp_path: Path) -> None:
    src = tmp_path / "empty.jpg"
    src.write_bytes(b"")
    with pytest.raises(UnreadableFile, match="empty file"):
        renditions_of(src, tmp_path)
    assert leftovers(tmp_path / "out") == []


@pytest.mark.parametrize(
    "content",
    [b"hello, not an image at all\n" * 10, b"GIF89a" + bytes(100), b"\xff\xd8\xff\xe0" + bytes(40)],
)
def test_other_content_is_unreadable(tmp_path: Path, content: bytes) -> None:
    src = tmp_path / "file.jpg"
    src.write_bytes(content)
    with pytest.raises(UnreadableFile):
        renditions_of(src, tmp_path)


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="cannot read file"):
        renditions_of(tmp_path / "nope.jpg", tmp_path)


def test_bad_arguments_are_programming_errors(tmp_path: Path) -> None:
    src = save(noisy((50, 40)), tmp_path / "in.png")
    with pytest.raises(ValueError):
        renditions_of(src, tmp_path, web_size=100, thumb_size=200)
    with pytest.raises(ValueError):
        render(src, long_edge=0, orientation=None, max_pixels=LIMIT)
    with pytest.raises(ValueError):
        save_jpeg(noisy((10, 10)), tmp_path / "x.jpg", quality=0)


# --- the decode lock -------------------------------------------------------------------------


class CountingLock:
    def __init__(self) -> None:
        self.entered = 0
        self._lock = threading.Lock()

    def __enter__(self) -> CountingLock:
        self._lock.acquire()
        self.entered += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def test_decode_lock_is_held_only_for_big_full_size_decodes(tmp_path: Path) -> None:
    lock = CountingLock()
    renditions.set_decode_lock(lock, min_pixels=10_000)
    render(save(noisy((200, 100)), tmp_path / "big.png"), long_edge=50, orientation=None, max_pixels=LIMIT)
    assert lock.entered == 1
    render(save(noisy((50, 40)), tmp_path / "small.png"), long_edge=50, orientation=None, max_pixels=LIMIT)
    jpeg = save(noisy((800, 600)), tmp_path / "big.jpg")  # decoded at 1/8 scale: 100x75
    render(jpeg, long_edge=100, orientation=None, max_pixels=LIMIT)
    assert lock.entered == 1


# --- the shared sample corpus ----------------------------------------------------------------


def _samples() -> list[tuple[str, bool, int | None]]:
    oracle = SAMPLES / "oracle.json"
    if not oracle.exists():
        return []
    return [(o["file"], bool(o.get("broken")), o.get("orientation")) for o in json.loads(oracle.read_text())]


@pytest.mark.parametrize(("name", "broken", "orientation"), _samples())
def test_every_sample_renders_or_is_reported_unreadable(
    tmp_path: Path, name: str, broken: bool, orientation: int | None
) -> None:
    src = SAMPLES / name
    try:
        result = renditions_of(src, tmp_path, orientation=orientation, max_pixels=200_000_000)
    except UnreadableFile:
        assert broken, f"{name} should render"
        assert leftovers(tmp_path / "out") == []
        return
    assert max(result.web_width, result.web_height) <= 2048
    assert max(result.thumb_width, result.thumb_height) <= 400
    with Image.open(tmp_path / "out" / "web.jpg") as out:
        assert (out.mode, out.size) == ("RGB", (result.web_width, result.web_height))
        assert len(out.getexif()) == 0


@pytest.mark.parametrize(("size", "factor"), [((97, 61), 2), ((100, 75), 3), ((64, 130), 4)])
def test_strip_reduce_equals_a_whole_image_reduce(
    monkeypatch: pytest.MonkeyPatch, size: tuple[int, int], factor: int
) -> None:
    monkeypatch.setattr(renditions, "STRIP_ROWS", 5)
    image = noisy(size)
    frame = SimpleNamespace(mode="RGB", size=size, stride=size[0] * 3)
    reduced = renditions._reduce_heif(frame, memoryview(image.tobytes()), factor)  # type: ignore[arg-type]
    assert reduced.tobytes() == image.reduce(factor).tobytes()
