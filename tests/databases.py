"""The database the suite runs on (JOURNAL_TEST_DB), and pointing Settings, the CLI and `journal`
subprocesses at a data home on it.

A `database_url` of None means the SQLite file in the data home; else it is a PostgreSQL database
the `database_url` fixtures made (tests/pgserver.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from journal import db
from journal.config import Settings

#: The database the suite runs on: "sqlite" (the default) or "postgresql".
TEST_DB = os.environ.get("JOURNAL_TEST_DB", "sqlite").strip().lower() or "sqlite"
if TEST_DB not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"JOURNAL_TEST_DB must be sqlite or postgresql, not {TEST_DB!r}")
ON_POSTGRES = TEST_DB == "postgresql"


def settings_for(home: Path, database_url: str | None, **changes: object) -> Settings:
    """Settings for a data home on a database (None: the SQLite file in the home), one worker."""
    values: dict[str, object] = {"workers": 1, **changes}
    return Settings(home=home, database_url=database_url or "", **values)  # type: ignore[arg-type]


def journal_env(home: Path, database_url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a `journal` subprocess on this data home and database."""
    env = {**os.environ, "JOURNAL_HOME": str(home), **extra}
    if database_url:
        env["JOURNAL_DATABASE_URL"] = database_url
    else:
        env.pop("JOURNAL_DATABASE_URL", None)
    return env


def use_database(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Point JOURNAL_HOME and JOURNAL_DATABASE_URL (unset for the SQLite default) at these settings."""
    monkeypatch.setenv("JOURNAL_HOME", str(settings.home))
    if settings.database_url == Settings(home=settings.home).database_url:
        monkeypatch.delenv("JOURNAL_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("JOURNAL_DATABASE_URL", settings.database_url)


def db_rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """Run plain SQL on the settings' database apart from the app's engine (committed); the rows, if any."""
    engine = db.make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()
