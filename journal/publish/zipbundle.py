"""One post bundle: manifest.json, index.html, map.html and photos in a zip, written atomically.

Photos go in uncompressed (ZIP_STORED: JPEG does not deflate), streamed in chunks, so memory
stays flat however large the export. Each file is hashed while it streams into the zip, and the
whole zip is hashed while it is written: the output is non-seekable on purpose, which makes
zipfile write data descriptors instead of seeking back to patch local headers (a seek would
invalidate the running hash). Four threads share the work (streams.BackgroundSink): the caller
reads the photos, a second hashes each, a third writes them into zip entries (zipfile adds the
CRC-32), a fourth hashes the zip and writes it. Every entry name is made here or checked here:
never a user's path.

mapview (folium) is imported only when a bundle gets a map (it costs about 0.3 s); an export
draws the map in a worker process while the photos are written.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

import jinja2

from journal import clock
from journal.errors import InvalidInput, PrivacyLeak, UnreadableFile
from journal.geo import is_valid_position
from journal.publish import leaks
from journal.publish.batching import estimate_zip_bytes, plan_batches, zip_entry_size
from journal.publish.leaks import BundleChecks, FileRule, MetadataTap
from journal.publish.streams import BackgroundSink, ByteSink, HashingSink, WritebackSink, file_pieces
from journal.storage import atomic_write

logger = logging.getLogger(__name__)

SCHEMA = "journal.bundle/1"
MANIFEST = "manifest.json"
INDEX = "index.html"
MAP = "map.html"
PRIVACY = leaks.FILE_NAME
ASSET_DIR = "assets/"
PHOTO_DIR = "photos/"
THUMB_DIR = "thumbs/"
TEMPLATE = "export/index.html"

#: A file's bytes: a file on disk, bytes in memory, or a function writing them to a sink.
FileSource = Path | bytes | Callable[[ByteSink], object]

_COMPONENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_ENTRY_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT}){{0,7}}")
_EXTENSION = re.compile(r"[a-z0-9]{1,5}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TEXT_SUFFIXES = {".html", ".json", ".js", ".css", ".txt", ".svg", ".geojson", ""}
#: The package folder (journal/): the templates are beside it in the source tree, inside it in a wheel.
_PACKAGE = Path(__file__).resolve().parents[1]
_TEMPLATE_DIRS = (
    _PACKAGE / "templates",  # installed wheel (force-include)
    _PACKAGE.parent / "templates",  # source tree / editable install
)
#: Upper bound of what one post adds to manifest.json, index.html and map.html besides its text
#: (keys, markup, hashes); text is counted at its worst-case escaped size in each of the three.
_POST_MARKUP_BYTES = 2_000
_FILE_MARKUP_BYTES = 600
#: What one file adds to privacy.json and to index.html's privacy section, its camera text (make and
#: model, 2 x 128 characters) counted at its worst-case escaped size in both.
PRIVACY_FILE_BYTES = 1_500 + 2 * 128 * (6 + 6)
_TEXT_BYTES_PER_CHAR = 6 + 6 + 12  # manifest (JSON escape), index (HTML entity), map (JSON \\u pair)


def check_entry_name(name: str) -> str:
    """Return name if it is a safe relative zip path (no '..', no leading '/', no backslash)."""
    if not _ENTRY_NAME.fullmatch(name):
        raise InvalidInput(f"unsafe name inside a bundle: {name!r}")
    return name


def photo_entry_name(post_id: int, number: int, ext: str = "jpg") -> str:
    """The zip path of a post's n-th photo: photos/<post-id>-<n>.<ext>."""
    if post_id < 0 or number < 1 or not _EXTENSION.fullmatch(ext):
        raise InvalidInput("bad post id, photo number or extension for a bundle entry")
    return f"{PHOTO_DIR}{int(post_id)}-{int(number)}.{ext}"


