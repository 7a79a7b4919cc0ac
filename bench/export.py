"""Export benchmark: figures printed, nothing asserted.

Throughput and peak memory of `journal export` with the `original` and `instagram` presets over a
deterministic corpus of 12 MP noisy JPEGs with EXIF and GPS (>= 1 GB by default), imported with
`journal import`; side by side with `cp -r` and `zip -0 -r` of the very same stored originals (the
floor), and with the import pipeline's web renditions (renditions.make_web_renditions, same files,
same number of worker processes).

    .venv/bin/python bench/export.py [--gb 1.0] [--workers N] [--dir /tmp/journal-bench-export]

Everything runs from the page cache (the corpus is read once before timing). `journal export` ends
each bundle with an fsync (atomic write); cp and zip do not, so they are also shown with a `sync`.
The commands run in turn, --repeat rounds, and each one's fastest run counts: a shared machine's
slow minute then hurts every command alike. PYTHONDONTWRITEBYTECODE is dropped for the runs, so
`journal` starts from compiled modules as an installed copy does.
Then the CPU time per photo (time.process_time, one process, so a loaded machine's figures stay
comparable): the web renditions, and the Instagram file made from the original and from the web image
(what the export does when the library's web image is there).
Last, per platform preset: the rendition's size and its SSIM against a slow reference (full decode,
Lanczos), from the original and from the web image, the figures tests/test_exportfiles.py holds a
floor for.
Peak RSS: the largest single process (wait4) and the largest sum over the export's process tree
(sampled from /proc every 20 ms). The corpus and data home stay under --dir for the next run.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import tree_pss_kb as _tree_rss_kb  # noqa: E402

from journal.config import Settings  # noqa: E402
from journal.media import renditions  # noqa: E402
from journal.publish.exportfiles import FileJob, MadeFile, file_kind, make_file  # noqa: E402
from journal.publish.platforms import PLATFORMS  # noqa: E402
from journal.publish.scrub import ExifKeep  # noqa: E402
from tests.imaging import ssim  # noqa: E402

USER, PASSWORD = "bench", "bench password"
SIZE = (4000, 3000)
BASES = 6
MB = 1_000_000


# --- corpus ---------------------------------------------------------------------------------------


def base_jpeg(seed: int) -> bytes:
    """A 12 MP frame that compresses like a photo (soft colour fields under sensor-like grain), q90."""
    rng = random.Random(seed)
    small = Image.new("RGB", (40, 30))
    small.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(40 * 30)])
    image = small.resize((400, 300), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(6))
    image = image.resize(SIZE, Image.Resampling.BICUBIC)
    grain = Image.merge("RGB", [Image.effect_noise(SIZE, 24 + 4 * c) for c in range(3)])
    image = Image.blend(image, grain, 0.35)  # ~3.7 MB at q90, like a 12 MP phone photo
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def exif_block(index: int) -> bytes:
    """Camera EXIF with time, GPS and a serial number (the things an export must handle)."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "BenchCam", "B-12", 1
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = (datetime(2026, 5, 1, 8) + timedelta(minutes=7 * index)).strftime("%Y:%m:%d %H:%M:%S")
    sub[0x9011] = "+09:00"
    sub[0xA431] = f"SERIAL-{index:06d}"
    gps = exif.get_ifd(0x8825)
    lat, lon = 39.0 + index * 0.003, 125.7 + index * 0.002
    gps[1], gps[2] = "N", (float(int(lat)), float(int(lat % 1 * 60)), round(lat * 3600 % 60, 2))
    gps[3], gps[4] = "E", (float(int(lon)), float(int(lon % 1 * 60)), round(lon * 3600 % 60, 2))
    return exif.tobytes()


def with_exif(jpeg: bytes, exif: bytes) -> bytes:
    """jpeg with an APP1 EXIF segment inserted after its JFIF header: same pixels, distinct bytes."""
    assert jpeg[:4] == b"\xff\xd8\xff\xe0"
    end = 4 + struct.unpack(">H", jpeg[4:6])[0]
    return jpeg[:end] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[end:]


