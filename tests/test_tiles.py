"""journal.tiles and `journal tiles add`: reading MBTiles (TMS rows) and PMTiles, registering, serving.

The tile sets are made by the tests: an MBTiles file with sqlite3, a PMTiles file with the pmtiles
package's writer, each holding small PNG tiles of distinct colours.
"""

from __future__ import annotations

import gzip
import io
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer
from sqlalchemy import select
from sqlalchemy.orm import Session

from journal import tiles
from journal.cli import cli
from journal.config import Settings
from journal.errors import InvalidInput, UnreadableFile, UnsupportedFile
from journal.models import TileSet
from journal.services import tilesets

RED, GREEN, BLUE = (220, 30, 30), (30, 200, 60), (40, 60, 220)


def png(colour: tuple[int, int, int], size: int = 8) -> bytes:
    """A small PNG tile of one colour."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, "PNG")
    return buffer.getvalue()


def colour_of(data: bytes) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(data)) as im:
        pixel = im.convert("RGB").getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return pixel[0], pixel[1], pixel[2]


def make_mbtiles(
    path: Path,
    xyz_tiles: dict[tuple[int, int, int], bytes],
    *,
    metadata: dict[str, str] | None = None,
) -> Path:
    """An MBTiles file; tiles are given in XYZ and stored with TMS rows (y flipped), as the spec says."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.execute(
            "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)"
        )
        meta = {"name": "Test set", "format": "png"} if metadata is None else metadata
        db.executemany("INSERT INTO metadata VALUES (?, ?)", list(meta.items()))
        db.executemany(
            "INSERT INTO tiles VALUES (?, ?, ?, ?)",
            [(z, x, (1 << z) - 1 - y, data) for (z, x, y), data in xyz_tiles.items()],
        )
    db.close()
    return path


def make_pmtiles(path: Path, xyz_tiles: dict[tuple[int, int, int], bytes], *, gzipped: bool = False) -> Path:
    """A PMTiles v3 file with PNG tiles (optionally stored gzipped)."""
    header = {
        "tile_type": TileType.PNG,
        "tile_compression": Compression.GZIP if gzipped else Compression.NONE,
        "min_lon_e7": int(13.0e7),
        "min_lat_e7": int(45.0e7),
        "max_lon_e7": int(17.0e7),
        "max_lat_e7": int(47.0e7),
        "center_zoom": 1,
        "center_lon_e7": int(15.0e7),
        "center_lat_e7": int(46.0e7),
    }
    with path.open("wb") as handle:
        writer = Writer(handle)
        for (z, x, y), data in sorted(xyz_tiles.items(), key=lambda item: zxy_to_tileid(*item[0])):
            writer.write_tile(zxy_to_tileid(z, x, y), gzip.compress(data) if gzipped else data)
        writer.finalize(
            header, {"name": "PM set", "attribution": '<a href="https://example.org">© Example</a>'}
        )
    return path


@pytest.fixture
def mbtiles(tmp_path: Path) -> Path:
    return make_mbtiles(
        tmp_path / "slovenia.mbtiles",
        {(0, 0, 0): png(BLUE), (1, 1, 0): png(RED), (1, 1, 1): png(GREEN)},
        metadata={
            "name": "Slovenia <b>topo</b>",
            "format": "png",
            "bounds": "13.3,45.4,16.6,46.9",
            "attribution": '<a href="https://osm.org/copyright">© OpenStreetMap</a> contributors',
        },
    )


def test_mbtiles_metadata(mbtiles: Path) -> None:
    info = tiles.read_info(mbtiles)
    assert info == tiles.TileSetInfo(
        name="Slovenia topo",
        format="mbtiles",
        tile_type="png",
        min_zoom=0,
        max_zoom=1,
        bounds=(13.3, 45.4, 16.6, 46.9),
        attribution="© OpenStreetMap contributors",
    )


