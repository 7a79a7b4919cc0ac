"""journal.gpx: reading the sample tracks, sniffing GPX content, and placing moments on a track."""

from __future__ import annotations

import gc
import math
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from journal import gpx
from journal.errors import UnreadableFile
from journal.geotag import locate_by_time
from journal.gpx import ReadLimits, Track, TrackPoint, is_gpx, read_track, read_track_isolated

GPX_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "gpx"

# file: (points per recorded segment, points per planned route, timed points, name)
EXPECTED = {
    "around-visnjan-with-car.gpx": ([104], [], 104, "2020-12-18 07:24:29"),
    "cerknicko-jezero.gpx": ([173, 52, 2, 44, 2, 2, 21], [], 296, "ACTIVE LOG"),
    "cerknicko-without-times.gpx": ([173, 52, 2, 44, 2, 2, 21], [], 5, "ACTIVE LOG"),
    "Mojstrovka.gpx": ([184], [], 0, None),
    "track-with-empty-segment.gpx": ([9], [], 9, "2013-07-06T14:59:00Z"),
    "route.gpx": ([], [55], 0, None),
    "unicode_with_bom.gpx": ([], [], 0, None),
}

GPX_HEAD = '<?xml version="1.0" encoding="{enc}"?>\n<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">'


def sample(name: str) -> Path:
    """Path of a shared GPX sample."""
    return GPX_SAMPLES / name


def write_gpx(path: Path, body: str, *, encoding: str = "utf-8") -> Path:
    """Write a small GPX document with the given body in the given encoding."""
    path.write_bytes((GPX_HEAD.format(enc=encoding) + body + "</gpx>").encode(encoding))
    return path


def track_of(*points: tuple[float, float, datetime | None]) -> Track:
    """A one-segment track from (lat, lon, time) triples, elevations 100 m apart."""
    segment = tuple(TrackPoint(lat, lon, when, 100.0 * i) for i, (lat, lon, when) in enumerate(points))
    return Track(name=None, segments=(segment,))


