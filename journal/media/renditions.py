"""Thumbnails, web images and per-platform renditions: decode once at reduced scale, strip metadata.

Speed and memory come from never holding more pixels than the output needs:

- JPEG is decoded at 1/2, 1/4 or 1/8 scale by libjpeg's DCT scaling (``Image.draft``), choosing the
  smallest scale that is still at least the requested size.
- HEIF is decoded by libheif at full size (HEVC has no scaled decoding), then shrunk strip by strip
  straight from libheif's buffer, so no second full-size copy is ever made.
- What is left is an integer ``reduce()`` (box average) followed by one bicubic pass for the last
  factor below 2, on the smallest image possible; orientation, flattening and colour conversion run
  on the small result. The thumbnail is made from the web image, not from the original.

Renditions carry no EXIF, XMP, GPS or comments (they may be shared); only the colour profile stays.
"""

from __future__ import annotations

import functools
import importlib
import io
import logging
import math
import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageCms, UnidentifiedImageError

from journal.errors import ImageTooLarge, UnreadableFile, UnsupportedFile
from journal.media.geometry import Frame, plan_geometry
from journal.media.signatures import still_format
from journal.storage import atomic_write

if TYPE_CHECKING:
    from pillow_heif import HeifImage

logger = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
Size = tuple[int, int]

#: After the integer reduce() the remaining factor (1-2x) is resampled with this filter. BICUBIC
#: costs ~120 ms on a 12 MP frame against ~70 ms for BILINEAR, but stays sharp; LANCZOS doubles it.
RESAMPLE = Image.Resampling.BICUBIC
#: A platform rendition made from the stored web image shrinks it by less than 2x (2048 px to the
#: 1080-2000 px of the presets), where Hamming's one-tap-wide window costs ~40% less than bicubic's
#: (18.6 against 30.2 ms for 2048x1536 -> 1080x810) for 0.003 less SSIM against a full-decode Lanczos
#: resize (0.992 against 0.995; bench/export.py prints it per preset).
COPY_RESAMPLE = Image.Resampling.HAMMING
#: reduce() by int(ratio / gap) first: 1.0 shrinks by the whole integer part, as vips does.
REDUCING_GAP = 1.0
#: Rows per strip when shrinking libheif's buffer (times the reduce factor): a few MB per strip.
STRIP_ROWS = 64
#: libheif decoding threads. One per process: the import runs one worker per core anyway, and with
#: more, glibc's per-thread arenas keep freed tile buffers: over five 48 MP HEICs a worker's RSS
#: crept from 90 to 144 MB (peak 280 -> 350 MB) with 2 or 4 threads, and stayed at 40 MB with 1.
HEIF_DECODE_THREADS = 1
#: RGB profiles up to this size are embedded as they are; bigger ones (LUT-based, sometimes MBs)
#: would outweigh a thumbnail, so their pixels are converted to sRGB instead.
MAX_EMBEDDED_ICC = 16 * 1024
#: EXIF Orientation (tag 0x0112) -> the transpose that makes the pixels upright (EXIF 2.32, 4.6.4 A).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_TAG = 0x0112
#: Modes that reduce() and resize() handle directly (the alpha ones premultiplied by Pillow).
_RESIZABLE = frozenset({"L", "LA", "La", "RGB", "RGBA", "RGBa", "CMYK"})
#: ICC colour space signature (header bytes 16-20) each output-side mode needs.
_ICC_SPACE = {"RGB": b"RGB ", "CMYK": b"CMYK", "L": b"GRAY"}
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_PLUGIN_MODULES = {
    "WEBP": "PIL.WebPImagePlugin",
    "TIFF": "PIL.TiffImagePlugin",
    "AVIF": "PIL.AvifImagePlugin",
}
#: What Pillow, its plugins and pillow-heif raise for damaged data.
_DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, IndexError, RuntimeError)

_decode_lock: AbstractContextManager[object] | None = None
_decode_lock_pixels = 0


@dataclass(frozen=True)
class RenditionResult:
    """Pixel sizes of the web image and thumbnail as written (upright)."""

    web_width: int
    web_height: int
    thumb_width: int
    thumb_height: int


