"""The upload page in Debian's Chromium against a real `journal serve`; no request may leave 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, Route, expect, sync_playwright
from sqlalchemy import select

from journal import db
from journal.models import Photo
from tests.browser import RequestLog, launch_chromium, offline_context
from tests.imaging import make_jpeg
from tests.samples import EXIF_SAMPLES
from tests.servers import LiveServer
from tests.web import PASSWORD

pytestmark = [
    pytest.mark.browser,
]

GOOD = ["exifpy__DSCN0010.jpg", "photoprism__iphone_15_pro.heic", "lychee__png.png", "immich__denali.webp"]
BROKEN = "photoprism__animated-earth.jpg"  # truncated JPEG data (pillow_heif__truncated.heic decodes)


@pytest.fixture
def browser_page(live_server: LiveServer) -> Iterator[tuple[Page, RequestLog]]:
    """A page in an offline context, signed in as the owner created through the set-up page."""
    with (
        sync_playwright() as p,
        launch_chromium(p) as browser,
        offline_context(browser, viewport={"width": 1280, "height": 900}) as (context, log),
    ):
        page = context.new_page()
        page.goto(live_server.url + "/")
        assert page.url.endswith("/setup")
        page.fill("input[name=name]", "owner")
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=confirm]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        yield page, log
        assert log.blocked == [], f"requests tried to leave the machine: {log.blocked}"


def upload_posts(page: Page) -> list[Request]:
    """Every POST /api/photos the page sends from now on."""
    seen: list[Request] = []
    page.on(
        "request", lambda r: seen.append(r) if r.method == "POST" and r.url.endswith("/api/photos") else None
    )
    return seen


def states(page: Page) -> dict[str, str]:
    """File name -> state of each row in the upload list, once every file is finished."""
    page.wait_for_selector("#upload-queue[data-state=done]", timeout=120_000)
    rows = page.locator("#upload-list .file")
    return {
        rows.nth(i).locator(".file-name").inner_text(): rows.nth(i).get_attribute("data-state") or ""
        for i in range(rows.count())
    }


def stored_hashes(server: LiveServer) -> list[str]:
    engine = db.make_engine(server.settings.database_url)
    try:
        with db.make_session_factory(engine)() as s:
            return list(s.scalars(select(Photo.sha256)))
    finally:
        engine.dispose()


def test_upload_samples_see_results_library_and_no_resend(
    live_server: LiveServer, browser_page: tuple[Page, RequestLog], shots: Path
) -> None:
    page, log = browser_page
    files = [EXIF_SAMPLES / name for name in [*GOOD, BROKEN]]
    page.goto(live_server.url + "/upload")
    posts = upload_posts(page)
    page.fill("input[name=trip]", "Iceland & friends")
    page.set_input_files("#upload-files", files)
    page.wait_for_selector("#upload-list .file")  # rows appear at once, with their progress bars
    assert page.locator("#upload-list .file .bar").count() == 5
    result = states(page)
    assert result == {**dict.fromkeys(GOOD, "imported"), BROKEN: "failed"}
    broken_row = page.locator("#upload-list .file[data-state=failed]")
    assert len(broken_row.locator(".file-message").inner_text()) > 10  # a reason in words
    assert page.locator("#overall-bar").get_attribute("aria-valuenow") == "100"
    assert "4 imported" in page.locator("#overall-counts").inner_text()
    assert len(posts) == 5
    page.wait_for_function("() => [...document.querySelectorAll('#upload-list img')].every(i => i.complete)")
    assert page.locator("#upload-list .file[data-state=imported] img").count() == 4
    page.screenshot(path=str(shots / "upload.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(shots / "upload-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(live_server.url + "/library")
    tiles = page.locator(".tile img")
    assert tiles.count() == 4
    page.wait_for_function(
        "() => [...document.querySelectorAll('.tile img')].every(i => i.complete && i.naturalWidth > 0)"
    )

    # After a dropped link the traveller picks the same photos again: nothing is sent twice.
    page.goto(live_server.url + "/upload")
    posts = upload_posts(page)
    page.set_input_files("#upload-files", [EXIF_SAMPLES / name for name in GOOD])
    assert states(page) == dict.fromkeys(GOOD, "duplicate")
    assert posts == []
    assert "Already in your journal" in page.locator("#upload-list .file-message").first.inner_text()
    assert len(stored_hashes(live_server)) == 4
    assert any(url.endswith("/api/photos/check") for url in log.allowed)


def test_without_crypto_subtle_the_js_hash_agrees(
    live_server: LiveServer, browser_page: tuple[Page, RequestLog], tmp_path: Path
) -> None:
    page, _log = browser_page
    # Plain http on a LAN address has no crypto.subtle: the page must hash with its own SHA-256.
    page.add_init_script("Object.defineProperty(Crypto.prototype, 'subtle', {get() { return undefined; }})")
    big = make_jpeg(tmp_path / "big.jpg", (3200, 2400), seed=7, quality=97)  # > one 4 MB hashing chunk
    small = make_jpeg(tmp_path / "small.jpg", (64, 64), seed=8)
    odd = tmp_path / "odd.jpg"
    odd.write_bytes(small.read_bytes() + b"\0" * 55)  # padding edge: 55, 56, 64 bytes past a block
    assert big.stat().st_size > 4 * 1024 * 1024
    checks: list[str] = []
    page.on(
        "request",
        lambda r: (
            checks.extend(json.loads(r.post_data or "{}").get("sha256", []))
            if r.url.endswith("/check")
            else None
        ),
    )
    page.goto(live_server.url + "/upload")
    assert page.evaluate("window.crypto.subtle") is None
    page.set_input_files("#upload-files", [big, small, odd])
    assert states(page) == {"big.jpg": "imported", "small.jpg": "imported", "odd.jpg": "imported"}
    expected = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (big, small, odd)}
    assert set(checks) == expected == set(stored_hashes(live_server))


def test_dropped_connections_are_retried(
    live_server: LiveServer, browser_page: tuple[Page, RequestLog]
) -> None:
    page, _log = browser_page
    attempts: dict[str, int] = {}

    def flaky(route: Route) -> None:
        body = route.request.post_data_buffer or b""
        name = "DSCN0010" if b"DSCN0010" in body else "png"
        attempts[name] = attempts.get(name, 0) + 1
        if attempts[name] > 1:
            route.fallback()
        elif name == "png":
            route.abort("connectionreset")  # the request never arrived
        else:
            route.fetch()  # the server stores the photo, but its answer is lost on the way back
            route.abort("connectionreset")

    page.route("**/api/photos", flaky)
    page.goto(live_server.url + "/upload")
    page.check("input[name=mode][value=one]")
    page.set_input_files(
        "#upload-files", [EXIF_SAMPLES / "exifpy__DSCN0010.jpg", EXIF_SAMPLES / "lychee__png.png"]
    )
    assert states(page) == {"exifpy__DSCN0010.jpg": "imported", "lychee__png.png": "imported"}
    assert attempts == {"DSCN0010": 2, "png": 2}
    engine = db.make_engine(live_server.settings.database_url)
    try:
        with db.make_session_factory(engine)() as s:
            post_ids = set(s.scalars(select(Photo.post_id)))
    finally:
        engine.dispose()
    assert len(post_ids) == 1  # "one post for all" survived the lost answer


@pytest.fixture
def one_mb_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live server (started after this) takes at most 1 MB per request."""
    monkeypatch.setenv("JOURNAL_MAX_UPLOAD_MB", "1")