def thumb_entry_name(path_in_zip: str) -> str:
    """The zip path of a photo's small preview (for map markers): thumbs/<post-id>-<n>.jpg."""
    stem = path_in_zip.removeprefix(PHOTO_DIR).rsplit(".", 1)[0]
    return check_entry_name(f"{THUMB_DIR}{stem}.jpg")


@dataclass(frozen=True)
class BundleFile:
    """One photo of a post as it goes into the zip; size_hint bounds a callable source's bytes.

    A callable source that knows the SHA-256 of what it writes (a planned scrub, hashed by the
    worker that planned it) gives it as sha256, with size_hint its exact size: the writer then
    checks the size instead of hashing the bytes a second time. `thumb` is a small JPEG without
    metadata (the library's thumbnail) that the bundle's map shows instead of the photo itself
    (only a located post's first photo goes on the map, so only its thumbnail is written).
    `rule` says what the written file may carry (leaks.check): it is re-read as it goes into the zip.
    """

    path_in_zip: str
    source: FileSource
    width: int
    height: int
    size_hint: int | None = None
    sha256: str | None = None
    thumb: Path | None = None
    rule: FileRule = FileRule()

    def __post_init__(self) -> None:
        check_entry_name(self.path_in_zip)
        if self.width <= 0 or self.height <= 0:
            raise InvalidInput("a bundle photo needs a positive size")
        if callable(self.source) and self.size_hint is None:
            raise InvalidInput("a generated bundle file needs a size_hint")
        if self.sha256 is not None and not (
            callable(self.source) and re.fullmatch(r"[0-9a-f]{64}", self.sha256)
        ):
            raise InvalidInput("a known sha256 is 64 hex digits, for a generated file")

    @property
    def thumb_in_zip(self) -> str | None:
        """Where the thumbnail goes in the zip, when there is one."""
        return thumb_entry_name(self.path_in_zip) if self.thumb is not None else None

    def size_bound(self) -> int:
        """Bytes this file will have (exact for paths and bytes, the hint for generated files)."""
        if isinstance(self.source, Path):
            return self.source.stat().st_size
        if isinstance(self.source, bytes):
            return len(self.source)
        assert self.size_hint is not None
        return self.size_hint


@dataclass(frozen=True)
class BundlePost:
    """One post (or one numbered part of it) as it goes into a bundle; texts are already privacy-filtered."""

    id: int
    caption: str
    caption_cut: bool
    taken_at_utc: str | None
    taken_at_local: str | None
    place: str | None
    location: dict[str, float] | None
    files: Sequence[BundleFile] = ()
    platform: str | None = None
    part: tuple[int, int] | None = None
    #: Where the location came from: camera, track, track-nearest or manual (None without one).
    position_source: str | None = None
    caption_length: int | None = None  # as the platform counts it (platforms.caption_length)
    caption_limit: int | None = None
    caption_dropped: str = ""  # what a cut left out

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(self.files))
        if self.location is not None:
            if set(self.location) != {"lat", "lon"} or not is_valid_position(
                self.location["lat"], self.location["lon"]
            ):
                raise InvalidInput("a bundle location is {'lat': .., 'lon': ..} in degrees")
        if self.part is not None and not 1 <= self.part[0] <= self.part[1]:
            raise InvalidInput("a part is (k, n) with 1 <= k <= n")


@dataclass(frozen=True)
class Batch:
    """One bundle's posts and what every bundle format writes about them (zip and e-mail alike)."""

    posts: Sequence[BundlePost]
    #: This bundle's number (from 1) and how many bundles the export makes.
    number: int
    batches: int
    #: ISO time (UTC): the manifest's or the message's date, and the privacy report's.
    created_at: str
    title: str
    #: The export's location mode, as the privacy report states it.
    location: str | None = None


#: A drawn line: (lat, lon) positions in degrees, in recorded order.
Line = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class BundleTrack:
    """A recorded GPS track as a bundle's map draws it: its segments, already checked for privacy zones."""

    lines: tuple[Line, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(tuple(line) for line in self.lines))
        for line in self.lines:
            if not all(is_valid_position(lat, lon) for lat, lon in line):
                raise InvalidInput("a bundle track holds positions in degrees")

    @property
    def vertices(self) -> int:
        """How many positions the track draws."""
        return sum(len(line) for line in self.lines)


