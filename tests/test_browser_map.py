"""The map journal in Debian's Chromium against a real `journal serve`, with every non-local request aborted.

A trip is imported with `journal import`: photos made with Pillow (a walk without GPS inside
cerknicko-jezero.gpx's time span, GPS photos in four towns, one photo that stays without a position)
and the GPX track itself. Screenshots (map.png, trip.png, trip-phone.png, map-fiji.png and
bundle-fiji.png) go to the `shots` folder (the `shots` fixture in conftest.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from journal import db
from journal.models import Photo, Post, Trip
from tests.browser import launch_chromium, offline_context, page_errors, wait_settled
from tests.imaging import make_jpeg
from tests.samples import GPX_SAMPLES
from tests.servers import LiveServer
from tests.web import PASSWORD

pytestmark = [
    pytest.mark.browser,
]

EVIL = "<img src=x onerror=window.__x=1>"
TOWNS = [(46.0511, 14.5051), (45.5469, 13.7302), (46.3683, 14.1146), (45.8150, 15.9819)]
WALK_MINUTES = (0, 10, 20, 30, 40, 70, 100)  # after 14:30Z; 15:10Z lies between two track segments


def make_trip_folder(folder: Path) -> int:
    """Photos and the track of a trip; returns how many photos end up on the map."""
    start = datetime(2010, 8, 5, 14, 30)
    for i, minutes in enumerate(WALK_MINUTES):
        local = start + timedelta(minutes=minutes, hours=2)
        make_jpeg(folder / f"walk-{i}.jpg", (640, 480), seed=i, taken_at=local, offset="+02:00")
    for t, (lat, lon) in enumerate(TOWNS):
        for k in range(3):
            local = datetime(2010, 8, 6 + t, 10 + k, 0)
            jitter = k * 0.003
            make_jpeg(
                folder / f"town-{t}-{k}.jpg", (640, 480), seed=50 + 3 * t + k, taken_at=local,
                offset="+02:00", lat=lat + jitter, lon=lon + jitter,
            )  # fmt: skip
    make_jpeg(folder / "lost.jpg", (640, 480), seed=99, taken_at=datetime(2010, 8, 9, 18, 0), offset="+02:00")
    shutil.copy(GPX_SAMPLES / "cerknicko-jezero.gpx", folder / "walk.gpx")
    return len(WALK_MINUTES) - 1 + 3 * len(TOWNS)  # the 15:10Z walk photo falls between segments


def journal_import(server: LiveServer, folder: Path) -> str:
    env = server.env()
    done = subprocess.run(
        [sys.executable, "-m", "journal", "import", str(folder), "--trip", "Slovenia 2010"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def set_caption(server: LiveServer, town: int, caption: str) -> int:
    """Give the first photo of a town a caption (straight in the live server's database); its id."""
    engine = db.make_engine(server.settings.database_url)
    try:
        with db.make_session_factory(engine)() as s, s.begin():
            photo = next(p for p in s.query(Photo).all() if p.original_name.endswith(f"town-{town}-0.jpg"))
            post = s.get(Post, photo.post_id)
            assert post is not None
            post.caption = caption
            return photo.id
    finally:
        engine.dispose()


def trip_id(server: LiveServer) -> int:
    engine = db.make_engine(server.settings.database_url)
    try:
        with db.make_session_factory(engine)() as s:
            return next(t.id for t in s.query(Trip).all())
    finally:
        engine.dispose()


def wait_ready(page: Any) -> None:
    page.wait_for_function("() => document.documentElement.dataset.journalMap === 'ready'", timeout=30_000)


def photos_in_view(page: Any) -> int:
    return int(
        page.evaluate(
            "() => [...document.querySelectorAll('.jm-marker')]"
            ".reduce((n, m) => n + Number(m.dataset.count), 0)"
        )
    )


def centre(page: Any) -> tuple[float, float]:
    lat, lng = page.evaluate("() => { const c = journalMap.map.getCenter(); return [c.lat, c.lng]; }")
    return float(lat), float(lng)


def route_lines(page: Any) -> int:
    """Polylines drawn in the route pane (the map draws on canvas: count layers, not SVG paths)."""
    return int(
        page.evaluate(
            """() => { let n = 0; journalMap.map.eachLayer(l => {
                 if (l instanceof L.Polyline && l.options.pane === 'journal-routes') n++; }); return n; }"""
        )
    )


def basemap_drawn(page: Any) -> bool:
    """True when the basemap canvas holds both land and border pixels (not a blank map)."""
    return bool(
        page.evaluate(
            """() => {
              const canvas = document.querySelector('.leaflet-journal-basemap-pane canvas');
              if (!canvas || !canvas.width) return false;
              const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
              let filled = 0;
              for (let i = 3; i < data.length; i += 4 * 97) if (data[i] > 0) filled++;
              return filled > 100;
            }"""
        )
    )


def test_map_journal_in_the_browser(live_server: LiveServer, tmp_path: Path, shots: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    base = live_server.url
    with (
        sync_playwright() as p,
        launch_chromium(p) as browser,
        offline_context(browser, viewport={"width": 1400, "height": 900}) as (context, log),
    ):
        page = context.new_page()
        errors = page_errors(page)

        page.goto(base + "/")
        page.fill("input[name=name]", "owner")
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=confirm]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()

        folder = tmp_path / "trip"
        folder.mkdir()
        located = make_trip_folder(folder)
        assert "imported 21," in journal_import(live_server, folder)
        evil_id = set_caption(live_server, 0, EVIL)
        trip = trip_id(live_server)

        # Everything: the basemap is drawn and every located photo is in a marker or a cluster.
        page.goto(base + "/map")
        wait_ready(page)
        assert basemap_drawn(page)
        assert photos_in_view(page) == located
        expect(page.locator(".trip-chip")).to_have_count(1)
        wait_settled(page)
        page.screenshot(path=str(shots / "map.png"))

        # The trip's own page, linked from the trip page.
        page.goto(f"{base}/trips/{trip}")
        page.click(f"a[href='/trips/{trip}/map']")
        wait_ready(page)
        expect(page.locator("h1")).to_have_text("Slovenia 2010")
        assert photos_in_view(page) == located
        assert route_lines(page) == 8  # the track's seven segments, and the way between the towns
        expect(page.locator("[data-unlocated-count]")).to_have_text("2")

        # A story photo flies the map to it and opens its popup: thumbnail, caption as text.
        before = centre(page)
        page.locator(f".story-photo[data-photo='{evil_id}']").click()
        popup = page.locator(".journal-popup")
        expect(popup.locator(".journal-popup-caption")).to_have_text(EVIL)
        page.wait_for_function(
            "() => { const i = document.querySelector('.journal-popup-thumb');"
            " return i && i.complete && i.naturalWidth > 0; }"
        )
        # The flight is animated: wait until the map has arrived (a busy machine draws it late).
        page.wait_for_function(
            "([lat, lng]) => { const c = journalMap.map.getCenter();"
            " return Math.abs(c.lat - lat) < 0.05 && Math.abs(c.lng - lng) < 0.05; }",
            arg=list(TOWNS[0][:2]),
            timeout=15_000,
        )
        after = centre(page)
        assert abs(after[0] - before[0]) + abs(after[1] - before[1]) > 0.01
        assert abs(after[0] - TOWNS[0][0]) < 0.05 and abs(after[1] - TOWNS[0][1]) < 0.05
        assert popup.locator("img").count() == 1 and page.evaluate("() => window.__x") is None
        expect(page.locator(".story-entry.is-active")).to_have_count(1)

        # A marker click scrolls its story entry into view and highlights it.
        page.evaluate("() => journalMap.map.setView([45.5469, 13.7302], 16, {animate: false})")
        marker = page.locator(".jm-photo").first
        marker.wait_for()
        photo_id = marker.get_attribute("data-photo")
        marker.click()
        active = page.locator(".story-entry.is-active")
        expect(active.locator(f".story-photo[data-photo='{photo_id}']")).to_have_count(1)
        expect(page.locator(".journal-popup-thumb")).to_be_visible()
        assert active.bounding_box() is not None

        # Placing the photo without a position: Place, then a click on the map.
        page.evaluate("() => journalMap.map.setView([45.9, 14.8], 9, {animate: false})")
        lost = page.locator(".unlocated-item").last
        lost_id = lost.get_attribute("data-photo")
        lost.locator("[data-place]").click()
        expect(page.locator(".journal-pick")).to_be_visible()
        page.locator("#journal-map").click(position={"x": 400, "y": 420})
        expect(page.locator(f".unlocated-item[data-photo='{lost_id}']")).to_have_count(0)
        expect(page.locator("[data-unlocated-count]")).to_have_text("1")
        expect(page.locator(f".story-photo[data-photo='{lost_id}']")).to_have_attribute("data-located", "1")
        page.locator(".journal-popup-close-button, .leaflet-popup-close-button").first.click()

        # The day title shows the whole day.
        page.evaluate(
            "() => { window.__moved = false; journalMap.map.once('moveend', () => window.__moved = true); }"
        )
        page.locator("[data-fit-day]").first.click()
        page.wait_for_function("() => window.__moved")  # the flight to the day is over
        wait_settled(page)
        page.screenshot(path=str(shots / "trip.png"))

        # On a phone the story goes under the map.
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{base}/trips/{trip}/map")
        wait_ready(page)
        map_box = page.locator("#journal-map").bounding_box()
        story_box = page.locator("#story").bounding_box()
        assert map_box and story_box and story_box["y"] >= map_box["y"] + map_box["height"] - 1
        wait_settled(page)
        page.screenshot(path=str(shots / "trip-phone.png"))

        assert errors == [], errors
        assert log.blocked == [], f"requests left 127.0.0.1: {log.blocked}"
        assert all(re.match(r"^(http://127\.0\.0\.1:\d+/|data:|blob:)", url) for url in log.allowed)


# --- a trip across the 180th meridian (issue 17 item 3) ---------------------------------------------------

FERRY_GPX = """<?xml version="1.0"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1"><trk><name>Ferry</name><trkseg>
{points}
</trkseg></trk></gpx>"""

IN_VIEW = """() => {
  const map = journalMap.map, view = map.getBounds();
  const markers = [], lines = [];
  map.eachLayer(l => {
    if (l instanceof L.Marker && l.getElement && l.getElement() && l.getElement().querySelector('.jm-marker'))
      markers.push(l.getLatLng());
    // App pages draw routes in their own pane; a bundle's map.html (folium) in Leaflet's overlay pane.
    const route = ['journal-routes', 'overlayPane'].includes(l.options.pane);
    if (l instanceof L.Polyline && route) lines.push(...l.getLatLngs().flat());
  });
  return {
    span: view.getEast() - view.getWest(),
    markers: markers.length,
    markersInView: markers.filter(p => view.contains(p)).length,
    vertices: lines.length,
    verticesInView: lines.filter(p => view.contains(p)).length,
  };
}"""


def make_fiji_folder(folder: Path) -> None:
    """Two photos either side of 180 degrees and a ferry track from 179.9 E to 179.8 W (Fiji time, UTC+12)."""
    make_jpeg(folder / "east.jpg", (640, 480), seed=1, taken_at=datetime(2024, 7, 1, 9, 0), offset="+12:00",
              lat=-17.0, lon=179.99)  # fmt: skip
    make_jpeg(folder / "west.jpg", (640, 480), seed=2, taken_at=datetime(2024, 7, 1, 13, 0), offset="+12:00",
              lat=-16.8, lon=-179.99)  # fmt: skip
    points = []
    for i in range(31):  # 10:00 to 11:00 local: 22:00 to 23:00 UTC the day before
        lon = 179.9 + 0.3 * i / 30
        lon = lon - 360 if lon > 180 else lon
        when = datetime(2024, 6, 30, 22, 0) + timedelta(minutes=2 * i)
        position = f'lat="{-17.0 + 0.1 * i / 30:.5f}" lon="{lon:.5f}"'
        points.append(f"<trkpt {position}><time>{when:%Y-%m-%dT%H:%M:%SZ}</time></trkpt>")
    (folder / "ferry.gpx").write_text(FERRY_GPX.format(points="\n".join(points)))


def check_one_view(page: Any, *, markers: int, track: bool) -> None:
    seen = page.evaluate(IN_VIEW)
    assert seen["span"] < 10, seen  # not the whole world
    assert seen["markers"] == markers and seen["markersInView"] == markers, seen
    if track:
        assert seen["vertices"] >= 2 and seen["verticesInView"] == seen["vertices"], seen


def test_trip_across_the_antimeridian_fits_one_view(
    live_server: LiveServer, tmp_path: Path, shots: Path
) -> None:
    from playwright.sync_api import sync_playwright

    folder = tmp_path / "fiji"
    folder.mkdir()
    make_fiji_folder(folder)
    env = live_server.env()
    with (
        sync_playwright() as p,
        launch_chromium(p) as browser,
        offline_context(browser, viewport={"width": 1200, "height": 800}) as (context, log),
    ):
        page = context.new_page()
        errors = page_errors(page)
        page.goto(live_server.url + "/")
        page.fill("input[name=name]", "owner")
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=confirm]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        done = subprocess.run(
            [sys.executable, "-m", "journal", "import", str(folder), "--trip", "Fiji"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0 and "imported 3," in done.stdout, done.stdout + done.stderr

        page.goto(f"{live_server.url}/trips/{trip_id(live_server)}/map")
        wait_ready(page)
        wait_settled(page)
        page.screenshot(path=str(shots / "map-fiji.png"))
        check_one_view(page, markers=2, track=True)
        assert basemap_drawn(page)

        out = tmp_path / "bundles"
        exported = subprocess.run(
            [sys.executable, "-m", "journal", "export", "--all", "--out", str(out), "--platform", "x"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert exported.returncode == 0, exported.stderr
        zip_path = Path(exported.stdout.split()[0])
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(out / "unzipped")
        bundle = context.new_page()
        bundle_errors = page_errors(bundle)
        bundle.goto((out / "unzipped" / "index.html").as_uri(), wait_until="load")
        frame = next(f for f in bundle.frames if f.url.endswith("/map.html"))
        assert frame.evaluate("window.journalMap.ready") == 2
        wait_settled(frame)
        wait_settled(bundle)
        bundle.screenshot(path=str(shots / "bundle-fiji.png"))
        check_one_view(frame, markers=2, track=True)  # offline, the ferry track in view with both photos
        bundle_page = (out / "unzipped" / "index.html").read_text()
        assert "GPS tracks: 1 drawn on the map." in bundle_page
        assert errors == [] and bundle_errors == []
        assert [u for u in log.blocked if not u.startswith("file:")] == []