@pytest.mark.usefixtures("one_mb_limit")
def test_too_large_files_are_refused_before_sending(
    live_server: LiveServer, browser_page: tuple[Page, RequestLog], tmp_path: Path
) -> None:
    page, _log = browser_page
    page.goto(live_server.url + "/upload")
    assert page.locator("#uploader").get_attribute("data-max-bytes") == "1000000"
    big = make_jpeg(tmp_path / "big.jpg", (2000, 1500), seed=9, quality=95)
    assert big.stat().st_size > 1_000_000
    posts = upload_posts(page)
    page.set_input_files("#upload-files", [big, EXIF_SAMPLES / "exifpy__DSCN0010.jpg"])
    assert states(page) == {"big.jpg": "failed", "exifpy__DSCN0010.jpg": "imported"}
    assert "Too large" in page.locator(".file[data-state=failed] .file-message").inner_text()
    assert len(posts) == 1


#: Counts the one-off "online" listeners the page adds: one per step held back until the network is back.
WAITERS_FOR_THE_NETWORK = """
window.__waitingForNetwork = 0;
const addListener = window.addEventListener;
window.addEventListener = function (type, listener, options) {
  if (type === "online" && options && options.once) window.__waitingForNetwork += 1;
  return addListener.call(this, type, listener, options);
};
"""


def test_offline_waits_and_resumes(live_server: LiveServer, browser_page: tuple[Page, RequestLog]) -> None:
    page, _log = browser_page
    page.add_init_script(WAITERS_FOR_THE_NETWORK)
    page.goto(live_server.url + "/upload")
    posts = upload_posts(page)
    page.context.set_offline(True)
    page.set_input_files(
        "#upload-files", [EXIF_SAMPLES / "exifpy__DSCN0010.jpg", EXIF_SAMPLES / "lychee__png.png"]
    )
    page.wait_for_function(
        "() => window.__waitingForNetwork >= 2"
    )  # both files hashed, their checks held back
    expect(page.locator("#overall-text")).to_contain_text("Offline")
    assert posts == [] and page.locator("#upload-queue").get_attribute("data-state") == "busy"
    page.context.set_offline(False)
    assert states(page) == {"exifpy__DSCN0010.jpg": "imported", "lychee__png.png": "imported"}
    assert len(posts) == 2
