"""journal.gpx: reading the sample tracks, sniffing GPX content, and placing moments on a track."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from journal.errors import UnreadableFile
from journal.geotag import locate_by_time
from journal.gpx import Track, TrackPoint, is_gpx, read_track

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
