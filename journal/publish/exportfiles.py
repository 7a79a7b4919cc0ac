"""The files of an export: one photo made privacy-safe for a platform. Runs in worker processes.

Kept apart from services/exporting.py so that a worker imports only Pillow and the image
modules (about 0.3 s), not the database, folium and the bundle writer (about 3 s).

How a photo's file is made (`file_kind`):

- `scrub`: a JPEG original for the `original` preset, copied losslessly without metadata
  (scrub.scrub_jpeg); the orientation stays a tag, as in the source. For a zip bundle the
  scrub is `streamed`: the worker only plans it (scrub.plan_scrub: the marker search over
  every byte, which holds the GIL, and the SHA-256 of the result, computed while the file is
  at hand) and the bundle writer copies the planned spans from the mapped file into the zip.
- `png` / `webp`: PNG and WebP originals re-saved losslessly, pixels made upright, with only
  transparency, the ICC profile and the kept EXIF (the first frame of an animation).
- `jpeg`: everything else. Platform presets: decoded upright at the platform's exact size and
  cropped to its aspect range (renditions.render with the platform: libjpeg's DCT scaling only
  down to a decode at least that large, never a smaller one stretched or shipped as it is).
  When the library's web image (~2048 px, upright, no metadata) is smaller than the original
  but still at least the platform's size after its crop (Instagram, e-mail, often Bluesky), the
  rendition starts from it instead (renditions.render_from_copy: the same crop and size, planned
  on the original's upright size), about a quarter of the pixels to decode; a missing, damaged
  or stale one falls back to the original.
  HEIF, AVIF, TIFF and DNG originals (which cannot be scrubbed losslessly): decoded at full
  size, upright. Then encoded by scrub.save_clean_jpeg, which alone owns the quality loop
  under a platform's max_file_bytes.

Every file made here is read again before it may go into a bundle (leaks.inspect_file; a
planned scrub through the bytes write_scrub_plan gives): one that still carries what its
location mode forbids is left out of the export with the reason, like a damaged original.
The bundle writer reads the bytes once more as they go into the zip (zipbundle.write_bundle_zip).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import multiprocessing.context
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from PIL import Image

from journal.errors import ImageTooLarge, JournalError
from journal.media import renditions
from journal.publish import leaks, scrub
from journal.publish.platforms import Platform
from journal.publish.scrub import ExifKeep

logger = logging.getLogger(__name__)

T = TypeVar("T")

FileKind = Literal["scrub", "png", "webp", "jpeg"]

#: Platforms recompress what they are given: start high so their second pass loses less.
RENDITION_QUALITY = 90
#: HEIF, AVIF, TIFF and DNG originals become JPEGs at this quality.
REENCODE_QUALITY = 95
#: Lossless WebP effort (0-100): 100 is ~5x slower for ~3% smaller files.
WEBP_EFFORT = 50

_LOSSLESS: dict[str, FileKind] = {"PNG": "png", "WEBP": "webp"}
_JPEG_FORMATS = frozenset({"JPEG", "MPO"})
#: What Pillow, its plug-ins and the scrubber raise for a damaged file.
FILE_ERRORS = (JournalError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


@dataclass(frozen=True)
class FileJob:
    """How to make one photo's file for a bundle; `keep` is already privacy-filtered."""

    photo_id: int
    post_id: int
    number: int
    src: Path
    dest: Path
    kind: FileKind
    keep: ExifKeep
    platform: Platform
    format: str
    width: int
    height: int
    orientation: int | None
    max_pixels: int
    streamed: bool = False  # a scrub only planned here, written into the bundle by the bundle writer
    thumb: Path | None = None  # the library's thumbnail, for the bundle's map
    gps_allowed: bool = False  # `exact` mode and outside every privacy zone: the file may carry its position
    #: The library's web image (upright, no metadata) and its size as recorded at import: a platform
    #: rendition starts from it when it is large enough (see _platform_image).
    web: Path | None = None
    web_size: tuple[int, int] | None = None

    @property
    def ext(self) -> str:
        """Extension of the file made."""
        return "png" if self.kind == "png" else "webp" if self.kind == "webp" else "jpg"

    def upright_size(self) -> tuple[int, int]:
        """Stored size turned by the EXIF orientation (what a viewer shows)."""
        turned = self.orientation in (5, 6, 7, 8) and self.format not in ("HEIF", "AVIF")
        return (self.height, self.width) if turned else (self.width, self.height)