def make_corpus(folder: Path, target_bytes: int) -> list[Path]:
    """Photos in `folder` until their total passes target_bytes (reused when already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("bench-*.jpg"))
    if existing and sum(p.stat().st_size for p in existing) >= target_bytes:
        return existing
    bases = [base_jpeg(seed) for seed in range(BASES)]
    paths: list[Path] = []
    total = 0
    while total < target_bytes:
        path = folder / f"bench-{len(paths):04d}.jpg"
        data = with_exif(bases[len(paths) % BASES], exif_block(len(paths)))
        path.write_bytes(data)
        paths.append(path)
        total += len(data)
    return paths


# --- measuring ------------------------------------------------------------------------------------


@dataclass
class Run:
    """One timed command: wall time, largest single-process RSS and largest process-tree PSS (MB)."""

    label: str
    seconds: float
    peak_rss_mb: float
    tree_rss_mb: float


def run_env(**extra: str) -> dict[str, str]:
    """The environment for a run: ours, with bytecode caching on, plus extra."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **extra}


def timed(label: str, command: list[str], env: dict[str, str], *, sample_tree: bool = False) -> Run:
    """Run a command; wait4 gives the largest single process's peak RSS.

    With sample_tree, the process tree's PSS is sampled every 20 ms (tree_rss_mb). Only for
    memory: reading smaps_rollup walks a process's page tables under its mmap lock, which slows
    a process that maps its input files (as the export does) and so its time.
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, env=run_env(**env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_tree = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        while sample_tree and not done.is_set():
            peak_tree = max(peak_tree, _tree_rss_kb(process.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    stderr = ""
    if process.stderr is not None:
        stderr = process.stderr.read().decode()
        process.stderr.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{label} failed ({process.returncode}): {stderr[-2000:]}")
    return Run(label, seconds, usage.ru_maxrss / 1024, peak_tree / 1024)


def journal(home: Path, *args: str) -> list[str]:
    """The `journal` command line for a data home."""
    return [sys.executable, "-m", "journal", "--home", str(home), *args]


def read_all(paths: list[Path]) -> None:
    """Read every file once so all runs start from the page cache."""
    for path in paths:
        with path.open("rb") as handle:
            while handle.read(1 << 22):
                pass


def _web_rendition(job: tuple[Path, Path, int]) -> None:
    """One photo's web image and thumbnail, with the settings the import uses."""
    src, out, index = job
    settings = Settings(home=out)
    renditions.make_web_renditions(
        src,
        web_path=out / f"{index}-web.jpg",
        thumb_path=out / f"{index}-thumb.jpg",
        web_size=settings.web_size,
        thumb_size=settings.thumb_size,
        quality=settings.jpeg_quality,
        orientation=1,
        max_pixels=settings.max_pixels,
        draft_tolerance=settings.web_size_tolerance,
    )


def web_renditions(paths: list[Path], out: Path, workers: int) -> float:
    """Seconds for make_web_renditions over every file with `workers` processes (as the import runs it)."""
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(path, out, i) for i, path in enumerate(paths)]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_web_rendition, jobs, chunksize=2))
    seconds = time.perf_counter() - start
    shutil.rmtree(out)
    return seconds


def make_web(src: Path, out: Path, orientation: int) -> tuple[Path, tuple[int, int]]:
    """The web image (and thumbnail) of src as the import makes it: its path and size."""
    settings = Settings(home=out)
    result = renditions.make_web_renditions(
        src,
        web_path=out / f"{src.stem}-{orientation}-web.jpg",
        thumb_path=out / f"{src.stem}-{orientation}-thumb.jpg",
        web_size=settings.web_size,
        thumb_size=settings.thumb_size,
        quality=settings.jpeg_quality,
        orientation=orientation,
        max_pixels=settings.max_pixels,
        draft_tolerance=settings.web_size_tolerance,
    )
    return out / f"{src.stem}-{orientation}-web.jpg", (result.web_width, result.web_height)


def bench_job(
    src: Path, dest: Path, platform_name: str, orientation: int, web: tuple[Path, tuple[int, int]] | None
) -> FileJob:
    """The FileJob the export plans for a corpus photo (with its web image, or without)."""
    platform = PLATFORMS[platform_name]
    with Image.open(src) as image:
        stored = image.size
    return FileJob(
        photo_id=1,
        post_id=1,
        number=1,
        src=src,
        dest=dest,
        kind=file_kind("JPEG", platform),
        keep=ExifKeep(),
        platform=platform,
        format="JPEG",
        width=stored[0],
        height=stored[1],
        orientation=orientation,
        max_pixels=Settings(home=dest.parent).max_pixels,
        web=web[0] if web else None,
        web_size=web[1] if web else None,
    )


