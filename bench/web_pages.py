"""Page benchmarks: p50/p95 of the library grid, a photo page and /api/photos.geojson; printed only.

The database gets N photo rows (default 10,000) by SQLAlchemy bulk inserts, each in a post of its own,
spread over five years with a mix of camera offsets, local-only times and no time, 70 % with a
position; a few real photos are imported first so real rendition files exist. Requests go through
the Flask test client (the WSGI app, no network), signed in as the owner.

    .venv/bin/python bench/web_pages.py --photos 10000
    .venv/bin/python bench/web_pages.py --photos 100000 --repeat 10
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from journal.app import create_app
from journal.config import Settings
from journal.models import Photo, Post, Trip, User, photo_sort_at
from journal.services import importing, users

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "exif"
REAL = ["lychee__train.jpg", "photoprism__elephants.jpg", "photoprism__Iceland-P3.jpg"]
BATCH = 5000


def import_real(settings: Settings, factory: sessionmaker[Session], user_id: int) -> list[int]:
    """Import a few sample photos so that some rows point at real renditions."""
    options = importing.ImportOptions(user_id=user_id, trip_title="Bench trip")
    summary = importing.run_import(
        settings, factory, options, importing.discover([SAMPLES / n for n in REAL])
    )
    return [r.photo_id for r in summary.results if r.photo_id is not None]


def fake_rows(user_id: int, post_ids: list[int], rng: random.Random, start: int) -> list[dict[str, object]]:
    """Photo rows for bulk insert (the ORM hooks do not run, so sort_at is filled in here)."""
    rows = []
    epoch = datetime(2020, 1, 1)
    for i, post_id in enumerate(post_ids):
        sha = hashlib.sha256(f"bench-{start + i}".encode()).hexdigest()
        kind = rng.random()
        local = epoch + timedelta(seconds=rng.randrange(5 * 365 * 86400)) if kind > 0.1 else None
        offset = rng.choice([-300, 0, 60, 120, 420, 540]) if local and kind > 0.3 else None
        utc = (
            (local - timedelta(minutes=offset)).replace(tzinfo=UTC) if local and offset is not None else None
        )
        located = rng.random() < 0.7
        rows.append(
            {
                "user_id": user_id,
                "post_id": post_id,
                "position": 0,
                "sha256": sha,
                "original_name": f"IMG_{start + i:06d}.JPG",
                "stored_path": f"originals/{user_id}/{sha[:2]}/{sha}.jpg",
                "bytes": 3_000_000 + rng.randrange(2_000_000),
                "format": "JPEG",
                "width": 4000,
                "height": 3000,
                "web_width": 2048,
                "web_height": 1536,
                "make": "Canon",
                "model": rng.choice(["EOS R6", "EOS 5D"]),
                "taken_at": local,
                "utc_offset_min": offset,
                "offset_source": "camera" if offset is not None else None,
                "taken_at_utc": utc,
                "sort_at": photo_sort_at(utc, local),
                "lat": rng.uniform(-60, 70) if located else None,
                "lon": rng.uniform(-180, 180) if located else None,
                "place": f"Town {rng.randrange(5000)}, Country" if located else None,
                "imported_at": datetime.now(UTC),
            }
        )
    return rows


def fill(factory: sessionmaker[Session], user_id: int, count: int, seed: int = 1) -> None:
    """Insert `count` posts and photos in batches (executemany), a post per photo, half on a trip."""
    rng = random.Random(seed)
    with factory() as s, s.begin():
        trip_id = s.scalar(select(Trip.id).where(Trip.user_id == user_id))
    done = 0
    while done < count:
        n = min(BATCH, count - done)
        with factory() as s, s.begin():
            first = (s.scalar(select(func.max(Post.id))) or 0) + 1
            now = datetime.now(UTC)
            s.execute(
                insert(Post),
                [
                    {
                        "user_id": user_id,
                        "trip_id": trip_id if i % 2 else None,
                        "caption": f"Post {done + i}",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(n)
                ],
            )
            post_ids = list(range(first, first + n))
            s.execute(insert(Photo), fake_rows(user_id, post_ids, rng, done))
        done += n


def sign_in(app: Flask, user_id: int) -> FlaskClient:
    """A test client whose session is the owner's (as Flask-Login stores it: a server-side session id)."""
    with app.extensions["journal.sessions"]() as s, s.begin():
        owner = s.get(User, user_id)
        assert owner is not None
        session_id = users.start_session(s, owner)
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = session_id
        sess["_fresh"] = True
    return client


