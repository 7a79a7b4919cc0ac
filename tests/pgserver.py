"""A throw-away PostgreSQL server for the tests: one per test process (xdist worker), in a temp folder.

The server listens on a unix socket in its own folder only (no TCP port to race for), runs with fsync,
full-page writes and synchronous commit off (nothing to keep after the run), and holds a template
database migrated once through the app's own ensure-schema path; each test gets a fresh copy of it
(`CREATE DATABASE t_N TEMPLATE journal_template`: tens of milliseconds), dropped after the test.
A server left by a killed test process is stopped by the next one that starts.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

TEMPLATE = "journal_template"
#: The temp folders of the servers (each holds the pid of the test process that owns it).
PREFIX = "jpg-"
USER = "journal"


def pg_bin() -> Path:
    """The folder of the newest installed PostgreSQL's initdb, pg_ctl and postgres."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make test` (it apt-installs postgresql)")
    return Path(found[-1]).parent


def _as_server_user(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: run them as the postgres system user then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_orphans() -> None:
    """Stop and remove the servers of test processes that were killed before they could stop them."""
    for root in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = int((root / "owner").read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        subprocess.run(
            _as_server_user([str(pg_bin() / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


class PgServer:
    """A running PostgreSQL server in a temp folder; `stop()` (also run at exit) removes it."""

    def __init__(self) -> None:
        import psycopg  # the dev dependency group has it; imported here so SQLite-only runs never need it

        self.bin = pg_bin()
        _reap_orphans()
        # Short path: a unix socket's path is limited to about 100 bytes.
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        (self.root / "owner").write_text(str(os.getpid()))
        self.data = self.root / "data"
        self._numbers = itertools.count(1)
        self._stopped = False
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        atexit.register(self.stop)
        self._run(["initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"])
        options = (
            "-c listen_addresses='' -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
            " -c wal_level=minimal -c max_wal_senders=0 -c max_connections=200"
            f" -c unix_socket_directories={self.root}"
        )
        # pg_ctl -w returns once the server accepts connections.
        self._run(["pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.root / "log"),
                   "-o", options, "start"])  # fmt: skip
        self._admin = psycopg.connect(self._conninfo("postgres"), autocommit=True)
        self._admin.execute(f"CREATE DATABASE {TEMPLATE}")
        self._migrate_template()

    def _run(self, cmd: list[str]) -> None:
        started = subprocess.run(
            _as_server_user([str(self.bin / cmd[0]), *cmd[1:]]), capture_output=True, text=True
        )
        if started.returncode:
            log = self.root / "log"
            detail = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"{cmd[0]} failed: {started.stderr}{started.stdout}{detail}")

    def _conninfo(self, name: str) -> str:
        return f"host={self.root} user={USER} dbname={name}"

    def url(self, name: str) -> str:
        """The SQLAlchemy URL of one database on this server."""
        # The plain scheme, as a user writes it: SQLAlchemy 2.1 takes it to psycopg 3.
        return f"postgresql://{USER}@/{name}?host={self.root}"

    def _migrate_template(self) -> None:
        from journal import db

        engine = db.make_engine(self.url(TEMPLATE))
        db.ensure_schema(engine)
        engine.dispose()  # a template must have no connections while it is copied

    def new_database(self, *, empty: bool = False) -> str:
        """A fresh database at head (a copy of the template), or `empty` (no tables); returns its URL."""
        name = f"t_{next(self._numbers)}"
        self._admin.execute(f"CREATE DATABASE {name} TEMPLATE {'template0' if empty else TEMPLATE}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by new_database, closing any connection a test left open."""
        from sqlalchemy.engine import make_url

        name = make_url(url).database
        self._admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the server and remove its folder (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        admin = getattr(self, "_admin", None)
        if admin is not None:
            admin.close()
        subprocess.run(
            _as_server_user([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)
