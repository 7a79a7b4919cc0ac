"""Real servers on 127.0.0.1 for the tests: a free port, and a `journal serve` process (LiveServer).

Waiting for a server to answer is tests/waiting.py's `serving`; the PostgreSQL server is tests/pgserver.py.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from journal.config import Settings
from tests.databases import journal_env
from tests.waiting import serving, wait_until


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


@contextmanager
def live_journal(
    home: Path,
    database_url: str | None,
    *,
    timeout_s: float = 30,
    preexec_fn: Callable[[], object] | None = None,
) -> Iterator[LiveServer]:
    """Run `journal serve` on a free loopback port on this data home and database until the block ends.

    Waits up to `timeout_s` for it to answer /healthz (a server that dies first fails at once);
    `preexec_fn` runs in the child before it starts (to limit its resources, say).
    """
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "journal", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=journal_env(home, database_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=preexec_fn,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(serving(url, process), timeout_s, "journal serve to answer /healthz")
    except BaseException:
        process.kill()
        process.wait()
        raise
    try:
        yield LiveServer(url, home, process, database_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
