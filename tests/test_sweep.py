"""Property-based sweep (issue 17): photos and tracks with extreme and malformed metadata, sent through
`journal inspect`, `journal import`, POST /api/photos, every page and API of the result and exports.

No step may answer 5xx, log or print a traceback, or give a value outside its documented range
(CONTRACT.md: lat in [-90, 90], lon in [-180, 180], taken_at_utc ISO 8601 or null). `make test` runs
the "ci" profile (a bounded number of examples); `make fuzz` the "fuzz" profile (many more).
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, TiffImagePlugin
from sqlalchemy import select

from journal.app import create_app
from journal.cli import cli
from journal.media import inspectjson
from journal.models import Photo, Post, Trip, User
from journal.publish.platforms import PLATFORMS
from journal.services import exporting
from tests import walker
from tests.databases import settings_for
from tests.edgefiles import raw_exif
from tests.web import csrf_token, make_user, sign_in

pytestmark = pytest.mark.slow

# --- what cameras write -----------------------------------------------------------------------------

EDGE_TIMES = [
    "2026:02:30 25:61:61",
    "0000:00:00 00:00:00",
    "    :  :     :  :  ",
    "",
    "0001:01:01 00:00:00",
    "9999:12:31 23:59:59",
    "2099:09:29 10:10:10",
    "1899:12:31 23:59:59",
    "2024:05:01 12:00:00",
    "2024-05-01T12:00:00",
    "2024:05:01 12:00:00\x00",
]
EDGE_OFFSETS = [
    None,
    "+14:00",
    "-12:00",
    "+14:01",
    "-12:01",
    "+05:45",
    "+00:00",
    "-00:00",
    "+99:99",
    "Z",
    "",
    "+1:00",
]


def _rational(numerator: int, denominator: int) -> TiffImagePlugin.IFDRational:
    return TiffImagePlugin.IFDRational(numerator, denominator)


rationals = st.builds(
    _rational, st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 1, 1, 60, 100, 10_000, 2**32 - 1])
)
coordinates = st.one_of(
    st.tuples(rationals, rationals, rationals),
    st.lists(rationals, min_size=1, max_size=4).map(tuple),
    st.sampled_from(
        [
            (_rational(90, 1), _rational(0, 1), _rational(0, 1)),  # a pole
            (_rational(180, 1), _rational(0, 1), _rational(0, 1)),  # the antimeridian
            (_rational(179, 1), _rational(59, 1), _rational(5999, 100)),
            (_rational(91, 1), _rational(0, 1), _rational(0, 1)),
            (_rational(181, 1), _rational(0, 1), _rational(0, 1)),
            (_rational(0, 0), _rational(0, 0), _rational(0, 0)),
        ]
    ),
)
refs = st.sampled_from([None, "N", "S", "E", "W", "", "X", "n"])


@st.composite
def gps_ifds(draw: st.DrawFn) -> dict[int, object] | None:
    if draw(st.booleans()):
        return None
    ifd: dict[int, object] = {}
    for ref_tag, value_tag in ((1, 2), (3, 4)):
        ref = draw(refs)
        if ref is not None:
            ifd[ref_tag] = ref
        if draw(st.integers(0, 9)):
            ifd[value_tag] = draw(coordinates)
    if draw(st.booleans()):
        ifd[5] = draw(st.sampled_from([0, 1, 2, 3, 7]))  # GPSAltitudeRef: 1 and 3 below sea level
        ifd[6] = draw(rationals)
    if draw(st.booleans()):
        ifd[0x1D] = draw(st.sampled_from(["9999:12:31", "0001:01:01", "2024:05:01", "1999:99:99", ""]))
        ifd[7] = draw(st.tuples(rationals, rationals, rationals))
    return ifd


times = st.one_of(
    st.sampled_from(EDGE_TIMES),
    st.builds(
        "{:04d}:{:02d}:{:02d} {:02d}:{:02d}:{:02d}".format,
        st.integers(0, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 25),
        st.integers(0, 61),
        st.integers(0, 61),
    ),
    st.text(max_size=24),
)
offsets = st.one_of(
    st.sampled_from(EDGE_OFFSETS),
    st.builds("{}{:02d}:{:02d}".format, st.sampled_from("+-"), st.integers(0, 99), st.integers(0, 99)),
)
subsecs = st.one_of(st.none(), st.text("0123456789", max_size=30), st.text(max_size=8))

#: (format, mode) pairs Pillow writes; "WEBP-anim" is an animated WebP of two frames.
KINDS = [
    ("JPEG", "RGB"),
    ("JPEG", "L"),
    ("JPEG", "CMYK"),
    ("PNG", "RGB"),
    ("PNG", "I;16"),
    ("PNG", "LA"),
    ("PNG", "P"),
    ("PNG", "RGBA"),
    ("WEBP", "RGB"),
    ("WEBP", "RGBA"),
    ("WEBP-anim", "RGBA"),
    ("TIFF", "RGB"),
    ("TIFF", "I;16"),
    ("TIFF", "CMYK"),
]
SIZES = st.one_of(
    st.sampled_from([(1, 1), (16000, 8), (8, 16000), (2, 1), (1, 3)]),
    st.tuples(st.integers(1, 48), st.integers(1, 48)),
)
_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "WEBP-anim": "webp", "TIFF": "tif"}


@dataclass(frozen=True)
class PhotoSpec:
    """One generated photo: container, pixels and raw EXIF fields."""

    kind: tuple[str, str]
    size: tuple[int, int]
    seed: int
    taken_at: str | None
    offset: str | None
    subsec: str | None
    gps: dict[int, object] | None
    orientation: int | None

    def write(self, path: Path) -> Path:
        """The file, written with Pillow."""
        fmt, mode = self.kind
        image = _pixels(mode, self.size, self.seed)
        exif = raw_exif(
            taken_at=self.taken_at,
            offset=self.offset,
            subsec=self.subsec,
            gps=self.gps,
            orientation=self.orientation,
        )
        path = path.with_suffix("." + _EXT[fmt])
        if fmt == "WEBP-anim":
            second = _pixels(mode, self.size, self.seed + 1)
            image.save(path, "WEBP", save_all=True, append_images=[second], duration=100, exif=exif)
        elif fmt == "PNG" and mode == "P":
            image.save(path, "PNG", transparency=0, exif=exif)
        else:
            image.save(path, fmt, exif=exif)
        return path


def _pixels(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    if mode == "P":
        image = Image.new("P", size, seed % 256)
        image.putpalette([(i * 7 + seed) % 256 for i in range(768)])
        return image
    colour: Any = {"L": seed % 256, "I;16": (seed * 257) % 65536, "LA": (seed % 256, 128)}.get(mode)
    if colour is None:
        colour = tuple((seed * k) % 256 for k in (3, 5, 7, 11)[: len(mode)])
    return Image.new(mode, size, colour)


photo_specs = st.builds(
    PhotoSpec,
    kind=st.sampled_from(KINDS),
    size=SIZES,
    seed=st.integers(0, 10_000),
    taken_at=st.one_of(st.none(), times),
    offset=offsets,
    subsec=subsecs,
    gps=gps_ifds(),
    orientation=st.one_of(st.none(), st.integers(0, 9)),
)

# --- what GPS loggers write -------------------------------------------------------------------------

GPX_TIMES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59-12:00",
            "0001-01-01T00:00:00+14:00",
            "2024-05-01T12:00:00+02:00",
            "2024-05-01T10:00:05Z",
            "2024-05-01T12:00:10",
            "2099-09-29T10:10:10Z",
            "not a time",
        ]
    ),
)
GPX_LONS = st.one_of(
    st.sampled_from([179.9, -179.9, 180.0, -180.0, 179.999999, -179.999999, 0.0]), st.floats(-180, 180)
)
gpx_points = st.tuples(st.floats(-90, 90), GPX_LONS, GPX_TIMES, st.one_of(st.none(), st.floats(-500, 9000)))


def gpx_text(points: list[tuple[float, float, str | None, float | None]]) -> str:
    """A GPX 1.1 document with one recorded segment of these points."""
    body = "".join(
        f'<trkpt lat="{lat!r}" lon="{lon!r}">'
        + (f"<ele>{ele!r}</ele>" if ele is not None else "")
        + (f"<time>{when}</time>" if when is not None else "")
        + "</trkpt>"
        for lat, lon, when, ele in points
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><gpx version="1.1" creator="sweep" '
        'xmlns="http://www.topografix.com/GPX/1/1"><trk><name>sweep</name><trkseg>'
        f"{body}</trkseg></trk></gpx>"
    )


EXPORTS = [(p, loc, fmt) for p in PLATFORMS for loc in ("exact", "approx", "none") for fmt in ("zip", "eml")]

# --- checks -----------------------------------------------------------------------------------------


class _Tracebacks(logging.Handler):
    """Collects log records that carry a traceback or are errors."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def no_tracebacks() -> Iterator[None]:
    """Fail when anything logs an error or an exception while the block runs."""
    handler = _Tracebacks()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    assert not handler.records, [handler.format(r) for r in handler.records]


