"""The `journal inspect --json` form of photo metadata: one object per file, its keys fixed by CONTRACT.md.

The metadata reader (metadata.py) knows nothing of this output; the command prints what inspect_file
returns.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from journal.config import DEFAULT_MAX_PIXELS
from journal.errors import JournalError
from journal.media import metadata
from journal.media.metadata import PhotoMetadata
from journal.names import printable

logger = logging.getLogger(__name__)

#: The keys of every `journal inspect` object, in order (CONTRACT.md).
INSPECT_KEYS = (
    "file",
    "format",
    "width",
    "height",
    "orientation",
    "make",
    "model",
    "taken_at",
    "utc_offset",
    "taken_at_utc",
    "lat",
    "lon",
    "alt",
    "error",
)


def inspect_file(path_str: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict[str, object]:
    """`journal inspect` output for one file; never raises: failures come back in the "error" key.

    Text is valid UTF-8 even for a name whose bytes are not (names.printable escapes them).
    """
    return {
        key: printable(v) if isinstance(v, str) else v for key, v in _inspect(path_str, max_pixels).items()
    }


def inspect_json(meta: PhotoMetadata, file_as_given: str) -> dict[str, object]:
    """The object `journal inspect --json` prints for a file read as meta (keys from CONTRACT.md)."""
    return {
        "file": file_as_given,
        "format": meta.format,
        "width": meta.width,
        "height": meta.height,
        "orientation": meta.orientation,
        "make": meta.make,
        "model": meta.model,
        "taken_at": _iso(meta.taken_at, meta.has_subseconds),
        "utc_offset": meta.utc_offset,
        "taken_at_utc": _iso_utc(meta.taken_at_utc, meta.has_subseconds),
        "lat": meta.lat,
        "lon": meta.lon,
        "alt": meta.alt,
        "error": None,
    }


def _inspect(path_str: str, max_pixels: int) -> dict[str, object]:
    try:
        meta = metadata.read_metadata(Path(path_str), max_pixels=max_pixels, lookup_timezone=False)
    except JournalError as exc:
        return _error_json(path_str, str(exc))
    except Exception as exc:  # one bad file must not end a batch: logged with its traceback, then reported
        logger.exception("unexpected failure reading %s", printable(path_str))
        return _error_json(path_str, f"internal error: {type(exc).__name__}: {exc}")
    return inspect_json(meta, path_str)


def _error_json(path_str: str, message: str) -> dict[str, object]:
    out: dict[str, object] = dict.fromkeys(INSPECT_KEYS)
    out["file"] = path_str
    out["error"] = " ".join(message.split()) or "unreadable file"
    return out


def _iso(value: datetime | None, subseconds: bool) -> str | None:
    if value is None:
        return None
    return value.replace(tzinfo=None).isoformat(timespec="microseconds" if subseconds else "seconds")


def _iso_utc(value: datetime | None, subseconds: bool) -> str | None:
    text = _iso(value, subseconds)
    return None if text is None else text + "Z"
