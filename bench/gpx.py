"""GPX benchmarks: figures printed, nothing asserted.

parse: CPU seconds journal.gpx.read_track spends, reading as the worker does but without its limits,
on crafted files (points, tiny elements, deep nesting, a huge attribute, " xmlns" runs that made
gpxpy quadratic).
live: each file uploaded through POST /api/photos to a real `journal serve` while a thread polls
/healthz every 50 ms: the answer per file, the request's wall time, and /healthz p50 / max meanwhile.

    .venv/bin/python bench/gpx.py --megabytes 40
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from journal import db, gpx
from journal.config import Settings
from journal.errors import UnreadableFile
from journal.services import users

HEAD = '<?xml version="1.0"?><gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
POINT = '<trkpt lat="45.123456" lon="14.123456"><ele>300.5</ele><time>2020-01-01T10:00:00Z</time></trkpt>'


def crafted(megabytes: float) -> dict[str, Callable[[], bytes]]:
    """Crafted files of about `megabytes` MB each (xmlns runs: 300 KB, the size that took gpxpy 12.6 s)."""
    size = int(megabytes * 1_000_000)

    def doc(body: str) -> bytes:
        return (HEAD + body + "</gpx>").encode()

    return {
        "points": lambda: doc("<trk><trkseg>" + POINT * (size // len(POINT)) + "</trkseg></trk>"),
        "tiny-elements": lambda: doc("<extensions>" + "<x/>" * (size // 4) + "</extensions>"),
        "deep-nesting": lambda: doc(
            "<extensions>" + "<e>" * (size // 7) + "</e>" * (size // 7) + "</extensions>"
        ),
        "huge-attribute": lambda: doc(
            f'<trk><trkseg><trkpt lat="1" lon="2" x="{"9" * size}"/></trkseg></trk>'
        ),
        "xmlns-runs-300k": lambda: doc(f"<trk><name>{' xmlns' * 50_000}</name></trk>"),
        "entity-bomb": lambda: (
            '<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "><!--<gpx">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            + HEAD[len('<?xml version="1.0"?>') :]
            + "<trk><name>&b;&b;&b;</name></trk></gpx>"
        ).encode(),
    }


def parse_cpu(path: Path) -> tuple[float, str]:
    """CPU seconds of an in-process read as the worker reads (at once, no cyclic GC), and what it gave."""
    gc.disable()
    started = time.process_time()
    try:
        track = gpx.read_track(path, chunk=None)
        outcome = f"read, {sum(len(s) for s in track.segments):,} points"
    except UnreadableFile as exc:
        outcome = f"refused: {exc}"
    except MemoryError:
        outcome = "MemoryError"
    finally:
        gc.enable()
    return time.process_time() - started, outcome


class Server:
    """`journal serve` on a free port with its own data home."""

    def __init__(self, home: Path) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        env = {**os.environ, "JOURNAL_HOME": str(home)}
        env.pop("JOURNAL_DATABASE_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "journal", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(300):
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("journal serve did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def add_token(home: Path) -> str:
    engine = db.make_engine(Settings(home=home).database_url)
    db.ensure_schema(engine)
    try:
        with db.make_session_factory(engine).begin() as session:
            return users.create_token(session, users.create_user(session, "bench", "password123"))
    finally:
        engine.dispose()


def upload_while_polling(
    server: Server, token: str, name: str, data: bytes
) -> tuple[str, float, list[float]]:
    """Upload one file while /healthz is polled; (answer, request seconds, /healthz delays)."""
    delays: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                with urllib.request.urlopen(server.url + "/healthz", timeout=60) as response:
                    response.read()
                delays.append(time.monotonic() - started)
            except OSError:
                delays.append(float("inf"))
            stop.wait(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(data), filename=name + ".gpx")})
    request = urllib.request.Request(
        server.url + "/api/photos",
        data=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            result = json.loads(response.read())["results"][0]
        answer = result["status"] + (f" ({result['error']})" if result.get("error") else "")
    finally:
        seconds = time.monotonic() - started
        stop.set()
        poller.join()
    return answer, seconds, delays


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=float, default=40.0, help="size of each crafted file")
    parser.add_argument("--skip-parse", action="store_true", help="only the live server figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        files = {}
        for name, make in crafted(args.megabytes).items():
            path = Path(folder) / f"{name}.gpx"
            path.write_bytes(make())
            files[name] = path
        if not args.skip_parse:
            print(f"{'file':18} {'MB':>7} {'parse CPU s':>12}  outcome (in this process, no limits)")
            for name, path in files.items():
                cpu, outcome = parse_cpu(path)
                print(f"{name:18} {path.stat().st_size / 1e6:7.2f} {cpu:12.3f}  {outcome[:70]}")
        home = Path(folder) / "home"
        token = add_token(home)
        server = Server(home)
        try:
            print(f"\n{'file':18} {'request s':>10} {'healthz p50 ms':>15} {'max ms':>8}  answer (live)")
            for name, path in files.items():
                answer, seconds, delays = upload_while_polling(server, token, name, path.read_bytes())
                p50 = statistics.median(delays) * 1000 if delays else float("nan")
                worst = max(delays) * 1000 if delays else float("nan")
                print(f"{name:18} {seconds:10.2f} {p50:15.1f} {worst:8.1f}  {answer[:60]}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