def _track_lines(tracks: Sequence[BundleTrack]) -> list[Line]:
    """The drawable lines (two positions or more) of the tracks."""
    return [line for track in tracks for line in track.lines if len(line) >= 2]


@dataclass(frozen=True)
class MapPage:
    """A bundle's map.html and the files it loads, as (path under assets/, file) pairs."""

    html: str
    assets: tuple[tuple[str, Path], ...]


#: Runs a function elsewhere and hands back a future of its result (exportfiles.Workers.submit).
Submit = Callable[..., Future[Any]]


@dataclass(frozen=True)
class BundleInfo:
    """A written bundle: where, its SHA-256 and size, and the manifest and privacy report it holds."""

    path: Path
    sha256: str
    bytes: int
    manifest: dict[str, Any] = field(repr=False)
    privacy: dict[str, Any] = field(default_factory=dict, repr=False)


# --- writing ---


def write_bundle_zip(
    dest: Path,
    *,
    posts: Sequence[BundlePost],
    batch: int,
    batches: int,
    created_at: str,
    index_html: str | Callable[[dict[str, Any]], str],
    map_page: MapPage | Callable[[], MapPage] | None = None,
    staging: Path | None = None,
    location: str | None = None,
) -> BundleInfo:
    """Write one batch as a zip at dest (atomically) and return its path, SHA-256, size and manifest.

    `map_page` may be a function giving it: it is called once the photos are in (a map drawn in
    a worker meanwhile). `index_html` may be a function of the privacy report. `batch` counts
    from 1. Every photo and thumbnail is re-read as it is written (leaks.MetadataTap); when one
    carries what its rule forbids, PrivacyLeak is raised and nothing is left at dest.
    """
    if not 1 <= batch <= batches:
        raise InvalidInput("batch must be between 1 and batches")
    stamp = _zip_time(created_at)
    _check_unique_names(posts, map_page is not None)
    with atomic_write(dest, staging=staging) as handle:
        out = HashingSink(WritebackSink(handle))
        with (
            BackgroundSink(out, name="bundle-writer") as stage,
            zipfile.ZipFile(cast(IO[bytes], stage), "w", allowZip64=True) as archive,
        ):
            checks = BundleChecks()
            entries = _write_photos(archive, posts, stamp, checks)
            _write_thumbs(archive, posts, stamp, checks)
            if found := checks.leaks():
                raise PrivacyLeak(f"{dest.name}: {' / '.join(found)}")
            manifest = build_manifest(posts, entries, batch=batch, batches=batches, created_at=created_at)
            report = leaks.report(
                location, checks.entries(), batch=batch, batches=batches, created_at=created_at
            )
            _write_text(archive, MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1), stamp)
            _write_text(archive, PRIVACY, json.dumps(report, ensure_ascii=False, indent=1), stamp)
            page_html = index_html(report) if callable(index_html) else index_html
            _write_text(archive, INDEX, page_html, stamp)
            if map_page is not None:
                page = map_page() if callable(map_page) else map_page
                _check_asset_names(page)
                _write_text(archive, MAP, page.html, stamp)
                for relpath, path in page.assets:
                    _write_asset(archive, ASSET_DIR + relpath, path, stamp)
    logger.info("wrote bundle %s (%d posts, %d bytes)", dest, len(posts), out.count)
    return BundleInfo(path=dest, sha256=out.hexdigest(), bytes=out.count, manifest=manifest, privacy=report)