@dataclass(frozen=True)
class MadeFile:
    """A file made for a bundle (path, or the plan of a streamed scrub; upright size), or why it failed."""

    photo_id: int
    path: Path | None
    width: int
    height: int
    error: str | None = None
    plan: scrub.ScrubPlan | None = None
    source: leaks.Findings | None = None  # what the original carried (for privacy.json's `removed`)
    made_from: Literal["original", "web"] = "original"  # the pixels' source (a platform rendition's)


def file_kind(fmt: str, platform: Platform) -> FileKind:
    """How a photo of this Pillow format is made for the platform (see the module docstring)."""
    if platform.format != "original":
        return "jpeg"
    if fmt in _JPEG_FORMATS:
        return "scrub"
    return _LOSSLESS.get(fmt, "jpeg")


def make_file(job: FileJob) -> MadeFile:
    """Make one job's file at job.dest and read it again; a damaged source or a leak gives the error instead.

    job.dest is a private work file, deleted after the bundle is written: no temp + rename or
    fsync here (the bundle itself is written atomically).
    """
    try:
        made = _make(job)
        written = leaks.inspect_file(job.dest) if made.plan is None else _planned_findings(job, made.plan)
    except FILE_ERRORS as exc:
        logger.warning("photo %d: cannot make its export file: %s", job.photo_id, exc)
        job.dest.unlink(missing_ok=True)
        return MadeFile(job.photo_id, None, 0, 0, error=one_line(exc))
    found = leaks.check(written, leaks.FileRule(gps_allowed=job.gps_allowed))
    if found:
        message = leaks.leak_message("its file", written, found)
        logger.error("photo %d: %s", job.photo_id, message)
        job.dest.unlink(missing_ok=True)
        return MadeFile(job.photo_id, None, 0, 0, error=message)
    return dataclasses.replace(made, source=leaks.inspect_source(job.src, job.format))


def _make(job: FileJob) -> MadeFile:
    """Make the file (or only plan a streamed scrub)."""
    if job.kind == "scrub":
        plan = scrub.plan_scrub(job.src, keep=job.keep)
        width, height = job.upright_size()
        if job.streamed and plan.new_bytes <= scrub.PLAN_MAX_NEW_BYTES:
            return MadeFile(job.photo_id, None, width, height, plan=plan)
        with job.dest.open("wb") as out:
            scrub.write_scrub_plan(plan, job.src, out)
    elif job.kind in ("png", "webp"):
        width, height = _save_lossless(job)
    else:
        return _save_jpeg(job)
    return MadeFile(job.photo_id, job.dest, width, height)


def _planned_findings(job: FileJob, plan: scrub.ScrubPlan) -> leaks.Findings:
    """What a planned scrub's bytes carry, as write_scrub_plan gives them (the bundle writer checks again)."""
    tap = leaks.MetadataTap()
    scrub.write_scrub_plan(plan, job.src, tap)
    return tap.findings()


def _save_jpeg(job: FileJob) -> MadeFile:
    """Decode upright (at the platform's exact size, or full size), encode with only the kept EXIF.

    The kept EXIF (job.keep) comes from the original's metadata as the database holds it, so it is
    the same whichever pixels the rendition started from.
    """
    rendition = job.platform.format != "original"
    image = _platform_image(job) if rendition else None
    made_from: Literal["original", "web"] = "original" if image is None else "web"
    if image is None:
        image = renditions.render(
            job.src,
            long_edge=None,
            orientation=job.orientation,
            max_pixels=job.max_pixels,
            platform=job.platform if rendition else None,
        )
    quality = REENCODE_QUALITY if job.platform.format == "original" else RENDITION_QUALITY
    with job.dest.open("wb") as out:
        size = scrub.save_clean_jpeg(
            image, out, keep=job.keep, quality=quality, max_bytes=job.platform.max_file_bytes
        )
    logger.debug(
        "photo %d: %dx%d JPEG from its %s, %d bytes", job.photo_id, image.width, image.height, made_from, size
    )
    width, height = image.size
    if job.platform.max_file_bytes is not None:
        with Image.open(job.dest) as written:  # encode_clean_jpeg scales down when quality alone cannot fit
            width, height = written.size
    return MadeFile(job.photo_id, job.dest, width, height, made_from=made_from)


