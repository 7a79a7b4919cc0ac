"""Offline raster tile sets: read MBTiles and PMTiles files and hand out tiles by z/x/y (web mercator).

- MBTiles 1.3 (https://github.com/mapbox/mbtiles-spec): an SQLite file with a ``metadata`` table and
  a ``tiles`` table or view whose rows are TMS-numbered (row 0 at the south), so y is flipped.
  Opened read-only (``mode=ro``), one connection per thread (sqlite3 objects are not thread-safe).
- PMTiles v3 (https://github.com/protomaps/PMTiles), read with the ``pmtiles`` package (pure Python,
  works on a local file through mmap). Directories are cached per file.

Only raster tiles (PNG, JPEG, WebP) are served: Leaflet draws them as they are. Vector tiles (MVT/pbf)
would need a vector renderer and are refused when a set is registered. Attribution texts often
hold HTML links; they are reduced to plain text here.
"""

from __future__ import annotations

import functools
import gzip
import html.parser
import json
import logging
import math
import mmap
import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from journal.errors import InvalidInput, UnreadableFile, UnsupportedFile
from journal.media.signatures import still_format

logger = logging.getLogger(__name__)

Format = Literal["mbtiles", "pmtiles"]
Bounds = tuple[float, float, float, float]  # west, south, east, north

MAX_ZOOM = 30
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
#: Names tile sets use for the image formats this module serves.
_TYPE_NAMES = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp"}
_VECTOR_NAMES = {"pbf", "mvt", "vector"}
_SQLITE_MAGIC = b"SQLite format 3\x00"
_PMTILES_MAGIC = b"PMTiles"
#: PMTiles header tile_type values (spec v3): 1 MVT, 2 PNG, 3 JPEG, 4 WebP, 5 AVIF.
_PMTILES_TYPES = {2: "png", 3: "jpg", 4: "webp"}
_PMTILES_GZIP = 2
#: Tile compressions served: unknown (0), none (1), gzip (2; decompressed here).
_PMTILES_READABLE = {0, 1, 2}
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class TileSetInfo:
    """What a tile set file says about itself."""

    name: str
    format: Format
    tile_type: str
    min_zoom: int
    max_zoom: int
    bounds: Bounds | None
    attribution: str

    def __post_init__(self) -> None:
        if self.tile_type not in MEDIA_TYPES:
            raise UnsupportedFile(
                f"tiles of type {self.tile_type!r} cannot be shown (PNG, JPEG or WebP only)"
            )
        if not 0 <= self.min_zoom <= self.max_zoom <= MAX_ZOOM:
            raise UnreadableFile(f"zoom range {self.min_zoom}-{self.max_zoom} is not valid")


class _TextOnly(html.parser.HTMLParser):
    """Collects the text of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(fragment: str, *, limit: int = 1024) -> str:
    """The text of an HTML fragment (an attribution with links), whitespace collapsed."""
    parser = _TextOnly()
    parser.feed(fragment)
    parser.close()
    return _SPACE.sub(" ", "".join(parser.parts)).strip()[:limit]


def detect_format(path: Path) -> Format:
    """mbtiles or pmtiles, by the file's first bytes; UnsupportedFile for anything else."""
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise UnreadableFile(f"{path.name}: {exc.strerror or exc}") from exc
    if head.startswith(_SQLITE_MAGIC):
        return "mbtiles"
    if head.startswith(_PMTILES_MAGIC):
        if head[7] != 3:
            raise UnsupportedFile(f"{path.name}: PMTiles version {head[7]} (only version 3 is read)")
        return "pmtiles"
    raise UnsupportedFile(f"{path.name}: not an MBTiles or PMTiles file")


def check_tile(z: int, x: int, y: int) -> None:
    """Refuse tile coordinates outside the web mercator pyramid."""
    if not 0 <= z <= MAX_ZOOM or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidInput(f"no tile {z}/{x}/{y}")


#: The raster tile formats, by the image format their signature names.
_TILE_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


def sniff_image(data: bytes) -> str | None:
    """png, jpg or webp from an image's first bytes; None for anything else (a vector tile, say)."""
    return _TILE_FORMATS.get(still_format(data) or "")


# --- MBTiles ------------------------------------------------------------------------------------------

_local = threading.local()


