"""The library in Debian's Chromium against a real `journal serve`: grid, photo page, edits, no network.

Screenshots (library.png, photo.png) go to the `shots` folder (the `shots` fixture in conftest.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser import launch_chromium, offline_context, page_errors, wait_settled
from tests.samples import EXIF_SAMPLES
from tests.servers import LiveServer
from tests.web import PASSWORD

pytestmark = [
    pytest.mark.browser,
]

SAMPLES = [
    "lychee__train.jpg",
    "photoprism__elephants.jpg",
    "photoprism__Iceland-P3.jpg",
    "exiv2__FurnaceCreekInn.jpg",
    "photoprism__digikam.jpg",
    "photoprism__smallFiji.JPG",
    "mei__Apple iPhone 5.jpg",
    "exifpy__HMD_Nokia_8.3_5G.jpg",
    "exiv2__exiv2-bug1199.webp",
    "exifpy__Kodak_CX7530.jpg",
    "exifr__noexif.jpg",
]
CAPTION = "<script>window.__x=1</script><b>hi</b>"


def import_samples(server: LiveServer, tmp_path: Path) -> None:
    """`journal import` into the live server's data home, as a separate process."""
    folder = tmp_path / "trip"
    folder.mkdir()
    for name in SAMPLES:
        shutil.copy(EXIF_SAMPLES / name, folder / name)
    env = server.env()
    done = subprocess.run(
        [sys.executable, "-m", "journal", "import", str(folder), "--trip", "Around the world"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"imported {len(SAMPLES)}," in done.stdout


def test_library_and_photo_page_in_the_browser(live_server: LiveServer, tmp_path: Path, shots: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    base = live_server.url
    with (
        sync_playwright() as p,
        launch_chromium(p) as browser,
        offline_context(browser, viewport={"width": 1400, "height": 900}) as (context, log),
    ):
        page = context.new_page()
        errors = page_errors(page)

        # The owner account, created through the set-up page.
        page.goto(base + "/")
        expect(page).to_have_url(re.compile(r"/setup$"))
        page.fill("input[name=name]", "owner")
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=confirm]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("h2", has_text="Your library is empty")).to_be_visible()

        import_samples(live_server, tmp_path)

        # The grid: newest first, thumbnails load lazily with their sizes.
        page.goto(base + "/library")
        tiles = page.locator(".library-grid .tile")
        expect(tiles).to_have_count(len(SAMPLES))
        expect(page.locator(".counts")).to_contain_text(f"{len(SAMPLES)} photos")
        first_img = tiles.first.locator("img")
        assert first_img.get_attribute("loading") == "lazy" and first_img.get_attribute("width")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.library-grid img')].slice(0, 6)"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        page.screenshot(path=str(shots / "library.png"))

        # Selecting two photos shows the selection bar.
        bar = page.locator("[data-selection-bar]")
        expect(bar).to_be_hidden()
        tiles.nth(0).hover()
        tiles.nth(0).locator("input[name=photo]").check()
        tiles.nth(1).locator("input[name=photo]").check()
        expect(bar).to_be_visible()
        expect(page.locator("[data-selection-count]")).to_have_text("2 photos selected")
        page.click("[data-selection-clear]")
        expect(bar).to_be_hidden()

        # The photo page: caption with markup stays text.
        tiles.first.locator("a.tile-link").click()
        expect(page).to_have_url(re.compile(r"/photos/\d+$"))
        first_url = page.url
        page.fill("textarea[name=caption]", CAPTION)
        page.click("text=Save caption")
        expect(page.locator(".flash")).to_have_text("Caption saved.")
        caption = page.locator("figcaption.caption")
        expect(caption).to_have_text(CAPTION)
        assert caption.locator("b").count() == 0
        assert page.evaluate("() => typeof window.__x") == "undefined"

        # The map is drawn from local files; a click fills the position fields.
        page.wait_for_selector("#photo-map[data-ready='1']")
        wait_settled(page)
        page.screenshot(path=str(shots / "photo.png"))
        page.locator("#photo-map").click(position={"x": 60, "y": 160})
        lat = page.locator("input[name=lat]").input_value()
        assert lat and -90 <= float(lat) <= 90

        # Keyboard: → goes to the older photo, ← back.
        page.locator("body").click(position={"x": 5, "y": 300})
        page.keyboard.press("ArrowRight")
        page.wait_for_url(lambda url: url != first_url)
        page.keyboard.press("ArrowLeft")
        page.wait_for_url(first_url)

        # The caption is text in the GeoJSON too (read by the page's own fetch).
        feed = page.evaluate("() => fetch('/api/photos.geojson').then(r => r.json())")
        assert feed["type"] == "FeatureCollection" and len(feed["features"]) >= 1
        assert page.evaluate("() => typeof window.__x") == "undefined"

        assert errors == [], errors
        assert log.blocked == [], f"requests left 127.0.0.1: {log.blocked}"
        assert all(url.startswith(base) or url.startswith("data:") for url in log.allowed)
