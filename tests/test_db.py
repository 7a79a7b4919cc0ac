"""The schema comes only from migrations (on SQLite and on PostgreSQL), and SQLite runs with WAL and
foreign keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from journal import db
from journal.cli import cli
from journal.config import Settings
from journal.db import Base
from tests.databases import ON_POSTGRES, TEST_DB


def test_empty_database_upgrades_to_head(empty_database_url: str) -> None:
    engine = db.make_engine(empty_database_url)
    assert db.current_revision(engine) is None
    db.ensure_schema(engine)
    assert db.current_revision(engine) == db.head_revision()
    assert set(Base.metadata.tables) <= set(db.table_names(engine))
    engine.dispose()


def test_head_revision_constant_is_alembics_head() -> None:
    # ensure_schema compares with the constant to skip Alembic: a new migration must move it.
    assert db.HEAD_REVISION == db.head_revision()


def test_a_database_behind_head_is_upgraded(empty_database_url: str) -> None:
    engine = db.make_engine(empty_database_url)
    db.upgrade(engine, "0003")
    assert db.current_revision(engine) == "0003"
    assert "tracks" not in db.table_names(engine)
    db.ensure_schema(engine)
    assert db.current_revision(engine) == db.HEAD_REVISION
    assert "tracks" in db.table_names(engine)
    engine.dispose()


def test_migrations_match_models_down_and_up_again(empty_database_url: str) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    def diff() -> list[object]:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))

    engine = db.make_engine(empty_database_url)
    db.upgrade(engine)
    assert diff() == []
    command.downgrade(db._alembic_config(engine), "base")
    assert db.current_revision(engine) is None
    assert set(db.table_names(engine)) <= {"alembic_version"}
    db.upgrade(engine)
    assert db.current_revision(engine) == db.HEAD_REVISION
    assert diff() == []
    engine.dispose()


def test_the_suite_runs_on_the_database_it_was_asked_for(runner: CliRunner, settings: Settings) -> None:
    result = runner.invoke(cli, ["user", "add", "backend", "--password-stdin"], input="password123\n")
    assert result.exit_code == 0, result.output
    engine = db.make_engine(settings.database_url)
    assert engine.dialect.name == TEST_DB
    with engine.connect() as conn:
        assert conn.execute(text("select name from users")).scalars().all() == ["backend"]
    engine.dispose()
    # On PostgreSQL the CLI made no SQLite file beside the data.
    assert (settings.home / "journal.db").exists() != ON_POSTGRES


@pytest.mark.sqlite_only  # SQLite's own pragmas
def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'j.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
