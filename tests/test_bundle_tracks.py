"""Recorded GPS tracks on a bundle's map (issue 17 item 3): exact bundles only, never through a zone."""

from __future__ import annotations

import random
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from journal.config import Settings
from journal.publish import location, zipbundle
from journal.publish.zipbundle import (
    Batch,
    BundleFile,
    BundlePost,
    BundleTrack,
    build_bundle,
    estimate_post_bytes,
)
from journal.services import zones
from tests.imaging import make_jpeg
from tests.test_services_exporting import create_user, export, import_files

CREATED = "2025-06-01T12:00:00Z"
TRACK_GPX = """<?xml version="1.0"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1"><trk><name>Walk</name><trkseg>
{points}
</trkseg></trk></gpx>"""
#: A walk bending once (so its drawing keeps three vertices) east of Bled, 07:00 to 08:00 UTC.
CORNER = (46.3700, 14.1300)


def walk_gpx(path: Path) -> Path:
    """Sixty-one points: straight north-east to CORNER, then straight east."""
    points = []
    for i in range(61):
        if i <= 30:
            lat, lon = 46.3600 + 0.0100 * i / 30, 14.1100 + 0.0200 * i / 30
        else:
            lat, lon = CORNER[0], CORNER[1] + 0.0200 * (i - 30) / 30
        when = datetime(2025, 6, 1, 7, 0) + timedelta(minutes=i)
        points.append(
            f'<trkpt lat="{lat:.6f}" lon="{lon:.6f}"><time>{when:%Y-%m-%dT%H:%M:%SZ}</time></trkpt>'
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TRACK_GPX.format(points="\n".join(points)))
    return path


def walk_library(settings: Settings, factory: sessionmaker[Session], tmp_path: Path) -> int:
    """A user with a located photo taken during the walk and the walk's GPX track; returns the user id."""
    user_id = create_user(factory)
    photo = make_jpeg(
        tmp_path / "src" / "bled.jpg",
        (640, 480),
        seed=1,
        taken_at=datetime(2025, 6, 1, 9, 30),
        offset="+02:00",
        lat=46.3683,
        lon=14.1146,
    )
    import_files(settings, factory, user_id, photo, walk_gpx(tmp_path / "src" / "walk.gpx"))
    return user_id


def read_pages(path: Path) -> tuple[str, str]:
    with zipfile.ZipFile(path) as archive:
        return archive.read("index.html").decode(), archive.read("map.html").decode()


@pytest.mark.parametrize("mode", ["exact", "approx", "none"])
def test_only_exact_bundles_draw_the_track(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path, mode: str
) -> None:
    user_id = walk_library(settings, session_factory, tmp_path)
    outcome = export(settings, session_factory, user_id, location=mode)
    with zipfile.ZipFile(outcome.bundles[0].path) as archive:
        names = archive.namelist()
        index = archive.read("index.html").decode()
        page = archive.read("map.html").decode() if "map.html" in names else ""
    corner = "[46.37, 14.13]"  # folium's drawing of the bend
    if mode == "exact":
        assert "L.polyline(" in page and corner in page
        assert "GPS tracks: 1 drawn on the map." in index
    else:
        assert "L.polyline(" not in page  # approx has a map of coarse points, none has no map at all
        assert corner not in page and "GPS tracks" not in index
    assert ("map.html" in names) == (mode != "none")


def test_a_track_touching_a_privacy_zone_is_left_out_and_said_so(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    user_id = walk_library(settings, session_factory, tmp_path)
    # Round the walk's corner: on the drawn line, 1 km from the photo (which keeps its position).
    with session_factory() as s, s.begin():
        zones.add_zone(s, user_id, zones.ZoneInput("Friends", CORNER[0], CORNER[1], 50))
    outcome = export(settings, session_factory, user_id, location="exact")
    index, page = read_pages(outcome.bundles[0].path)
    assert "L.polyline(" not in page and "14.13" not in page
    assert "GPS tracks: 0 drawn on the map; 1 left out because it passes through a privacy zone." in index
    assert "[14.1146,46.3683]" in page  # the photo is still on the map


def test_a_zone_between_two_drawn_vertices_keeps_the_track_out(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    user_id = walk_library(settings, session_factory, tmp_path)
    # Half way along the straight second leg: the simplified drawing has no vertex there.
    middle = (CORNER[0] + 0.0001, CORNER[1] + 0.0100)
    with session_factory() as s, s.begin():
        zones.add_zone(s, user_id, zones.ZoneInput("Friends", *middle, 20))
    outcome = export(settings, session_factory, user_id, location="exact")
    index, page = read_pages(outcome.bundles[0].path)
    assert "L.polyline(" not in page and "1 left out" in index


def test_a_line_is_in_a_zone_when_a_piece_crosses_it_even_across_180_degrees() -> None:
    zone = location.PrivacyZone(-17.0, 180.0, 500)
    assert location.line_in_any_zone([(-17.0, 179.9), (-17.0, -179.9)], [zone])
    assert not location.line_in_any_zone([(-17.1, 179.9), (-17.1, -179.9)], [zone])  # 11 km south
    assert not location.line_in_any_zone([(-17.0, 179.9), (-17.0, 179.95)], [zone])  # stops 5 km short
    assert location.line_in_any_zone([(-17.0, 179.999)], [zone])


def test_the_size_estimate_bounds_a_bundle_with_a_big_track(tmp_path: Path) -> None:
    rng = random.Random(7)
    line = tuple((rng.uniform(-60, 60), rng.uniform(-179, 179)) for _ in range(20_000))
    photo = make_jpeg(tmp_path / "p.jpg", (120, 80), seed=3)
    post = BundlePost(1, "x", False, None, None, None, None, (BundleFile("photos/1-1.jpg", photo, 120, 80),))
    tracks = [BundleTrack((line,))]
    info = build_bundle(tmp_path / "b.zip", Batch([post], 1, 1, CREATED, "t"), tracks=tracks)
    with zipfile.ZipFile(info.path) as archive:
        assert "map.html" in archive.namelist()  # a track alone is worth a map
    bound = estimate_post_bytes(post) + zipbundle.estimate_fixed_bytes(
        title="t", with_map=False, tracks=tracks
    )
    assert info.bytes <= bound
    planned = zipbundle.plan_bundles([[post]], info.bytes, title="t", tracks=tracks)
    assert [[p.id for p in batch] for batch in planned] == [[1]]