def test_mbtiles_rows_are_flipped(mbtiles: Path) -> None:
    # XYZ y=0 is the northern tile; MBTiles stores it as TMS row 2^z - 1 - y.
    north = tiles.read_tile(mbtiles, "mbtiles", 1, 1, 0)
    south = tiles.read_tile(mbtiles, "mbtiles", 1, 1, 1)
    assert north is not None and colour_of(north) == RED
    assert south is not None and colour_of(south) == GREEN
    assert tiles.read_tile(mbtiles, "mbtiles", 1, 0, 0) is None


def test_mbtiles_without_metadata_format_is_sniffed(tmp_path: Path) -> None:
    path = make_mbtiles(tmp_path / "plain.mbtiles", {(3, 4, 2): png(RED)}, metadata={})
    info = tiles.read_info(path)
    assert (info.name, info.tile_type, info.min_zoom, info.max_zoom, info.bounds) == (
        "plain",
        "png",
        3,
        3,
        None,
    )


@pytest.mark.parametrize(
    ("metadata", "data", "error", "message"),
    [
        ({"format": "pbf"}, b"\x1a\x00", UnsupportedFile, "vector tiles"),
        ({"format": "png"}, b"not an image", UnsupportedFile, "not PNG, JPEG or WebP"),
    ],
)
def test_tile_sets_that_cannot_be_shown(
    tmp_path: Path, metadata: dict[str, str], data: bytes, error: type[Exception], message: str
) -> None:
    path = make_mbtiles(tmp_path / "bad.mbtiles", {(0, 0, 0): data}, metadata=metadata)
    with pytest.raises(error, match=message):
        tiles.read_info(path)


def test_empty_mbtiles_and_other_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="holds no tiles"):
        tiles.read_info(make_mbtiles(tmp_path / "empty.mbtiles", {}))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnsupportedFile, match="not an MBTiles or PMTiles file"):
        tiles.read_info(tmp_path / "notes.txt")
    with pytest.raises(UnreadableFile, match="no such file"):
        tiles.read_info(tmp_path / "missing.mbtiles")


@pytest.mark.parametrize("gzipped", [False, True])
def test_pmtiles(tmp_path: Path, gzipped: bool) -> None:
    path = make_pmtiles(
        tmp_path / "set.pmtiles", {(0, 0, 0): png(BLUE), (1, 1, 0): png(RED)}, gzipped=gzipped
    )
    info = tiles.read_info(path)
    assert (info.format, info.name, info.tile_type, info.min_zoom, info.max_zoom) == (
        "pmtiles",
        "PM set",
        "png",
        0,
        1,
    )
    assert info.bounds == pytest.approx((13.0, 45.0, 17.0, 47.0))
    assert info.attribution == "© Example"
    red = tiles.read_tile(path, "pmtiles", 1, 1, 0)
    assert red is not None and colour_of(red) == RED
    assert tiles.read_tile(path, "pmtiles", 1, 0, 0) is None


@pytest.mark.parametrize(("z", "x", "y"), [(-1, 0, 0), (1, 2, 0), (1, 0, 2), (31, 0, 0)])
def test_tile_coordinates_are_checked(mbtiles: Path, z: int, x: int, y: int) -> None:
    with pytest.raises(InvalidInput):
        tiles.check_tile(z, x, y)


def test_tile_bounds() -> None:
    assert tiles.tile_bounds(0, 0, 0) == pytest.approx((-180, -85.0511, 180, 85.0511), abs=1e-3)
    west, south, east, north = tiles.tile_bounds(1, 1, 0)
    assert (west, east) == (0, 180) and south == pytest.approx(0, abs=1e-9) and north > 85


