"""Browser test helpers: Debian's Chromium driven by Playwright, with every non-local request refused.

Never run ``playwright install``: tests use the system browser at /usr/bin/chromium (tests marked
``browser`` skip without it, except under CI: tests/machine.py). Usage::

    with sync_playwright() as p, launch_chromium(p) as browser, offline_context(browser) as (context, log):
        page = context.new_page()
        ...
        assert log.blocked == []
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, Frame, Page, Playwright, Route, expect

from tests.machine import CHROMIUM

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: How long an `expect` or a wait may take before the test fails (Playwright's action default; its
#: 5 s for expect made a loaded 2-core machine fail tests that pass): a bound, never a sleep.
TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)
#: Schemes that never touch the network.
LOCAL_SCHEMES = frozenset({"data", "blob", "about", "file"})


def is_local(url: str) -> bool:
    """True for URLs served from this machine (loopback) or needing no network at all."""
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (
        parts.scheme in {"http", "https"} and parts.hostname in LOCAL_HOSTS
    )


@contextlib.contextmanager
def launch_chromium(playwright: Playwright, **kwargs: Any) -> Iterator[Browser]:
    """Launch headless system Chromium with flags that keep it from calling home."""
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), **kwargs)
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class RequestLog:
    """URLs the context let through (local) and refused (everything else)."""

    allowed: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


@contextlib.contextmanager
def offline_context(browser: Browser, **kwargs: Any) -> Iterator[tuple[BrowserContext, RequestLog]]:
    """A browser context that aborts and records every request not to loopback."""
    context = browser.new_context(service_workers="block", **kwargs)
    context.set_default_timeout(TIMEOUT_MS)
    log = RequestLog()

    def handle(route: Route) -> None:
        url = route.request.url
        if is_local(url):
            log.allowed.append(url)
            route.continue_()
        else:
            log.blocked.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", handle)
    try:
        yield context, log
    finally:
        context.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static file handler that keeps test output clean and can add response headers (a CSP, say)."""

    extra_headers: Mapping[str, str] = {}

    def end_headers(self) -> None:
        for name, value in self.extra_headers.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    """Threaded server that ignores clients hanging up early (a page cancelling tile requests)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve_directory(root: Path, *, headers: Mapping[str, str] | None = None) -> Iterator[str]:
    """Serve a folder over HTTP on 127.0.0.1 (a free port) and yield its base URL, ending in '/'.

    `headers` are added to every response, e.g. {"Content-Security-Policy": "..."}.
    """
    handler_class = type("Handler", (_QuietHandler,), {"extra_headers": dict(headers or {})})
    handler = functools.partial(handler_class, directory=str(root))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def page_errors(page: Page) -> list[str]:
    """A list that collects the page's uncaught errors and console errors from now on."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


#: True once the page has stood still for `frames` animation frames in a row: every image on screen
#: loaded (or broken), and on a journal map (window.journalMap) no flight, zoom animation or change of
#: the markers drawn (they are redrawn a moment after each move).
_SETTLED = """(frames) => {
  const map = window.journalMap && window.journalMap.map;
  const view = map ? [map.getCenter().lat, map.getCenter().lng, map.getZoom()].join() : "";
  const zooming = !!(map && map.getContainer().querySelector(".leaflet-zoom-anim"));
  const markers = [...document.querySelectorAll(".jm-marker")]
    .map(m => m.dataset.photo || "c" + m.dataset.cluster);
  const onScreen = (i) => {
    const r = i.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0
      && r.top < innerHeight && r.left < innerWidth;
  };
  const loaded = [...document.images].every(i => i.complete || !onScreen(i));
  const key = view + "|" + markers.join();
  const s = window.__journalSettle || (window.__journalSettle = { key: null, still: 0 });
  s.still = loaded && !zooming && key === s.key ? s.still + 1 : 0;
  s.key = key;
  return s.still >= frames;
}"""


def wait_settled(page: Page | Frame, *, frames: int = 3, timeout_ms: float = 30_000) -> None:
    """Wait until what a screenshot of `page` shows has finished drawing (see _SETTLED)."""
    page.wait_for_function(_SETTLED, arg=frames, polling="raf", timeout=timeout_ms)
