"""The table of platform presets (sizes, counts, caption limits) and the helpers that apply them.

Caption lengths: "chars" counts Unicode code points (what Mastodon's Ruby `String#length` counts);
"graphemes" counts user-perceived characters (Bluesky). The standard library has no grapheme
segmentation (UAX #29) and the `regex` package is not a dependency, so `graphemes()` approximates
it: combining marks, variation selectors, emoji modifiers and tags, ZWJ emoji sequences,
regional-indicator flag pairs, Hangul jamo and CR LF stay together. Where the approximation
differs from UAX #29 (Indic conjuncts, prepend marks) it yields more clusters, so a caption is cut
a little early, never too late.
"""

from __future__ import annotations

import logging
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from journal.errors import InvalidInput

logger = logging.getLogger(__name__)

CaptionUnit = Literal["chars", "graphemes"]
OutputFormat = Literal["JPEG", "original"]
T = TypeVar("T")

ELLIPSIS = "…"
#: A word-boundary cut may drop at most this share of the budget; past it, cut inside the word.
_MAX_WORD_BACKTRACK = 0.5


@dataclass(frozen=True)
class Platform:
    """What one platform accepts: pixel size, image count, file size and caption length."""

    name: str
    long_edge: int | None = None
    width: int | None = None
    aspect_range: tuple[float, float] | None = None
    max_images: int | None = None
    max_file_bytes: int | None = None
    caption_limit: int | None = None
    caption_unit: CaptionUnit = "chars"
    format: OutputFormat = "JPEG"

    def __post_init__(self) -> None:
        for field_name in ("long_edge", "width", "max_images", "max_file_bytes", "caption_limit"):
            value = getattr(self, field_name)
            if value is not None and value <= 0:
                raise ValueError(f"{field_name} must be positive")
        if self.aspect_range is not None and not 0 < self.aspect_range[0] <= self.aspect_range[1]:
            raise ValueError("aspect_range must be (low, high) with 0 < low <= high")
        if self.caption_unit not in ("chars", "graphemes") or self.format not in ("JPEG", "original"):
            raise ValueError("unknown caption unit or format")
        if self.caption_limit is not None and self.caption_limit < 2:
            raise ValueError("caption_limit must leave room for an ellipsis")


PLATFORMS: dict[str, Platform] = {
    p.name: p
    for p in (
        Platform(
            "instagram",
            width=1080,
            aspect_range=(4 / 5, 1.91),
            max_images=10,
            caption_limit=2200,
        ),
        # 5 MB and 1 MB are taken as decimal megabytes: the smaller reading is the safe one.
        Platform("x", long_edge=4096, max_images=4, max_file_bytes=5_000_000),
        Platform("mastodon", long_edge=3840, max_images=4, max_file_bytes=16_000_000, caption_limit=500),
        Platform(
            "bluesky",
            long_edge=2000,
            max_images=4,
            max_file_bytes=1_000_000,
            caption_limit=300,
            caption_unit="graphemes",
        ),
        Platform("facebook", long_edge=2048),
        Platform("email", long_edge=1600),
        Platform("original", format="original"),
    )
}


def get_platform(name: str) -> Platform:
    """The preset called `name`; InvalidInput lists the valid names otherwise."""
    try:
        return PLATFORMS[name.strip().lower()]
    except KeyError:
        raise InvalidInput(f"unknown platform {name!r}; choose one of: {', '.join(PLATFORMS)}") from None


@dataclass(frozen=True)
class Geometry:
    """How to turn a source image into a platform image: crop box (or None), then resize to `size`."""

    crop: tuple[int, int, int, int] | None
    size: tuple[int, int]


def plan_geometry(width: int, height: int, platform: Platform) -> Geometry:
    """Centre crop to the platform's aspect range, then scale down (never up) to its width/long edge."""
    if width <= 0 or height <= 0:
        raise InvalidInput("image has no pixels")
    crop = _centre_crop(width, height, platform.aspect_range)
    cw, ch = (crop[2] - crop[0], crop[3] - crop[1]) if crop else (width, height)
    scale = 1.0
    if platform.width is not None:
        scale = min(scale, platform.width / cw)
    if platform.long_edge is not None:
        scale = min(scale, platform.long_edge / max(cw, ch))
    size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
    return Geometry(crop=crop, size=size)


def _centre_crop(
    width: int, height: int, aspect_range: tuple[float, float] | None
) -> tuple[int, int, int, int] | None:
    """The centred box that brings width/height into aspect_range, or None when it already fits."""
    if aspect_range is None:
        return None
    low, high = aspect_range
    aspect = width / height
    if aspect > high:
        new_w = max(1, math.floor(height * high))
        left = (width - new_w) // 2
        return (left, 0, left + new_w, height)
    if aspect < low:
        new_h = max(1, math.floor(width / low))
        top = (height - new_h) // 2
        return (0, top, width, top + new_h)
    return None