def test_every_sample_is_listed() -> None:
    assert sorted(p.name for p in GPX_SAMPLES.glob("*.gpx")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reads_sample(name: str) -> None:
    segments, routes, timed, track_name = EXPECTED[name]
    track = read_track(sample(name))
    assert [len(s) for s in track.segments] == segments
    assert [len(r) for r in track.routes] == routes
    assert track.timed_points == timed
    assert track.name == track_name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_samples_sniff_as_gpx(name: str) -> None:
    assert is_gpx(sample(name))


def test_modern_track_has_utc_times_and_elevation() -> None:
    first = read_track(sample("around-visnjan-with-car.gpx")).segments[0][0]
    assert first.time == datetime(2020, 12, 18, 6, 15, 50, tzinfo=UTC)
    assert first.elevation == pytest.approx(211.15)
    assert (first.lat, first.lon) == pytest.approx((45.273518851, 13.7142099626))


def test_clock_fault_times_count_as_untimed() -> None:
    track = read_track(sample("Mojstrovka.gpx"))
    assert all(p.time is None for p in track.segments[0])
    assert all(p.elevation is not None for p in track.segments[0])  # the rest of the point is kept
    assert locate_by_time(track, datetime(1901, 12, 13, 20, 45, 52, tzinfo=UTC), max_gap_s=3600) is None


def test_future_times_count_as_untimed(tmp_path: Path) -> None:
    body = (
        '<trk><trkseg><trkpt lat="1" lon="2"><time>2030-01-01T00:00:00Z</time></trkpt>'
        '<trkpt lat="1" lon="2.1"><time>2024-01-01T00:00:00Z</time></trkpt></trkseg></trk>'
    )
    track = read_track(write_gpx(tmp_path / "t.gpx", body), now=datetime(2024, 6, 1, tzinfo=UTC))
    assert [p.time for p in track.segments[0]] == [None, datetime(2024, 1, 1, tzinfo=UTC)]


def test_route_is_a_planned_route_not_a_track() -> None:
    track = read_track(sample("route.gpx"))
    assert track.is_planned_route
    assert track.segments == ()
    assert all(p.time is None for p in track.routes[0])


def test_empty_segment_is_dropped() -> None:
    track = read_track(sample("track-with-empty-segment.gpx"))
    assert len(track.segments) == 1 and not track.is_planned_route


def test_bom_file_without_points_is_empty() -> None:
    track = read_track(sample("unicode_with_bom.gpx"))
    assert track.is_empty and not track.is_planned_route


def test_declared_latin1_encoding(tmp_path: Path) -> None:
    body = '<trk><name>Café été</name><trkseg><trkpt lat="45" lon="14"/></trkseg></trk>'
    track = read_track(write_gpx(tmp_path / "latin.gpx", body, encoding="iso-8859-1"))
    assert track.name == "Café été"
    assert track.segments[0][0].time is None


def test_naive_times_are_utc(tmp_path: Path) -> None:
    body = '<trk><trkseg><trkpt lat="45" lon="14"><time>2020-05-01T10:00:00</time></trkpt></trkseg></trk>'
    track = read_track(write_gpx(tmp_path / "naive.gpx", body))
    assert track.segments[0][0].time == datetime(2020, 5, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "content",
    [
        b'<?xml version="1.0"?><gpx version="1.1"><trk><trkseg><trkpt lat="1" lon="2">',  # truncated
        b"<gpx><trk></gpx>",  # mismatched tags
        b"\x00\x01\x02garbage",
        b"",
        b'<?xml version="1.0"?><kml><Document/></kml>',  # XML, but not GPX
        b'<?xml version="1.0" encoding="no-such-codec"?>\xff\xfe<gpx/>',
    ],
)
def test_broken_file_raises_unreadable(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.gpx"
    path.write_bytes(content)
    with pytest.raises(UnreadableFile):
        read_track(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'<?xml version="1.0"?>\n<!-- exported -->\n<gpx version="1.1"/>', True),
        (b"\xef\xbb\xbf<gpx></gpx>", True),
        (b'<gpx:gpx xmlns:gpx="http://www.topografix.com/GPX/1/1"/>', True),
        (b'<?xml version="1.0"?><kml/>', False),
        (b'<?xml version="1.0"?><gpxdata/>', False),
        (b"plain text that mentions <gpx> later", False),
        (b"", False),
        (b"\xff\xd8\xff\xe0 JPEG bytes", False),
    ],
)
def test_is_gpx_sniffs_content_not_extension(tmp_path: Path, content: bytes, expected: bool) -> None:
    path = tmp_path / ("track.txt" if expected else "track.gpx")
    path.write_bytes(content)
    assert is_gpx(path) is expected


def test_locate_exact_point_time() -> None:
    track = read_track(sample("around-visnjan-with-car.gpx"))
    point = track.segments[0][10]
    assert point.time is not None
    assert locate_by_time(track, point.time, max_gap_s=60) == (point.lat, point.lon, point.elevation)


def test_locate_interpolates_between_neighbours() -> None:
    track = read_track(sample("around-visnjan-with-car.gpx"))
    before, after = track.segments[0][10], track.segments[0][11]  # 06:16:53 and 06:16:55
    assert before.time is not None and after.elevation is not None and before.elevation is not None
    found = locate_by_time(track, before.time + timedelta(seconds=1), max_gap_s=60)
    assert found is not None
    lat, lon, elevation = found
    assert lat == pytest.approx((before.lat + after.lat) / 2)
    assert lon == pytest.approx((before.lon + after.lon) / 2)
    assert elevation == pytest.approx((before.elevation + after.elevation) / 2)


def test_locate_respects_gap_limit() -> None:
    """The limit is on the time between the two fixes (ExifTool's GeoMaxIntSecs), not on each side."""
    start = datetime(2024, 1, 1, 12, tzinfo=UTC)
    track = track_of((45.0, 14.0, start), (45.1, 14.0, start + timedelta(minutes=10)))
    assert locate_by_time(track, start + timedelta(minutes=5), max_gap_s=300) is None  # fixes 10 min apart
    assert locate_by_time(track, start + timedelta(minutes=5), max_gap_s=600) == pytest.approx(
        (45.05, 14.0, 50.0)
    )


def test_locate_outside_the_track_span_is_none() -> None:
    track = read_track(sample("cerknicko-jezero.gpx"))
    assert locate_by_time(track, datetime(2010, 8, 5, 14, 23, 0, tzinfo=UTC), max_gap_s=300) is None
    assert locate_by_time(track, datetime(2010, 8, 5, 16, 24, 30, tzinfo=UTC), max_gap_s=300) is None


