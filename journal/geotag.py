"""Placing a moment on a recorded GPS track: the placement policy, and why a moment was not placed.

The rules follow ExifTool's geotagger (``exiftool -geotag``, Image::ExifTool::Geotag), so a folder
tagged by either tool gets the same positions:

- between two timed fixes of one segment that are at most ``max_gap_s`` apart (ExifTool's
  ``GeoMaxIntSecs``), the position is interpolated;
- otherwise, when ``nearest_s`` is set (ExifTool's ``GeoMaxExtSecs``), a moment up to that long
  before the first fix, after the last, or beside a longer gap takes the nearest fix's position;
- otherwise the moment is not placed, and the miss says why.

As in ExifTool, the segments of one file are one time series: a pause between two segments is
bridged only when it is within ``max_gap_s``. Plain functions; no database.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from journal.gpx import Track, TrackPoint

#: How a position came from a track: interpolated between two fixes, or the nearest single fix.
TrackSource = Literal["track", "track-nearest"]
#: Why a moment was not placed.
MissReason = Literal["outside", "gap", "untimed", "no-time", "clock"]

#: Largest gap a user may choose (a day): beyond that a straight line between fixes means little.
MAX_POLICY_S = 86_400


@dataclass(frozen=True)
class PlacePolicy:
    """How far the journal may go to place a photo on a track."""

    #: Longest time between two fixes that a photo between them is interpolated across.
    max_gap_s: float = 300
    #: A photo this close to a fix (before the first, after the last, beside a long gap) takes
    #: that fix's position; 0 turns the rule off.
    nearest_s: float = 0

    def __post_init__(self) -> None:
        for name in ("max_gap_s", "nearest_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= MAX_POLICY_S):
                raise ValueError(f"{name} must be between 0 and {MAX_POLICY_S} seconds")


@dataclass(frozen=True)
class Placement:
    """Where the track puts a moment, and how."""

    lat: float
    lon: float
    elevation: float | None
    source: TrackSource


@dataclass(frozen=True)
class Miss:
    """A moment the track cannot place, and why."""

    reason: MissReason


def format_duration(seconds: float) -> str:
    """300 -> "5 min", 5400 -> "1 h 30 min", 45 -> "45 s"."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    if minutes:
        parts.append(f"{minutes} min")
    if secs:
        parts.append(f"{secs} s")
    return " ".join(parts)


def describe_miss(reason: MissReason, policy: PlacePolicy) -> str:
    """A miss in words, for reports and the upload page."""
    if reason == "gap":
        return f"in a gap of the track longer than {format_duration(policy.max_gap_s)}"
    return {
        "outside": "outside every track's time",
        "untimed": "on tracks without times",
        "no-time": "without a capture time",
        "clock": "with a camera clock that looks wrong",
    }[reason]


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


def interpolate(before: TrackPoint, after: TrackPoint, when: datetime) -> tuple[float, float, float | None]:
    """The position between two timed points at `when`, straight in degrees (short spans only)."""
    assert before.time is not None and after.time is not None
    span = (after.time - before.time).total_seconds()
    f = (when - before.time).total_seconds() / span if span else 0.0
    dlon = (after.lon - before.lon + 180) % 360 - 180  # the short way across the antimeridian
    lon = (before.lon + f * dlon + 180) % 360 - 180
    elevation = None
    if before.elevation is not None and after.elevation is not None:
        elevation = before.elevation + f * (after.elevation - before.elevation)
    return before.lat + f * (after.lat - before.lat), lon, elevation


def _fix(point: TrackPoint, source: TrackSource) -> Placement:
    return Placement(point.lat, point.lon, point.elevation, source)


def place(track: Track, when_utc: datetime, policy: PlacePolicy) -> Placement | Miss:
    """Where the recorded track puts a moment under a policy, or why it cannot."""
    when = as_utc(when_utc)
    times, points = track.timed_series
    if not points:
        return Miss("untimed")
    near = policy.nearest_s
    if when < times[0] or when > times[-1]:
        end = 0 if when < times[0] else -1
        if near and abs((times[end] - when).total_seconds()) <= near:
            return _fix(points[end], "track-nearest")
        return Miss("outside")
    i = bisect.bisect_left(times, when)
    if times[i] == when:
        return _fix(points[i], "track")
    t0, t1 = times[i - 1], times[i]
    if (t1 - t0).total_seconds() <= policy.max_gap_s:
        lat, lon, elevation = interpolate(points[i - 1], points[i], when)
        return Placement(lat, lon, elevation, "track")
    j, distance = (i - 1, when - t0) if when - t0 < t1 - when else (i, t1 - when)
    if near and distance.total_seconds() <= near:
        return _fix(points[j], "track-nearest")
    return Miss("gap")


#: When several tracks miss, the most telling reason is reported.
_REASON_RANK: dict[MissReason, int] = {"gap": 0, "outside": 1, "untimed": 2, "no-time": 3, "clock": 4}


def best(results: Iterable[Placement | Miss]) -> Placement | Miss:
    """The first interpolated placement (the rest are not looked at), else the first nearest fix,
    else the most telling miss."""
    nearest: Placement | None = None
    misses: list[MissReason] = []
    for found in results:
        if isinstance(found, Miss):
            misses.append(found.reason)
        elif found.source == "track":
            return found
        elif nearest is None:
            nearest = found
    if nearest is not None:
        return nearest
    return Miss(min(misses, key=_REASON_RANK.__getitem__) if misses else "outside")


def place_on_tracks(tracks: Iterable[Track], when_utc: datetime, policy: PlacePolicy) -> Placement | Miss:
    """The first interpolated placement on any track, else the first nearest fix, else the best miss."""
    return best(place(track, when_utc, policy) for track in tracks)


def locate_by_time(
    track: Track, when_utc: datetime, *, max_gap_s: float, nearest_s: float = 0
) -> tuple[float, float, float | None] | None:
    """(lat, lon, elevation) on the recorded track at a moment, or None when the track cannot tell."""
    found = place(track, when_utc, PlacePolicy(max_gap_s=max_gap_s, nearest_s=nearest_s))
    return None if isinstance(found, Miss) else (found.lat, found.lon, found.elevation)
