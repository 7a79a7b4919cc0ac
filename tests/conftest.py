"""Shared fixtures: settings on tmp_path, a migrated database, a CLI runner, sample files.

The database is a SQLite file in the test's data home; with JOURNAL_TEST_DB=postgresql it is a fresh
database on a PostgreSQL server the tests start (tests/pgserver.py, one per test process), and only
the tests that use a database run (the others are deselected: they would only repeat themselves).
Every fixture and helper that makes Settings, the app, a CLI runner, a `journal` subprocess or a live
`journal serve` takes the test's `database_url`.

This file holds fixtures and pytest hooks only; the helpers that tests import are in modules named for
what they hold: tests/databases.py (the suite's database, settings_for, journal_env, db_rows),
tests/samples.py (the shared sample files), tests/web.py (accounts, sign-in, CSRF) and tests/servers.py
(free ports, a live `journal serve`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

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
from tests.databases import ON_POSTGRES, TEST_DB, settings_for, use_database
from tests.samples import exif_sample
from tests.servers import LiveServer, live_journal
from tests.web import make_user, sign_in

if TYPE_CHECKING:
    from tests.pgserver import PgServer

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


@pytest.fixture
def sample() -> Callable[[str], Path]:
    """Path of a sample photo by name (tests/samples.py: exif_sample)."""

    return exif_sample


# --- web -------------------------------------------------------------------------------------


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


@pytest.fixture
def user_client(app: Flask, client: FlaskClient) -> FlaskClient:
    """A client signed in as alice (the owner)."""
    make_user(app)
    sign_in(client)
    return client


@pytest.fixture
def live_server(tmp_path: Path, database_url: str | None) -> Iterator[LiveServer]:
    """Start `journal serve` on a free loopback port with its own data home; stop it afterwards."""
    with live_journal(tmp_path / "live-home", database_url) as server:
        yield server


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
