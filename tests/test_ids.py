"""journal.ids: ids from outside are ASCII digits within the database's range."""

from __future__ import annotations

import random
import re

import pytest

from journal import ids
from journal.errors import InvalidInput, NotFound


@pytest.mark.parametrize(
    ("text", "expected"), [("1", 1), (" 42 ", 42), ("007", 7), (str(ids.MAX_ID), ids.MAX_ID)]
)
def test_digits_in_range_are_ids(text: str, expected: int) -> None:
    assert ids.parse_id(text, "trip") == expected


@pytest.mark.parametrize("text", [None, "", "   "])
def test_empty_is_none(text: str | None) -> None:
    assert ids.parse_id(text) is None


@pytest.mark.parametrize("text", [str(10**30), str(2**63), str(ids.MAX_ID + 1), "0", "9" * 100_000])
def test_numbers_no_row_can_have_are_not_found(text: str) -> None:
    with pytest.raises(NotFound, match="no such trip"):
        ids.parse_id(text, "trip")


@pytest.mark.parametrize("text", ["-1", "1.5", "abc", "²", "1e3", "0x10", "１"])
def test_anything_but_ascii_digits_is_invalid(text: str) -> None:
    with pytest.raises(InvalidInput, match="not a valid trip"):
        ids.parse_id(text, "trip")


@pytest.mark.parametrize("limit", [0, 7, 9, 10, 99, 100, 101, 1000, 2024, 90_909, ids.MAX_ID, 2**63 - 1])
def test_the_url_pattern_takes_exactly_the_numbers_up_to_the_limit(limit: int) -> None:
    pattern = re.compile(ids.digits_up_to(limit))
    rng = random.Random(limit)
    near = [limit + d for d in range(-12, 13)] + [10**k + d for k in range(21) for d in (-1, 0, 1)]
    numbers = [n for n in near + [rng.randrange(10 * limit + 10) for _ in range(2000)] if n >= 0]
    for number in numbers:
        for text in (str(number), "00" + str(number)):
            assert bool(pattern.fullmatch(text)) == (number <= limit), (limit, text)
    assert not pattern.fullmatch("") and not pattern.fullmatch("-1") and not pattern.fullmatch("²")