def test_locate_bridges_segments_only_within_the_gap_limit() -> None:
    """Segments are one time series (as in ExifTool): their pause is bridged only within the limit."""
    track = read_track(sample("cerknicko-jezero.gpx"))
    between = datetime(2010, 8, 5, 15, 8, 0, tzinfo=UTC)  # segment 1 ends 15:05:08, segment 2 starts 15:11:36
    assert locate_by_time(track, between, max_gap_s=300) is None
    assert locate_by_time(track, between, max_gap_s=600) is not None
    inside = datetime(2010, 8, 5, 15, 12, 0, tzinfo=UTC)
    assert locate_by_time(track, inside, max_gap_s=300) is not None


def test_locate_on_mostly_untimed_track_uses_timed_points_only() -> None:
    track = read_track(sample("cerknicko-without-times.gpx"))
    assert locate_by_time(track, datetime(2010, 8, 5, 16, 23, 10, tzinfo=UTC), max_gap_s=60) is not None
    assert locate_by_time(track, datetime(2010, 8, 5, 15, 0, 0, tzinfo=UTC), max_gap_s=3600) is None


def test_locate_naive_moment_is_utc() -> None:
    start = datetime(2024, 1, 1, 12, tzinfo=UTC)
    track = track_of((45.0, 14.0, start), (45.2, 14.0, start + timedelta(seconds=20)))
    found = locate_by_time(track, datetime(2024, 1, 1, 12, 0, 10), max_gap_s=60)
    assert found == pytest.approx((45.1, 14.0, 50.0))


def test_locate_across_antimeridian_takes_short_way() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    track = track_of((-17.0, 179.9, start), (-17.0, -179.9, start + timedelta(seconds=20)))
    found = locate_by_time(track, start + timedelta(seconds=5), max_gap_s=60)
    assert found is not None
    assert found[1] == pytest.approx(179.95)


def test_locate_ignores_planned_routes() -> None:
    route = read_track(sample("route.gpx"))
    assert locate_by_time(route, datetime(2020, 1, 1, tzinfo=UTC), max_gap_s=86_400) is None


# --- hostile files (issue 10 item 1) ------------------------------------------------------------------

ENTITY_BOMB = (
    '<?xml version="1.0"?>\n<!DOCTYPE gpx [<!ENTITY a "><!--<gpx">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
    '<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><name>&b;&b;&b;&b;</name>'
    '<trkseg><trkpt lat="1" lon="2"/></trkseg></trk></gpx>'
)


def points_gpx(count: int) -> str:
    """A GPX document with `count` timed track points."""
    points = "".join(
        f'<trkpt lat="{45 + i * 1e-5:.6f}" lon="14"><ele>{i}</ele>'
        f"<time>2020-01-01T00:00:{i % 60:02d}Z</time></trkpt>"
        for i in range(count)
    )
    return GPX_HEAD.format(enc="utf-8") + f"<trk><trkseg>{points}</trkseg></trk></gpx>"


def test_dtd_with_entities_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.gpx"
    path.write_text(ENTITY_BOMB)
    assert is_gpx(path)  # recognised as a GPX file, so it is reported as refused, not as "not a photo"
    with pytest.raises(UnreadableFile, match=r"^bomb\.gpx: GPX with a DTD/entities is refused$"):
        read_track(path)


@pytest.mark.parametrize("declaration", ["<!DOCTYPE gpx>", '<!DOCTYPE gpx SYSTEM "file:///etc/passwd">'])
def test_any_doctype_is_refused(tmp_path: Path, declaration: str) -> None:
    path = tmp_path / "dtd.gpx"
    path.write_text(f'<?xml version="1.0"?>{declaration}<gpx version="1.1"><trk><trkseg/></trk></gpx>')
    with pytest.raises(UnreadableFile, match="DTD/entities"):
        read_track(path)


def test_point_count_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "many.gpx"
    path.write_text(points_gpx(4))
    assert len(read_track(path, max_points=4).segments[0]) == 4
    with pytest.raises(UnreadableFile, match="more than 3 points"):
        read_track(path, max_points=3)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_isolated_read_gives_the_same_track(name: str) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert read_track_isolated(sample(name), now=now) == read_track(sample(name), now=now)


