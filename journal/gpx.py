"""Tracks from GPX files; placing a moment on a track by its time lives in journal.geotag.

GPX files come from anyone, so reading one costs time linear in its size: the XML is parsed by
expat (through ElementTree's C parser) after a DTD or entity declaration has been refused, and only
the elements a track needs are looked at (gpxpy ran regular expressions over the whole text and
held the GIL for seconds on a crafted file). read_track_isolated reads in a worker process with a
CPU and wall-clock limit, so a file that still takes too long stalls no one else.

Only recorded tracks (``<trkseg>``) place photos. Planned routes (``<rte>``) are kept apart: they say
where someone meant to go, not where they were. Times a device clock could not have meant (before
1990, or more than a day in the future, such as the all-1901 stamps of a reset clock) count as missing.
"""

from __future__ import annotations

import array
import codecs
import functools
import gc
import logging
import math
import os
import pickle
import re
import resource
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET  # the C parser; refuse_dtd() runs before it sees any text
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from journal import clock
from journal.errors import UnreadableFile

logger = logging.getLogger(__name__)

#: The shared rule for device clocks (journal.clock): before consumer GPS, or over a day ahead, is missing.
EARLIEST_PLAUSIBLE = clock.EARLIEST_TRACK
FUTURE_SLACK = clock.FUTURE_SLACK
SNIFF_BYTES = 8192
#: Most points (track and route points together) one file may hold.
DEFAULT_MAX_POINTS = 1_000_000
#: Largest GPX file read (bytes), and the CPU seconds its worker process may use.
DEFAULT_MAX_BYTES = 50_000_000
DEFAULT_CPU_S = 2.0
#: The worker's address-space limit, and how long to wait for it (a busy machine gives it less CPU).
WORKER_MEMORY_BYTES = 2_000_000_000
WORKER_MIN_WALL_S = 10.0
WORKER_WALL_FACTOR = 4.0
#: Longest text read as a time, a number or a name (longer times and numbers count as missing).
MAX_TIME_CHARS = 64
MAX_NUMBER_CHARS = 64
MAX_NAME_CHARS = 1000
#: Characters handed to the XML parser at a time.
PARSE_CHUNK = 1 << 16

_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_PROLOG = re.compile(r"\A(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)
# A <!DOCTYPE gpx ...> counts as GPX when sniffing, so that reading it refuses the DTD clearly; the
# DTD is never skipped over (an entity value holding ">" ended a <!DOCTYPE[^>]*> match early).
_GPX_ROOT = re.compile(r"<(?:!DOCTYPE\s+)?(?:[A-Za-z_][\w.-]*:)?gpx[\s>/\[]")


class TrackPoint(NamedTuple):
    """A position in WGS84 degrees, with its UTC time and elevation (metres) when known.

    A named tuple rather than a frozen dataclass: a million of them are made in a second, not three.
    """

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

    @functools.cached_property
    def timed_series(self) -> tuple[list[datetime], list[TrackPoint]]:
        """Every recorded point with a time, sorted by time once per track, and their times.

        Segments are one time series, as ExifTool reads them (journal.geotag); points may come in
        any order (a file can list them backwards or shuffled), and at a moment recorded twice the
        later point wins, as in ExifTool. Placing a photo then costs a binary search, not a sort.
        """
        by_time: dict[datetime, TrackPoint] = {}
        for segment in self.segments:
            for point in segment:
                if point.time is not None:
                    by_time[point.time] = point
        times = sorted(by_time)
        return times, [by_time[t] for t in times]


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
    if value.tzinfo is UTC:  # the common "...Z"
        utc = value
    else:
        utc = value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)
    if clock.implausible(utc, earliest=EARLIEST_PLAUSIBLE, read_at=now):
        return None
    return utc


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time from a <time> element, or None when blank, too long or not a time."""
    if not text:
        return None
    value = text.strip()
    if not value or len(value) > MAX_TIME_CHARS:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _number(text: str | None) -> float | None:
    """A finite float from an element's or attribute's text, else None."""
    if text is None or len(text) > MAX_NUMBER_CHARS:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _local(tag: object) -> str:
    """An element's name without its namespace ("{http://...}trkpt" -> "trkpt")."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _namespace(tag: str) -> str:
    """The "{uri}" part of an element's name ("" when it has none)."""
    return tag[: tag.index("}") + 1] if tag.startswith("{") else ""


def _safe_time(text: str | None, now: datetime) -> datetime | None:
    try:
        return plausible_time(parse_time(text), now)
    except (OverflowError, ValueError):  # year 1 with +14:00 and the like cannot be put in UTC
        return None


