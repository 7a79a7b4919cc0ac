"""End to end: the sample photos through `journal import`, `journal export` (every location mode, two
platforms, zip and e-mail) and `journal send`, each a real process; bundles checked unzipped against the
contract with exifread, Pillow and ExifTool, and read offline in Debian's Chromium.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import exifread
import pytest
from aiosmtpd.controller import Controller
from PIL import Image, ImageOps
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from journal import db
from journal.models import OutgoingMessage, Photo
from journal.services import zones
from tests.browser import launch_chromium
from tests.databases import journal_env, settings_for
from tests.samples import EXIF_SAMPLES
from tests.servers import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
#: ExifTool tag names that must never leave, whatever the mode.
NEVER = ("SerialNumber", "OwnerName", "ThumbnailImage", "PreviewImage", "MakerNote", "CameraOwner")
POST_KEYS = {"id", "caption", "taken_at_utc", "place", "location", "files"}
FILE_KEYS = {"path", "sha256", "width", "height", "bytes"}


@dataclass
class Home:
    """A data home with the samples imported, and how to run the CLI on it."""

    path: Path
    database_url: str | None
    factory: sessionmaker[Session]
    zone_photo: int
    zone_post: int

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """`python -m journal ARGS` as its own process on this data home."""
        done = subprocess.run(
            [sys.executable, "-m", "journal", "--home", str(self.path), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env=_env(self.database_url),
            check=False,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done


def _env(database_url: str | None) -> dict[str, str]:
    """The environment of a CLI run given its data home with --home (and the database when not SQLite)."""
    env = journal_env(ROOT, database_url, PYTHONPATH=str(ROOT), JOURNAL_WORKERS="2")
    env.pop("JOURNAL_HOME")
    return env


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None) -> Iterator[Home]:
    """alice's journal: every sample imported by the real importer, and a privacy zone around one photo."""
    path = tmp_path_factory.mktemp("e2e") / "home"
    base = Home(path, module_database_url, None, 0, 0)  # type: ignore[arg-type]
    subprocess.run(
        [sys.executable, "-m", "journal", "--home", str(path), "user", "add", "alice", "--password-stdin"],
        input="password123\n",
        text=True,
        check=True,
        capture_output=True,
        cwd=ROOT,
        env=_env(module_database_url),
    )
    imported = base.run("import", str(EXIF_SAMPLES), "--trip", "Samples", check=False)
    assert "imported " in imported.stdout and int(imported.stdout.split()[1].rstrip(",")) >= 40, (
        imported.stdout
    )
    engine = db.make_engine(settings_for(path, module_database_url).database_url)
    factory = db.make_session_factory(engine)
    with factory() as s, s.begin():
        photo = s.scalars(select(Photo).where(Photo.lat.is_not(None)).order_by(Photo.id)).first()
        assert photo is not None and photo.lat is not None and photo.lon is not None and photo.post_id
        zones.add_zone(s, photo.user_id, zones.ZoneInput("Home", photo.lat, photo.lon, 200))
        zone_photo, zone_post = photo.id, photo.post_id
    yield Home(path, module_database_url, factory, zone_photo, zone_post)
    engine.dispose()


@dataclass
class Unzipped:
    """One exported bundle, unzipped."""

    zip_path: Path
    folder: Path
    manifest: dict[str, Any]


def export(home: Home, tmp: Path, *args: str) -> list[Unzipped]:
    """Run `journal export --all ARGS` into a fresh folder; unzip every bundle it prints."""
    out = tmp / "-".join(a.strip("-") for a in args)
    done = home.run("export", "--all", "--out", str(out), *args)
    bundles = []
    for line in done.stdout.splitlines():
        zip_path = Path(line)
        assert zip_path.parent == out and zip_path.is_file()
        folder = out / zip_path.stem
        with zipfile.ZipFile(zip_path) as archive:
            assert all(not n.startswith(("/", "..")) and ".." not in n.split("/") for n in archive.namelist())
            archive.extractall(folder)
        bundles.append(Unzipped(zip_path, folder, json.loads((folder / "manifest.json").read_text())))
    assert bundles and not list(out.glob(".tmp-*"))
    return bundles


def check_manifest(bundle: Unzipped, batches: int, platform: str) -> None:
    """The manifest as the contract describes it, its files present with the sizes and hashes it gives."""
    manifest = bundle.manifest
    assert manifest["schema"] == "journal.bundle/1" and manifest["batches"] == batches
    assert 1 <= manifest["batch"] <= batches
    assert datetime.fromisoformat(manifest["created_at"]).tzinfo is not None
    assert (bundle.folder / "index.html").is_file()
    for post in manifest["posts"]:
        assert POST_KEYS <= set(post) and isinstance(post["id"], int) and post["platform"] == platform
        if post["location"] is not None:
            assert set(post["location"]) == {"lat", "lon"}
        if post["taken_at_utc"] is not None:
            assert post["taken_at_utc"].endswith("Z")
        for entry in post["files"]:
            assert set(entry) == FILE_KEYS and not entry["path"].startswith("/")
            data = (bundle.folder / entry["path"]).read_bytes()
            assert len(data) == entry["bytes"] and hashlib.sha256(data).hexdigest() == entry["sha256"]
            with Image.open(io.BytesIO(data)) as image:
                assert ImageOps.exif_transpose(image).size == (entry["width"], entry["height"]), entry