def test_isolated_read_reports_what_the_worker_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.gpx"
    path.write_text(ENTITY_BOMB)
    with pytest.raises(UnreadableFile, match=r"^bomb\.gpx: GPX with a DTD/entities is refused$"):
        read_track_isolated(path)
    path.write_text(points_gpx(5))
    with pytest.raises(UnreadableFile, match="more than 4 points"):
        read_track_isolated(path, limits=ReadLimits(max_points=4))


def test_isolated_read_refuses_a_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.gpx"
    path.write_text(points_gpx(50))
    with pytest.raises(UnreadableFile, match="larger than 0.001 MB is refused"):
        read_track_isolated(path, limits=ReadLimits(max_bytes=1000))


def test_worker_over_its_cpu_limit_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A worker that spins instead of reading: its CPU limit (set as the real worker sets it) ends it.
    spin = "import sys; sys.path.insert(0, sys.argv[1]); from journal import gpx; gpx._limit_worker(1)"
    spin += "\nwhile True: pass"
    monkeypatch.setattr(gpx, "_WORKER_CODE", spin)
    path = write_gpx(tmp_path / "t.gpx", "")
    with pytest.raises(UnreadableFile, match=r"^t\.gpx: took too long to read$"):
        read_track_isolated(path, limits=ReadLimits(cpu_s=1))


def test_worker_past_its_wall_time_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A worker that waits without using CPU (a stalled machine): the wall-clock limit ends it.
    monkeypatch.setattr(gpx, "_WORKER_CODE", "import time; time.sleep(600)")
    monkeypatch.setattr(gpx, "WORKER_MIN_WALL_S", 1.0)
    monkeypatch.setattr(gpx, "WORKER_WALL_FACTOR", 1.0)
    path = write_gpx(tmp_path / "t.gpx", "")
    started = time.monotonic()
    with pytest.raises(UnreadableFile, match="took too long to read"):
        read_track_isolated(path, limits=ReadLimits(cpu_s=1))
    assert time.monotonic() - started < 120  # a bound that only catches a hang


# Patterns whose cost must grow with their size, not faster: the first made gpxpy scan the rest of the
# text for every " xmlns" (quadratic: 300 KB took 12.6 s); deep nesting crashed it (a segfault); a huge
# attribute fed to expat 2.5 in pieces is quadratic (why the worker feeds it at once); the others stress
# the parser and the walk.
PATHOLOGICAL = {
    "xmlns-runs": lambda n: f"<trk><name>{' xmlns' * n}</name></trk>",
    "tiny-elements": lambda n: "<extensions>" + "<x/>" * n + "</extensions>",
    "deep-nesting": lambda n: "<extensions>" + "<e>" * n + "</e>" * n + "</extensions>",
    "huge-attribute": lambda n: f'<trk><trkseg><trkpt lat="1" lon="2" x="{"9" * (n * 100)}"/></trkseg></trk>',
    "long-times": lambda n: (
        f"<trk><trkseg><trkpt lat='1' lon='2'><time>{'0' * (n * 4)}</time></trkpt></trkseg></trk>"
    ),
    "many-points": lambda n: (
        "<trk><trkseg>"
        + '<trkpt lat="1.5" lon="2.5"><ele>3</ele><time>2020-01-01T00:00:00Z</time></trkpt>' * (n // 16)
        + "</trkseg></trk>"
    ),
}


def cpu_to_read(tmp_path: Path, body: str) -> float:
    """CPU seconds read_track spends on a GPX document with this body (best of three)."""
    path = write_gpx(tmp_path / "p.gpx", body)
    costs = []
    gc.disable()  # as in the worker: the cyclic collector's passes over a big tree are not the parser's cost
    try:
        for _ in range(3):
            started = time.process_time()
            try:
                read_track(path, chunk=None)  # as the worker reads
            except UnreadableFile:
                pass
            costs.append(time.process_time() - started)
    finally:
        gc.enable()
    return min(costs)


@pytest.mark.parametrize("pattern", sorted(PATHOLOGICAL))
def test_cost_grows_linearly_with_size(tmp_path: Path, pattern: str) -> None:
    make = PATHOLOGICAL[pattern]
    n = 40_000
    small, large = cpu_to_read(tmp_path, make(n)), cpu_to_read(tmp_path, make(4 * n))
    # Linear cost gives a ratio near 4 (5 with cache effects), quadratic 16; the floor keeps out timer noise.
    assert large <= 10 * max(small, 0.01), f"{pattern}: {small:.3f} s -> {large:.3f} s of CPU for 4x the size"


# --- fuzzing: every document either reads or is refused as UnreadableFile ---------------------------

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-1000, 1000).map(str),
    st.sampled_from(["", " 1", "1e400", "-0", "nan", "inf", "0x10", "1_0", "\u0661\u0662", "9" * 500]),
    st.text(max_size=20),
)
TIMES = st.one_of(
    st.datetimes(timezones=st.just(UTC) | st.none() | st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-12:00",
            "2026-02-30T25:61:61Z",
            "",
            "Z",
            "1901-12-13",
        ]
    ),
    st.text(max_size=80),
)
NAMES = st.sampled_from(
    ["gpx", "trk", "trkseg", "trkpt", "rte", "rtept", "ele", "time", "name", "metadata", "x"]
)