class _Reader:
    """Walks a parsed <gpx> tree (elements in the root's namespace): segments, routes and names.

    Counts points against a bound; looks only at the elements a track needs (ElementTree's C code
    finds them, so the cost per point is a few attribute and child look-ups).
    """

    def __init__(self, ns: str, now: datetime, max_points: int) -> None:
        self.ns = ns
        self.now = now
        self.max_points = max_points
        self.points = 0

    def name(self, element: ET.Element) -> str | None:
        text = element.findtext(self.ns + "name")
        return text.strip()[:MAX_NAME_CHARS] or None if text else None

    def points_of(self, parent: ET.Element, tag: str) -> Segment:
        """The points (<trkpt> or <rtept>) of a segment or route; UnreadableFile for one with no position."""
        elements = parent.findall(self.ns + tag)
        self.points += len(elements)
        if self.points > self.max_points:
            raise UnreadableFile(f"more than {self.max_points:,} points")
        time_tag, ele_tag, now = self.ns + "time", self.ns + "ele", self.now
        found = []
        for element in elements:
            attrs = element.attrib
            lat, lon = _number(attrs.get("lat")), _number(attrs.get("lon"))
            if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise UnreadableFile(f"a point without a valid position (lat={attrs.get('lat')!r:.40})")
            found.append(
                TrackPoint(
                    lat, lon, _safe_time(element.findtext(time_tag), now), _number(element.findtext(ele_tag))
                )
            )
        return tuple(found)

    def track(self, root: ET.Element) -> Track:
        ns = self.ns
        metadata = root.find(ns + "metadata")  # GPX 1.1 names the file there, GPX 1.0 on <gpx> itself
        names = [None if metadata is None else self.name(metadata), self.name(root)]
        segments: list[Segment] = []
        for trk in root.iterfind(ns + "trk"):
            names.append(self.name(trk))
            segments += (self.points_of(seg, "trkpt") for seg in trk.iterfind(ns + "trkseg"))
        routes: list[Segment] = []
        for rte in root.iterfind(ns + "rte"):
            names.append(self.name(rte))
            routes.append(self.points_of(rte, "rtept"))
        return Track(
            name=next((n for n in names if n), None),
            segments=tuple(s for s in segments if s),
            routes=tuple(r for r in routes if r),
        )


def refuse_dtd(text: str) -> None:
    """UnreadableFile for a document declaring a DTD or entities: a GPX never needs one.

    Without a <!DOCTYPE> no entity can be declared, so nothing expands (billion laughs, quadratic
    blow-up) and nothing external is fetched; the check is on the very text the parser gets.
    """
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise UnreadableFile("GPX with a DTD/entities is refused")


def parse_gpx(
    text: str, *, now: datetime, max_points: int = DEFAULT_MAX_POINTS, chunk: int | None = PARSE_CHUNK
) -> Track:
    """A Track from GPX text; UnreadableFile for anything else.

    Fed to the parser in `chunk`-sized pieces (the C parser holds the GIL while it works, so other
    threads get turns between them), or at once with chunk=None: expat 2.5 scans a token split across
    pieces again with each piece, so a 40 MB attribute costs 46 s in 64 KB pieces and 0.5 s at once.
    The worker (read_track_isolated) has no other threads and reads at once: linear in the size.
    """
    refuse_dtd(text)
    parser = ET.XMLParser()
    step = chunk or max(1, len(text))
    try:
        for start in range(0, len(text), step):
            parser.feed(text[start : start + step])
        root = parser.close()
    except ET.ParseError as exc:
        raise UnreadableFile(f"broken GPX ({exc})") from exc
    if _local(root.tag) != "gpx":
        raise UnreadableFile("not a GPX file")
    return _Reader(_namespace(root.tag), now, max_points).track(root)


def read_text(path: Path) -> str:
    """A GPX file's text; UnreadableFile when it is not text in a known encoding."""
    try:
        return decode_xml(path.read_bytes())
    except (UnicodeDecodeError, LookupError) as exc:
        raise UnreadableFile(f"{path.name}: not a readable XML text ({exc})") from exc


def read_track(
    path: Path,
    *,
    now: datetime | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    chunk: int | None = PARSE_CHUNK,
) -> Track:
    """Read a GPX file's tracks and routes in this process; raise UnreadableFile when it is not readable GPX.

    For files from someone else, read_track_isolated reads in a worker process with a time limit.
    """
    text = read_text(path)
    try:
        track = parse_gpx(text, now=now or datetime.now(UTC), max_points=max_points, chunk=chunk)
    except UnreadableFile as exc:
        raise UnreadableFile(f"{path.name}: {exc}") from exc
    logger.debug("%s: %d segments, %d timed points", path.name, len(track.segments), track.timed_points)
    return track


# --- reading untrusted files in a worker process -----------------------------------------------------


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on reading one GPX file: its size, its points, and the CPU seconds its worker may use."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_points: int = DEFAULT_MAX_POINTS
    cpu_s: float = DEFAULT_CPU_S

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_points <= 0 or not self.cpu_s > 0:
            raise ValueError("GPX limits must be positive")

    @property
    def wall_s(self) -> float:
        """How long to wait for the worker: its CPU limit with room for a busy machine."""
        return max(WORKER_MIN_WALL_S, WORKER_WALL_FACTOR * self.cpu_s)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NO_TIME = -(2**63)
