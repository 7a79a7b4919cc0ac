"""The schema comes only from migrations, and SQLite runs with WAL and foreign keys."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from journal import db
from journal.db import Base


def test_empty_database_upgrades_to_head(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'j.db'}")
    assert db.current_revision(engine) is None
    db.ensure_schema(engine)
    assert db.current_revision(engine) == db.head_revision()
    assert set(Base.metadata.tables) <= set(db.table_names(engine))


def test_head_revision_constant_is_alembics_head() -> None:
    # ensure_schema compares with the constant to skip Alembic: a new migration must move it.
    assert db.HEAD_REVISION == db.head_revision()


def test_a_database_behind_head_is_upgraded(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'j.db'}")
    db.upgrade(engine, "0003")
    assert db.current_revision(engine) == "0003"
    assert "tracks" not in db.table_names(engine)
    db.ensure_schema(engine)
    assert db.current_revision(engine) == db.HEAD_REVISION
    assert "tracks" in db.table_names(engine)


def test_migrations_match_models(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = db.make_engine(f"sqlite:///{tmp_path / 'j.db'}")
    db.ensure_schema(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'j.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