def check_inspect(found: dict[str, Any]) -> None:
    """One `journal inspect` object keeps to CONTRACT.md."""
    assert tuple(found) == inspectjson.INSPECT_KEYS
    error = found["error"]
    assert error is None or (isinstance(error, str) and "internal error" not in error), error
    walker.check_position(found["lat"], found["lon"], "inspect")
    walker.check_utc_text(found["taken_at_utc"], "inspect")
    assert found["orientation"] is None or 1 <= found["orientation"] <= 8
    if found["taken_at"] is not None:
        assert isinstance(found["taken_at"], str)
    if error is None:
        assert found["width"] >= 1 and found["height"] >= 1


def check_bundle(path: Path) -> None:
    """A written zip's manifest keeps to the contract, and its page is there."""
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert "index.html" in archive.namelist()
    for post in manifest["posts"]:
        walker.check_utc_text(post["taken_at_utc"], "manifest")
        if post["location"] is not None:
            walker.check_position(post["location"]["lat"], post["location"]["lon"], "manifest")


# --- the sweep ----------------------------------------------------------------------------------------


def _app(home: Path, database_url: str | None) -> Flask:
    return create_app(settings_for(home, database_url), TESTING=True)


def _signed_in(app: Flask, name: str) -> FlaskClient:
    make_user(app, name)
    client = app.test_client()
    sign_in(client, name)
    return client


