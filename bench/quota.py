"""Quota benchmark: what one usage() call costs (it runs before every upload, import and export).

Builds a data home with N photo rows of one account, each with its two renditions on disk (1 kB
files), and times quota.usage(); figures printed, nothing asserted.

    .venv/bin/python bench/quota.py [--photos 10000] [--dir /tmp/journal-bench-quota]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import time
from pathlib import Path

from journal import db, storage
from journal.config import Settings
from journal.models import Photo, User
from journal.services import quota


def build(settings: Settings, photos: int) -> None:
    """One account with `photos` rows and rendition files."""
    engine = db.make_engine(settings.database_url)
    db.ensure_schema(engine)
    factory = db.make_session_factory(engine)
    with factory() as session, session.begin():
        session.add(User(id=1, name="bench", password_hash="x", is_owner=True))
        session.flush()
        for index in range(photos):
            sha = hashlib.sha256(str(index).encode()).hexdigest()
            session.add(
                Photo(
                    user_id=1,
                    sha256=sha,
                    stored_path=storage.original_relpath(1, sha, "jpg"),
                    bytes=5_000_000,
                    format="JPEG",
                    width=4000,
                    height=3000,
                )
            )
            for kind in storage.RENDITIONS:
                path = settings.uploads_dir / storage.rendition_relpath(1, sha, kind)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"\0" * 1000)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/journal-bench-quota"))
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    settings = Settings(home=args.dir, workers=1, quota_bytes=10**12)
    build(settings, args.photos)
    engine = db.make_engine(settings.database_url)
    factory = db.make_session_factory(engine)
    times = []
    for _ in range(7):
        with factory() as session:
            start = time.perf_counter()
            usage = quota.usage(session, settings, 1)
            times.append(time.perf_counter() - start)
    engine.dispose()
    print(f"photos: {args.photos}, rendition files: {2 * args.photos}, usage: {usage.text()}")
    median, best = statistics.median(times) * 1000, min(times) * 1000
    print(f"quota.usage(): median {median:.1f} ms, best {best:.1f} ms (7 runs, warm cache)")


if __name__ == "__main__":
    main()
