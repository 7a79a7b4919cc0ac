"""Shared helpers for the benchmarks: a deterministic photo corpus, timing, and process-tree RSS."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
SAMPLES = ROOT.parent / "shared" / "samples" / "exif"
#: A real phone's EXIF block (iPhone 6s: 66 tags, maker note, GPS), reused for every photo.
EXIF_DONOR = SAMPLES / "lychee__train.jpg"
JOURNAL = [sys.executable, "-m", "journal"]


def donor_exif() -> bytes:
    """The EXIF block of a real phone photo, with GPS."""
    with Image.open(EXIF_DONOR) as im:
        exif: bytes = im.info["exif"]
    return exif


def photo_like(size: tuple[int, int], seed: int) -> Image.Image:
    """Smooth shapes plus sensor-like noise: compresses like a real photo (~4-6 MB at 12 MP)."""
    small = (max(size[0] // 16, 1), max(size[1] // 16, 1))
    base = Image.effect_noise(small, 90 + seed % 17).convert("RGB")
    base = base.filter(ImageFilter.GaussianBlur(3)).resize(size, Image.Resampling.BICUBIC)
    grain = Image.effect_noise(size, 12 + seed % 5).convert("RGB")
    return Image.blend(base, grain, 0.35)


def make_corpus(name: str, count: int, size: tuple[int, int], *, fmt: str = "JPEG") -> list[Path]:
    """Create (once, cached under bench/out/) `count` photos of `size` with full EXIF."""
    folder = OUT / f"{name}-{count}-{size[0]}x{size[1]}-{fmt.lower()}"
    done = folder / ".complete"
    ext = {"JPEG": "jpg", "HEIF": "heic"}[fmt]
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        exif = donor_exif()
        if fmt == "HEIF":
            import pillow_heif

            pillow_heif.register_heif_opener()
        # One frame per 8 photos, re-used with a changed corner: distinct bytes, realistic content.
        frame: Image.Image | None = None
        for i in range(count):
            if i % 8 == 0:
                frame = photo_like(size, i)
            assert frame is not None
            frame.putpixel((i % 8, 0), (i % 256, (i * 7) % 256, (i * 13) % 256))
            target = folder / f"IMG_{i:04d}.{ext}"
            if fmt == "JPEG":
                frame.save(target, "JPEG", quality=92, exif=exif)
            else:
                # Phones store big HEICs as a grid of 512 px tiles (one HEVC picture may not hold 48 MP).
                heif = pillow_heif.from_pillow(frame)
                heif.info["exif"] = exif
                heif.save(target, quality=80, tile_size=512)
        done.touch()
    return sorted(folder.glob(f"*.{ext}"))


@dataclass(frozen=True)
class Run:
    """Wall time and peak memory (summed PSS) of a command and all its children."""

    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str


def tree_pss_kb(root: int) -> int:
    """Summed PSS (kB) of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            # PSS, not VmRSS: forked workers share the parent's pages, and summing VmRSS would
            # count those shared pages once per process.
            with open(f"/proc/{entry}/smaps_rollup") as handle:
                line = next((s for s in handle if s.startswith("Pss:")), "Pss: 0 kB")
        except (OSError, StopIteration, ValueError):
            continue
        pid = int(entry)
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(line.split()[1])
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run(cmd: Sequence[str], *, env: dict[str, str] | None = None, stdin: bytes | None = None) -> Run:
    """Run a command, sampling the summed PSS of its process tree every 20 ms."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_pss_kb(proc.pid))
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate(stdin)
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    return Run(elapsed, peak / 1024, proc.returncode, out.decode(errors="replace"))


def journal_env(home: Path) -> dict[str, str]:
    """Environment for a `journal` subprocess on its own data home.

    Bytecode caching is left on (as after a normal install), even where the shell disables it.
    """
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "JOURNAL_DATABASE_URL")
    }
    env["JOURNAL_HOME"] = str(home)
    return env


def fresh_home(name: str) -> Path:
    """An empty data home with one account."""
    home = OUT / "homes" / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    result = run(
        [*JOURNAL, "user", "add", "bench", "--password-stdin"], env=journal_env(home), stdin=b"benchpass1\n"
    )
    assert result.returncode == 0
    return home


def have(tool: str) -> bool:
    """True when a command is on PATH."""
    return shutil.which(tool) is not None


def row(label: str, value: str, note: str = "") -> None:
    """Print one aligned result line."""
    print(f"  {label:<46} {value:>16}  {note}")
