"""Tracks from GPX files (read with gpxpy); placing a moment on a track lives in journal.geotag.

Only recorded tracks (``<trkseg>``) place photos. Planned routes (``<rte>``) are kept apart: they say
where someone meant to go, not where they were. Times a device clock could not have meant (before
1990, or more than a day in the future, such as the all-1901 stamps of a reset clock) count as missing.
"""

from __future__ import annotations

import codecs
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gpxpy
import gpxpy.gpx

from journal import clock
from journal.errors import UnreadableFile

logger = logging.getLogger(__name__)

#: The shared rule for device clocks (journal.clock): before consumer GPS, or over a day ahead, is missing.
EARLIEST_PLAUSIBLE = clock.EARLIEST_TRACK
FUTURE_SLACK = clock.FUTURE_SLACK
SNIFF_BYTES = 8192

_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_PROLOG = re.compile(r"\A(?:\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)*", re.DOTALL)
_GPX_ROOT = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?gpx[\s>/]")


@dataclass(frozen=True)
class TrackPoint:
    """A position in WGS84 degrees, with its UTC time and elevation (metres) when known."""

    lat: float
    lon: float
    time: datetime | None
    elevation: float | None


Segment = tuple[TrackPoint, ...]


@dataclass(frozen=True)
class Track:
    """What a GPX file holds: recorded segments, and planned routes kept apart from them."""

    name: str | None
    segments: tuple[Segment, ...]
    routes: tuple[Segment, ...] = ()

    @property
    def is_planned_route(self) -> bool:
        """True when the file holds a planned route and no recorded track."""
        return not self.segments and bool(self.routes)

    @property
    def timed_points(self) -> int:
        """How many recorded points have a usable time."""
        return sum(1 for segment in self.segments for point in segment if point.time is not None)

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to draw (waypoints alone do not make a track)."""
        return not self.segments and not self.routes


def decode_xml(data: bytes) -> str:
    """Text of an XML file: byte-order marks honoured, UTF-8 by default, else the declared encoding."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(codec).lstrip("\ufeff")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        declared = _DECLARED_ENCODING.match(data)
        if declared is None:
            raise
        return data.decode(declared.group(1).decode("ascii"))


def has_gpx_root(text: str) -> bool:
    """True when the first element after the XML prolog is <gpx> (with or without a prefix)."""
    prolog = _PROLOG.match(text)
    return _GPX_ROOT.match(text, prolog.end() if prolog else 0) is not None


def is_gpx(path: Path) -> bool:
    """Sniff the content (not the extension): an XML document whose root element is <gpx>."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    try:
        text = decode_xml(head)
    except (UnicodeDecodeError, LookupError):
        # The sniffed block may end inside a multi-byte character: judge what decodes.
        text = head.decode("utf-8", errors="ignore")
    return has_gpx_root(text)


def plausible_time(value: datetime | None, now: datetime) -> datetime | None:
    """The time in UTC, or None when missing or impossible for a working clock."""
    if value is None:
        return None
    utc = value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)
    if clock.implausible(utc, earliest=EARLIEST_PLAUSIBLE, read_at=now):
        return None
    return utc


def to_point(raw: Any, now: datetime) -> TrackPoint:
    """A TrackPoint from a gpxpy track or route point."""
    elevation = raw.elevation if raw.elevation is not None and math.isfinite(raw.elevation) else None
    return TrackPoint(
        lat=float(raw.latitude),
        lon=float(raw.longitude),
        time=plausible_time(raw.time, now),
        elevation=elevation,
    )


def to_segments(raw_segments: Iterable[Iterable[Any]], now: datetime) -> tuple[Segment, ...]:
    """Segments of TrackPoints, dropping empty ones."""
    segments = (tuple(to_point(raw, now) for raw in points) for points in raw_segments)
    return tuple(segment for segment in segments if segment)


def track_name(parsed: gpxpy.gpx.GPX) -> str | None:
    """The file's name, else its first track's or route's name; None when all are blank."""
    candidates = [parsed.name, *(t.name for t in parsed.tracks), *(r.name for r in parsed.routes)]
    return next((name.strip() for name in candidates if name and name.strip()), None)


def parse_gpx(text: str, path: Path) -> gpxpy.gpx.GPX:
    """gpxpy's parse, with its errors turned into UnreadableFile."""
    if not has_gpx_root(text):
        raise UnreadableFile(f"{path.name}: not a GPX file")
    try:
        return gpxpy.parse(text)
    except (gpxpy.gpx.GPXException, ValueError) as exc:
        raise UnreadableFile(f"{path.name}: broken GPX ({exc})") from exc


def read_track(path: Path, *, now: datetime | None = None) -> Track:
    """Read a GPX file's tracks and routes; raise UnreadableFile when it is not readable GPX."""
    try:
        text = decode_xml(path.read_bytes())
    except (UnicodeDecodeError, LookupError) as exc:
        raise UnreadableFile(f"{path.name}: not a readable XML text ({exc})") from exc
    parsed = parse_gpx(text, path)
    moment = now or datetime.now(UTC)
    segments = to_segments((segment.points for t in parsed.tracks for segment in t.segments), moment)
    routes = to_segments((route.points for route in parsed.routes), moment)
    track = Track(name=track_name(parsed), segments=segments, routes=routes)
    logger.debug("%s: %d segments, %d timed points", path.name, len(segments), track.timed_points)
    return track