@dataclass(frozen=True)
class _Spec:
    """What the caller asked for, in terms independent of the decoded scale."""

    long_edge: int | None
    crop_aspect: tuple[float, float] | None
    tolerance: float
    transposed: bool = False  # orientation 5-8 swaps width and height
    platform: Frame | None = None  # its plan_geometry sets the crop and the exact size


@dataclass(frozen=True)
class _Plan:
    """The region of the stored image to keep and the output size, both in stored (unrotated) axes."""

    box: Box
    size: Size

    def scaled(self, factor: float) -> _Plan:
        """The same plan for the image decoded at `factor` times its stored size."""
        left, top, right, bottom = self.box
        return _Plan((left * factor, top * factor, right * factor, bottom * factor), self.size)


def make_web_renditions(
    src: Path,
    *,
    web_path: Path,
    thumb_path: Path,
    web_size: int = 2048,
    thumb_size: int = 400,
    quality: int = 85,
    orientation: int | None,
    max_pixels: int,
    staging: Path | None = None,
    draft_tolerance: float = 0.0,
) -> RenditionResult:
    """Write the web image and the thumbnail of `src` as upright, metadata-free JPEGs.

    Both files are encoded in memory first and then written atomically, so a failure leaves
    neither a partial file nor a web image without its thumbnail. `draft_tolerance` is explained
    at `render`.
    """
    if not 0 < thumb_size <= web_size:
        raise ValueError("rendition sizes must be positive and web >= thumb")
    web = render(
        src,
        long_edge=web_size,
        orientation=orientation,
        max_pixels=max_pixels,
        draft_tolerance=draft_tolerance,
    )
    thumb = _fit(web, thumb_size)
    web_bytes = encode_jpeg(web, quality=quality)
    thumb_bytes = encode_jpeg(thumb, quality=quality)
    _write(web_path, web_bytes, staging)
    _write(thumb_path, thumb_bytes, staging)
    return RenditionResult(web.width, web.height, thumb.width, thumb.height)


def render(
    src: Path,
    *,
    long_edge: int | None,
    orientation: int | None,
    max_pixels: int,
    crop_aspect: tuple[float, float] | None = None,
    draft_tolerance: float = 0.0,
    to_srgb: bool = False,
    platform: Frame | None = None,
) -> Image.Image:
    """Decode `src` once, at the smallest useful scale, into an upright RGB image without metadata.

    - `long_edge`: longest side of the result; never upscaled; None keeps the full size.
    - `orientation`: EXIF Orientation 1-8 read from the raw EXIF. Ignored for HEIF and AVIF, whose
      container transforms (irot/imir) are authoritative and are applied instead.
    - `crop_aspect`: (narrowest, widest) width/height ratio, e.g. (4 / 5, 1.91); an image outside
      the range is centre-cropped to the nearest bound (in upright axes).
    - `draft_tolerance`: the result may be up to this fraction smaller than `long_edge` when that
      lets the decoder skip a resampling pass. A 4000x3000 JPEG asked for 2048 px cannot use DCT
      scale 1/2 (2000 < 2048): it needs a full decode plus a 12 MP bicubic pass (~190 ms); with
      0.03 it decodes at 1/2 and returns 2000x1500 as is (~60 ms). Off by default so 2048 means 2048.
    - `to_srgb`: convert the pixels to sRGB instead of keeping the source's RGB profile (for
      platforms that drop profiles).
    - `platform`: a frame such as a platform preset, whose geometry (geometry.plan_geometry of the
      upright size: centre crop, exact width or long edge, never upscaled) replaces `long_edge`
      and `crop_aspect`.
      With draft_tolerance 0 the result is that size exactly, from a decode at least as large.

    The image's info holds only "icc_profile", when there is one.
    """
    if long_edge is not None and long_edge <= 0:
        raise ValueError("long_edge must be positive")
    if not 0.0 <= draft_tolerance < 0.5:
        raise ValueError("draft_tolerance must be in [0, 0.5)")
    spec = _Spec(long_edge, crop_aspect, draft_tolerance, platform=platform)
    formats = _sniff_formats(src)
    if formats == ("HEIF",):
        image, icc = _decode_heif(src, spec, max_pixels)
        turn = 1  # libheif applied irot/imir (see _effective_orientation)
    else:
        with _open_image(src, formats, max_pixels) as source:
            turn = _effective_orientation(source, orientation)
            image, icc = _decode_with_pillow(source, replace(spec, transposed=turn in (5, 6, 7, 8)))
    return _finish(image, icc, turn, to_srgb)


