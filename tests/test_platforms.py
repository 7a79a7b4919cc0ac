"""Platform presets: lookup, geometry, splitting posts, fitting captions."""

from __future__ import annotations

import random

import pytest

from journal.errors import InvalidInput
from journal.media.geometry import plan_geometry
from journal.publish.platforms import (
    ELLIPSIS,
    PLATFORMS,
    Platform,
    caption_length,
    cut_caption,
    fit_caption,
    get_platform,
    graphemes,
    part_suffix,
    split_post,
)

#: (name, long_edge, width, max_images, max_file_bytes, caption_limit, caption_unit, format)
EXPECTED = [
    ("instagram", None, 1080, 10, None, 2200, "utf16", "JPEG"),
    ("x", 4096, None, 4, 5_000_000, 280, "twitter", "JPEG"),
    ("mastodon", 3840, None, 4, 16_000_000, 500, "mastodon", "JPEG"),
    ("bluesky", 2000, None, 4, 1_000_000, 300, "graphemes", "JPEG"),
    ("facebook", 2048, None, None, None, None, "chars", "JPEG"),
    ("email", 1600, None, None, None, None, "chars", "JPEG"),
    ("original", None, None, None, None, None, "chars", "original"),
]


@pytest.mark.parametrize("row", EXPECTED, ids=[row[0] for row in EXPECTED])
def test_preset_table(row: tuple[object, ...]) -> None:
    name, long_edge, width, max_images, max_bytes, caption, unit, fmt = row
    platform = get_platform(str(name))
    assert (platform.long_edge, platform.width, platform.max_images) == (long_edge, width, max_images)
    assert (platform.max_file_bytes, platform.caption_limit) == (max_bytes, caption)
    assert (platform.caption_unit, platform.format) == (unit, fmt)


def test_every_preset_is_listed() -> None:
    assert sorted(PLATFORMS) == sorted(row[0] for row in EXPECTED)
    assert get_platform("instagram").aspect_range == (0.8, 1.91)


def test_unknown_platform_lists_the_valid_names() -> None:
    with pytest.raises(InvalidInput) as error:
        get_platform("myspace")
    for name in PLATFORMS:
        assert name in str(error.value)
    assert get_platform(" Bluesky ").name == "bluesky"


def test_presets_check_their_values() -> None:
    with pytest.raises(ValueError):
        Platform("bad", long_edge=0)
    with pytest.raises(ValueError):
        Platform("bad", aspect_range=(2.0, 1.0))


# --- geometry ---


@pytest.mark.parametrize(
    ("size", "expected_crop", "expected_size"),
    [
        ((4000, 3000), None, (1080, 810)),  # 4:3 is inside 4:5..1.91:1
        ((3000, 6000), (0, 1125, 3000, 4875), (1080, 1350)),  # portrait 1:2 -> 4:5
        ((6000, 2000), (1090, 0, 4910, 2000), (1080, 566)),  # panorama 3:1 -> 1.91:1 (565 is 1.9115:1)
        ((800, 800), None, (800, 800)),  # never upscaled
    ],
)
def test_instagram_geometry(
    size: tuple[int, int], expected_crop: tuple[int, int, int, int] | None, expected_size: tuple[int, int]
) -> None:
    geometry = plan_geometry(*size, get_platform("instagram"))
    assert geometry.crop == expected_crop
    assert geometry.size == expected_size
    low, high = get_platform("instagram").aspect_range or (0, 0)
    assert low - 0.01 <= geometry.size[0] / geometry.size[1] <= high + 0.01


@pytest.mark.parametrize("name", ["x", "mastodon", "bluesky", "facebook", "email"])
def test_long_edge_geometry(name: str) -> None:
    platform = get_platform(name)
    geometry = plan_geometry(8000, 6000, platform)
    assert geometry.crop is None and max(geometry.size) == platform.long_edge
    assert plan_geometry(300, 200, platform).size == (300, 200)


def test_original_geometry_keeps_pixels() -> None:
    assert plan_geometry(8000, 6000, get_platform("original")).size == (8000, 6000)


# --- splitting ---