def _user_rows(app: Flask, name: str) -> tuple[list[int], list[int], list[int]]:
    with app.extensions["journal.sessions"]() as s:
        user_id = s.scalars(select(User.id).where(User.name == name)).one()
        return (
            list(s.scalars(select(Photo.id).where(Photo.user_id == user_id))),
            list(s.scalars(select(Post.id).where(Post.user_id == user_id))),
            list(s.scalars(select(Trip.id).where(Trip.user_id == user_id))),
        )


# new_database_url is function-scoped but makes a fresh database for each example when called.
@settings(
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
    deadline=None,
)
@given(
    specs=st.lists(photo_specs, min_size=1, max_size=4),
    tracks=st.lists(st.lists(gpx_points, min_size=0, max_size=5), max_size=1),
    export=st.sampled_from(EXPORTS),
)
def test_extreme_metadata_breaks_no_step(
    new_database_url: Callable[[], str | None],
    tmp_path_factory: pytest.TempPathFactory,
    specs: list[PhotoSpec],
    tracks: list[list[Any]],
    export: tuple[str, str, str],
) -> None:
    root = tmp_path_factory.mktemp("sweep")  # one folder per example (function-scoped tmp_path cannot be)
    with no_tracebacks():
        folder = root / "in"
        folder.mkdir()
        files = [spec.write(folder / f"p{i}") for i, spec in enumerate(specs)]
        for i, points in enumerate(tracks):
            (folder / f"t{i}.gpx").write_text(gpx_text(points), encoding="utf-8")

        for path in files:
            check_inspect(inspectjson.inspect_file(str(path)))

        home = root / "home"
        database_url = new_database_url()
        app = _app(home, database_url)
        try:
            alice = _signed_in(app, "alice")
            runner = CliRunner()
            env = {"JOURNAL_HOME": str(home), "JOURNAL_WORKERS": "1", "JOURNAL_DATABASE_URL": database_url}
            done = runner.invoke(cli, ["import", "--user", "alice", "--trip", "Sweep", str(folder)], env=env)
            assert done.exit_code in (0, 1), (done.output, done.exception)
            assert "Traceback" not in done.output and "internal error" not in done.output, done.output
            assert done.stdout.strip().splitlines()[-1].startswith("imported "), done.output

            bob = _signed_in(app, "bob")
            parts = [(io.BytesIO(p.read_bytes()), p.name) for p in sorted(folder.iterdir())]
            answer = bob.post(
                "/api/photos",
                data={"file": parts, "trip": "Upload"},
                headers={"X-CSRFToken": csrf_token(bob, "/upload")},
                content_type="multipart/form-data",
            )
            assert answer.status_code == 200, answer.get_data(as_text=True)[:2000]
            for result in answer.get_json()["results"]:
                assert result["status"] in ("imported", "duplicate", "failed"), result
                assert "internal error" not in result.get("error", ""), result

            for name, client in (("alice", alice), ("bob", bob)):
                walker.walk(client, *_user_rows(app, name))

            platform, location, fmt = export
            with app.extensions["journal.sessions"]() as s:
                user_id = s.scalars(select(User.id).where(User.name == "alice")).one()
            request = exporting.ExportRequest(
                user_id=user_id,
                platform=platform,
                location=location,  # type: ignore[arg-type]
                format=fmt,  # type: ignore[arg-type]
                out_dir=root / "out",
            )
            outcome = exporting.run_export(
                app.extensions["journal.sessions"], app.config["JOURNAL_SETTINGS"], request
            )
            for bundle in outcome.bundles:
                if fmt == "zip":
                    check_bundle(bundle.path)
            walker.get(alice, "/export")
        finally:
            app.extensions["journal.engine"].dispose()
    shutil.rmtree(root)  # `make fuzz` runs a thousand examples: only a failing one's files stay


