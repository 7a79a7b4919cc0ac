"""Benchmark the import pipeline against ExifTool and vipsthumbnail on the same files.

usage: python bench/import.py [--count 200] [--big 4]

Prints, in one run on one corpus: `journal import` photos/s and peak RSS, `exiftool -json -n`
batch rate, `vipsthumbnail` making the same two renditions, `journal inspect` rate, and ratios;
then peak RSS importing 50 MP JPEGs and 48 MP HEICs. No assertions: figures only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import JOURNAL, OUT, fresh_home, have, journal_env, make_corpus, row, run  # noqa: E402


def bench_import(files: list[Path], name: str) -> tuple[float, float]:
    home = fresh_home(name)
    result = run([*JOURNAL, "import", str(files[0].parent)], env=journal_env(home))
    assert result.returncode == 0, result.stdout
    assert f"imported {len(files)}," in result.stdout, result.stdout
    return len(files) / result.seconds, result.peak_rss_mb


def bench_inspect(files: list[Path]) -> float:
    result = run([*JOURNAL, "inspect", *map(str, files), "--json"], env=journal_env(OUT))
    assert result.returncode == 0
    return len(files) / result.seconds


def bench_exiftool(files: list[Path]) -> float | None:
    if not have("exiftool"):
        return None
    result = run(["exiftool", "-json", "-n", *map(str, files)])
    return len(files) / result.seconds


def bench_vips(files: list[Path], parallel: int) -> float | None:
    """Both renditions as vipsthumbnail makes them (JPEG q85, metadata stripped)."""
    if not have("vipsthumbnail"):
        return None
    out = OUT / "vips"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    chunks = [files[i::parallel] for i in range(parallel)]
    cmds = []
    for size, suffix in ((2048, "web"), (400, "thumb")):
        for chunk in chunks:
            cmds.append(
                [
                    "vipsthumbnail",
                    "--size",
                    str(size),
                    "-o",
                    f"{out}/%s_{suffix}.jpg[Q=85,strip]",
                    *map(str, chunk),
                ]
            )
    # Run `parallel` processes at a time (each vips process also uses its own threads).
    script = " ; ".join(
        " & ".join(" ".join(f"'{a}'" for a in cmd) for cmd in cmds[i : i + parallel]) + " & wait"
        for i in range(0, len(cmds), parallel)
    )
    result = run(["bash", "-c", script], env={**os.environ, "VIPS_CONCURRENCY": str(os.cpu_count() or 1)})
    return len(files) / result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="photos of 12 MP in the main corpus")
    parser.add_argument("--big", type=int, default=4, help="50 MP JPEGs and 48 MP HEICs for the memory test")
    args = parser.parse_args()

    print(f"journal import benchmark: {os.cpu_count()} cores")
    files = make_corpus("p12", args.count, (4000, 3000))
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"corpus: {len(files)} JPEGs of 12 MP with a phone's full EXIF + GPS, {size_mb:.0f} MB")

    exiftool = bench_exiftool(files)
    inspect = bench_inspect(files)
    vips1 = bench_vips(files, 1)
    vips2 = bench_vips(files, 2)
    imp, imp_rss = bench_import(files, "p12")

    print("\nmetadata")
    row("exiftool -json -n (one batch process)", f"{exiftool:.1f} files/s" if exiftool else "not installed")
    row("journal inspect --json (process start included)", f"{inspect:.1f} files/s")
    if exiftool:
        row("ratio inspect / exiftool", f"{inspect / exiftool:.2f}x", "(target >= 5x)")
    print("\nrenditions (2048 px web + 400 px thumb, JPEG q85)")
    row("vipsthumbnail, one process per size", f"{vips1:.2f} photos/s" if vips1 else "not installed")
    row("vipsthumbnail, two processes per size", f"{vips2:.2f} photos/s" if vips2 else "not installed")
    row("journal import (metadata+renditions+copy+row)", f"{imp:.2f} photos/s", f"peak RSS {imp_rss:.0f} MB")
    best_vips = max(v for v in (vips1, vips2) if v) if (vips1 or vips2) else None
    if best_vips:
        row("ratio import / best vipsthumbnail", f"{imp / best_vips:.2f}x", "(target >= 1x)")

    if args.big:
        print("\nmemory on big photos (peak RSS of the whole process tree)")
        big_jpeg = make_corpus("p50", args.big, (8660, 5774))
        rate, rss = bench_import(big_jpeg, "p50")
        row(
            f"journal import, {args.big} x 50 MP JPEG",
            f"{rss:.0f} MB",
            f"{rate:.2f} photos/s (target < 500 MB)",
        )
        big_heic = make_corpus("p48", args.big, (8000, 6000), fmt="HEIF")
        rate, rss = bench_import(big_heic, "p48")
        row(
            f"journal import, {args.big} x 48 MP HEIC (512 px grid)",
            f"{rss:.0f} MB",
            f"{rate:.2f} photos/s (target < 500 MB)",
        )


if __name__ == "__main__":
    main()
