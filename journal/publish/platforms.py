r"""The table of platform presets (sizes, counts, caption limits) and the helpers that apply them.

Captions are counted as each platform counts them (`caption_unit`), each rule from its source:

- "twitter" (X): twitter-text's v3 configuration (twitter-text/config/v3.json, used by X's
  composer and API): the text NFC-normalised, code points U+0000-U+10FF, U+2000-U+200D,
  U+2010-U+201F and U+2032-U+2037 weigh 1, every other one 2; an emoji sequence weighs 2 as a
  whole; every URL (with or without a scheme, on a known TLD) weighs 23 (t.co's length).
  280 is the limit. The twitter-text-parser port on PyPI was not used: it needs pkg_resources
  (gone with setuptools 81) and its emoji data is from 2019.
- "mastodon": Mastodon's StatusLengthValidator (app/validators/status_length_validator.rb):
  grapheme clusters (Ruby's each_grapheme_cluster) of the text after every http(s) URL is
  replaced by 23 characters and every @user@domain by @user.
- "graphemes" (Bluesky): UAX #29 extended grapheme clusters; the app.bsky.feed.post lexicon
  also caps the text at 3000 UTF-8 bytes (`caption_max_bytes`).
- "utf16" (Instagram): its 2,200 "characters", read the strict way: UTF-16 code units (what
  its apps count; never fewer than code points or graphemes, so a caption that fits it fits
  any reading).
- "chars": code points (an e-mail subject).

Grapheme clusters come from the regex package's `\X` (current Unicode, Indic conjuncts of 15.1
included); URLs from urlextract (IANA's TLD list, shipped with the package).
"""

from __future__ import annotations

import functools
import logging
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

import regex

from journal.errors import InvalidInput

if TYPE_CHECKING:
    from urlextract import URLExtract

logger = logging.getLogger(__name__)

CaptionUnit = Literal["chars", "graphemes", "utf16", "twitter", "mastodon"]
OutputFormat = Literal["JPEG", "original"]
T = TypeVar("T")

ELLIPSIS = "…"
#: A word-boundary cut may drop at most this share of the budget; past it, cut inside the word.
_MAX_WORD_BACKTRACK = 0.5