def _platform_image(job: FileJob) -> Image.Image | None:
    """The rendition made from the web image when that is large enough, else None (decode the original).

    Decoding a ~2048 px web image instead of a 12 MP original is most of a rendition's cost saved.
    A missing, damaged or stale web image (not the size recorded at import) only means the
    original is decoded, as it is for a platform larger than the web image.
    """
    if job.web is None or job.web_size is None:
        return None
    try:
        image = renditions.render_from_copy(
            job.web,
            full_size=job.upright_size(),
            copy_size=job.web_size,
            platform=job.platform,
            max_pixels=job.max_pixels,
        )
    except FILE_ERRORS as exc:
        logger.warning("photo %d: its web image cannot be used, decoding the original: %s", job.photo_id, exc)
        return None
    if image is None:
        logger.debug("photo %d: its web image is not right for %s", job.photo_id, job.platform.name)
    return image


def _save_lossless(job: FileJob) -> tuple[int, int]:
    """Re-save a PNG or WebP losslessly: pixels upright, only transparency, ICC and the kept EXIF."""
    with Image.open(job.src, formats=[job.format]) as source:
        if source.width * source.height > job.max_pixels:
            raise ImageTooLarge(f"image too large: {source.width * source.height} pixels")
        source.seek(0)  # an animation: its first frame
        source.load()
        image = source.copy()
        kept: dict[str | tuple[int, int], Any] = {
            key: source.info[key]
            for key in ("transparency", "icc_profile")
            if source.info.get(key) is not None
        }
    image = renditions.upright(image, job.orientation)
    image.info = kept  # nothing else is copied: no text chunks, XMP or old EXIF
    exif = scrub.build_exif(job.keep)
    with job.dest.open("wb") as handle:
        if job.kind == "png":
            image.save(handle, "PNG", exif=exif, icc_profile=kept.get("icc_profile"))
        else:
            icc = {"icc_profile": kept["icc_profile"]} if "icc_profile" in kept else {}
            image.save(handle, "WEBP", lossless=True, quality=WEBP_EFFORT, exif=exif, xmp=b"", **icc)
    return image.size


def one_line(exc: BaseException) -> str:
    """An exception as one short line for a report."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _init_worker(lock: contextlib.AbstractContextManager[object]) -> None:
    """Worker set-up: big full-size decodes (HEIF originals) take turns, as in the import."""
    renditions.set_decode_lock(lock)


def _pool_context() -> multiprocessing.context.BaseContext:
    """fork when this process has one thread (the CLI: fast, like the import); forkserver otherwise.

    The web app runs exports from a thread, and fork() in a threaded process can copy a lock that
    another thread holds. forkserver starts workers from a clean process instead (preloading this
    module keeps each one cheap); it needs an importable __main__, which `journal serve` has.
    """
    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _ready() -> None:
    """A first task: submitting it makes the pool fork its workers."""


class Workers:
    """The worker processes of one export run, or none (everything then runs here, in turn).

    They make (or plan) the files first (make_files), then draw each bundle's map while the
    bundle is written (submit). One pool for the run, forked at once: later this process has
    threads (the bundle writer's), and a fork must not copy a lock one of them holds.
    """

    def __init__(self, count: int) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._count = count
        if count > 1:
            context = _pool_context()
            self._pool = ProcessPoolExecutor(
                max_workers=count, mp_context=context, initializer=_init_worker, initargs=(context.Lock(),)
            )
            self._pool.submit(_ready)  # with fork: every worker now, while this process has one thread

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the workers (work not started yet is dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run fn in a worker (here, at once, without workers); its result or error in the future."""
        if self._pool is not None:
            return self._pool.submit(fn, *args, **kwargs)
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def make_files(self, jobs: Sequence[FileJob]) -> Iterator[MadeFile]:
        """Make every job's file (results in completion order), at most two per worker in flight."""
        if self._pool is None or len(jobs) < 2:
            yield from (make_file(job) for job in jobs)
            return
        pending: set[Future[MadeFile]] = set()
        for job in jobs:
            pending.add(self._pool.submit(make_file, job))
            if len(pending) >= self._count * 2:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in done)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (future.result() for future in done)
