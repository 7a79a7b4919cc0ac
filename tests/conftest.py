"""Shared fixtures: settings on tmp_path, a migrated SQLite file, a CLI runner, sample files."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import Phase
from hypothesis import settings as hypothesis_settings
from sqlalchemy.orm import Session, sessionmaker

from journal import db
from journal.app import create_app
from journal.config import Settings
from tests.waiting import serving, wait_until

SHARED = Path(__file__).resolve().parents[2] / "shared"
EXIF_SAMPLES = SHARED / "samples" / "exif"
GPX_SAMPLES = SHARED / "samples" / "gpx"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a data home in a temp folder (a real SQLite file), one worker."""
    return Settings(home=tmp_path / "home", workers=1)


@pytest.fixture
def session_factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Session factory on a database upgraded to head."""
    engine = db.make_engine(settings.database_url)
    db.ensure_schema(engine)
    yield db.make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose changes are rolled back at the end."""
    with session_factory() as s:
        yield s
        s.rollback()


@pytest.fixture
def runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner whose data home is the test's."""
    monkeypatch.setenv("JOURNAL_HOME", str(settings.home))
    monkeypatch.delenv("JOURNAL_DATABASE_URL", raising=False)
    return CliRunner()


@pytest.fixture
def sample() -> Callable[[str], Path]:
    """Path of a file in ../shared/samples/exif."""

    def find(name: str) -> Path:
        path = EXIF_SAMPLES / name
        if not path.exists():
            raise FileNotFoundError(f"sample {name} missing: is ../shared beside the repository?")
        return path

    return find


# --- web -------------------------------------------------------------------------------------

PASSWORD = "correct horse battery"


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The Flask app on the test's data home."""
    application = create_app(settings, TESTING=True)
    yield application
    application.extensions["journal.engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client with no session."""
    return app.test_client()


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page's form."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def make_user(app: Flask, name: str = "alice", password: str = PASSWORD) -> int:
    """Create an account directly through the service; returns its id."""
    from journal.services import users

    with app.extensions["journal.sessions"]() as s, s.begin():
        return users.create_user(s, name, password).id


def sign_in(client: FlaskClient, name: str = "alice", password: str = PASSWORD) -> None:
    """Sign the client in through the real login form."""
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"name": name, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def user_client(app: Flask, client: FlaskClient) -> FlaskClient:
    """A client signed in as alice (the owner)."""
    make_user(app)
    sign_in(client)
    return client


@dataclass
class LiveServer:
    """A real `journal serve` process on 127.0.0.1."""

    url: str
    home: Path
    process: subprocess.Popen[bytes]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """Start `journal serve` on a free loopback port with its own data home; stop it afterwards."""
    home = tmp_path / "live-home"
    port = free_port()
    env = {**os.environ, "JOURNAL_HOME": str(home)}
    env.pop("JOURNAL_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "journal", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(serving(url, process), 30, "journal serve to answer /healthz")
    except AssertionError:
        process.kill()
        raise
    yield LiveServer(url, home, process)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stderr:
        process.stderr.close()


# --- the property-based sweep (tests/test_sweep.py) -------------------------------------------------

#: `make test`: a bounded sweep (about a minute on a 2-core machine), the same examples on every CI run (a
#: red CI is a regression, not a lucky draw); `make fuzz` (HYPOTHESIS_PROFILE=fuzz) explores new ones.
hypothesis_settings.register_profile(
    "ci", max_examples=8, deadline=None, print_blob=True, derandomize=bool(os.environ.get("CI"))
)
hypothesis_settings.register_profile("dev", max_examples=12, deadline=None, phases=list(Phase)[:4])
hypothesis_settings.register_profile("fuzz", max_examples=1000, deadline=None, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# --- every bundle a test writes matches docs/bundle.schema.json -----------------------------------


@pytest.fixture(autouse=True)
def bundles_match_the_schema(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that used tmp_path: every journal bundle written under it (manifest.json and
    privacy.json) validates strictly against docs/."""
    if "tmp_path" not in request.fixturenames:
        yield
        return
    tmp_path: Path = request.getfixturevalue("tmp_path")  # set up before this fixture, torn down after
    yield
    from tests.schemas import bundle_manifests, bundle_privacy_reports, check_manifest, check_privacy

    for path, manifest in bundle_manifests(tmp_path):
        try:
            check_manifest(manifest)
        except AssertionError as exc:
            raise AssertionError(f"{path.relative_to(tmp_path)}: {exc}") from None
    for path, report in bundle_privacy_reports(tmp_path):
        try:
            check_privacy(report)
        except AssertionError as exc:
            raise AssertionError(f"{path.relative_to(tmp_path)}: {exc}") from None


# --- programs the tests drive (tests/machine.py), screenshots ----------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests skip with a reason when Chromium is missing, except under CI (they fail there)."""
    from tests.machine import skip_browser_tests_without_chromium

    skip_browser_tests_without_chromium(items)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """The folder a browser test saves its screenshots in: tmp_path / "shots", or $JOURNAL_SHOTS when set
    (e.g. JOURNAL_SHOTS=/tmp/shots, to keep them after the run and look at them)."""
    folder = Path(os.environ.get("JOURNAL_SHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