def split_post(images: Sequence[T], platform: Platform) -> list[list[T]]:
    """Split a post's images into parts the platform takes, as even as possible, order kept.

    Always returns at least one part (an empty one for a post without images).
    """
    limit = platform.max_images
    if limit is None or len(images) <= limit:
        return [list(images)]
    parts = math.ceil(len(images) / limit)
    base, extra = divmod(len(images), parts)
    result: list[list[T]] = []
    start = 0
    for index in range(parts):
        count = base + (1 if index < extra else 0)
        result.append(list(images[start : start + count]))
        start += count
    return result


def part_suffix(part: int, parts: int) -> str:
    """The marker appended to a caption of a numbered part, e.g. " (1/3)"; empty for a single part."""
    return "" if parts <= 1 else f" ({part}/{parts})"


def caption_length(text: str, platform: Platform) -> int:
    """Length of text in the platform's unit."""
    return len(graphemes(text)) if platform.caption_unit == "graphemes" else len(text)


def fit_caption(text: str, platform: Platform, *, suffix: str = "") -> tuple[str, bool]:
    """Cut text to the caption limit (with room for suffix) at a word boundary, adding an ellipsis.

    Returns the caption (suffix appended) and whether it was cut. Grapheme clusters are never split.
    """
    limit = platform.caption_limit
    if limit is None or caption_length(text + suffix, platform) <= limit:
        return text + suffix, False
    budget = limit - caption_length(suffix + ELLIPSIS, platform)
    if budget <= 0:
        raise InvalidInput("caption suffix does not fit the platform's limit")
    clusters = graphemes(text)
    kept = _take_clusters(clusters, budget, platform.caption_unit)
    kept = _back_to_word_boundary(clusters, kept)
    head = "".join(clusters[:kept]).rstrip()
    head = head.rstrip(",;:-–—") or head
    return head + ELLIPSIS + suffix, True


def _take_clusters(clusters: list[str], budget: int, unit: CaptionUnit) -> int:
    """How many whole clusters fit in budget units."""
    if unit == "graphemes":
        return min(budget, len(clusters))
    used = 0
    for index, cluster in enumerate(clusters):
        used += len(cluster)
        if used > budget:
            return index
    return len(clusters)


def _back_to_word_boundary(clusters: list[str], kept: int) -> int:
    """Move the cut back to the last whitespace unless that loses too much of the text."""
    if kept >= len(clusters) or clusters[kept].isspace() or kept == 0:
        return kept
    for index in range(kept - 1, -1, -1):
        if clusters[index].isspace():
            return index if index >= kept * (1 - _MAX_WORD_BACKTRACK) else kept
    return kept


# --- grapheme clusters (approximation of UAX #29, see the module docstring) ---

_ZWJ = "\u200d"


def _is_extend(char: str) -> bool:
    """True for code points that never start a cluster: marks, joiners, modifiers, tags."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or char == _ZWJ
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters of subdivision flags
    )


def _is_regional_indicator(char: str) -> bool:
    """True for the letters that pair into flag emoji."""
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _is_pictographic(char: str) -> bool:
    """Rough Extended_Pictographic: symbol-other and the emoji blocks."""
    code = ord(char)
    return unicodedata.category(char) == "So" or 0x1F000 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF


def _hangul_kind(char: str) -> str:
    """Hangul syllable type: L, V, T, LV, LVT or "" for anything else."""
    code = ord(char)
    if 0x1100 <= code <= 0x115F or 0xA960 <= code <= 0xA97C:
        return "L"
    if 0x1160 <= code <= 0x11A7 or 0xD7B0 <= code <= 0xD7C6:
        return "V"
    if 0x11A8 <= code <= 0x11FF or 0xD7CB <= code <= 0xD7FB:
        return "T"
    if 0xAC00 <= code <= 0xD7A3:
        return "LV" if (code - 0xAC00) % 28 == 0 else "LVT"
    return ""


def _joins(cluster: str, char: str) -> bool:
    """Whether char continues the cluster that ends with cluster[-1]."""
    prev = cluster[-1]
    if prev == "\r":
        return char == "\n"
    if char in "\r\n" or prev == "\n":
        return False
    if _is_extend(char):
        return True
    if prev == _ZWJ and _is_pictographic(char):
        return _is_pictographic(cluster[0])
    if _is_regional_indicator(prev) and _is_regional_indicator(char):
        # Flags are pairs: join only when the cluster holds an odd number of indicators.
        return sum(1 for c in cluster if _is_regional_indicator(c)) % 2 == 1
    return _hangul_joins(_hangul_kind(prev), _hangul_kind(char))


def _hangul_joins(prev: str, kind: str) -> bool:
    """Hangul conjoining rules GB6-GB8 of UAX #29."""
    if prev == "L":
        return kind in ("L", "V", "LV", "LVT")
    if prev in ("V", "LV"):
        return kind in ("V", "T")
    return prev in ("T", "LVT") and kind == "T"


def graphemes(text: str) -> list[str]:
    """Split text into (approximate) grapheme clusters."""
    clusters: list[str] = []
    for char in text:
        if clusters and _joins(clusters[-1], char):
            clusters[-1] += char
        else:
            clusters.append(char)
    return clusters