def _zip_time(created_at: str) -> tuple[int, int, int, int, int, int]:
    """Zip entry time from created_at (UTC), so a bundle's bytes depend on its inputs only."""
    try:
        moment = datetime.fromisoformat(created_at)
    except ValueError:
        raise InvalidInput(f"created_at is not an ISO date-time: {created_at!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return (max(1980, moment.year), moment.month, moment.day, moment.hour, moment.minute, moment.second)


def _check_unique_names(posts: Sequence[BundlePost], has_map: bool) -> None:
    """Refuse duplicate or reserved photo entry names before anything is written."""
    names = [MANIFEST, INDEX, PRIVACY] + ([MAP] if has_map else [])
    for post in posts:
        for file in post.files:
            if file.path_in_zip.startswith((ASSET_DIR, THUMB_DIR)):
                raise InvalidInput(f"photo entry inside assets/ or thumbs/: {file.path_in_zip!r}")
            names.append(file.path_in_zip)
            if file.thumb_in_zip is not None:
                names.append(file.thumb_in_zip)
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            raise InvalidInput(f"two bundle entries named {name!r}")
        seen.add(name.lower())


def _check_asset_names(page: MapPage) -> None:
    """Refuse unsafe or duplicate asset names (photos cannot be under assets/: checked before)."""
    names = [check_entry_name(ASSET_DIR + relpath).lower() for relpath, _ in page.assets]
    if len(set(names)) != len(names):
        raise InvalidInput("two map assets with the same name")


def _zip_info(name: str, stamp: tuple[int, int, int, int, int, int], *, compress: bool) -> zipfile.ZipInfo:
    """A ZipInfo with fixed time, rw-r--r-- permissions and the given compression."""
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


class _Entries:
    """Thread side of _write_photos: opens, fills and closes the zip entries (zipfile adds the CRC-32).

    Each entry's bytes also go through a MetadataTap, so the privacy check reads what the zip holds.
    """

    def __init__(self, archive: zipfile.ZipFile, checks: BundleChecks) -> None:
        self._archive = archive
        self._checks = checks
        self._entry: IO[bytes] | None = None
        self._tap: MetadataTap | None = None
        self._file: BundleFile | None = None

    def open(self, info: zipfile.ZipInfo, file: BundleFile) -> None:
        """Start an entry."""
        self._entry = self._archive.open(info, "w")
        self._tap, self._file = MetadataTap(), file

    def write(self, data: bytes | memoryview) -> None:
        """Add to the open entry."""
        assert self._entry is not None and self._tap is not None, "write outside an entry"
        self._entry.write(data)
        self._tap.write(data)

    def close(self) -> None:
        """Finish the entry (zipfile writes its data descriptor) and note what its bytes carry."""
        assert self._entry is not None and self._tap is not None and self._file is not None, (
            "close outside an entry"
        )
        self._entry.close()
        self._checks.files.append((self._file.path_in_zip, self._tap.findings(), self._file.rule))
        self._entry = self._tap = self._file = None

    def abandon(self) -> None:
        """Close an entry left open by a failed source, so zipfile can be closed (the zip is discarded)."""
        if self._entry is not None:
            with contextlib.suppress(Exception):
                self._entry.close()
            self._entry = None


class _EntryHashes:
    """Thread side of _write_photos: each entry's SHA-256 and size, its bytes passed on to `entries`."""

    def __init__(self, entries: BackgroundSink, target: _Entries) -> None:
        self._entries = entries
        self._target = target
        self._file: BundleFile | None = None
        self._tee: HashingSink | None = None
        self._count = 0
        self.done: list[tuple[str, int]] = []

    def begin(self, file: BundleFile, info: zipfile.ZipInfo) -> None:
        """A new entry: hash from zero (unless the file knows its hash), and have the next stage open it."""
        self._file, self._count = file, 0
        self._tee = HashingSink(self._entries) if file.sha256 is None else None
        self._entries.call(functools.partial(self._target.open, info, file))

    def write(self, data: bytes | memoryview) -> None:
        """Hash (or count) and pass on."""
        if self._tee is not None:
            self._tee.write(data)
        else:
            self._entries.write(data)
            self._count += len(data)

    def end(self) -> None:
        """Note the entry's hash and size, and have the next stage close it."""
        file = self._file
        assert file is not None, "end outside an entry"
        if self._tee is not None:
            self.done.append((self._tee.hexdigest(), self._tee.count))
        elif self._count != file.size_hint:
            raise UnreadableFile(f"{file.path_in_zip}: {self._count} bytes written, {file.size_hint} planned")
        else:
            assert file.sha256 is not None
            self.done.append((file.sha256, self._count))
        self._file = self._tee = None
        self._entries.call(self._target.close)


class _Direct:
    """A BackgroundSink's interface without the thread: writes and calls go straight to the target."""

    def __init__(self, target: _EntryHashes) -> None:
        self._target = target

    def write(self, data: bytes | memoryview) -> None:
        """Write to the target now."""
        self._target.write(data)

    def call(self, function: Callable[[], object]) -> None:
        """Call function now."""
        function()

    def __enter__(self) -> _Direct:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Nothing queued, nothing to wait for."""


def _write_photos(
    archive: zipfile.ZipFile,
    posts: Sequence[BundlePost],
    stamp: tuple[int, int, int, int, int, int],
    checks: BundleChecks,
) -> list[list[dict[str, Any]]]:
    """Stream every post's files into the zip; return each post's manifest file entries.

    A pipeline of threads: this one reads the files, the next hashes each (SHA-256 for the
    manifest; a planned scrub comes with its hash and is only counted), the next writes them into
    zip entries (CRC-32), and the bundle writer hashes the zip and writes it. Nobody waits at the
    end of a file for the others to catch up.
    """
    target = _Entries(archive, checks)
    try:
        with BackgroundSink(target, name="bundle-entries") as entries:
            hashes = _EntryHashes(entries, target)
            # Files that come with their hash (planned scrubs) are only counted: no thread for that.
            to_hash = any(file.sha256 is None for post in posts for file in post.files)
            with BackgroundSink(hashes, name="bundle-hashes") if to_hash else _Direct(hashes) as stage:
                for post in posts:
                    for file in post.files:
                        info = _zip_info(file.path_in_zip, stamp, compress=False)
                        # zipfile switches to zip64 headers when file_size * 1.05 passes 2 GiB.
                        info.file_size = file.size_bound()
                        stage.call(functools.partial(hashes.begin, file, info))
                        _fill(stage, file.source)
                        stage.call(hashes.end)
    finally:
        target.abandon()
    done = iter(hashes.done)
    return [[_file_entry(file, *next(done)) for file in post.files] for post in posts]


def _write_thumbs(
    archive: zipfile.ZipFile,
    posts: Sequence[BundlePost],
    stamp: tuple[int, int, int, int, int, int],
    checks: BundleChecks,
) -> None:
    """Copy the thumbnails the map shows (stored: JPEG does not deflate); checked like photos, no GPS."""
    for post in _located(posts):
        file = post.files[0]
        if file.thumb is not None and file.thumb_in_zip is not None:
            tap = MetadataTap()
            _write_asset(archive, file.thumb_in_zip, file.thumb, stamp, tap=tap)
            checks.files.append((file.thumb_in_zip, tap.findings(), FileRule()))


def _located(posts: Sequence[BundlePost]) -> list[BundlePost]:
    """The posts the map shows: located, with a photo, the first part of a split post only."""
    shown: dict[int, BundlePost] = {}
    for post in posts:
        if post.location is not None and post.files and post.id not in shown:
            shown[post.id] = post
    return list(shown.values())


def _file_entry(file: BundleFile, sha256: str, size: int) -> dict[str, Any]:
    """A file's manifest entry."""
    return {
        "path": file.path_in_zip,
        "sha256": sha256,
        "width": file.width,
        "height": file.height,
        "bytes": size,
    }


def _fill(sink: ByteSink, source: FileSource) -> None:
    """Write a source's bytes to sink."""
    if isinstance(source, Path):
        _copy_file(source, sink)
    elif isinstance(source, bytes):
        sink.write(source)
    else:
        source(sink)


def _copy_file(path: Path, sink: ByteSink) -> None:
    """Copy a file's bytes to sink in pieces (views of the mapped file)."""
    try:
        for piece in file_pieces(path):
            sink.write(piece)
    except OSError as error:
        raise UnreadableFile(f"cannot read {path.name}: {error.strerror}") from error


def _write_text(
    archive: zipfile.ZipFile, name: str, text: str, stamp: tuple[int, int, int, int, int, int]
) -> None:
    """Write a deflated UTF-8 text entry."""
    archive.writestr(_zip_info(name, stamp, compress=True), text.encode("utf-8"))


class _Tee:
    """A sink writing to two sinks."""

    def __init__(self, first: ByteSink, second: ByteSink) -> None:
        self._first, self._second = first, second

    def write(self, data: bytes | memoryview) -> None:
        """Write data to both."""
        self._first.write(data)
        self._second.write(data)


def _write_asset(
    archive: zipfile.ZipFile,
    name: str,
    path: Path,
    stamp: tuple[int, int, int, int, int, int],
    *,
    tap: ByteSink | None = None,
) -> None:
    """Copy one map asset (text deflated, images stored); `tap` sees the bytes too."""
    info = _zip_info(check_entry_name(name), stamp, compress=path.suffix.lower() in _TEXT_SUFFIXES)
    info.file_size = path.stat().st_size
    with archive.open(info, "w") as entry:
        _copy_file(path, entry if tap is None else _Tee(entry, tap))


def build_manifest(
    posts: Sequence[BundlePost],
    files: Sequence[list[dict[str, Any]]],
    *,
    batch: int,
    batches: int,
    created_at: str,
) -> dict[str, Any]:
    """The manifest.json document (schema journal.bundle/1) for posts and their written files."""
    return {
        "schema": SCHEMA,
        "batch": batch,
        "batches": batches,
        "created_at": created_at,
        "posts": [_manifest_post(post, entries) for post, entries in zip(posts, files, strict=True)],
    }


def _manifest_post(post: BundlePost, files: list[dict[str, Any]]) -> dict[str, Any]:
    """One post's manifest entry."""
    return {
        "id": post.id,
        "caption": post.caption,
        "caption_cut": post.caption_cut,
        "caption_length": post.caption_length,
        "caption_limit": post.caption_limit,
        "caption_dropped": post.caption_dropped,
        "taken_at_utc": post.taken_at_utc,
        "taken_at_local": post.taken_at_local,
        "place": post.place,
        "location": dict(post.location) if post.location is not None else None,
        "position_source": post.position_source if post.location is not None else None,
        "platform": post.platform,
        "part": list(post.part) if post.part is not None else None,
        "files": files,
    }


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a bundle zip (for `journal published`); InvalidInput when it is not a bundle."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open(MANIFEST) as handle:
            manifest = json.load(handle)
    except (OSError, KeyError, zipfile.BadZipFile, ValueError) as error:
        raise InvalidInput(f"{path.name} is not a journal bundle: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise InvalidInput(f"{path.name} is not a {SCHEMA} bundle")
    return manifest


# --- pages ---


def _format_when(value: str | None) -> str:
    """Jinja filter: ISO time as 'YYYY-MM-DD HH:MM' ('UTC' appended for a Z or offset time)."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:  # "0001-01-01T00:00+14:00" has no UTC time in the calendar
            return value
        return clock.strftime(moment, "%Y-%m-%d %H:%M UTC")
    return clock.strftime(moment, "%Y-%m-%d %H:%M")


def _environment() -> jinja2.Environment:
    """A Jinja environment with autoescape on, reading templates/ (installed or source tree)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(path) for path in _TEMPLATE_DIRS if path.is_dir()]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = _format_when
    return env


def render_index_html(
    posts: Sequence[BundlePost],
    *,
    title: str,
    has_map: bool,
    batch: int = 1,
    batches: int = 1,
    created_at: str | None = None,
    privacy: dict[str, Any] | None = None,
    tracks: tuple[int, int] = (0, 0),
) -> str:
    """The batch as an offline journal page; has_map embeds map.html in an iframe.

    `privacy` (the bundle's privacy.json) adds a section saying what was removed from each file;
    `tracks` is (drawn, left out for a privacy zone), said there too.
    """
    template = _environment().get_template(TEMPLATE)
    return template.render(
        tracks_drawn=tracks[0],
        tracks_withheld=tracks[1],
        posts=posts,
        title=title,
        has_map=has_map,
        batch=batch,
        batches=batches,
        created_at=created_at,
        privacy=privacy,
    )


def map_point_data(posts: Sequence[BundlePost]) -> list[dict[str, Any]]:
    """mapview.MapPoint fields of each post the map shows (see _located), as plain data."""
    return [
        {
            "id": post.id,
            "lat": post.location["lat"],
            "lon": post.location["lon"],
            "caption": post.caption,
            "taken_at": post.taken_at_local or post.taken_at_utc,
            "place": post.place,
            "thumb_url": post.files[0].thumb_in_zip or post.files[0].path_in_zip,
        }
        for post in _located(posts)
        if post.location is not None
    ]


def render_map_page(points: Sequence[dict[str, Any]], title: str, routes: Sequence[Line] = ()) -> MapPage:
    """map.html for points (map_point_data) and track lines, with its assets under assets/.

    Draws with folium, whose import takes about 0.3 s: an export runs this in a worker process
    while it writes the photos. mapview unwraps the lines across the antimeridian and fits the
    view to the points and the lines together.
    """
    from journal import mapview

    page = mapview.build_map_html(
        asset_base=ASSET_DIR,
        points=[mapview.MapPoint(**point) for point in points],
        routes=routes,
        title=title,
    )
    return MapPage(page, tuple(mapview.asset_files()))


def map_assets() -> list[tuple[str, Path]]:
    """The files map.html loads, as (path under assets/, file) pairs."""
    from journal import mapview

    return mapview.asset_files()


def build_bundle(
    dest: Path,
    batch: Batch,
    *,
    staging: Path | None = None,
    submit: Submit | None = None,
    tracks: Sequence[BundleTrack] = (),
    tracks_withheld: int = 0,
) -> BundleInfo:
    """Render index.html and map.html for a batch and write its zip (map and assets only with positions).

    With `submit` (exportfiles.Workers.submit) the map is drawn in a worker while the photos go in.
    index.html is rendered once the photos are in, with their privacy report. `tracks` are drawn
    as lines (the caller gives them only for `exact` bundles); `tracks_withheld` counts the ones
    left out for a privacy zone, which the privacy section mentions.
    """
    posts, title = batch.posts, batch.title
    points = map_point_data(posts)
    routes = _track_lines(tracks)
    map_page: MapPage | Callable[[], MapPage] | None = None
    if points or routes:
        map_page = (
            render_map_page(points, title, routes)
            if submit is None
            else submit(render_map_page, points, title, routes).result
        )
    index_html = functools.partial(
        _index_with_report,
        posts,
        tracks=(len(tracks), tracks_withheld),
        title=title,
        has_map=bool(points or routes),
        batch=batch.number,
        batches=batch.batches,
        created_at=batch.created_at,
    )
    return write_bundle_zip(
        dest,
        posts=posts,
        batch=batch.number,
        batches=batch.batches,
        created_at=batch.created_at,
        index_html=index_html,
        map_page=map_page,
        staging=staging,
        location=batch.location,
    )


def _index_with_report(
    posts: Sequence[BundlePost],
    report: dict[str, Any],
    *,
    tracks: tuple[int, int],
    title: str,
    has_map: bool,
    batch: int,
    batches: int,
    created_at: str,
) -> str:
    """index.html with its privacy section (write_bundle_zip calls it with the report)."""
    return render_index_html(
        posts,
        title=title,
        has_map=has_map,
        batch=batch,
        batches=batches,
        created_at=created_at,
        privacy=report,
        tracks=tracks,
    )


# --- size estimates for batching ---


def estimate_post_bytes(post: BundlePost) -> int:
    """Upper bound of what one post adds to a bundle zip: its files plus its share of the text entries."""
    files = sum(zip_entry_size(f.path_in_zip, f.size_bound()) for f in post.files)
    checked = len(post.files)
    marker = post.files[0] if post.location is not None and post.files else None
    if marker is not None and marker.thumb is not None and marker.thumb_in_zip is not None:
        files += zip_entry_size(marker.thumb_in_zip, marker.thumb.stat().st_size)
        checked += 1
    text_chars = len(post.caption) + len(post.caption_dropped) + len(post.place or "")
    markup = _POST_MARKUP_BYTES + _FILE_MARKUP_BYTES * len(post.files) + PRIVACY_FILE_BYTES * checked
    return files + markup + _TEXT_BYTES_PER_CHAR * text_chars


#: What a drawn position can add to map.html beyond the estimate's own drawing of it: a longitude moved
#: by whole turns toward the view's centre gains a sign and a digit ("179.9" -> "-180.1", "539.9").
_TRACK_VERTEX_SLACK = 4
#: The view fitted to posts and tracks together (bounds, fitAlso) rather than to the tracks alone.
_TRACK_FIT_SLACK = 512


def estimate_fixed_bytes(*, title: str, with_map: bool, tracks: Sequence[BundleTrack] = ()) -> int:
    """Upper bound of what every bundle carries whatever its posts: pages, map assets, zip end records.

    `tracks` are every track a batch of the export may draw: each is counted in every batch.
    """
    routes = _track_lines(tracks)
    with_map = with_map or bool(routes)
    entries = [
        (MANIFEST, 200 + len(title.encode("utf-8"))),
        (INDEX, len(_empty_index(title).encode("utf-8"))),
        (PRIVACY, len(json.dumps(EMPTY_REPORT, indent=1)) + 64),
    ]
    if with_map:
        from journal import mapview

        page = mapview.build_map_html(asset_base=ASSET_DIR, points=(), routes=routes, title=title)
        extra = _TRACK_VERTEX_SLACK * sum(len(line) for line in routes) + (_TRACK_FIT_SLACK if routes else 0)
        entries.append((MAP, len(page.encode("utf-8")) + extra))
        entries += [(ASSET_DIR + rel, path.stat().st_size) for rel, path in map_assets()]
    # Deflate can grow incompressible input by 5 bytes per 16 KiB block plus a few bytes.
    slack = sum(size // 16_384 * 5 + 64 for _, size in entries)
    return estimate_zip_bytes(entries) + slack


EMPTY_REPORT = leaks.report("approx", [], batch=99, batches=99, created_at="2000-01-01T00:00:00Z")


def _empty_index(title: str) -> str:
    """index.html of a batch without posts (the fixed part of every page, its privacy section's too)."""
    return render_index_html(
        [],
        title=title,
        has_map=True,
        batch=99,
        batches=99,
        created_at="2000-01-01T00:00:00Z",
        privacy=EMPTY_REPORT,
        tracks=(99_999, 99_999),
    )


def plan_bundles(
    groups: Sequence[Sequence[BundlePost]],
    max_bytes: int | None,
    *,
    title: str,
    tracks: Sequence[BundleTrack] = (),
) -> list[list[BundlePost]]:
    """Batches of posts under max_bytes; each group (the parts of one post) stays in one batch.

    `tracks`: every track any batch may draw (counted in each batch's fixed part).
    """
    if max_bytes is None:  # one batch: no need to render the empty pages to know their size
        return [_flatten(groups)] if groups else []
    with_map = any(post.location is not None for group in groups for post in group)
    fixed = estimate_fixed_bytes(title=title, with_map=with_map, tracks=tracks)
    batches = plan_batches(
        list(groups), lambda group: sum(estimate_post_bytes(p) for p in group), max_bytes, fixed_bytes=fixed
    )
    return [_flatten(batch) for batch in batches]


def _flatten(groups: Iterable[Sequence[BundlePost]]) -> list[BundlePost]:
    """The posts of several groups, in order."""
    return [post for group in groups for post in group]