def test_register_copies_into_the_data_home(settings: Settings, session: Session, mbtiles: Path) -> None:
    row = tilesets.register_tile_set(session, settings, mbtiles)
    assert Path(row.path) == (settings.tiles_dir / "slovenia.mbtiles").resolve()
    assert Path(row.path).read_bytes() == mbtiles.read_bytes()
    again = tilesets.register_tile_set(session, settings, mbtiles)
    assert again.id == row.id and len(session.scalars(select(TileSet)).all()) == 1


def test_register_link_keeps_the_file_in_place(settings: Settings, session: Session, mbtiles: Path) -> None:
    row = tilesets.register_tile_set(session, settings, mbtiles, link=True)
    assert row.path == str(mbtiles.resolve()) and not settings.tiles_dir.exists()


def test_register_refuses_a_different_file_of_the_same_name(
    settings: Settings, session: Session, mbtiles: Path, tmp_path: Path
) -> None:
    tilesets.register_tile_set(session, settings, mbtiles)
    (tmp_path / "other").mkdir()
    other = make_mbtiles(tmp_path / "other" / "slovenia.mbtiles", {(0, 0, 0): png(RED)})
    with pytest.raises(InvalidInput, match="exists with other content"):
        tilesets.register_tile_set(session, settings, other)


def test_newest_set_wins_and_bounds_are_honoured(
    settings: Settings, session: Session, tmp_path: Path
) -> None:
    world = make_mbtiles(tmp_path / "world.mbtiles", {(1, 0, 0): png(BLUE), (1, 1, 0): png(BLUE)})
    tilesets.register_tile_set(session, settings, world)
    local = make_mbtiles(
        tmp_path / "local.mbtiles",
        {(1, 0, 0): png(RED), (1, 1, 0): png(RED)},
        metadata={"format": "png", "bounds": "-170,10,-100,60", "attribution": "Local"},
    )
    newer = tilesets.register_tile_set(session, settings, local)
    newer.registered_at = newer.registered_at.replace(year=newer.registered_at.year + 1)
    session.flush()
    west = tilesets.find_tile(session, 1, 0, 0)
    east = tilesets.find_tile(session, 1, 1, 0)  # outside the local set's bounds: the world set answers
    assert west is not None and colour_of(west[0]) == RED and west[1] == "image/png"
    assert east is not None and colour_of(east[0]) == BLUE
    layer = tilesets.tile_layer(session)
    assert layer is not None and (layer.min_zoom, layer.max_zoom, layer.bounds) == (1, 1, None)
    assert layer.attribution == "Local"


def test_cli_tiles_add(runner: CliRunner, settings: Settings, mbtiles: Path) -> None:
    result = runner.invoke(cli, ["tiles", "add", str(mbtiles)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("registered Slovenia topo (mbtiles, png, zoom 0-1) at ")
    bad = runner.invoke(cli, ["tiles", "add", str(Path(__file__))])
    assert bad.exit_code == 1 and "not an MBTiles or PMTiles file" in bad.output


def test_tiles_are_served_to_signed_in_users(app: Flask, user_client: FlaskClient, mbtiles: Path) -> None:
    settings: Settings = app.config["JOURNAL_SETTINGS"]
    with app.extensions["journal.sessions"]() as s, s.begin():
        tilesets.register_tile_set(s, settings, mbtiles)
    response = user_client.get("/tiles/1/1/0")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert colour_of(response.data) == RED
    # The set's bounds (Slovenia) do not reach the western half: no lookup, a blank tile.
    assert user_client.get("/tiles/0/0/0").status_code == 200
    assert "max-age" in response.headers["Cache-Control"]
    blank = user_client.get("/tiles/5/3/3")
    assert blank.status_code == 200 and blank.mimetype == "image/png"
    with Image.open(io.BytesIO(blank.data)) as im:
        assert im.mode == "RGBA" and im.getpixel((0, 0))[3] == 0  # type: ignore[index]
    assert user_client.get("/tiles/1/5/0").status_code == 400
    anonymous = app.test_client().get("/tiles/1/0/0")
    assert anonymous.status_code in (302, 303)