def render_from_copy(
    src: Path,
    *,
    full_size: Size,
    copy_size: Size,
    platform: Frame,
    max_pixels: int,
) -> Image.Image | None:
    """The platform rendition of a photo of upright `full_size`, made from `src`, a smaller upright copy.

    `src` is the stored web image (upright, metadata already stripped, RGB with its profile or
    converted to sRGB at import, as render() converts the original); `copy_size` is its size as
    recorded at import. The crop and the output size are planned on `full_size`, exactly as
    render(platform=...) plans them for the original, then mapped onto the copy, so the result has
    the same size and framing. None when the copy cannot give that: it is not `copy_size` (stale),
    not the original's shape, not smaller than the original (the original is then as cheap and
    better), or smaller than the platform's size after the crop (never upscaled). A damaged copy
    raises like render().
    """
    formats = _sniff_formats(src)
    with _open_image(src, formats, max_pixels) as source:
        plan = _copy_plan(source.size, copy_size, full_size, platform)
        if plan is None:
            return None
        image, icc = _decode_planned(source, plan, 0.0, resample=COPY_RESAMPLE)
    return _finish(image, icc, 1, False)


def _copy_plan(size: Size, copy_size: Size, full_size: Size, platform: Frame) -> _Plan | None:
    """The platform's crop and size for a photo of `full_size`, in the axes of its copy of `size`."""
    (width, height), (full_w, full_h) = size, full_size
    if size != copy_size or width >= full_w or height >= full_h:
        return None
    if abs(width * full_h - height * full_w) > full_w + full_h:  # more than a pixel of rounding per axis
        return None
    geometry = plan_geometry(full_w, full_h, platform)
    left, top, right, bottom = geometry.crop or (0, 0, full_w, full_h)
    sx, sy = width / full_w, height / full_h
    box = (left * sx, top * sy, right * sx, bottom * sy)
    out_w, out_h = geometry.size
    if box[2] - box[0] < out_w - 1e-6 or box[3] - box[1] < out_h - 1e-6:
        return None
    return _Plan(box, geometry.size)


def set_decode_lock(lock: AbstractContextManager[object] | None, *, min_pixels: int = 24_000_000) -> None:
    """Hold `lock` (e.g. a multiprocessing.Lock shared by the import workers) around big decodes.

    JPEGs decode at reduced scale, but HEIF (and PNG, WebP, TIFF, AVIF) decode at full size: a
    48 MP HEIC needs ~230 MB inside libheif (full YCbCr plus full RGB), so two workers decoding
    one each would pass a 500 MB budget. Decodes whose full-size pixel count is over `min_pixels`
    then take turns; libheif uses several threads for one image, so little throughput is lost.
    """
    global _decode_lock, _decode_lock_pixels
    _decode_lock, _decode_lock_pixels = lock, min_pixels


def encode_jpeg(image: Image.Image, *, quality: int, exif: bytes | None = None) -> bytes:
    """Encode as baseline JPEG 4:2:0 with only the image's ICC profile (and `exif` when given)."""
    if not 1 <= quality <= 100:
        raise ValueError("JPEG quality must be 1-100")
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    # optimize/progressive cost 3x and 6x the encode time for 3-7% smaller files (measured on
    # 2048 px): not worth it for renditions that are made once per import and served locally.
    # Everything is passed explicitly because Pillow copies a comment from image.info otherwise.
    image.save(
        buffer,
        "JPEG",
        quality=quality,
        subsampling="4:2:0",
        optimize=False,
        progressive=False,
        icc_profile=image.info.get("icc_profile") or None,
        exif=exif or b"",
        comment=b"",
    )
    return buffer.getvalue()


def save_jpeg(
    image: Image.Image, path: Path, *, quality: int, staging: Path | None = None, exif: bytes | None = None
) -> None:
    """Encode `image` as JPEG (see `encode_jpeg`) and write it atomically to `path`."""
    _write(path, encode_jpeg(image, quality=quality, exif=exif), staging)