def test_split_post_keeps_order_and_limit() -> None:
    platform = get_platform("bluesky")
    for count in range(0, 30):
        images = list(range(count))
        parts = split_post(images, platform)
        assert [i for part in parts for i in part] == images
        assert all(len(part) <= 4 for part in parts)
        assert len(parts) == max(1, -(-count // 4))
        assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced: 5 -> 3 + 2, not 4 + 1


def test_split_post_without_limit() -> None:
    assert split_post(list(range(50)), get_platform("email")) == [list(range(50))]
    assert split_post([], get_platform("x")) == [[]]


def test_part_suffix() -> None:
    assert part_suffix(1, 1) == ""
    assert part_suffix(2, 3) == " (2/3)"


# --- captions ---


def test_short_caption_is_untouched() -> None:
    assert fit_caption("Sunset over the bay", get_platform("mastodon")) == ("Sunset over the bay", False)
    assert fit_caption("x" * 10_000, get_platform("original")) == ("x" * 10_000, False)


def test_long_caption_is_cut_at_a_word_boundary() -> None:
    text = " ".join(f"word{i}" for i in range(200))
    caption, cut = fit_caption(text, get_platform("mastodon"))
    assert cut and caption.endswith(ELLIPSIS) and len(caption) <= 500
    assert text.startswith(caption[:-1])
    assert text[len(caption) - 1] == " "  # cut right before a space
    assert len(caption) > 490


def test_cut_drops_trailing_punctuation() -> None:
    platform = Platform("t", caption_limit=12)
    assert fit_caption("Hello, world of travel", platform) == ("Hello" + ELLIPSIS, True)


def test_one_long_word_is_cut_inside() -> None:
    platform = Platform("t", caption_limit=10)
    caption, cut = fit_caption("Llanfairpwllgwyngyll is a village", platform)
    assert (caption, cut) == ("Llanfairp" + ELLIPSIS, True)


def test_suffix_is_kept_inside_the_limit() -> None:
    platform = get_platform("bluesky")
    text = "tag " * 200
    caption, cut = fit_caption(text, platform, suffix=part_suffix(1, 2))
    assert cut and caption.endswith(ELLIPSIS + " (1/2)")
    assert caption_length(caption, platform) <= 300
    assert fit_caption("short", platform, suffix=" (1/2)") == ("short (1/2)", False)


def test_graphemes_count_emoji_and_marks_as_one() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    samples = {
        "e\u0301": 1,  # e + combining acute
        family: 1,
        "\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea": 2,  # two flags
        "\U0001f44d\U0001f3fd": 1,  # thumbs up + skin tone
        "\u2764\ufe0f": 1,  # heart + VS16
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f": 1,  # Scotland tag flag
        "\r\n": 1,
        "\u1100\u1161\u11a8": 1,  # conjoining Hangul jamo
        "abc": 3,
    }
    for text, count in samples.items():
        assert len(graphemes(text)) == count, text


def test_bluesky_counts_graphemes_not_code_points() -> None:
    platform = get_platform("bluesky")
    thumbs = "\U0001f44d\U0001f3fd"  # thumbs up + skin tone: 1 grapheme, 2 code points, 8 bytes
    text = thumbs * 300
    assert fit_caption(text, platform) == (text, False)
    caption, cut = fit_caption(text + thumbs, platform)
    assert cut and caption == thumbs * 299 + ELLIPSIS


def test_cut_never_splits_a_cluster() -> None:
    rng = random.Random(7)
    alphabet = ["a", "b", " ", "e\u0301", "\U0001f44d\U0001f3fd", "\U0001f1eb\U0001f1f7", "\u4e2d"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        by_chars = Platform("c", caption_limit=40)
        by_graphemes = Platform("g", caption_limit=40, caption_unit="graphemes")
        for platform in (by_chars, by_graphemes):
            caption, cut = fit_caption(text, platform)
            assert caption_length(caption, platform) <= 40
            if cut:
                body = caption[: -len(ELLIPSIS)]
                assert text.startswith(body)
                assert graphemes(body) == graphemes(text)[: len(graphemes(body))]
            else:
                assert caption == text


# --- captions counted the platform's way ---

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # ZWJ sequence: 1 grapheme, 5 code points, 18 bytes
FLAG = "\U0001f1f0\U0001f1f7"  # KR: two regional indicators
#: 200 Hangul syllables and 80 spaces and ASCII: 280 characters, 480 as X weighs them.
KOREAN = "광장시장의 " * 40 + "Seoul, 2026: markets and food, day four!"
HINDI_SENTENCE = "नमस्ते दोस्तों, आज हम क्षत्रिय किले की सैर पर गए और श्रीनगर की झील देखी। "
#: 319 grapheme clusters of Devanagari with conjuncts (क्ष, स्ते, श्री: one cluster each).
HINDI = "".join(graphemes(HINDI_SENTENCE * 7)[:319])
LONG_URL = "https://example.org/travel/2026/korea/seoul/markets/gwangjang?photo=12&lang=ko"


def test_korean_caption_is_weighed_as_x_weighs_it() -> None:
    x = get_platform("x")
    hangul = sum(1 for c in KOREAN if 0xAC00 <= ord(c) <= 0xD7A3)
    assert (len(KOREAN), hangul) == (280, 200)
    assert caption_length(KOREAN, x) == 480  # Hangul weighs 2, the rest 1
    fitted = cut_caption(KOREAN, x)
    assert fitted.cut and fitted.length <= 280 and caption_length(fitted.text, x) == fitted.length
    assert fitted.length >= 270 // 2 and fitted.limit == 280
    assert KOREAN.startswith(fitted.text[: -len(ELLIPSIS)]) and fitted.dropped
    assert KOREAN.endswith(fitted.dropped)


def test_x_weighs_urls_23_and_emoji_sequences_2() -> None:
    x = get_platform("x")
    assert caption_length(f"see {LONG_URL} now", x) == 4 + 23 + 4
    assert caption_length("see example.com now", x) == 4 + 23 + 4  # no scheme: still a URL
    assert caption_length(f"({LONG_URL}).", x) == 1 + 23 + 2  # closing punctuation is not the URL's
    assert caption_length(FAMILY, x) == 2 and caption_length(FLAG, x) == 2
    assert caption_length("café", x) == 4 and caption_length("cafe\u0301", x) == 4  # NFC first
    assert caption_length(ELLIPSIS, x) == 2  # U+2026 is outside the light ranges
    text = "a" * 250 + " " + LONG_URL  # 330 characters, 274 as X counts
    assert fit_caption(text, x) == (text, False)
    emoji = FAMILY * 140
    assert fit_caption(emoji, x) == (emoji, False)
    caption, cut = fit_caption(emoji + FAMILY, x)
    assert cut and caption == FAMILY * 139 + ELLIPSIS


def test_a_cut_never_splits_a_url() -> None:
    x = get_platform("x")
    text = "word " * 50 + LONG_URL + " tail " * 20
    fitted = cut_caption(text, x)
    assert fitted.cut and fitted.length <= 280
    body = fitted.text[: -len(ELLIPSIS)]
    assert LONG_URL in body or "https" not in body
    mastodon = Platform("m", caption_limit=30, caption_unit="mastodon")
    fitted = cut_caption("hi " + LONG_URL + " and more words here", mastodon)
    assert fitted.text in ("hi " + LONG_URL + ELLIPSIS, "hi" + ELLIPSIS) and fitted.length <= 30


def test_bluesky_keeps_devanagari_conjuncts_and_cuts_near_300() -> None:
    bluesky = get_platform("bluesky")
    assert graphemes("क्षि") == ["क्षि"]  # Unicode 15.1 (GB9c): a conjunct is one cluster
    assert graphemes("श्री") == ["श्री"]
    assert caption_length(HINDI, bluesky) == 319
    fitted = cut_caption(HINDI, bluesky)
    assert (
        fitted.cut and 280 <= fitted.length <= 300 and caption_length(fitted.text, bluesky) == fitted.length
    )
    body = fitted.text[: -len(ELLIPSIS)]
    assert HINDI.startswith(body) and graphemes(body) == graphemes(HINDI)[: len(graphemes(body))]


def test_bluesky_also_caps_utf8_bytes() -> None:
    bluesky = get_platform("bluesky")
    text = FAMILY * 300  # 300 graphemes, but 5400 bytes: over the lexicon's 3000
    fitted = cut_caption(text, bluesky)
    assert fitted.cut and len(fitted.text.encode()) <= 3000 and fitted.text.startswith(FAMILY * 150)
    assert caption_length(FLAG * 5, bluesky) == 5


def test_mastodon_counts_graphemes_urls_as_23_and_mentions_without_domain() -> None:
    mastodon = get_platform("mastodon")
    assert caption_length(FAMILY + FLAG + "e\u0301", mastodon) == 3
    assert caption_length(f"at {LONG_URL}", mastodon) == 3 + 23
    assert caption_length("example.com", mastodon) == 11  # Mastodon only shortens URLs with a scheme
    assert caption_length("hi @alice@mastodon.social!", mastodon) == len("hi @alice!")
    text = LONG_URL + " " + "ab " * 158  # 552 characters, 498 as Mastodon counts
    assert caption_length(text, mastodon) == 23 + 1 + 3 * 158
    assert fit_caption(text, mastodon) == (text, False)
    flags = FLAG * 500
    assert fit_caption(flags, mastodon) == (flags, False)  # 500 graphemes, 1000 code points


def test_instagram_counts_utf16_units() -> None:
    instagram = get_platform("instagram")
    smile = "\U0001f600"  # one code point, two UTF-16 units
    assert caption_length(smile * 1100, instagram) == 2200
    assert fit_caption(smile * 1100, instagram) == (smile * 1100, False)
    fitted = cut_caption(smile * 1101, instagram)
    assert fitted.cut and fitted.length <= 2200 and fitted.text == smile * 1099 + ELLIPSIS
    assert caption_length(FAMILY + FLAG, instagram) == 8 + 4


def test_what_was_cut_is_reported() -> None:
    fitted = cut_caption("Hello, world of travel", Platform("t", caption_limit=12))
    assert (fitted.text, fitted.dropped, fitted.length, fitted.limit) == (
        "Hello" + ELLIPSIS,
        ", world of travel",
        6,
        12,
    )
    whole = cut_caption("short", get_platform("x"))
    assert (whole.cut, whole.dropped, whole.length) == (False, "", 5)
