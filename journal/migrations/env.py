"""Alembic environment: runs migrations on the engine handed over by journal.db."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from journal import models  # noqa: F401  (registers the tables on Base.metadata)
from journal.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run migrations in batch mode so SQLite can alter tables."""
    engine = config.attributes.get("engine")
    if engine is None:
        url = config.get_main_option("sqlalchemy.url")
        if url is None:
            raise RuntimeError("no engine and no sqlalchemy.url to migrate")
        engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
