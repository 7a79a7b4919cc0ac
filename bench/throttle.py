"""Login-throttle benchmark: figures printed, nothing asserted.

The cost the throttle adds to one sign-in attempt (claim + commit, on SQLite), the table size and
prune time after a flood of distinct keys, and that the attacked account's row survives the flood.

    .venv/bin/python bench/throttle.py --keys 100000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from journal import db
from journal.models import LoginThrottle
from journal.services.throttle import Throttle, account_key


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--keys", type=int, default=100_000, help="distinct keys in the flood (default 100,000)"
    )
    parser.add_argument("--attempts", type=int, default=300, help="timed attempts (default 300)")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="journal-throttle-"))
    engine = db.make_engine(f"sqlite:///{home / 'journal.db'}")
    db.ensure_schema(engine)
    sessions = db.make_session_factory(engine)
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    clock = [now]
    throttle = Throttle(clock=lambda: clock[0])
    times = []
    with sessions() as s:
        for i in range(args.attempts):
            clock[0] += timedelta(seconds=61)  # every attempt gets through and is counted
            start = time.perf_counter()
            throttle.claim(s, "bob", f"2001:db8:{i:x}::1")
            s.commit()
            times.append(time.perf_counter() - start)
    print(
        f"claim + commit per attempt     p50 {statistics.median(times) * 1e3:7.2f} ms   "
        f"max {max(times) * 1e3:7.2f} ms   n={len(times)}"
    )
    stamp = clock[0]
    flood = [
        {"key": f"addr:flood-{i}", "failures": 1, "last_at": stamp, "next_at": stamp}
        for i in range(args.keys)
    ]
    with sessions() as s:
        s.connection().execute(insert(LoginThrottle.__table__), flood)
        s.commit()
        before = s.scalar(select(func.count()).select_from(LoginThrottle))
        start = time.perf_counter()
        throttle.prune(s)
        s.commit()
        took = time.perf_counter() - start
        after = s.scalar(select(func.count()).select_from(LoginThrottle))
        hot = s.get(LoginThrottle, account_key("bob"))
    print(
        f"prune after a flood            {took * 1e3:7.1f} ms   rows {before:,} -> {after:,} "
        f"(cap {throttle.max_rows:,})"
    )
    print(f"attacked account kept          {hot is not None and hot.failures == args.attempts}")
    size = (home / "journal.db").stat().st_size
    print(
        f"database file                  {size / 1e6:7.1f} MB (the flood's pages stay allocated until VACUUM)"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