_UNITS = ("chars", "graphemes", "utf16", "twitter", "mastodon")


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
    caption_max_bytes: int | None = None  # UTF-8 bytes, on top of caption_limit

    def __post_init__(self) -> None:
        for field_name in (
            "long_edge",
            "width",
            "max_images",
            "max_file_bytes",
            "caption_limit",
            "caption_max_bytes",
        ):
            value = getattr(self, field_name)
            if value is not None and value <= 0:
                raise ValueError(f"{field_name} must be positive")
        if self.aspect_range is not None and not 0 < self.aspect_range[0] <= self.aspect_range[1]:
            raise ValueError("aspect_range must be (low, high) with 0 < low <= high")
        if self.caption_unit not in _UNITS or self.format not in ("JPEG", "original"):
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
            caption_unit="utf16",
        ),
        # 5 MB and 1 MB are taken as decimal megabytes: the smaller reading is the safe one.
        Platform(
            "x",
            long_edge=4096,
            max_images=4,
            max_file_bytes=5_000_000,
            caption_limit=280,
            caption_unit="twitter",
        ),
        Platform(
            "mastodon",
            long_edge=3840,
            max_images=4,
            max_file_bytes=16_000_000,
            caption_limit=500,
            caption_unit="mastodon",
        ),
        Platform(
            "bluesky",
            long_edge=2000,
            max_images=4,
            max_file_bytes=1_000_000,
            caption_limit=300,
            caption_unit="graphemes",
            caption_max_bytes=3000,
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


@dataclass(frozen=True)
class CaptionFit:
    """A caption as it goes out: the text (suffix included), its counted length, and what was cut."""

    text: str
    cut: bool
    length: int
    limit: int | None
    dropped: str = ""


@dataclass(frozen=True)
class _Atom:
    """A piece a cut never splits (a grapheme cluster, a URL, a mention) and what it weighs."""

    start: int
    end: int
    weight: int


#: twitter-text v3: code point ranges that weigh 1 (scale 100, weight 100); the rest weigh 2.
_TWITTER_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
#: What both X and Mastodon count for any URL (the length of a t.co link / URL_PLACEHOLDER_CHARS).
URL_WEIGHT = 23
_CLUSTER = regex.compile(r"\X")
_EMOJI = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20e3")
#: Mastodon's Account::MENTION_RE (app/models/account.rb): @user or @user@domain.
_MENTION = regex.compile(r"(?<![=/\w])@([a-z0-9_]+)(?:@[\w.-]+\w+)?", regex.IGNORECASE)
#: twitter-text ends a URL before these (its valid_url_query_ending_chars and path endings).
_URL_TRAILING = ".,;:!?'\"()[]<>"


def caption_length(text: str, platform: Platform) -> int:
    """Length of text as the platform counts it (see the module docstring)."""
    text = _normalised(text, platform.caption_unit)
    return sum(atom.weight for atom in _atoms(text, platform.caption_unit))


def fit_caption(text: str, platform: Platform, *, suffix: str = "") -> tuple[str, bool]:
    """The caption cut to the platform's limit (see cut_caption) and whether it was cut."""
    fitted = cut_caption(text, platform, suffix=suffix)
    return fitted.text, fitted.cut


def cut_caption(text: str, platform: Platform, *, suffix: str = "") -> CaptionFit:
    """Cut text to the caption limit (with room for suffix) at a word boundary, adding an ellipsis.

    Grapheme clusters, URLs and mentions are never split. The result is checked with the
    platform's own count, so it always fits.
    """
    limit = platform.caption_limit
    text = _normalised(text, platform.caption_unit)
    length, fits = _measure(text + suffix, platform)
    if fits:
        return CaptionFit(text + suffix, False, length, limit)
    tail = ELLIPSIS + suffix
    atoms = _atoms(text, platform.caption_unit)
    kept = _back_to_word_boundary(text, atoms, _greedy(atoms, text, platform, tail))
    while True:  # the weights add up to the count; the platform's own count has the last word
        head = _clean_head(text[: atoms[kept - 1].end] if kept else "")
        length, fits = _measure(head + tail, platform)
        if fits:
            break
        if kept == 0:
            raise InvalidInput("caption suffix does not fit the platform's limit")
        kept -= 1
    return CaptionFit(head + tail, True, length, limit, dropped=text[len(head) :].strip())


def _measure(text: str, platform: Platform) -> tuple[int, bool]:
    """The counted length of text and whether it is within the platform's caption limits."""
    length = caption_length(text, platform)
    if platform.caption_max_bytes is not None and len(text.encode("utf-8")) > platform.caption_max_bytes:
        return length, False
    return length, platform.caption_limit is None or length <= platform.caption_limit


def _greedy(atoms: list[_Atom], text: str, platform: Platform, tail: str) -> int:
    """How many whole atoms fit before the tail, by their weights (checked again by the caller)."""
    budget = (platform.caption_limit or 10**9) - caption_length(tail, platform)
    byte_budget = (platform.caption_max_bytes or 10**9) - len(tail.encode("utf-8"))
    used = used_bytes = 0
    for index, atom in enumerate(atoms):
        used += atom.weight
        used_bytes += len(text[atom.start : atom.end].encode("utf-8"))
        if used > budget or used_bytes > byte_budget:
            return index
    return len(atoms)


def _clean_head(head: str) -> str:
    """The kept part without trailing space and dangling punctuation."""
    head = head.rstrip()
    return head.rstrip(",;:-–—") or head


def _back_to_word_boundary(text: str, atoms: list[_Atom], kept: int) -> int:
    """Move the cut back to the last whitespace unless that loses too much of the text."""
    if kept >= len(atoms) or kept == 0 or text[atoms[kept].start : atoms[kept].end].isspace():
        return kept
    for index in range(kept - 1, -1, -1):
        if text[atoms[index].start : atoms[index].end].isspace():
            return index if index >= kept * (1 - _MAX_WORD_BACKTRACK) else kept
    return kept


def graphemes(text: str) -> list[str]:
    """Text split into extended grapheme clusters (UAX #29, regex's \\X)."""
    return _CLUSTER.findall(text)


def _normalised(text: str, unit: CaptionUnit) -> str:
    """twitter-text counts (and X stores) the NFC form with \\r\\n as \\n; other units take text as it is."""
    if unit != "twitter":
        return text
    return regex.sub(r"\r\n|\r", "\n", unicodedata.normalize("NFC", text))


def _atoms(text: str, unit: CaptionUnit) -> list[_Atom]:
    """text as uncuttable pieces with their weights in `unit`."""
    entities = _entities(text, unit)
    atoms: list[_Atom] = []
    position = 0
    for start, end, weight in entities:
        atoms += _cluster_atoms(text, position, start, unit)
        atoms.append(_Atom(start, end, weight))
        position = end
    atoms += _cluster_atoms(text, position, len(text), unit)
    return atoms


def _cluster_atoms(text: str, start: int, end: int, unit: CaptionUnit) -> list[_Atom]:
    atoms = []
    for match in _CLUSTER.finditer(text, start, end):
        atoms.append(_Atom(match.start(), match.end(), _cluster_weight(match.group(), unit)))
    return atoms


def _cluster_weight(cluster: str, unit: CaptionUnit) -> int:
    """What one grapheme cluster counts."""
    if unit in ("graphemes", "mastodon"):
        return 1
    if unit == "chars":
        return len(cluster)
    if unit == "utf16":
        return len(cluster.encode("utf-16-le")) // 2
    if _EMOJI.search(cluster):
        return 2  # twitter-text: an emoji sequence weighs the default weight, once
    return sum(1 if _twitter_light(ord(char)) else 2 for char in cluster)


def _twitter_light(code: int) -> bool:
    return any(low <= code <= high for low, high in _TWITTER_LIGHT)


def _entities(text: str, unit: CaptionUnit) -> list[tuple[int, int, int]]:
    """(start, end, weight) of the URLs (and Mastodon's mentions) the unit counts specially."""
    if unit not in ("twitter", "mastodon"):
        return []
    found = []
    for start, end in _urls(text, schemes_only=unit == "mastodon"):
        found.append((start, end, URL_WEIGHT))
    if unit == "mastodon":
        for match in _MENTION.finditer(text):
            found.append((match.start(), match.end(), 1 + len(match.group(1))))
    found.sort()
    kept: list[tuple[int, int, int]] = []
    for entity in found:  # like twitter-text's remove_overlapping_entities: the first one wins
        if not kept or entity[0] >= kept[-1][1]:
            kept.append(entity)
    return kept


def _urls(text: str, *, schemes_only: bool) -> list[tuple[int, int]]:
    """Spans of the URLs in text, trailing punctuation left out as twitter-text does."""
    spans = []
    for url, (start, end) in _url_extractor().find_urls(
        text, get_indices=True, with_schema_only=schemes_only
    ):
        assert isinstance(url, str)
        end = start + len(url.rstrip(_URL_TRAILING))
        if schemes_only and not regex.match(r"https?://", url, regex.IGNORECASE):
            continue
        if end > start:
            spans.append((start, end))
    return spans


@functools.cache
def _url_extractor() -> URLExtract:
    """One extractor per process (it reads the TLD list it ships with; never the network).

    Imported here: urlextract pulls in urllib.request (~0.1 s), which the export's image workers,
    importing this module for the presets, never need.
    """
    from urlextract import URLExtract

    return URLExtract(cache_dns=False)