def _connect(path: Path) -> sqlite3.Connection:
    """A read-only connection to an MBTiles file, kept per thread."""
    connections: dict[str, sqlite3.Connection] = _local.__dict__.setdefault("connections", {})
    key = str(path)
    connection = connections.get(key)
    if connection is None:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        try:
            connection = sqlite3.connect(uri, uri=True, check_same_thread=True)
        except sqlite3.Error as exc:
            raise UnreadableFile(f"{path.name}: {exc}") from exc
        connections[key] = connection
    return connection


def _mbtiles_metadata(connection: sqlite3.Connection) -> dict[str, str]:
    return {str(name): str(value) for name, value in connection.execute("SELECT name, value FROM metadata")}


def _parse_bounds(text: str | None) -> Bounds | None:
    """ "west,south,east,north" as floats, or None when missing or not a box on Earth."""
    if not text:
        return None
    try:
        west, south, east, north = (float(part) for part in text.split(","))
    except ValueError:
        return None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        return None
    return west, south, east, north


def _tile_type(declared: str | None, sample: bytes | None, name: str) -> str:
    """The image type a set declares, checked against (or, when missing, read from) one of its tiles."""
    declared = (declared or "").strip().lower()
    if declared in _VECTOR_NAMES:
        raise UnsupportedFile(f"{name}: vector tiles ({declared}) need a vector renderer; use a raster set")
    sniffed = sniff_image(gzip.decompress(sample) if sample and sample[:2] == b"\x1f\x8b" else sample or b"")
    if sample is not None and sniffed is None:
        raise UnsupportedFile(f"{name}: its tiles are not PNG, JPEG or WebP images")
    kind = _TYPE_NAMES.get(declared) or sniffed
    if kind is None:
        raise UnreadableFile(f"{name}: holds no tiles")
    return kind


def read_mbtiles_info(path: Path) -> TileSetInfo:
    """The metadata of an MBTiles file, with zoom levels and image type checked against its tiles."""
    connection = _connect(path)
    try:
        meta = _mbtiles_metadata(connection)
        low, high = connection.execute("SELECT min(zoom_level), max(zoom_level) FROM tiles").fetchone()
        sample = connection.execute("SELECT tile_data FROM tiles LIMIT 1").fetchone()
    except sqlite3.Error as exc:
        raise UnreadableFile(f"{path.name}: not an MBTiles file ({exc})") from exc
    if low is None:
        raise UnreadableFile(f"{path.name}: holds no tiles")
    return TileSetInfo(
        name=plain_text(meta.get("name") or path.stem, limit=255),
        format="mbtiles",
        tile_type=_tile_type(meta.get("format"), sample[0] if sample else None, path.name),
        min_zoom=int(low),
        max_zoom=int(high),
        bounds=_parse_bounds(meta.get("bounds")),
        attribution=plain_text(meta.get("attribution", "")),
    )


def read_mbtiles_tile(path: Path, z: int, x: int, y: int) -> bytes | None:
    """One tile's bytes from an MBTiles file (rows are TMS: y counted from the south), or None."""
    check_tile(z, x, y)
    row = (
        _connect(path)
        .execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            (z, x, (1 << z) - 1 - y),
        )
        .fetchone()
    )
    return None if row is None else bytes(row[0])


# --- PMTiles -------------------------------------------------------------------------------------------


class _PMTilesFile:
    """An open PMTiles v3 file: the header, and directories decoded once each."""

    def __init__(self, path: Path) -> None:
        from pmtiles import tile as pmtile

        self._tile = pmtile
        with path.open("rb") as handle:
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self.header: dict[str, Any] = dict(pmtile.deserialize_header(self._map[0:127]))
        except (pmtile.MagicNumberNotFound, pmtile.SpecVersionUnsupported, ValueError, IndexError) as exc:
            self._map.close()
            raise UnreadableFile(f"{path.name}: not a PMTiles v3 file ({exc})") from exc
        self._directory: Callable[[int, int], list[Any]] = functools.lru_cache(maxsize=256)(
            self._read_directory
        )

    def _read_directory(self, offset: int, length: int) -> list[Any]:
        return list(self._tile.deserialize_directory(self._map[offset : offset + length]))

    def metadata(self) -> dict[str, Any]:
        """The JSON metadata block."""
        h = self.header
        raw = self._map[h["metadata_offset"] : h["metadata_offset"] + h["metadata_length"]]
        if h["internal_compression"] == self._tile.Compression.GZIP:
            raw = gzip.decompress(raw)
        value = json.loads(raw or b"{}")
        return value if isinstance(value, dict) else {}

    def get(self, z: int, x: int, y: int) -> bytes | None:
        """A tile's bytes (as stored), or None."""
        h = self.header
        tile_id = self._tile.zxy_to_tileid(z, x, y)
        offset, length = h["root_offset"], h["root_length"]
        for _depth in range(4):  # the spec allows at most three levels of leaf directories
            entry = self._tile.find_tile(self._directory(offset, length), tile_id)
            if entry is None:
                return None
            if entry.run_length > 0:
                start = h["tile_data_offset"] + entry.offset
                return bytes(self._map[start : start + entry.length])
            offset, length = h["leaf_directory_offset"] + entry.offset, entry.length
        return None