def cpu_per_photo(paths: list[Path], out: Path, repeat: int) -> dict[str, float]:
    """CPU milliseconds per photo (fastest of `repeat` passes over `paths`, in this process)."""
    out.mkdir(parents=True, exist_ok=True)
    webs = [make_web(path, out, 1) for path in paths]
    steps = {
        "web renditions": lambda i: make_web(paths[i], out, 1),
        "instagram from the original": lambda i: make_file(
            bench_job(paths[i], out / "o", "instagram", 1, None)
        ),
        "instagram from the web image": lambda i: make_file(
            bench_job(paths[i], out / "w", "instagram", 1, webs[i])
        ),
    }
    figures = {}
    for label, step in steps.items():
        best = float("inf")
        for _ in range(repeat):
            start = time.process_time()
            for index in range(len(paths)):
                step(index)
            best = min(best, time.process_time() - start)
        figures[label] = best / len(paths) * 1000
    shutil.rmtree(out)
    return figures


def rendition_quality(
    src: Path, out: Path, orientation: int = 6
) -> list[tuple[str, str, tuple[int, int], float, float]]:
    """Per preset and source: size, SSIM against the slow reference (full decode, upright, Lanczos), time."""
    with Image.open(src) as image:
        image.load()
        full = renditions.upright(image.convert("RGB"), orientation)
    web = make_web(src, out, orientation)
    rows = []
    for name, platform in PLATFORMS.items():
        if platform.format == "original":
            continue
        for used in (None, web):
            job = bench_job(src, out / name, name, orientation, used)
            start = time.perf_counter()
            made = make_file(job)
            seconds = time.perf_counter() - start
            if used is not None and made.made_from != "web":
                continue  # the web image is too small for this preset: the original row says it all
            rows.append((name, made.made_from, *quality_of(made, full), seconds))
    return rows


def quality_of(made: MadeFile, full: Image.Image) -> tuple[tuple[int, int], float]:
    """A made file's size and its SSIM against the slow reference resize of `full` (upright)."""
    assert made.path is not None
    with Image.open(made.path) as written:
        got = written.convert("RGB")
    aspect = got.width / got.height
    width, height = full.size
    crop_w, crop_h = (height * aspect, height) if width / height > aspect else (width, width / aspect)
    box = ((width - crop_w) / 2, (height - crop_h) / 2, (width + crop_w) / 2, (height + crop_h) / 2)
    reference = full.resize(got.size, Image.Resampling.LANCZOS, box=box)
    return got.size, ssim(got, reference)