def timed(client: FlaskClient, url: str | Callable[[int], str], repeat: int) -> tuple[list[float], int]:
    """Seconds per GET (body read fully), and the size of the last body."""
    times, size = [], 0
    for i in range(repeat):
        target = url(i) if callable(url) else url
        start = time.perf_counter()
        response = client.get(target)
        body = response.get_data()
        times.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"{target}: HTTP {response.status_code}")
        size = len(body)
    return times, size


def report(name: str, times: list[float], size: int) -> None:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(
        f"{name:<34} p50 {statistics.median(ordered) * 1000:8.1f} ms   p95 {p95 * 1000:8.1f} ms   "
        f"{size / 1000:9.1f} kB   n={len(times)}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--photos", type=int, default=10_000, help="photo rows to insert (default 10,000)")
    parser.add_argument("--repeat", type=int, default=30, help="requests per page (default 30)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="journal-bench-") as tmp:
        settings = Settings(home=Path(tmp) / "home", workers=1)
        app = create_app(settings, TESTING=True)
        factory: sessionmaker[Session] = app.extensions["journal.sessions"]
        with factory() as s, s.begin():
            user_id = users.create_user(s, "bench", "bench password").id
        real = import_real(settings, factory, user_id)
        start = time.perf_counter()
        fill(factory, user_id, args.photos)
        took = time.perf_counter() - start
        print(f"inserted {args.photos:,} photo rows (+{len(real)} imported) in {took:.1f} s")

        client = sign_in(app, user_id)
        first = client.get("/library").get_data(as_text=True)
        ids = [int(i) for i in re.findall(r'href="/photos/(\d+)"', first)]
        # A cursor deep in the library: follow "Older" links 50 pages down.
        deep = first
        for _ in range(50):
            match = re.search(r'rel="next" href="([^"]+)"', deep)
            if not match:
                break
            deep_url = match.group(1).replace("&amp;", "&")
            deep = client.get(deep_url).get_data(as_text=True)
        with factory() as s:
            all_ids = list(s.scalars(select(Photo.id)))
            trip_id = s.scalar(select(Trip.id))
        rng = random.Random(7)
        picks = [rng.choice(all_ids) for _ in range(args.repeat)]

        print(f"{args.photos + len(real):,} photos, Flask test client, {args.repeat} requests each")
        report("GET /library (first page)", *timed(client, "/library", args.repeat))
        report("GET /library (page 51, keyset)", *timed(client, deep_url, args.repeat))
        report("GET /library?nolocation=1", *timed(client, "/library?nolocation=1", args.repeat))
        report(f"GET /library?trip={trip_id}", *timed(client, f"/library?trip={trip_id}", args.repeat))
        report("GET /photos/<id> (random)", *timed(client, lambda i: f"/photos/{picks[i]}", args.repeat))
        report("GET /photos/<id> (newest)", *timed(client, f"/photos/{ids[0]}", args.repeat))
        report("GET /api/photos.geojson", *timed(client, "/api/photos.geojson", max(5, args.repeat // 3)))
        report(
            f"GET /api/photos.geojson?trip={trip_id}",
            *timed(client, f"/api/photos.geojson?trip={trip_id}", max(5, args.repeat // 3)),
        )
        app.extensions["journal.engine"].dispose()


if __name__ == "__main__":
    main()