# --- opening ---------------------------------------------------------------------------------


@contextmanager
def _open_image(src: Path, formats: tuple[str, ...], max_pixels: int) -> Iterator[Image.Image]:
    """Open `src` (headers only) and refuse it when it declares more than `max_pixels` pixels."""
    _register_plugins(formats)
    _guard_pillow(max_pixels)
    try:
        image = Image.open(src, formats=formats)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses > 2 x MAX_IMAGE_PIXELS and warns above 1 x; a warning is an exception only
        # where warnings are errors (tests). Its message is the only place with the pixel count.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = found.group(1) if found else "too many"
        raise ImageTooLarge(f"image too large: {pixels} pixels (limit {max_pixels})") from None
    except UnidentifiedImageError:  # its message holds the file's path: keep that out of user messages
        raise UnreadableFile(f"not a readable {formats[0]} image (damaged or incomplete header)") from None
    except _DECODE_ERRORS as exc:
        logger.debug("Pillow cannot open %s: %s", src, exc)
        raise UnreadableFile(f"not a readable {formats[0]} image: {_one_line(exc)}") from None
    with image:
        _check_pixels(image.size, max_pixels)
        yield image


def _check_pixels(size: Size, max_pixels: int) -> None:
    if size[0] * size[1] > max_pixels:
        raise ImageTooLarge(f"image too large: {size[0] * size[1]} pixels (limit {max_pixels})")