@functools.lru_cache(maxsize=16)
def _pmtiles(path: str) -> _PMTilesFile:
    try:
        return _PMTilesFile(Path(path))
    except ImportError as exc:  # pragma: no cover - a packaging problem
        raise UnsupportedFile("reading PMTiles needs the Python package pmtiles") from exc


def _compression(value: Any) -> int:
    return int(getattr(value, "value", value))


def read_pmtiles_info(path: Path) -> TileSetInfo:
    """The header and metadata of a PMTiles v3 file."""
    archive = _pmtiles(str(path.resolve()))
    h = archive.header
    kind = _PMTILES_TYPES.get(int(getattr(h["tile_type"], "value", h["tile_type"])))
    if kind is None:
        raise UnsupportedFile(
            f"{path.name}: vector or unknown tiles; only PNG, JPEG or WebP raster sets are shown"
        )
    if _compression(h["tile_compression"]) not in _PMTILES_READABLE:
        raise UnsupportedFile(
            f"{path.name}: tiles compressed with {h['tile_compression']} (only none or gzip)"
        )
    try:
        meta = archive.metadata()
    except (OSError, EOFError, ValueError) as exc:
        raise UnreadableFile(f"{path.name}: broken metadata ({exc})") from exc
    bounds = (h["min_lon_e7"] / 1e7, h["min_lat_e7"] / 1e7, h["max_lon_e7"] / 1e7, h["max_lat_e7"] / 1e7)
    return TileSetInfo(
        name=plain_text(str(meta.get("name") or path.stem), limit=255),
        format="pmtiles",
        tile_type=kind,
        min_zoom=int(h["min_zoom"]),
        max_zoom=int(h["max_zoom"]),
        bounds=_parse_bounds(",".join(str(b) for b in bounds)),
        attribution=plain_text(str(meta.get("attribution") or "")),
    )


def read_pmtiles_tile(path: Path, z: int, x: int, y: int) -> bytes | None:
    """One tile's bytes from a PMTiles file (decompressed when the set stores them gzipped), or None."""
    check_tile(z, x, y)
    archive = _pmtiles(str(path.resolve()))
    data = archive.get(z, x, y)
    if data is not None and _compression(archive.header["tile_compression"]) == _PMTILES_GZIP:
        data = gzip.decompress(data)
    return data


# --- either ---------------------------------------------------------------------------------------------


def read_info(path: Path) -> TileSetInfo:
    """What a tile set file holds; UnsupportedFile/UnreadableFile when it cannot be served."""
    if not path.is_file():
        raise UnreadableFile(f"{path}: no such file")
    fmt = detect_format(path)
    return read_mbtiles_info(path) if fmt == "mbtiles" else read_pmtiles_info(path)


def read_tile(path: Path, fmt: str, z: int, x: int, y: int) -> bytes | None:
    """A tile of a registered set, or None when the set has none there (or the file is gone)."""
    try:
        if fmt == "mbtiles":
            return read_mbtiles_tile(path, z, x, y)
        if fmt == "pmtiles":
            return read_pmtiles_tile(path, z, x, y)
    except (OSError, EOFError, sqlite3.Error, UnreadableFile) as exc:
        logger.warning("tile %d/%d/%d of %s cannot be read: %s", z, x, y, path, exc)
        return None
    raise InvalidInput(f"unknown tile set format {fmt!r}")


def tile_bounds(z: int, x: int, y: int) -> Bounds:
    """(west, south, east, north) of a web mercator tile."""

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / 2**z))))

    return x / 2**z * 360 - 180, lat(y + 1), (x + 1) / 2**z * 360 - 180, lat(y)


def intersects(a: Bounds, b: Bounds) -> bool:
    """True when two (west, south, east, north) boxes overlap."""
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]