_NO_VALUE = float("nan")
# Columns of one segment as the worker sends it: lat, lon, elevation (NaN: none), time (µs, _NO_TIME: none).
Packed = tuple[bytes, bytes, bytes, bytes]


def _pack(segment: Segment) -> Packed:
    """A segment as four arrays: pickled in microseconds, where a million TrackPoints take seconds."""
    lat = array.array("d", (p.lat for p in segment))
    lon = array.array("d", (p.lon for p in segment))
    ele = array.array("d", (_NO_VALUE if p.elevation is None else p.elevation for p in segment))
    times = array.array(
        "q", (_NO_TIME if p.time is None else (p.time - _EPOCH) // _MICROSECOND for p in segment)
    )
    return lat.tobytes(), lon.tobytes(), ele.tobytes(), times.tobytes()


def _unpack(packed: Packed) -> Segment:
    lat, lon, ele, times = (array.array(code, data) for code, data in zip("dddq", packed, strict=True))
    return tuple(
        TrackPoint(
            lat=la,
            lon=lo,
            time=None if t == _NO_TIME else _EPOCH + t * _MICROSECOND,
            elevation=None if math.isnan(e) else e,
        )
        for la, lo, e, t in zip(lat, lon, ele, times, strict=True)
    )


#: How much lower the GPX worker's priority is than the server's (nice(2); 19 is the lowest).
WORKER_NICENESS = 10


def _limit_worker(cpu_s: float) -> None:
    """The worker's own limits: CPU seconds (then SIGXCPU ends it), memory, no core file, and a low
    priority, so the server's request threads get the CPU first while a crafted file is read."""
    os.nice(WORKER_NICENESS)
    seconds = max(1, math.ceil(cpu_s))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    except (ValueError, OSError) as exc:  # a lower hard limit is already in place
        logger.debug("worker memory limit not set: %s", exc)


def worker_main() -> None:
    """The worker process: a pickled (path, now, max_points, cpu_s) on stdin, the answer on stdout.

    The answer is ("ok", name, segments, routes) with segments packed as arrays, or ("error", why).
    """
    path, now, max_points, cpu_s = pickle.loads(sys.stdin.buffer.read())
    _limit_worker(cpu_s)
    gc.disable()  # a tree of millions of elements and no cycles: collections would only cost time
    answer: tuple[object, ...]
    try:
        track = read_track(Path(path), now=now, max_points=max_points, chunk=None)
        answer = ("ok", track.name, [_pack(s) for s in track.segments], [_pack(r) for r in track.routes])
    except UnreadableFile as exc:
        answer = ("error", str(exc))
    except (MemoryError, RecursionError):
        answer = ("error", f"{Path(path).name}: too large to read")
    sys.stdout.buffer.write(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))


#: A fresh interpreter per file (a forked worker would inherit the web server's threads and memory).
_WORKER_CODE = (
    "import sys; sys.path.insert(0, sys.argv[1]); from journal.gpx import worker_main; worker_main()"
)
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
#: Workers reading at the same time (the rest wait): reading is CPU-bound.
_SLOTS = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) // 2))


def _run_worker(path: Path, now: datetime, limits: ReadLimits) -> tuple[object, ...]:
    """Run the worker on a file and wait for its answer within limits.wall_s; end it when it takes longer."""
    request = pickle.dumps((str(path), now, limits.max_points, limits.cpu_s))
    command = [sys.executable, "-c", _WORKER_CODE, _PACKAGE_ROOT]
    with (
        _SLOTS,
        subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as process,
    ):
        try:
            out, err = process.communicate(request, timeout=limits.wall_s)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
    if process.returncode == 0 and out:
        answer: tuple[object, ...] = pickle.loads(out)  # our own worker's answer, not the file's bytes
        return answer
    logger.warning(
        "%s: reading stopped (exit code %s): %s",
        path.name,
        process.returncode,
        err.decode(errors="replace")[-500:],
    )
    raise UnreadableFile(f"{path.name}: took too long to read")


def read_track_isolated(
    path: Path, *, limits: ReadLimits | None = None, now: datetime | None = None
) -> Track:
    """Read a GPX file from someone else: refused above limits.max_bytes, read in a worker process.

    The worker may use limits.cpu_s of CPU (and a bounded amount of memory); a file that takes longer
    is reported as "took too long to read" and the worker is ended, so a crafted file never stalls
    the request threads. UnreadableFile for every file that cannot be read.
    """
    limits = limits or ReadLimits()
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise UnreadableFile(f"{path.name}: a GPX file larger than {limits.max_bytes / 1e6:g} MB is refused")
    answer = _run_worker(path, now or datetime.now(UTC), limits)
    if answer[0] != "ok":
        raise UnreadableFile(str(answer[1]))
    _, name, segments, routes = answer
    assert isinstance(segments, list) and isinstance(routes, list)
    return Track(
        name=name if isinstance(name, str) else None,
        segments=tuple(_unpack(s) for s in segments),
        routes=tuple(_unpack(r) for r in routes),
    )


def _time_of(point: TrackPoint) -> datetime:
    assert point.time is not None
    return point.time
