"""Cost of one run_as_writer (identity check + generation raised in the database and .journal-home).

Every import, upload request and export pays it once. Prints the mean and the slowest of N runs.
Run: .venv/bin/python bench/writer_guard.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from journal import db
from journal.config import Settings
from journal.services import housekeeping

N = 200


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home", workers=1)
        housekeeping.secure_home(settings)
        engine = db.make_engine(settings.database_url)
        db.ensure_schema(engine)
        factory = db.make_session_factory(engine)
        with housekeeping.run_as_writer(settings, factory):
            pass  # the first one adopts the identity
        times = []
        for _ in range(N):
            start = time.perf_counter()
            with housekeeping.run_as_writer(settings, factory):
                pass
            times.append(time.perf_counter() - start)
        engine.dispose()
    print(f"run_as_writer x{N}: mean {statistics.mean(times) * 1000:.2f} ms, max {max(times) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
