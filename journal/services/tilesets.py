"""Offline tile sets (MBTiles, PMTiles): registering one, the layer they make together, finding a tile.

The files are read by journal.tiles; this module keeps their records. Services flush, never commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from journal import storage, tiles
from journal.config import Settings
from journal.errors import InvalidInput
from journal.models import TileSet
from journal.route import Position

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TileLayer:
    """The registered tile sets as one layer: zoom range, coverage and attribution."""

    min_zoom: int
    max_zoom: int
    bounds: tuple[Position, Position] | None
    attribution: str


def register_tile_set(session: Session, settings: Settings, source: Path, *, link: bool = False) -> TileSet:
    """Check a tile set file and record it; copied into the data home's tiles/ unless `link`.

    Registering the same file again updates its record. Flushes, never commits.
    """
    info = tiles.read_info(source)
    path = source.resolve() if link else _copy_into(settings, source)
    row = session.scalar(select(TileSet).where(TileSet.path == str(path))) or TileSet(path=str(path))
    row.name = info.name
    row.format = info.format
    row.tile_type = info.tile_type
    row.min_zoom, row.max_zoom = info.min_zoom, info.max_zoom
    row.west, row.south, row.east, row.north = info.bounds or (None, None, None, None)
    row.attribution = info.attribution
    session.add(row)
    session.flush()
    return row


def _copy_into(settings: Settings, source: Path) -> Path:
    """Copy a tile set into tiles/ (atomically) under its own name; the copy is reused when identical."""
    target = settings.tiles_dir / Path(source.name).name
    if target.resolve() == source.resolve():
        return target.resolve()
    if target.exists() and storage.sha256_file(target) != storage.sha256_file(source):
        raise InvalidInput(f"{target} exists with other content: rename the file, or register it with --link")
    if not target.exists():
        storage.copy_atomic(source, target, staging=settings.staging_dir)
    return target.resolve()


def tile_sets(session: Session) -> list[TileSet]:
    """Registered tile sets, newest first (a newer set wins where sets overlap)."""
    return list(session.scalars(select(TileSet).order_by(TileSet.registered_at.desc(), TileSet.id.desc())))


def tile_layer(session: Session) -> TileLayer | None:
    """All registered tile sets as one layer for the map, or None when there are none."""
    sets = tile_sets(session)
    if not sets:
        return None
    boxes = [box for box in (_box(s) for s in sets) if box is not None]
    bounds = None
    if len(boxes) == len(sets):  # a set without bounds covers the world
        bounds = (
            (min(b[1] for b in boxes), min(b[0] for b in boxes)),
            (max(b[3] for b in boxes), max(b[2] for b in boxes)),
        )
    attribution = " | ".join(dict.fromkeys(s.attribution for s in sets if s.attribution))
    return TileLayer(min(s.min_zoom for s in sets), max(s.max_zoom for s in sets), bounds, attribution)


def _box(tile_set: TileSet) -> tiles.Bounds | None:
    """A set's (west, south, east, north), or None when it covers the world."""
    w, s, e, n = tile_set.west, tile_set.south, tile_set.east, tile_set.north
    return None if w is None or s is None or e is None or n is None else (w, s, e, n)


def find_tile(session: Session, z: int, x: int, y: int) -> tuple[bytes, str] | None:
    """A tile's bytes and media type from the newest set that has it, or None."""
    tiles.check_tile(z, x, y)
    box = tiles.tile_bounds(z, x, y)
    for s in tile_sets(session):
        covered = _box(s)
        if not s.min_zoom <= z <= s.max_zoom or (covered is not None and not tiles.intersects(covered, box)):
            continue
        data = tiles.read_tile(Path(s.path), s.format, z, x, y)
        if data is not None:
            return data, tiles.MEDIA_TYPES.get(s.tile_type, "application/octet-stream")
    return None