def _sniff_formats(src: Path) -> tuple[str, ...]:
    """Pillow format names to try for `src`, from its first bytes (a closed list: no exotic decoders)."""
    try:
        with src.open("rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise UnreadableFile(f"cannot read file: {exc.strerror or exc}") from None
    if not head:
        raise UnreadableFile("empty file")
    still = still_format(head)
    if still is not None:
        # JPEG: Pillow's opener hands MPO files to the MPO plug-in itself; TIFF: DNG too (Pillow
        # reads its first IFD, often a small preview).
        return (still,)
    if head[4:8] == b"ftyp":
        size = int.from_bytes(head[:4], "big")
        brands = {head[i : i + 4] for i in range(8, min(max(size, 16), len(head)), 4)}
        if brands & _AVIF_BRANDS:
            return ("AVIF",)
        if brands & _HEIF_BRANDS:
            return ("HEIF",)
    raise UnreadableFile("not an image in a supported format (JPEG, PNG, WebP, TIFF, HEIF, AVIF)")


def _register_plugins(formats: tuple[str, ...]) -> None:
    """Import only the plug-ins needed, so Image.open does not load all of Pillow's 40."""
    for name in formats:
        if name not in Image.OPEN and name in _PLUGIN_MODULES:
            importlib.import_module(_PLUGIN_MODULES[name])


def _guard_pillow(max_pixels: int) -> None:
    """Keep Pillow's own (global) bomb limit equal to ours.

    Any code path that decodes is then covered too, and an image under our limit never triggers
    DecompressionBombWarning (an error under pytest's filterwarnings = error).
    """
    if Image.MAX_IMAGE_PIXELS != max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _effective_orientation(image: Image.Image, given: int | None) -> int:
    """The EXIF orientation still to apply to the decoded pixels.

    HEIF never comes here: libheif applies irot/imir itself (the HEIF spec makes them
    authoritative, EXIF Orientation is informative only) and pillow-heif reports the upright
    size and rewrites the EXIF Orientation to 1, so applying the caller's value (read from the
    raw EXIF, e.g. 6 on iPhones) again would double-rotate.
    """
    if image.format == "AVIF":
        # Pillow's AVIF plug-in leaves the pixels as stored and turns irot/imir into the EXIF
        # Orientation of image.info["exif"], replacing whatever the file's EXIF said.
        given = image.getexif().get(_ORIENTATION_TAG)
    return given if isinstance(given, int) and given in _TRANSPOSE else 1


# --- decoding --------------------------------------------------------------------------------


def _decode_with_pillow(source: Image.Image, spec: _Spec) -> tuple[Image.Image, bytes | None]:
    """Decode (JPEG at reduced DCT scale) and shrink to the plan; returns a new image."""
    return _decode_planned(source, _plan(source.size, spec), spec.tolerance)


def _decode_planned(
    source: Image.Image, plan: _Plan, tolerance: float, *, resample: Image.Resampling = RESAMPLE
) -> tuple[Image.Image, bytes | None]:
    """Decode at the largest DCT scale the plan allows and shrink to it; returns a new image."""
    scale = _draft_scale(source, plan, tolerance)
    if scale > 1:
        source.draft(source.mode, (source.width // scale, source.height // scale))
    with _big_decode(source.width * source.height):
        try:
            source.load()
        except _DECODE_ERRORS as exc:
            raise UnreadableFile(f"broken image data: {_one_line(exc)}") from None
        image = _scale_down(_resizable(source), plan.scaled(1 / scale), tolerance, resample=resample)
    return (image.copy() if image is source else image), _icc_of(source.info)


def _draft_scale(source: Image.Image, plan: _Plan, tolerance: float) -> int:
    """Largest JPEG DCT scale (1, 2, 4, 8) that keeps the kept region at least the output size."""
    if source.format not in ("JPEG", "MPO"):
        return 1
    limit = _shrink_ratio(plan.box, plan.size) / (1 - tolerance)
    return next(scale for scale in (8, 4, 2, 1) if scale <= limit + 1e-9)


def _decode_heif(src: Path, spec: _Spec, max_pixels: int) -> tuple[Image.Image, bytes | None]:
    """Decode the primary image with libheif (irot/imir applied) and shrink it to the plan.

    pillow-heif is used directly, not through Image.open: one parse of the file, and the
    plug-in's copy of it is not kept alive while libheif decodes.
    """
    import pillow_heif  # ~0.1 s to import: only when a HEIF file is met

    pillow_heif.options.DECODE_THREADS = HEIF_DECODE_THREADS  # read by open_heif; global, see above
    try:
        heif = pillow_heif.open_heif(src, convert_hdr_to_8bit=True)
        frame = heif[heif.primary_index]
    except _DECODE_ERRORS as exc:
        raise UnreadableFile(f"not a readable HEIF image: {_one_line(exc)}") from None
    _check_pixels(frame.size, max_pixels)  # the upright size from ispe/irot, before decoding
    with _big_decode(frame.size[0] * frame.size[1]):
        try:
            pixels = frame.data  # decodes; a memoryview of libheif's buffer, no copy
        except _DECODE_ERRORS as exc:
            raise UnreadableFile(f"broken image data: {_one_line(exc)}") from None
        plan = _plan(frame.size, spec)  # the decoded size can differ from the header's
        factor = max(1, int(_shrink_ratio(plan.box, plan.size) / (1 - spec.tolerance) + 1e-9))
        if frame.mode not in _RESIZABLE:  # 16-bit monochrome: reduce() cannot take it, _resizable can
            factor = 1
        image = _reduce_heif(frame, pixels, factor)
        icc = _icc_of(frame.info)
        del pixels, frame, heif  # free libheif's full-size buffer before the final resample
    return _scale_down(_resizable(image), plan.scaled(1 / factor), spec.tolerance), icc


def _big_decode(pixels: int) -> AbstractContextManager[object]:
    """The decode lock (see set_decode_lock) when a decode of this many pixels needs it."""
    if _decode_lock is not None and pixels > _decode_lock_pixels:
        return _decode_lock
    return nullcontext()


def _reduce_heif(frame: HeifImage, pixels: memoryview, factor: int) -> Image.Image:
    """reduce(factor) libheif's buffer strip by strip: never a full-size Pillow copy (4 bytes/pixel)."""
    mode, (width, height), stride = frame.mode, frame.size, frame.stride
    if factor == 1:
        return Image.frombytes(mode, (width, height), pixels, "raw", mode, stride)
    out = Image.new(mode, (-(-width // factor), -(-height // factor)))
    rows = STRIP_ROWS * factor
    for top in range(0, height, rows):
        count = min(rows, height - top)
        chunk = pixels[top * stride : (top + count) * stride]
        strip = Image.frombuffer(mode, (width, count), chunk, "raw", mode, stride, 1)  # type: ignore[arg-type]
        out.paste(strip.reduce(factor), (0, top // factor))
    return out


# --- geometry --------------------------------------------------------------------------------


def _plan(size: Size, spec: _Spec) -> _Plan:
    """Centre crop box and output size for a stored image of `size`."""
    width, height = size
    upright = (height, width) if spec.transposed else (width, height)
    if spec.platform is not None:
        return _platform_plan(size, upright, spec)
    crop_w, crop_h = _crop_size(upright, spec.crop_aspect)
    if spec.transposed:
        crop_w, crop_h = crop_h, crop_w
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    box = (float(left), float(top), float(left + crop_w), float(top + crop_h))
    if spec.long_edge is None or max(crop_w, crop_h) <= spec.long_edge:
        return _Plan(box, (crop_w, crop_h))
    scale = spec.long_edge / max(crop_w, crop_h)
    return _Plan(box, (max(1, round(crop_w * scale)), max(1, round(crop_h * scale))))


def _platform_plan(size: Size, upright: Size, spec: _Spec) -> _Plan:
    """The platform's geometry (worked out on the upright size) in stored axes."""
    assert spec.platform is not None
    geometry = plan_geometry(*upright, spec.platform)
    crop = geometry.crop or (0, 0, *upright)
    crop_w, crop_h = crop[2] - crop[0], crop[3] - crop[1]
    out = geometry.size
    if spec.transposed:
        crop_w, crop_h, out = crop_h, crop_w, (out[1], out[0])
    left, top = (size[0] - crop_w) // 2, (size[1] - crop_h) // 2
    return _Plan((float(left), float(top), float(left + crop_w), float(top + crop_h)), out)


def _crop_size(size: Size, aspect: tuple[float, float] | None) -> Size:
    """Largest centred size whose width/height ratio lies within `aspect` (upright axes)."""
    width, height = size
    if aspect is None:
        return size
    narrowest, widest = sorted(aspect)
    if narrowest <= 0:
        raise ValueError("crop_aspect ratios must be positive")
    if width > height * widest:
        return max(1, min(width, round(height * widest))), height
    if width < height * narrowest:
        return width, max(1, min(height, round(width / narrowest)))
    return size


def _shrink_ratio(box: Box, size: Size) -> float:
    """How many times larger the box is than `size` (the smaller of the two axes)."""
    return min((box[2] - box[0]) / size[0], (box[3] - box[1]) / size[1])


def _scale_down(
    image: Image.Image, plan: _Plan, tolerance: float, *, resample: Image.Resampling = RESAMPLE
) -> Image.Image:
    """Crop and shrink the decoded image to the plan: integer reduce() first, then one `resample` pass."""
    box, size = plan.box, _no_upscale(plan)
    factor = int(_shrink_ratio(box, size) / (1 - tolerance) + 1e-9)
    if tolerance and factor >= 2 and _reduced_fits(box, size, factor):
        return image.reduce(factor, _int_box(box))
    if (round(box[2] - box[0]), round(box[3] - box[1])) == size and _is_integral(box):
        return image if _int_box(box) == (0, 0, *image.size) else image.crop(_int_box(box))
    return image.resize(size, resample, box=box, reducing_gap=REDUCING_GAP)


def _no_upscale(plan: _Plan) -> Size:
    """The plan's size, or less when the decoded box is smaller (draft tolerance)."""
    box_w, box_h = plan.box[2] - plan.box[0], plan.box[3] - plan.box[1]
    shrink = min(1.0, box_w / plan.size[0], box_h / plan.size[1])
    if shrink == 1.0:
        return plan.size
    width = max(1, min(round(box_w), round(plan.size[0] * shrink)))
    return width, max(1, min(round(box_h), round(plan.size[1] * shrink)))


def _reduced_fits(box: Box, size: Size, factor: int) -> bool:
    """True when reduce(factor) alone gives at most `size` (it is then within the tolerance)."""
    return (
        math.ceil((box[2] - box[0]) / factor) <= size[0] and math.ceil((box[3] - box[1]) / factor) <= size[1]
    )


def _fit(image: Image.Image, long_edge: int) -> Image.Image:
    """`image` shrunk to `long_edge` (never enlarged), keeping its ICC profile."""
    spec = _Spec(long_edge, None, 0.0)
    return _scale_down(image, _plan(image.size, spec), 0.0)


def _int_box(box: Box) -> tuple[int, int, int, int]:
    return (round(box[0]), round(box[1]), round(box[2]), round(box[3]))


def _is_integral(box: Box) -> bool:
    return all(abs(value - round(value)) < 1e-6 for value in box)


# --- modes and colour ------------------------------------------------------------------------


def _resizable(image: Image.Image) -> Image.Image:
    """`image` in a mode that reduce()/resize() handle (palette, 1-bit and 16-bit modes converted)."""
    if image.mode in _RESIZABLE:
        return image
    if image.mode in ("P", "PA"):
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    if image.mode == "1":
        return image.convert("L")
    if image.mode.startswith("I;16") or image.mode == "I":
        # Pillow's convert("L") clips 16-bit values at 255 instead of scaling them.
        high = image.getextrema()[1]
        wide = image.convert("I") if image.mode != "I" else image
        scaled = wide.point(lambda value: value / 257) if isinstance(high, int) and high > 255 else wide
        return scaled.convert("L")
    try:
        return image.convert("RGB")  # YCbCr, F, RGBX, ...
    except ValueError as exc:
        raise UnsupportedFile(f"unsupported colour mode {image.mode}") from exc


def _finish(image: Image.Image, icc: bytes | None, turn: int, to_srgb: bool) -> Image.Image:
    """Flatten, convert to RGB, make upright, and leave only the colour profile in info."""
    image, icc = _to_rgb(image, icc, to_srgb)
    image = upright(image, turn)
    image.info = {"icc_profile": icc} if icc else {}
    return image


def upright(image: Image.Image, orientation: int | None) -> Image.Image:
    """The pixels turned as EXIF `orientation` says (1, None or an unknown value: as they are)."""
    return image.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else image


def _to_rgb(image: Image.Image, icc: bytes | None, to_srgb: bool) -> tuple[Image.Image, bytes | None]:
    """RGB pixels plus the profile that describes them.

    An RGB source profile (sRGB, Display P3, Adobe RGB) is embedded as it is: browsers colour-manage
    JPEGs, so colours stay right at no per-pixel cost, and wide-gamut photos keep their gamut. Only
    profiles that cannot describe RGB pixels (CMYK, grey) and oversized ones are converted to sRGB
    with LittleCMS.
    """
    if image.mode in ("RGBA", "RGBa", "LA", "La"):
        image = _flatten(image)
    space = icc[16:20] if icc and len(icc) >= 128 else None
    if icc and space != _ICC_SPACE.get(image.mode):
        logger.debug("dropping an ICC profile for %r that does not fit mode %s", space, image.mode)
        icc = None
    if icc and (image.mode != "RGB" or to_srgb or len(icc) > MAX_EMBEDDED_ICC):
        converted = _convert_to_srgb(image, icc)
        if converted is not None:
            return converted, _srgb_profile_bytes()
        icc = None
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image, icc


def _icc_of(info: Mapping[Any, object]) -> bytes | None:
    icc = info.get("icc_profile")
    return icc if isinstance(icc, bytes) and icc else None


def _flatten(image: Image.Image) -> Image.Image:
    """Composite on white (transparent areas of screenshots and logos look right on any page)."""
    grey = image.mode in ("LA", "La")
    rgba = image.convert("LA" if grey else "RGBA")
    background = Image.new("L" if grey else "RGB", image.size, 255 if grey else (255, 255, 255))
    background.paste(rgba.convert("L" if grey else "RGB"), mask=rgba.getchannel("A"))
    return background


def _convert_to_srgb(image: Image.Image, icc: bytes) -> Image.Image | None:
    try:
        return _srgb_transform(icc, image.mode).apply(image)
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        logger.debug("cannot convert with the embedded colour profile, dropping it: %s", exc)
        return None


@functools.lru_cache(maxsize=8)
def _srgb_transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform:
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    target = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return ImageCms.buildTransform(source, target, mode, "RGB", renderingIntent=ImageCms.Intent.PERCEPTUAL)


@functools.cache
def _srgb_profile_bytes() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


# --- writing ---------------------------------------------------------------------------------


def _write(path: Path, data: bytes, staging: Path | None) -> None:
    with atomic_write(path, staging=staging) as handle:
        handle.write(data)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
