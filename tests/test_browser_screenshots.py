"""The user guide's pictures (docs/img/*.png), taken in Debian's Chromium against a real `journal serve`.

`make screenshots` runs this with JOURNAL_SCREENSHOTS=docs/img and so regenerates the committed
images; a plain test run writes them under tmp_path instead and checks the same pages. Each picture
is 1000 px wide, a palette PNG (small in the repository).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.browser import launch_chromium, offline_context, page_errors, wait_settled
from tests.samples import EXIF_SAMPLES, GPX_SAMPLES
from tests.servers import LiveServer
from tests.web import PASSWORD

pytestmark = [
    pytest.mark.browser,
]

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1000, 700
TRIP = "Around the world"
UPLOADED = ["photoprism__Iceland-P3.jpg", "photoprism__elephants.jpg", "photoprism__smallFiji.JPG"]
IMPORTED = [
    "lychee__train.jpg",
    "exiv2__FurnaceCreekInn.jpg",
    "photoprism__digikam.jpg",
    "exifpy__DSCN0010.jpg",
    "exiv2__exiv2-bug1199.webp",
    "mei__Nokia Lumia 800.jpg",
    "exifr__noexif.jpg",
]
#: The pictures docs/guide.md shows, by name.
SHOTS = ("upload", "library", "photo", "map", "trip", "export")


def shots_dir(tmp_path: Path) -> Path:
    """docs/img when asked for by `make screenshots`, else a folder of this test's own."""
    wanted = os.environ.get("JOURNAL_SCREENSHOTS")
    folder = (ROOT / wanted) if wanted else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save(page: Any, folder: Path, name: str) -> None:
    """Screenshot the viewport and keep it as a small palette PNG."""
    raw = folder / f".{name}.raw.png"
    page.screenshot(path=str(raw))
    with Image.open(raw) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    tmp = folder / f".{name}.tmp.png"
    small.save(tmp, "PNG", optimize=True)
    os.replace(tmp, folder / f"{name}.png")
    raw.unlink()


def wait_for_images(page: Any, selector: str) -> None:
    """Scroll through the page so lazy images load, wait until they have, and go back to the top."""
    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_function(
        f"() => [...document.querySelectorAll({selector!r})].every(i => i.complete && i.naturalWidth > 0)"
    )
    page.evaluate("() => window.scrollTo(0, 0)")


def cli(server: LiveServer, *args: str) -> str:
    """Run `journal ARGS` on the live server's data home, as a separate process."""
    env = server.env()
    done = subprocess.run(
        [sys.executable, "-m", "journal", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_guide_screenshots(live_server: LiveServer, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    folder = shots_dir(tmp_path)
    base = live_server.url
    with (
        sync_playwright() as p,
        launch_chromium(p) as browser,
        offline_context(browser, viewport={"width": WIDTH, "height": HEIGHT}) as (context, log),
    ):
        page = context.new_page()
        errors = page_errors(page)
        page.goto(base + "/")
        page.fill("input[name=name]", "owner")
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=confirm]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()

        # Upload from the browser: three photos into a new trip.
        page.goto(base + "/upload")
        page.fill("input[name=trip]", TRIP)
        page.set_input_files("#upload-files", [EXIF_SAMPLES / name for name in UPLOADED])
        page.wait_for_selector("#upload-queue[data-state=done]", timeout=120_000)
        expect(page.locator("#upload-list .file[data-state=imported]")).to_have_count(len(UPLOADED))
        page.wait_for_function(
            "() => [...document.querySelectorAll('#upload-list img')].every(i => i.complete)"
        )
        save(page, folder, "upload")

        # More from a folder with the command line, with a GPS track.
        source = tmp_path / "card"
        source.mkdir()
        for name in IMPORTED:
            shutil.copy(EXIF_SAMPLES / name, source / name)
        shutil.copy(GPX_SAMPLES / "cerknicko-jezero.gpx", source / "walk.gpx")
        assert f"imported {len(IMPORTED) + 1}," in cli(live_server, "import", str(source), "--trip", TRIP)

        page.goto(base + "/library")
        expect(page.locator(".library-grid .tile")).to_have_count(len(UPLOADED) + len(IMPORTED))
        wait_for_images(page, ".library-grid img")
        save(page, folder, "library")

        # A photo page: caption, facts, its place on the map.
        page.locator(".library-grid .tile a.tile-link").first.click()
        expect(page).to_have_url(re.compile(r"/photos/\d+$"))
        page.fill("textarea[name=caption]", "A train along the river, before the rain")
        page.click("text=Save caption")
        expect(page.locator(".flash")).to_have_text("Caption saved.")
        page.wait_for_selector("#photo-map[data-ready='1']")
        wait_settled(page)
        save(page, folder, "photo")

        page.goto(base + "/map")
        page.wait_for_function(
            "() => document.documentElement.dataset.journalMap === 'ready'", timeout=30_000
        )
        wait_settled(page)
        save(page, folder, "map")

        page.goto(base + "/trips")
        page.locator("a", has_text=TRIP).first.click()
        expect(page).to_have_url(re.compile(r"/trips/\d+$"))
        wait_for_images(page, "main img")
        save(page, folder, "trip")

        cli(live_server, "export", "--platform", "instagram", "--location", "approx", "--max-batch-mb", "2")
        page.goto(base + "/export")
        bundles = page.locator("#bundles")
        expect(bundles).to_contain_text("instagram")
        bundles.scroll_into_view_if_needed()
        page.evaluate("() => document.getElementById('bundles').scrollIntoView({block: 'start'})")
        save(page, folder, "export")

        assert errors == [], errors
        assert log.blocked == [], f"requests left 127.0.0.1: {log.blocked}"

    for name in SHOTS:
        with Image.open(folder / f"{name}.png") as image:
            assert image.size == (WIDTH, HEIGHT)
            assert len(image.getcolors(256) or ()) > 20, f"{name}.png is blank"