def exiftool(folder: Path) -> dict[str, dict[str, Any]]:
    """`exiftool -j -G -a` of every photo of a bundle, by file name."""
    done = subprocess.run(
        ["exiftool", "-j", "-G", "-a", "-r", str(folder / "photos")],
        capture_output=True,
        text=True,
        check=True,
    )
    return {Path(item["SourceFile"]).name: item for item in json.loads(done.stdout)}


def gps_everywhere(path: Path, tool: dict[str, Any]) -> list[str]:
    """GPS found by ExifTool (any group), exifread or Pillow (EXIF GPS IFD, XMP)."""
    found = [key for key in tool if "GPS" in key.split(":")[-1]]
    with path.open("rb") as handle:
        found += [k for k in exifread.process_file(handle, details=True) if k.startswith("GPS")]
    with Image.open(path) as image:
        if image.getexif().get_ifd(0x8825):
            found.append("Pillow:GPSInfo")
        xmp = image.info.get("xmp") or b""
        if b"GPS" in (xmp if isinstance(xmp, bytes) else xmp.encode()):
            found.append("Pillow:XMP GPS")
    return found


def never_leaving(tool: dict[str, Any]) -> list[str]:
    """Serial numbers, owner names, thumbnails and maker notes ExifTool still finds."""
    return [key for key in tool if any(word in key for word in NEVER)]


def files_of(bundles: list[Unzipped]) -> Iterator[tuple[Unzipped, dict[str, Any], dict[str, Any]]]:
    for bundle in bundles:
        tool = exiftool(bundle.folder)
        for post in bundle.manifest["posts"]:
            for entry in post["files"]:
                yield bundle, post, {**entry, "tool": tool[Path(entry["path"]).name]}


@pytest.mark.parametrize("platform", ["original", "instagram"])
@pytest.mark.parametrize("mode", ["exact", "approx", "none"])
def test_export_every_mode(home: Home, tmp_path: Path, platform: str, mode: str) -> None:
    bundles = export(home, tmp_path, "--platform", platform, "--location", mode, "--max-batch-mb", "15")
    for bundle in bundles:
        check_manifest(bundle, len(bundles), platform)
    posts = [post for bundle in bundles for post in bundle.manifest["posts"]]
    assert len({p["id"] for p in posts}) >= 40
    located = [p for p in posts if p["location"] is not None]
    reports = {b.folder: json.loads((b.folder / "privacy.json").read_text()) for b in bundles}
    for bundle, post, entry in files_of(bundles):
        path = bundle.folder / entry["path"]
        assert never_leaving(entry["tool"]) == [], (path.name, never_leaving(entry["tool"]))
        gps = gps_everywhere(path, entry["tool"])
        if mode != "exact" or post["id"] == home.zone_post:
            assert gps == [], (mode, path.name, gps)
        # privacy.json read the same file: it agrees with ExifTool, exifread and Pillow on GPS.
        report = reports[bundle.folder]
        assert report["schema"] == "journal.privacy/1" and report["location"] == mode
        (privacy,) = [f for f in report["files"] if f["path"] == entry["path"]]
        assert privacy["leaks"] == [] and privacy["gps"] is bool(gps), (path.name, privacy, gps)
    if mode == "none":
        assert located == []
    else:
        assert len(located) >= 10 and all(p["id"] != home.zone_post for p in located)
    if mode == "exact":
        with_gps = [e for _, _, e in files_of(bundles) if any("GPSLatitude" in k for k in e["tool"])]
        assert len(with_gps) >= 10
    if mode == "approx":  # grid cell centres: (lat + 90) / 0.05 - 0.5 is a whole number
        for post in located:
            cell = (post["location"]["lat"] + 90) / 0.05 - 0.5
            assert cell == pytest.approx(round(cell), abs=1e-4), post["location"]
    if platform == "instagram":
        for _, _, entry in files_of(bundles):
            assert entry["width"] <= 1080 and 0.79 <= entry["width"] / entry["height"] <= 1.92