# --- the benchmark --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gb", type=float, default=1.0, help="corpus size in GB (default 1.0)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of runs; each one's fastest counts")
    parser.add_argument("--location", default="approx", help="export --location (default approx)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/journal-bench-export"), help="work folder")
    args = parser.parse_args()
    work: Path = args.dir
    env = {"JOURNAL_WORKERS": str(args.workers), "PYTHONPATH": str(ROOT)}

    corpus = make_corpus(work / "corpus", int(args.gb * 1000 * MB))
    corpus_bytes = sum(p.stat().st_size for p in corpus)
    print(f"corpus: {len(corpus)} photos, {corpus_bytes / MB:,.0f} MB, 12 MP JPEG q90 with EXIF+GPS")
    print(f"CPUs: {os.cpu_count()}, workers: {args.workers}, Python {sys.version.split()[0]}")

    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run(
        journal(home, "user", "add", USER, "--password-stdin"),
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
        env=run_env(**env),
    )
    imported = timed("journal import", journal(home, "import", str(work / "corpus")), env)
    originals = sorted((home / "uploads" / "originals").rglob("*.jpg"))
    total = sum(p.stat().st_size for p in originals)
    read_all(originals)

    scratch = work / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    source = str(home / "uploads" / "originals")

    def clean() -> None:
        for entry in scratch.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    cp_sync = f"cp -r '{source}' '{scratch}/cp' && sync"
    zip_sync = f"zip -0 -r -q '{scratch}/o.zip' '{source}' && sync"
    export_args = ("export", "--all", "--location", args.location, "--out")
    commands: list[tuple[str, list[str], dict[str, str]]] = [
        ("cp -r", ["cp", "-r", source, str(scratch / "cp")], {}),
        ("cp -r + sync", ["sh", "-c", cp_sync], {}),
        ("zip -0 -r", ["zip", "-0", "-r", "-q", str(scratch / "o.zip"), source], {}),
        ("zip -0 -r + sync", ["sh", "-c", zip_sync], {}),
        (
            "export original",
            journal(home, *export_args, str(scratch / "o"), "--platform", "original"),
            env,
        ),
        (
            "export instagram",
            journal(home, *export_args, str(scratch / "i"), "--platform", "instagram"),
            env,
        ),
        # Every post is in an `original` bundle by now: a run with nothing to do is the fixed start-up cost.
        ("export (nothing to do)", journal(home, "export", "--out", str(scratch / "n")), env),
    ]
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    tries: dict[str, list[Run]] = {label: [] for label, _, _ in commands}
    for _ in range(args.repeat):
        for label, command, command_env in commands:
            tries[label].append(timed(label, command, command_env))
            clean()
    memory: dict[str, float] = {}  # one more run of each, sampling the whole process tree's memory
    for label, command, command_env in commands:
        memory[label] = timed(label, command, command_env, sample_tree=True).tree_rss_mb
        clean()
    web_s = min(web_renditions(originals, scratch / "web", args.workers) for _ in range(args.repeat))
    runs = [
        Run(
            label,
            min(run.seconds for run in tries[label]),
            max(run.peak_rss_mb for run in tries[label]),
            memory[label],
        )
        for label, _, _ in commands
    ]
    median = {label: statistics.median(run.seconds for run in tries[label]) for label in tries}
    by = {run.label: run for run in runs}
    original, instagram, noop = by["export original"], by["export instagram"], by["export (nothing to do)"]
    print(f"load average after: {os.getloadavg()[0]:.2f} (fastest of {args.repeat} rounds each)")

    print(
        f"\njournal import: {len(originals)} photos in {imported.seconds:.1f} s "
        f"= {len(originals) / imported.seconds:.2f} photos/s\n"
    )
    print(
        f"{'run':<22} {'seconds':>8} {'median':>7} {'MB/s':>8} {'photos/s':>9}"
        f" {'peak RSS':>10} {'tree RSS':>10}"
    )
    for run in runs:
        print(
            f"{run.label:<22} {run.seconds:8.2f} {median[run.label]:7.2f} {total / MB / run.seconds:8.1f} "
            f"{len(originals) / run.seconds:9.2f} {run.peak_rss_mb:8.0f} MB {run.tree_rss_mb:8.0f} MB"
        )
    print(
        f"{'web renditions':<22} {web_s:8.2f} {'':7} {total / MB / web_s:8.1f} {len(originals) / web_s:9.2f}"
        f"   (make_web_renditions, {args.workers} processes)"
    )
    print("\nratios (higher is better for export):")
    print(
        f"  original MB/s / zip -0 MB/s          = {by['zip -0 -r'].seconds / original.seconds:.2f}"
        f"   (with sync: {by['zip -0 -r + sync'].seconds / original.seconds:.2f}; target >= 1)"
    )
    print(
        f"  the same with median times           = {median['zip -0 -r'] / median['export original']:.2f}"
        f"   (with sync: {median['zip -0 -r + sync'] / median['export original']:.2f})"
    )
    print(
        f"  original MB/s / cp -r MB/s           = {by['cp -r'].seconds / original.seconds:.2f}"
        f"   (with sync: {by['cp -r + sync'].seconds / original.seconds:.2f})"
    )
    steady = original.seconds - noop.seconds
    print(
        f"  original without its fixed start-up ({noop.seconds:.2f} s): {total / MB / steady:.0f} MB/s"
        f" = {by['zip -0 -r'].seconds / steady:.2f} x zip -0"
    )
    print(f"  instagram photos/s / web renditions  = {web_s / instagram.seconds:.2f}   (target >= 1)")
    print(
        f"  peak RSS: original {original.peak_rss_mb:.0f} MB, instagram {instagram.peak_rss_mb:.0f} MB "
        f"(largest process; target < 300 MB); whole tree {original.tree_rss_mb:.0f} / "
        f"{instagram.tree_rss_mb:.0f} MB"
    )
    cpu = cpu_per_photo(originals[:6], scratch / "cpu", args.repeat)
    print("\nCPU per 12 MP photo (one process, fastest of the rounds):")
    for label, ms in cpu.items():
        print(f"  {label:<30} {ms:6.0f} ms")
    print("\nrendition quality: a corpus photo (4000x3000, orientation 6) per preset, SSIM of the luma")
    print("against a full decode + Lanczos resize of the same crop (1.0 = identical;")
    print("tests/test_exportfiles.py holds 0.95 on its finer-grained sources)")
    scratch.mkdir(exist_ok=True)
    for name, made_from, size, score, seconds in rendition_quality(corpus[0], scratch):
        print(
            f"  {name:<10} from the {made_from:<8} {size[0]:>5}x{size[1]:<5} SSIM {score:.4f}"
            f"   {seconds * 1000:6.0f} ms"
        )
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