#: A fixed library at the edges, exported in every platform x location mode (the sweep samples one).
FIXED = [
    PhotoSpec(("JPEG", "CMYK"), (16000, 8), 1, "9999:12:31 23:59:59", "-12:00", "1" * 30, None, 9),
    PhotoSpec(
        ("PNG", "I;16"),
        (8, 16000),
        2,
        "0001:01:01 00:00:00",
        "+14:00",
        None,
        {1: "N", 2: (_rational(90, 1), _rational(0, 1), _rational(0, 1)), 3: "E", 4: (_rational(180, 1),)},
        0,
    ),
    PhotoSpec(
        ("WEBP-anim", "RGBA"),
        (3, 2),
        3,
        "2026:02:30 25:61:61",
        None,
        "x",
        {1: "S", 2: (_rational(17, 1), _rational(30, 0)), 3: "W", 4: (_rational(179, 1), _rational(59, 1))},
        6,
    ),
    PhotoSpec(("PNG", "P"), (1, 1), 4, None, None, None, {5: 1, 6: _rational(430, 1)}, None),
    PhotoSpec(
        ("TIFF", "RGB"),
        (5, 7),
        5,
        "2024:05:01 12:00:00",
        "+05:45",
        "5",
        {
            1: "S",
            2: (_rational(89, 1),),
            3: "W",
            4: (_rational(179, 1), _rational(59, 1), _rational(5999, 100)),
        },
        8,
    ),
]


def test_every_platform_and_location_exports_the_edges(tmp_path: Path, database_url: str | None) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i, spec in enumerate(FIXED):
        spec.write(folder / f"edge{i}")
    app = _app(tmp_path / "home", database_url)
    try:
        alice = _signed_in(app, "alice")
        done = CliRunner().invoke(
            cli,
            ["import", "--trip", "Edges", str(folder)],
            env={"JOURNAL_HOME": str(tmp_path / "home"), "JOURNAL_DATABASE_URL": database_url},
        )
        assert done.exit_code == 0, done.output
        with no_tracebacks():
            with app.extensions["journal.sessions"]() as s:
                user_id = s.scalars(select(User.id)).one()
            for platform, location, fmt in EXPORTS:
                request = exporting.ExportRequest(
                    user_id=user_id,
                    platform=platform,
                    location=location,  # type: ignore[arg-type]
                    format=fmt,  # type: ignore[arg-type]
                    include_exported=True,
                    out_dir=tmp_path / "out" / f"{platform}-{location}-{fmt}",
                )
                outcome = exporting.run_export(
                    app.extensions["journal.sessions"], app.config["JOURNAL_SETTINGS"], request
                )
                assert outcome.bundles, (platform, location, fmt, outcome.problems)
                for bundle in outcome.bundles:
                    if fmt == "zip":
                        check_bundle(bundle.path)
            walker.walk(alice, *_user_rows(app, "alice"))
    finally:
        app.extensions["journal.engine"].dispose()