@pytest.mark.browser
def test_bundle_reads_offline_in_chromium(home: Home, tmp_path: Path, shots: Path) -> None:
    from playwright.sync_api import Route, sync_playwright

    bundle = export(home, tmp_path, "--platform", "instagram", "--location", "approx")[0]
    posts = bundle.manifest["posts"]
    located = {p["id"] for p in posts if p["location"] is not None}
    attempted: list[str] = []
    seen: list[str] = []

    def refuse_network(route: Route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")):
            route.continue_()
        else:
            attempted.append(url)
            route.abort("blockedbyclient")

    with sync_playwright() as playwright, launch_chromium(playwright) as browser:
        context = browser.new_context(service_workers="block", viewport={"width": 1200, "height": 900})
        context.route("**/*", refuse_network)
        context.on("request", lambda request: seen.append(request.url))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((bundle.folder / "index.html").as_uri(), wait_until="load")
        assert page.locator("article").count() == len(posts)
        assert page.locator("article").first.is_visible()
        first_images = "Array.from(document.images).slice(0, 3).every(i => i.complete && i.naturalWidth > 0)"
        assert page.evaluate(first_images)
        frame = page.frame_locator("iframe.map")
        assert page.locator("iframe.map").is_visible()
        map_frame = next(f for f in page.frames if f.url.endswith("/map.html"))
        count = map_frame.evaluate("window.journalMap.ready")
        assert count == len(located) and count > 0
        assert frame.locator(".leaflet-container").is_visible()
        page.screenshot(path=str(shots / "export-bundle.png"), full_page=False)
        context.close()
    assert attempted == [] and [u for u in seen if not u.startswith(("file:", "data:", "blob:"))] == []
    assert errors == []


# --- e-mail: a crash in the middle, a refusal, and re-runs that never send twice --------------------------


@dataclass
class CrashingServer:
    """aiosmtpd handler that kills the sending process at the n-th message, and can refuse one."""

    kill_at: int = 0
    refuse: str = ""
    pid: int = 0
    seen: int = 0

    def __post_init__(self) -> None:
        self.accepted: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message_id = str(
            email.message_from_bytes(envelope.content, policy=email.policy.default)["Message-ID"]
        )
        self.seen += 1
        if self.seen == self.kill_at and self.pid:
            os.kill(self.pid, signal.SIGKILL)  # the sender dies before the server's reply
            return "451 4.3.0 the client is gone"
        if message_id == self.refuse:
            self.refuse = ""
            return "554 5.6.0 refused once by the test"
        self.accepted.append(message_id)
        return "250 2.0.0 OK"


def test_email_bundles_are_sent_exactly_once(home: Home, tmp_path: Path) -> None:
    out = tmp_path / "mail"
    done = home.run(
        "export",
        "--all",
        "--format",
        "eml",
        "--platform",
        "email",
        "--location",
        "none",
        "--max-batch-mb",
        "2",
        "--out",
        str(out),
        "--to",
        "blog@example.org",
    )
    files = done.stdout.splitlines()
    assert len(files) >= 4
    for name in files:
        message = email.message_from_bytes(Path(name).read_bytes(), policy=email.policy.default)
        assert len(Path(name).read_bytes()) <= 2_000_000
        for part in message.iter_attachments():
            data = part.get_content()
            if part.get_filename() == "privacy.json":
                assert json.loads(data)["location"] == "none"
                continue
            assert not [
                k for k in exifread.process_file(io.BytesIO(data), details=True) if k.startswith("GPS")
            ]
            assert b"<x:xmpmeta" not in data
    with home.factory() as s:
        ids = {Path(m.path).name: m.message_id for m in s.scalars(select(OutgoingMessage))}
    wanted = [ids[Path(f).name] for f in files]

    server = CrashingServer(kill_at=3)
    port = free_port()
    controller = Controller(server, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        url = f"smtp://127.0.0.1:{port}?starttls=off"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "journal",
                "--home",
                str(home.path),
                "send",
                "--smtp",
                url,
                "--retries",
                "0",
            ],
            cwd=ROOT,
            env=_env(home.database_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        server.pid = process.pid
        process.communicate(timeout=300)
        assert process.returncode == -signal.SIGKILL
        assert server.accepted == wanted[:2]
        with home.factory() as s:
            sent = {
                m.message_id
                for m in s.scalars(select(OutgoingMessage).where(OutgoingMessage.sent_at.is_not(None)))
            }
        assert sent == set(wanted[:2])

        server.refuse = wanted[3]
        second = home.run("send", "--smtp", url, "--retries", "0", check=False)
        assert second.returncode == 1 and "refused once by the test" in second.stderr
        assert f"sent {len(wanted) - 3}, skipped 0, failed 1" in second.stdout

        third = home.run("send", "--smtp", url)
        assert (
            f"sent: {Path(files[3]).name}" in third.stdout and "sent 1, skipped 0, failed 0" in third.stdout
        )
        assert sorted(server.accepted) == sorted(wanted) and len(server.accepted) == len(set(server.accepted))
    finally:
        controller.stop()
