"""Map journal benchmark: page size, server time and time to interactive in headless Chromium; printed only.

For each size (default 1,000 / 10,000 / 100,000 located photos, inserted with SQLAlchemy bulk
inserts: a post per photo, clustered like a traveller's photos: ~50 a day, a day at a time in one
of 400 places around the world), it measures

- the journal's ``GET /map``: HTML bytes, server time (Flask test client, median of 3), the points
  feed (``GET /api/photos.points``) bytes and server time, and time to interactive in Chromium;
- a plain folium map of the same points made the default way: one ``folium.Marker`` with a popup
  per point in a ``folium.plugins.MarkerCluster``, its CDN links rewritten to local files (Leaflet
  from journal/static/vendor; leaflet.markercluster 1.5.3 and jQuery 3.7.1, which folium's popups
  need, from npm into bench/out/npm once; Bootstrap and Font Awesome dropped: only styling). Its
  "server time" is folium building and rendering the page.

"Interactive" for the journal: ``journalMap.ready`` resolved, i.e. the points fetched and indexed
and the first clusters in the DOM (performance mark ``journal-map:ready``, ms since navigation
start). The index is built in a worker, so the page answers input while it loads. For folium:
the ``load`` event (every inline script, so every marker, has run) plus one animation frame.
Each page is opened in a fresh browser context (cold cache), with every non-local request aborted.

    .venv/bin/python bench/map.py
    .venv/bin/python bench/map.py --sizes 1000 10000 --folium-cap 60
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import folium  # noqa: E402
import folium.plugins  # noqa: E402
from playwright.sync_api import Browser  # noqa: E402
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from journal import db  # noqa: E402
from journal.config import Settings  # noqa: E402
from journal.models import Photo, Post, photo_sort_at  # noqa: E402
from journal.services import users  # noqa: E402
from tests.browser import launch_chromium, offline_context, serve_directory  # noqa: E402

OUT = ROOT / "bench" / "out"
NPM_CACHE = OUT / "npm"
STATIC = ROOT / "journal" / "static"
BATCH = 5000
PASSWORD = "bench password 1"
NPM_PACKAGES = {"leaflet.markercluster": "1.5.3", "jquery": "3.7.1"}


@dataclass(frozen=True)
class Fake:
    """A bench photo: id, position, UTC time and caption."""

    lat: float
    lon: float
    when: datetime
    caption: str


def places(rng: random.Random, count: int = 400) -> list[tuple[float, float]]:
    """Town-like centres on land-ish latitudes."""
    return [(rng.uniform(-45, 65), rng.uniform(-170, 175)) for _ in range(count)]


def fake_photos(count: int, seed: int = 1) -> Iterator[Fake]:
    """Photos in time order: ~50 a day, each day in one place, spread over a few km around it."""
    rng = random.Random(seed)
    centres = places(rng)
    day = datetime(2019, 1, 1, tzinfo=UTC)
    here = rng.choice(centres)
    for i in range(count):
        if i % 50 == 0:
            day += timedelta(days=1)
            here = rng.choice(centres) if rng.random() < 0.3 else here
        lat = here[0] + rng.gauss(0, 0.02)
        lon = here[1] + rng.gauss(0, 0.03)
        when = day + timedelta(hours=8, seconds=(i % 50) * 820 + rng.randrange(600))
        yield Fake(lat, lon, when, f"Photo {i}: a walk & a view <b>#{i}</b>")


def fill(factory: sessionmaker[Session], user_id: int, photos: list[Fake]) -> None:
    """Bulk-insert a post and a photo row per fake photo (the ORM hooks do not run: sort_at set here)."""
    now = datetime.now(UTC)
    for start in range(0, len(photos), BATCH):
        chunk = photos[start : start + BATCH]
        with factory() as s, s.begin():
            first = (s.scalar(select(func.max(Post.id))) or 0) + 1
            s.execute(
                insert(Post),
                [
                    {"user_id": user_id, "caption": p.caption, "created_at": now, "updated_at": now}
                    for p in chunk
                ],
            )
            s.execute(
                insert(Photo), [photo_row(user_id, first + i, start + i, p, now) for i, p in enumerate(chunk)]
            )


def photo_row(user_id: int, post_id: int, n: int, p: Fake, now: datetime) -> dict[str, object]:
    sha = hashlib.sha256(f"map-bench-{n}".encode()).hexdigest()
    local = (p.when + timedelta(hours=1)).replace(tzinfo=None)
    return {
        "user_id": user_id,
        "post_id": post_id,
        "position": 0,
        "sha256": sha,
        "original_name": f"IMG_{n:06d}.JPG",
        "stored_path": f"originals/{user_id}/{sha[:2]}/{sha}.jpg",
        "bytes": 3_000_000,
        "format": "JPEG",
        "width": 4000,
        "height": 3000,
        "web_width": 2048,
        "web_height": 1536,
        "taken_at": local,
        "utc_offset_min": 60,
        "offset_source": "camera",
        "taken_at_utc": p.when,
        "sort_at": photo_sort_at(p.when, local),
        "lat": p.lat,
        "lon": p.lon,
        "location_source": "exif",
        "place": f"Town {n % 997}, Country",
        "imported_at": now,
    }


def make_home(size: int, photos: list[Fake]) -> Path:
    """A data home with one user and `size` photos (cached under bench/out/homes/ between runs)."""
    home = OUT / "homes" / f"map-{size}"
    done = home / ".complete"
    if done.exists():
        return home
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(home=home, workers=1)
    engine = db.make_engine(settings.database_url)
    db.ensure_schema(engine)
    factory = db.make_session_factory(engine)
    with factory() as s, s.begin():
        user_id = users.create_user(s, "bench", PASSWORD).id
    fill(factory, user_id, photos)
    engine.dispose()
    link_thumbnails(settings, user_id, len(photos))
    done.touch()
    return home


def link_thumbnails(settings: Settings, user_id: int, count: int) -> None:
    """Give every bench photo a thumbnail: hard links to one small JPEG (the markers show real images)."""
    from PIL import Image

    from journal import storage

    for n in range(count):
        if n % 30_000 == 0:  # a file may have at most ~65,000 links
            sample = settings.home / f"thumb-sample-{n}.jpg"
            Image.new("RGB", (160, 120), (70, 120, 160)).save(sample, "JPEG", quality=80)
        sha = hashlib.sha256(f"map-bench-{n}".encode()).hexdigest()
        target = settings.uploads_dir / storage.rendition_relpath(user_id, sha, "thumb")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.link(sample, target)


# --- the journal's page ---------------------------------------------------------------------------------


def server_times(home: Path) -> tuple[float, int, float, int]:
    """Median seconds and bytes of GET /map and GET /api/photos.points (Flask test client)."""
    from journal.app import create_app
    from journal.models import User
    from journal.services import users

    app = create_app(Settings(home=home, workers=1), TESTING=True)
    client = app.test_client()
    with app.extensions["journal.sessions"]() as s, s.begin():
        owner = s.get(User, 1)
        assert owner is not None
        session_id = users.start_session(s, owner)  # the cookie names a server-side session
    with client.session_transaction() as sess:
        sess["_user_id"] = session_id
        sess["_fresh"] = True
    result = []
    for url in ("/map", "/api/photos.points"):
        times, size = [], 0
        for _ in range(3):
            start = time.perf_counter()
            response = client.get(url)
            body = response.get_data()
            times.append(time.perf_counter() - start)
            assert response.status_code == 200, (url, response.status_code)
            size = len(body)
        result += [statistics.median(times), size]
    app.extensions["journal.engine"].dispose()
    return result[0], int(result[1]), result[2], int(result[3])


@contextmanager
def serve(home: Path) -> Iterator[str]:
    """`journal serve` on a free loopback port."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_DATABASE_URL"}
    env["JOURNAL_HOME"] = str(home)
    cmd = [sys.executable, "-m", "journal", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def journal_tti(browser: Browser, url: str) -> tuple[float, int, int]:
    """ms to journalMap.ready on a cold cache, the markers drawn, and requests that left 127.0.0.1."""
    with offline_context(browser, viewport={"width": 1400, "height": 900}) as (context, log):
        page = context.new_page()
        page.goto(url + "/login")  # the login page loads none of the map's files: their cache stays cold
        page.fill("input[name=name]", "bench")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")  # the library page after login: let it finish
        page.goto(url + "/map", wait_until="commit")
        page.wait_for_function(
            "() => document.documentElement.dataset.journalMap === 'ready'", timeout=120_000
        )
        ready = page.evaluate("() => performance.getEntriesByName('journal-map:ready')[0].startTime")
        markers = page.evaluate("() => document.querySelectorAll('.jm-marker').length")
        return float(ready), int(markers), len(log.blocked)


# --- the plain folium page ----------------------------------------------------------------------------------


def npm_files() -> Path | None:
    """leaflet.markercluster and jQuery from npm into bench/out/npm (once); None when npm is not there."""
    modules = NPM_CACHE / "node_modules"
    if all((modules / name / "package.json").exists() for name in NPM_PACKAGES):
        return modules
    if shutil.which("npm") is None:
        return None
    specs = [f"{name}@{version}" for name, version in NPM_PACKAGES.items()]
    cmd = [
        "npm",
        "install",
        "--no-save",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--prefix",
        str(NPM_CACHE),
    ]
    done = subprocess.run([*cmd, *specs], capture_output=True, check=False)
    return modules if done.returncode == 0 else None


LOCAL_ASSETS = {
    "leaflet.js": STATIC / "vendor/leaflet/leaflet.js",
    "leaflet.css": STATIC / "vendor/leaflet/leaflet.css",
}


def folium_page(photos: list[Fake], assets: dict[str, str]) -> str:
    """A folium map made the default way: a Marker with a popup per photo in a MarkerCluster."""
    fmap = folium.Map(location=(20, 0), zoom_start=2, tiles=None)
    cluster = folium.plugins.MarkerCluster().add_to(fmap)  # type: ignore[no-untyped-call]
    for p in photos:
        folium.Marker([p.lat, p.lon], popup=p.caption).add_to(cluster)
    html: str = fmap.get_root().render()
    return rewrite_cdn(html, assets)


def rewrite_cdn(html: str, assets: dict[str, str]) -> str:
    """Point folium's CDN links at local files; drop the ones only used for styling we do not use."""

    def local(match: re.Match[str]) -> str:
        url = match.group(2)
        name = url.rsplit("/", 1)[-1]
        if name in assets:
            return f"{match.group(1)}{assets[name]}{match.group(3)}"
        return ""  # Bootstrap, Font Awesome, awesome-markers: not needed by markers and popups

    html = re.sub(r'(<script src=")(https?://[^"]+)("></script>)', local, html)
    return re.sub(r'(<link rel="stylesheet" href=")(https?://[^"]+)("/>)', local, html)


def folium_site(folder: Path, modules: Path) -> dict[str, str]:
    """Copy the local files the folium page uses into folder; name -> relative URL."""
    sources = {
        **LOCAL_ASSETS,
        "leaflet.markercluster.js": modules / "leaflet.markercluster/dist/leaflet.markercluster.js",
        "MarkerCluster.css": modules / "leaflet.markercluster/dist/MarkerCluster.css",
        "MarkerCluster.Default.css": modules / "leaflet.markercluster/dist/MarkerCluster.Default.css",
        "jquery.min.js": modules / "jquery/dist/jquery.min.js",
    }
    (folder / "assets").mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        shutil.copy(source, folder / "assets" / name)
    images = STATIC / "vendor/leaflet/images"
    shutil.copytree(images, folder / "assets/images", dirs_exist_ok=True)
    return {name: f"assets/{name}" for name in sources}


def folium_tti(browser: Browser, url: str, cap_s: float) -> float | None:
    """ms to the load event plus one frame, or None past the cap."""
    with offline_context(browser, viewport={"width": 1400, "height": 900}) as (context, _log):
        page = context.new_page()
        page.set_default_timeout(cap_s * 1000)
        start = time.perf_counter()
        try:
            page.goto(url, wait_until="load", timeout=cap_s * 1000)
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
        except PlaywrightTimeout:
            return None
        return (time.perf_counter() - start) * 1000


# --- report ------------------------------------------------------------------------------------


def human(size: int) -> str:
    return f"{size / 1000:,.0f} kB" if size < 10_000_000 else f"{size / 1_000_000:,.1f} MB"


@dataclass
class Result:
    """The figures of one size."""

    size: int
    html_bytes: int
    server_s: float
    points_bytes: int
    points_s: float
    interactive_ms: float
    markers: int
    blocked: int
    folium_html_bytes: int | None = None
    folium_build_s: float | None = None
    folium_ms: float | None = None
    folium_done: bool = False


def measure_folium(browser: Browser, result: Result, photos: list[Fake], modules: Path, cap: float) -> None:
    """Build, serve and open the plain folium page of the same photos."""
    with tempfile.TemporaryDirectory(prefix="journal-folium-") as tmp:
        folder = Path(tmp)
        assets = folium_site(folder, modules)
        start = time.perf_counter()
        page = folium_page(photos, assets)
        result.folium_build_s = time.perf_counter() - start
        (folder / "index.html").write_text(page, encoding="utf-8")
        result.folium_html_bytes = len(page.encode("utf-8"))
        with serve_directory(folder) as base:
            result.folium_ms = folium_tti(browser, base + "index.html", cap)
        result.folium_done = True


def run(sizes: list[int], folium_cap: float, folium_max: int) -> None:
    """Measure and print each size."""
    from playwright.sync_api import sync_playwright

    modules = npm_files()
    with sync_playwright() as p, launch_chromium(p) as browser:
        for size in sizes:
            photos = list(fake_photos(size))
            home = make_home(size, photos)
            map_s, map_bytes, points_s, points_bytes = server_times(home)
            with serve(home) as url:
                tti, markers, blocked = journal_tti(browser, url)
            result = Result(size, map_bytes, map_s, points_bytes, points_s, tti, markers, blocked)
            if modules is not None and size <= folium_max:
                measure_folium(browser, result, photos, modules, folium_cap)
            report(result, folium_cap)


def report(r: Result, cap: float) -> None:
    """Print one size's figures, the journal's beside plain folium's."""
    load = os.getloadavg()[0]
    print(f"\n{r.size:,} located photos (load average {load:.1f} on {os.cpu_count()} cores skews the times)")
    print(
        f"  journal /map   HTML {human(r.html_bytes):>9}   server {r.server_s * 1000:6.0f} ms   "
        f"points {human(r.points_bytes)} in {r.points_s * 1000:.0f} ms"
    )
    print(
        f"                 interactive {r.interactive_ms:6.0f} ms   markers drawn {r.markers}   "
        f"requests outside 127.0.0.1: {r.blocked}"
    )
    if not r.folium_done or r.folium_html_bytes is None or r.folium_build_s is None:
        print("  plain folium   skipped (needs npm once, or the size is over --folium-max)")
        return
    timing = f"> {cap:.0f} s" if r.folium_ms is None else f"{r.folium_ms:6.0f} ms"
    ratio = "" if r.folium_ms is None else f" ({r.folium_ms / r.interactive_ms:.1f}x the journal's)"
    print(
        f"  plain folium   HTML {human(r.folium_html_bytes):>9}   build  {r.folium_build_s * 1000:6.0f} ms   "
        f"(HTML {r.folium_html_bytes / r.html_bytes:,.0f}x the journal's)"
    )
    print(f"                 interactive {timing}{ratio}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--folium-cap", type=float, default=120.0, help="seconds to wait for folium's page")
    parser.add_argument("--folium-max", type=int, default=100_000, help="largest size to build with folium")
    args = parser.parse_args(argv)
    print(f"map benchmark on {os.cpu_count()} cores; Chromium headless; cold cache per page")
    run(args.sizes, args.folium_cap, args.folium_max)


if __name__ == "__main__":
    main()
