"""File names shown and stored as text, whatever bytes they had on disk. Standard library only.

POSIX names are bytes; Python hands the ones that are not valid UTF-8 over as lone surrogates
(os.fsdecode's surrogateescape), which no database, JSON reader or terminal accepts. Such a byte
becomes the four characters `\\xff` (Python's backslashreplace), so the name stays readable and
the bytes can be told apart again; every valid UTF-8 name is left exactly as it is.
"""

from __future__ import annotations

import os
import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every lone surrogate escaped (`caf\\udcff.jpg` -> `caf\\\\xff.jpg`): valid UTF-8."""
    return _SURROGATE.sub(_escape, text)


def shown_path(path: os.PathLike[str] | str) -> str:
    """A path as text that can be stored, printed and put in JSON."""
    return printable(os.fspath(path))


def original_bytes(shown: str) -> bytes:
    """The bytes of a name made by printable() from a surrogate-escaped file name (its inverse)."""
    return re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]), shown.encode("utf-8"))
