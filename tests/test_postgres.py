"""The models stay portable: migrations and an import run on a real PostgreSQL server started here."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from journal import db
from journal.cli import cli
from journal.db import Base
from journal.models import Photo, Trip
from tests.conftest import free_port
from tests.imaging import make_jpeg

pytestmark = pytest.mark.postgres


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make test` (it apt-installs postgresql)")
    return Path(found[-1]).parent


def _as_server_user(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: run them as the postgres system user then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """Start a throw-away PostgreSQL server on a free loopback port; stop it afterwards."""
    bin_dir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="journal-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_server_user(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "journal", "--auth=trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen(
        _as_server_user(
            [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(root)]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(
            [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True
        ).returncode:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("PostgreSQL did not start")
            time.sleep(0.2)
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "journal", "journal"],
            check=True,
        )
        yield f"postgresql+psycopg://journal@127.0.0.1:{port}/journal"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def test_migrations_reach_head_and_match_models(postgres_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = db.make_engine(postgres_url)
    db.ensure_schema(engine)
    assert db.current_revision(engine) == db.head_revision()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert str(conn.execute(text("select version()")).scalar()).startswith("PostgreSQL")
    engine.dispose()


def test_import_into_postgres(postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JOURNAL_DATABASE_URL", postgres_url)
    runner = CliRunner()
    assert runner.invoke(cli, ["user", "add", "pg", "--password-stdin"], input="password123\n").exit_code == 0
    for i in range(3):
        make_jpeg(tmp_path / "in" / f"{i}.jpg", seed=i, lat=39.0392, lon=125.7625)
    result = runner.invoke(cli, ["import", str(tmp_path / "in"), "--user", "pg", "--trip", "Pyongyang"])
    assert result.exit_code == 0, result.output
    assert "imported 3, duplicates 0, failed 0" in result.stdout
    engine = db.make_engine(postgres_url)
    with db.make_session_factory(engine)() as session:
        assert session.scalar(select(func.count(Photo.id)).where(Photo.place.like("Pyongyang%"))) == 3
        assert session.scalar(select(Trip.title)) == "Pyongyang"
    engine.dispose()
    assert not (tmp_path / "home" / "journal.db").exists()


def test_throttle_and_sessions_on_postgres(postgres_url: str) -> None:
    from journal.services import users
    from journal.services.throttle import Throttle
    from tests.test_services_throttle import Clock

    engine = db.make_engine(postgres_url)
    db.ensure_schema(engine)
    sessions = db.make_session_factory(engine)
    throttle = Throttle(clock=Clock())
    with sessions() as s:
        for i in range(5):  # the row is made with PostgreSQL's INSERT .. ON CONFLICT DO NOTHING
            assert throttle.claim(s, "pg-bob", f"2001:db8:{i}::1") == 0.0
            s.commit()
        assert throttle.claim(s, "pg-bob", "192.0.2.1") == 1.0
        throttle.prune(s)
        s.commit()
        user = users.create_user(s, "pg-session-user", "password123")
        session_id = users.start_session(s, user)
        s.commit()
        assert users.user_for_session(s, session_id) == user
        users.end_session(s, session_id)
        s.commit()
        assert users.user_for_session(s, session_id) is None
    engine.dispose()
