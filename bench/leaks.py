"""Leak check benchmark: what re-reading the written bytes costs per photo. Figures printed, nothing asserted.

One photo of bench/export.py's corpus (12 MP JPEG q90 with camera EXIF and GPS) is scrubbed as
an `original` export does; then, per photo:

- the tap the bundle writer feeds with every piece it writes into the zip (1 MB pieces),
- its findings (header parsed again by exifread and Pillow),
- the worker's check of the planned scrub (write_scrub_plan into a tap, then findings),
- the source inspection for privacy.json's `removed` (EXIF not decoded in detail),

next to the scrub plan itself (the marker search the worker already does) and a plain copy.

    .venv/bin/python bench/leaks.py [--rounds 50]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from export import base_jpeg, exif_block, with_exif  # noqa: E402

from journal.publish import leaks, scrub  # noqa: E402
from journal.publish.scrub import ExifKeep  # noqa: E402
from journal.storage import CHUNK  # noqa: E402


def best_ms(fn: Callable[[], object], rounds: int) -> float:
    """Fastest of `rounds` calls, in milliseconds (a shared machine's slow moments hurt all alike)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=50, help="calls per figure; the fastest counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "photo.jpg"
        source.write_bytes(with_exif(base_jpeg(0), exif_block(1)))
        keep = ExifKeep(orientation=1, make="BenchCam", model="B-12", taken_at="2026-05-01T08:00:00")
        plan = scrub.plan_scrub(source, keep=keep)
        out = io.BytesIO()
        scrub.write_scrub_plan(plan, source, out)
        written = out.getvalue()
        pieces = [written[at : at + CHUNK] for at in range(0, len(written), CHUNK)]

        def tap_only() -> leaks.MetadataTap:
            tap = leaks.MetadataTap()
            for piece in pieces:
                tap.write(piece)
            return tap

        tapped = tap_only()

        def planned() -> leaks.Findings:
            tap = leaks.MetadataTap()
            scrub.write_scrub_plan(plan, source, tap)
            return tap.findings()

        figures = [
            (
                "scrub plan (worker, already done)",
                best_ms(lambda: scrub.plan_scrub(source, keep=keep), args.rounds),
            ),
            ("copy of the written bytes", best_ms(lambda: b"".join(pieces), args.rounds)),
            ("writer: tap over every piece", best_ms(tap_only, args.rounds)),
            ("writer: findings (exifread+Pillow)", best_ms(tapped.findings, args.rounds)),
            ("worker: check of the planned scrub", best_ms(planned, args.rounds)),
            ("worker: source inspection", best_ms(lambda: leaks.inspect_source(source, "JPEG"), args.rounds)),
        ]
    print(f"photo: {len(written) / 1e6:.1f} MB written, header {len(tapped._head)} bytes")
    for label, ms in figures:
        print(f"  {label:<38} {ms:8.2f} ms")
    writer = figures[2][1] + figures[3][1]
    worker = figures[4][1] + figures[5][1]
    print(
        f"added per photo: writer thread {writer:.2f} ms, worker {worker:.2f} ms"
        f" (the scrub plan alone: {figures[0][1]:.2f} ms)"
    )


if __name__ == "__main__":
    main()
