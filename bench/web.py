"""Web benchmarks: figures printed, nothing asserted.

upload: photos per second through POST /api/photos with N parallel clients (bearer token, keep-alive
connections over loopback) against a real `journal serve`, compared with `journal import` of the same
files in the same run. The corpus is deterministic: 12 MP JPEGs with EXIF, noise over gradients, q=90.

    .venv/bin/python bench/web.py upload --photos 40 --clients 4
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import queue
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from journal import db
from journal.config import Settings
from journal.models import Photo
from journal.services import users

USER, PASSWORD = "bench", "bench password"


# --- corpus ---------------------------------------------------------------------------------------


def make_photo(path: Path, seed: int, size: tuple[int, int] = (4000, 3000)) -> Path:
    """A 12 MP JPEG that compresses like a photo (gradients, shapes, grain), with camera EXIF and GPS."""
    rng = random.Random(seed)
    small = Image.new("RGB", (40, 30))
    small.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(40 * 30)])
    image = small.resize(size, Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(20))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.ellipse(
            (x, y, x + rng.randrange(100, 900), y + rng.randrange(100, 900)),
            fill=tuple(rng.choices(range(256), k=3)),
        )
    grain = Image.effect_noise(size, 18).convert("RGB")
    image = Image.blend(image, grain, 0.12)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "BenchCam", "B-12"
    taken = datetime(2026, 5, 1, 8, 0) + timedelta(minutes=7 * seed)
    exif.get_ifd(0x8769)[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    gps = exif.get_ifd(0x8825)
    lat, lon = 64.1 + seed * 0.01, 21.9 + seed * 0.01
    gps[1], gps[2] = "N", (float(int(lat)), float(int(lat % 1 * 60)), 0.0)
    gps[3], gps[4] = "W", (float(int(lon)), float(int(lon % 1 * 60)), 0.0)
    image.save(path, "JPEG", quality=90, exif=exif.tobytes())
    return path


def make_corpus(folder: Path, count: int) -> list[Path]:
    """The corpus in `folder`, made once (files already there are reused)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"bench-{i:03d}.jpg"
        if not path.exists():
            make_photo(path, seed=i)
        paths.append(path)
    return paths


# --- helpers ----------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def journal_cmd(home: Path, *args: str) -> list[str]:
    """The `journal` command line for a data home."""
    return [sys.executable, "-m", "journal", "--home", str(home), *args]


def add_user(home: Path) -> str:
    """Create the bench account in a data home; returns an API token for it."""
    engine = db.make_engine(Settings(home=home).database_url)
    db.ensure_schema(engine)
    try:
        with db.make_session_factory(engine).begin() as session:
            return users.create_token(session, users.create_user(session, USER, PASSWORD))
    finally:
        engine.dispose()


def photo_rows(home: Path) -> int:
    """How many photo rows the data home has."""
    engine = db.make_engine(Settings(home=home).database_url)
    try:
        with db.make_session_factory(engine)() as session:
            return session.scalar(select(func.count(Photo.id))) or 0
    finally:
        engine.dispose()


@dataclass
class Figure:
    """One measured run."""

    label: str
    photos: int
    seconds: float

    @property
    def rate(self) -> float:
        """Photos per second."""
        return self.photos / self.seconds

    def line(self) -> str:
        """A printable line."""
        return (
            f"{self.label:<28} {self.photos:4d} photos in {self.seconds:7.2f} s = {self.rate:6.2f} photos/s"
        )


# --- the runs ---------------------------------------------------------------------------------------


def run_import(files: list[Path], home: Path) -> Figure:
    """`journal import` of the corpus into a fresh data home."""
    add_user(home)
    start = time.perf_counter()
    subprocess.run(
        journal_cmd(home, "import", *map(str, files), "--user", USER), check=True, capture_output=True
    )
    return Figure("journal import", photo_rows(home), time.perf_counter() - start)


class Server:
    """`journal serve` on a free loopback port."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            journal_cmd(home, "serve", "--port", str(self.port)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("journal serve did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server process."""
        self.process.terminate()
        self.process.wait(timeout=10)


def upload_worker(
    port: int, token: str, todo: queue.Queue[Path], statuses: list[str], lock: threading.Lock
) -> None:
    """One client: a keep-alive connection sending one file per request until the queue is empty."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        while True:
            try:
                path = todo.get_nowait()
            except queue.Empty:
                return
            boundary, body = encode_multipart(
                {"file": FileStorage(io.BytesIO(path.read_bytes()), filename=path.name)}
            )
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            }
            connection.request("POST", "/api/photos", body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            status = "http-" + str(response.status) if response.status != 200 else payload.decode()
            with lock:
                statuses.append(status)
    finally:
        connection.close()


def run_upload(files: list[Path], home: Path, clients: int) -> Figure:
    """Upload the corpus to a fresh data home with `clients` parallel clients."""
    token = add_user(home)
    server = Server(home)
    try:
        todo: queue.Queue[Path] = queue.Queue()
        for path in files:
            todo.put(path)
        statuses: list[str] = []
        lock = threading.Lock()
        threads = [
            threading.Thread(target=upload_worker, args=(server.port, token, todo, statuses, lock))
            for _ in range(clients)
        ]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - start
    finally:
        server.stop()
    imported = sum('"status":"imported"' in s.replace(" ", "") for s in statuses)
    if imported != len(files):
        print(f"  warning: {len(files) - imported} uploads did not import: {set(statuses) - {''}}"[:400])
    return Figure(f"upload, {clients} clients", photo_rows(home), seconds)


def bench_upload(args: argparse.Namespace) -> None:
    """Upload throughput against `journal import`, same corpus, same run."""
    work = Path(tempfile.mkdtemp(prefix="journal-bench-"))
    corpus_dir = args.corpus or work / "corpus"
    start = time.perf_counter()
    files = make_corpus(corpus_dir, args.photos)
    size = sum(p.stat().st_size for p in files)
    made = time.perf_counter() - start
    print(f"corpus: {len(files)} JPEGs, 12 MP, {size / 1e6:.0f} MB in {corpus_dir} (ready in {made:.1f} s)")
    print(f"cpus: {os.cpu_count()}, JOURNAL_WORKERS={os.environ.get('JOURNAL_WORKERS', '(cpu count)')}")
    imported = run_import(files, work / "import-home")
    print(imported.line())
    # What the command costs before its first photo (interpreter, schema check, process pool, place data).
    startup = run_import(make_corpus(work / "one", 1), work / "import-one").seconds
    steady = Figure("journal import, no start-up", imported.photos, max(imported.seconds - startup, 1e-3))
    print(f"{steady.line()}   (start-up ~{startup:.1f} s, from a 1-photo import)")
    single = run_upload(files, work / "upload-home-1", 1)
    print(single.line())
    uploaded = run_upload(files, work / "upload-home", args.clients)
    print(uploaded.line())
    print(f"upload / import = {uploaded.rate / imported.rate:.0%} (target >= 80%); ", end="")
    print(f"against import without its start-up: {uploaded.rate / steady.rate:.0%}")
    print(f"upload bandwidth: {size / 1e6 / uploaded.seconds:.1f} MB/s over loopback")


def main() -> None:
    """Parse the command line and run the chosen benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="bench", required=True)
    upload = sub.add_parser("upload", help="upload photos/s with parallel clients vs journal import")
    upload.add_argument("--photos", type=int, default=40)
    upload.add_argument("--clients", type=int, default=4)
    upload.add_argument("--corpus", type=Path, help="folder to keep (and reuse) the generated JPEGs in")
    upload.set_defaults(run=bench_upload)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