def _escape(text: str) -> str:
    """Text as XML character data (characters XML cannot hold dropped)."""
    kept = "".join(c for c in text if c in "\t\n\r" or " " <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd")
    return kept.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


@st.composite
def gpx_point(draw: st.DrawFn, tag: str) -> str:
    """A <trkpt>/<rtept> with any, odd or no lat/lon, elevation and time."""
    keys = draw(st.sets(st.sampled_from(["lat", "lon", "x"])))
    attrs = "".join(f' {k}="{_escape(draw(NUMBERS))}"' for k in keys)
    ele = f"<ele>{_escape(draw(NUMBERS))}</ele>" if draw(st.booleans()) else ""
    when = f"<time>{_escape(draw(TIMES))}</time>" if draw(st.booleans()) else ""
    return f"<{tag}{attrs}>{ele}{when}</{tag}>"


@st.composite
def gpx_element(draw: st.DrawFn, depth: int = 0) -> str:
    """A random element of GPX names, nested a few levels, with points and text among its children."""
    tag = draw(NAMES)
    children = []
    if depth < 4:
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from(["element", "point", "text"]))
            if kind == "element":
                children.append(draw(gpx_element(depth + 1)))
            elif kind == "point":
                children.append(draw(gpx_point(draw(st.sampled_from(["trkpt", "rtept"])))))
            else:
                children.append(_escape(draw(st.text(max_size=30))))
    return f"<{tag}>{''.join(children)}</{tag}>"


@st.composite
def gpx_document(draw: st.DrawFn) -> bytes:
    """A GPX document: valid-looking, broken (cut, spliced), deeply nested, or with huge attributes."""
    body = "".join(draw(st.lists(gpx_element(), max_size=4)))
    tracks = "".join(
        "<trk><trkseg>" + "".join(draw(st.lists(gpx_point("trkpt"), max_size=5))) + "</trkseg></trk>"
        for _ in range(draw(st.integers(0, 2)))
    )
    depth = draw(st.integers(0, 3)) * 2000
    text = GPX_HEAD.format(enc="utf-8") + tracks + body + "<x>" * depth + "</x>" * depth + "</gpx>"
    if draw(st.booleans()):
        text = text.replace("<trkpt ", f'<trkpt big="{"A" * draw(st.integers(0, 100_000))}" ', 1)
    data = text.encode()
    mutation = draw(st.sampled_from(["none", "cut", "splice"]))
    if mutation == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif mutation == "splice":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=20)) + data[at:]
    return data


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(gpx_document())
def test_fuzzed_documents_read_or_are_unreadable(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.gpx"  # one folder per example; pytest cleans them
    path.write_bytes(data)
    try:
        track = read_track(path, now=datetime(2025, 1, 1, tzinfo=UTC))
    except UnreadableFile:
        return
    for point in [p for s in (*track.segments, *track.routes) for p in s]:
        assert -90 <= point.lat <= 90 and -180 <= point.lon <= 180
        assert point.time is None or point.time.tzinfo is UTC
        assert point.elevation is None or math.isfinite(point.elevation)


def test_the_worker_runs_below_the_server_priority() -> None:
    """A crafted file read in the worker must not take the CPU from the server's request threads."""
    import subprocess
    import sys

    code = "import os; from journal import gpx; gpx._limit_worker(2.0); print(os.nice(0))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) >= os.nice(0) + gpx.WORKER_NICENESS
