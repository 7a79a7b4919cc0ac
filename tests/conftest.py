"""Shared fixtures: settings on tmp_path, a migrated database, a CLI runner, sample files.

The database is a SQLite file in the test's data home; with JOURNAL_TEST_DB=postgresql it is a fresh
database on a PostgreSQL server the tests start (tests/pgserver.py, one per test process), and only
the tests that use a database run (the others are deselected: they would only repeat themselves).
Every fixture and helper that makes Settings, the app, a CLI runner, a `journal` subprocess or a live
`journal serve` takes the test's `database_url`.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import Phase
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from journal import db
from journal.app import create_app
from journal.config import Settings
from tests.waiting import serving, wait_until

if TYPE_CHECKING:
    from tests.pgserver import PgServer

SHARED = Path(__file__).resolve().parents[2] / "shared"
EXIF_SAMPLES = SHARED / "samples" / "exif"
GPX_SAMPLES = SHARED / "samples" / "gpx"

#: The database the suite runs on: "sqlite" (the default) or "postgresql".
TEST_DB = os.environ.get("JOURNAL_TEST_DB", "sqlite").strip().lower() or "sqlite"
if TEST_DB not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"JOURNAL_TEST_DB must be sqlite or postgresql, not {TEST_DB!r}")
ON_POSTGRES = TEST_DB == "postgresql"
#: A test with one of these fixtures uses a database.
DATABASE_FIXTURES = frozenset(
    {"database_url", "another_database_url", "module_database_url", "new_database_url", "empty_database_url"}
)


def pytest_report_header(config: pytest.Config) -> str:
    return f"journal test database: {TEST_DB}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests skip with a reason when Chromium is missing, except under CI (they fail there).
    On PostgreSQL: run only the tests that use a database, and none about the SQLite file itself."""
    from tests.machine import skip_browser_tests_without_chromium

    skip_browser_tests_without_chromium(items)
    if not ON_POSTGRES:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        uses_db = not DATABASE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
        (keep if uses_db and item.get_closest_marker("sqlite_only") is None else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """This test process's PostgreSQL server with a migrated template database."""
    from tests.pgserver import PgServer

    server = PgServer()
    yield server
    server.stop()


def _fresh_database(request: pytest.FixtureRequest, *, empty: bool = False) -> Iterator[str | None]:
    if not ON_POSTGRES:
        yield None
        return
    server: PgServer = request.getfixturevalue("pg_server")
    url = server.new_database(empty=empty)
    yield url
    server.drop_database(url)


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The test's database: None on SQLite (the file in the data home), else a fresh PostgreSQL one
    at head."""
    yield from _fresh_database(request)


@pytest.fixture
def another_database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A second database at head for a test with two data homes (None on SQLite: each home has its own)."""
    yield from _fresh_database(request)


@pytest.fixture(scope="module")
def module_database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A database shared by a module's tests (for a module-scoped data home)."""
    yield from _fresh_database(request)


@pytest.fixture
def new_database_url(request: pytest.FixtureRequest) -> Iterator[Callable[[], str | None]]:
    """Makes a fresh database at head on each call (None on SQLite), for a test with many data homes."""
    made: list[Iterator[str | None]] = []

    def make() -> str | None:
        fresh = _fresh_database(request)
        made.append(fresh)
        return next(fresh)

    yield make
    for fresh in made:
        next(fresh, None)  # drops it


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables yet (not migrated), on the suite's database."""
    for url in _fresh_database(request, empty=True):
        yield url or f"sqlite:///{tmp_path / 'empty.db'}"


def journal_env(home: Path, database_url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a `journal` subprocess on this data home and database."""
    env = {**os.environ, "JOURNAL_HOME": str(home), **extra}
    if database_url:
        env["JOURNAL_DATABASE_URL"] = database_url
    else:
        env.pop("JOURNAL_DATABASE_URL", None)
    return env


def settings_for(home: Path, database_url: str | None, **changes: object) -> Settings:
    """Settings for a data home on a database (None: the SQLite file in the home), one worker."""
    values: dict[str, object] = {"workers": 1, **changes}
    return Settings(home=home, database_url=database_url or "", **values)  # type: ignore[arg-type]


def db_rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """Run plain SQL on the settings' database apart from the app's engine (committed); the rows, if any."""
    engine = db.make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    """Settings for a data home in a temp folder and the test's database, one worker."""
    return settings_for(tmp_path / "home", database_url)


@pytest.fixture(autouse=ON_POSTGRES)
def no_sqlite_journal(request: pytest.FixtureRequest) -> Iterator[None]:
    """On PostgreSQL, a test that made a SQLite journal database missed the test's database somewhere."""
    if "tmp_path" not in request.fixturenames:
        yield
        return
    tmp_path: Path = request.getfixturevalue("tmp_path")
    yield
    made = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("journal.db"))
    assert not made, f"a SQLite journal database in a test on PostgreSQL: {made}"


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
    use_database(monkeypatch, settings)
    return CliRunner()


def use_database(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Point JOURNAL_HOME and JOURNAL_DATABASE_URL (unset for the SQLite default) at these settings."""
    monkeypatch.setenv("JOURNAL_HOME", str(settings.home))
    if settings.database_url == Settings(home=settings.home).database_url:
        monkeypatch.delenv("JOURNAL_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("JOURNAL_DATABASE_URL", settings.database_url)


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
    database_url: str | None = None

    @property
    def settings(self) -> Settings:
        """The server's settings (its data home and database)."""
        return Settings(home=self.home, database_url=self.database_url or "")

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a `journal` subprocess working on the server's data."""
        return journal_env(self.home, self.database_url, **extra)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server(tmp_path: Path, database_url: str | None) -> Iterator[LiveServer]:
    """Start `journal serve` on a free loopback port with its own data home; stop it afterwards."""
    home = tmp_path / "live-home"
    port = free_port()
    env = journal_env(home, database_url)
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
    yield LiveServer(url, home, process, database_url)
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


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """The folder a browser test saves its screenshots in: tmp_path / "shots", or $JOURNAL_SHOTS when set
    (e.g. JOURNAL_SHOTS=/tmp/shots, to keep them after the run and look at them)."""
    folder = Path(os.environ.get("JOURNAL_SHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
