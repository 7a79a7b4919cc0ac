"""Row ids arriving from outside (URLs, query strings, forms, JSON): digits in the database's range.

An id the database cannot hold cannot name a row: it is "not found", never an overflow inside the
database driver (SQLite raises OverflowError past 2**63 - 1). Imports errors only.
"""

from __future__ import annotations

import re

from journal.errors import InvalidInput, NotFound

#: Largest id a row can have: the models' ids are `Integer`, 32 bits in PostgreSQL (SQLite
#: would allow 64), so one bound holds for every supported database.
MAX_ID = 2**31 - 1

#: ASCII digits only: str.isdigit() also takes "²", which int() refuses.
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def digits_up_to(limit: int) -> str:
    """A regular expression (no capturing group) for the decimal numbers 0..limit, leading zeros allowed."""
    text = str(limit)
    options = [f"[0-9]{{1,{len(text) - 1}}}"] if len(text) > 1 else []
    for i, digit in enumerate(text[:-1]):
        if digit != "0":
            options.append(f"{text[:i]}[0-{int(digit) - 1}][0-9]{{{len(text) - i - 1}}}")
    options.append(f"{text[:-1]}[0-{text[-1]}]")
    return "0*(?:" + "|".join(options) + ")"


#: What a URL's `<int:...>` takes: a number a row could have, so a route never matches a bigger one.
ID_PATTERN = digits_up_to(MAX_ID)


def is_digits(text: str) -> bool:
    """True for a non-empty string of ASCII digits."""
    return _DIGITS.fullmatch(text) is not None


def number(digits: str) -> int:
    """The value of a string of digits, but MAX_ID + 1 for anything larger (no flood is converted)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= len(str(MAX_ID)) else MAX_ID + 1


def in_range(value: int) -> bool:
    """True when a row could have this id."""
    return 0 < value <= MAX_ID


def parse_id(text: str | None, what: str = "choice") -> int | None:
    """An id from a form field, query argument or JSON value; None for empty.

    InvalidInput (400) for anything but digits; NotFound (404) for a number no row can have.
    """
    text = (text or "").strip()
    if not text:
        return None
    if not is_digits(text):
        raise InvalidInput(f"not a valid {what}")
    value = number(text)
    if not in_range(value):
        raise NotFound(f"no such {what}")
    return value
