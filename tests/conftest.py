"""Shared fixtures: settings on tmp_path, a migrated SQLite file, a CLI runner, sample files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from journal import db
from journal.config import Settings

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
