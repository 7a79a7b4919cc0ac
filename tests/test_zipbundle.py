"""Zip bundles: zip layout and manifest as the contract says, hashes, safety, atomicity, pages, batching."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import random
import re
import shutil
import subprocess
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from journal.errors import InvalidInput, UnreadableFile
from journal.publish import zipbundle
from journal.publish.scrub import ExifKeep, scrub_jpeg, scrubbed_size_bound
from journal.publish.streams import ByteSink
from journal.publish.zipbundle import (
    Batch,
    BundleFile,
    BundlePost,
    build_bundle,
    check_entry_name,
    estimate_post_bytes,
    photo_entry_name,
    plan_bundles,
    read_manifest,
    render_index_html,
    write_bundle_zip,
)
from tests.machine import needs_tool

CREATED = "2024-06-01T12:00:00Z"
UNZIP = shutil.which("unzip")


def make_jpeg(path: Path, size: tuple[int, int] = (120, 80), seed: float = 0) -> Path:
    rng = random.Random(seed)
    pixels = bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3))
    Image.frombytes("RGB", size, pixels).save(path, "JPEG", quality=90)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "src"
    folder.mkdir()
    return [make_jpeg(folder / f"IMG_{i}.jpg", seed=i) for i in range(4)]


def scrubbed_file(post_id: int, number: int, source: Path) -> BundleFile:
    """A bundle file produced while the zip is written (the way exports strip metadata)."""
    keep = ExifKeep(orientation=1)

    def produce(sink: ByteSink) -> None:
        scrub_jpeg(source, sink, keep=keep)

    bound = scrubbed_size_bound(source.stat().st_size, keep)
    return BundleFile(photo_entry_name(post_id, number), produce, 120, 80, size_hint=bound)


def sample_posts(photos: list[Path]) -> list[BundlePost]:
    return [
        BundlePost(
            id=7,
            caption='Dinner <script>alert("x")</script> & "friends"',
            caption_cut=False,
            taken_at_utc="2024-05-01T18:00:00Z",
            taken_at_local="2024-05-01T20:00:00",
            place="Lyon",
            location={"lat": 45.76, "lon": 4.84},
            files=(BundleFile(photo_entry_name(7, 1), photos[0], 120, 80), scrubbed_file(7, 2, photos[1])),
            platform="mastodon",
        ),
        BundlePost(
            id=8,
            caption="No position here",
            caption_cut=True,
            taken_at_utc=None,
            taken_at_local=None,
            place=None,
            location=None,
            files=(BundleFile(photo_entry_name(8, 1), photos[2].read_bytes(), 120, 80),),
            part=(1, 2),
        ),
    ]


@pytest.fixture
def written(tmp_path: Path, photos: list[Path]) -> zipbundle.BundleInfo:
    return build_bundle(
        tmp_path / "out" / "bundle-1.zip", Batch(sample_posts(photos), 1, 2, CREATED, "Summer <trip>")
    )


def test_manifest_follows_the_contract(written: zipbundle.BundleInfo, photos: list[Path]) -> None:
    with zipfile.ZipFile(written.path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest == written.manifest
        assert {"schema", "batch", "batches", "created_at", "posts"} <= set(manifest)
        assert (manifest["schema"], manifest["batch"], manifest["batches"]) == ("journal.bundle/1", 1, 2)
        assert manifest["created_at"] == CREATED
        assert [post["id"] for post in manifest["posts"]] == [7, 8]
        for post in manifest["posts"]:
            assert {"id", "caption", "taken_at_utc", "place", "location", "files"} <= set(post)
            for entry in post["files"]:
                assert set(entry) == {"path", "sha256", "width", "height", "bytes"}
                data = archive.read(entry["path"])
                assert hashlib.sha256(data).hexdigest() == entry["sha256"]
                assert len(data) == entry["bytes"]
                with Image.open(io.BytesIO(data)) as image:
                    assert image.size == (entry["width"], entry["height"])
        first, second = manifest["posts"]
        assert first["location"] == {"lat": 45.76, "lon": 4.84} and second["location"] is None
        assert first["caption"] == sample_posts(photos)[0].caption  # plain text, not escaped
        assert second["caption_cut"] is True and second["part"] == [1, 2]
        assert archive.read("photos/7-1.jpg") == photos[0].read_bytes()


def test_whole_zip_hash_and_size(written: zipbundle.BundleInfo) -> None:
    data = written.path.read_bytes()
    assert written.sha256 == hashlib.sha256(data).hexdigest()
    assert written.bytes == len(data)


def test_photos_are_stored_and_text_deflated(written: zipbundle.BundleInfo) -> None:
    with zipfile.ZipFile(written.path) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        assert archive.testzip() is None
    for name, info in infos.items():
        if name.endswith(".jpg") or name.endswith(".png"):
            assert info.compress_type == zipfile.ZIP_STORED, name
    assert infos["manifest.json"].compress_type == zipfile.ZIP_DEFLATED
    assert infos["index.html"].compress_type == zipfile.ZIP_DEFLATED
    assert infos["photos/7-1.jpg"].external_attr >> 16 == 0o644


def test_entry_names_are_safe(written: zipbundle.BundleInfo) -> None:
    with zipfile.ZipFile(written.path) as archive:
        names = archive.namelist()
    assert len(names) == len(set(names))
    for name in names:
        assert not name.startswith("/") and "\\" not in name and ".." not in name.split("/")
        assert re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)*", name), name
        top = ("manifest.json", "index.html", "map.html", "privacy.json")
        assert name in top or name.startswith(("photos/", "assets/"))


@pytest.mark.parametrize(
    "name",
    ["../x.jpg", "/etc/passwd", "photos/../../x.jpg", "a\\b.jpg", ".hidden", "", "a//b", "photos/1-1.jpg\n"],
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_entry_name(name)
    with pytest.raises(InvalidInput):
        BundleFile(name, b"x", 1, 1)


def test_duplicate_and_reserved_names_are_refused(tmp_path: Path) -> None:
    file = BundleFile("photos/1-1.jpg", b"x", 1, 1)
    post = BundlePost(1, "", False, None, None, None, None, (file, file))
    with pytest.raises(InvalidInput):
        write_bundle_zip(
            tmp_path / "b.zip", posts=[post], batch=1, batches=1, created_at=CREATED, index_html=""
        )
    clash = BundlePost(1, "", False, None, None, None, None, (BundleFile("index.html", b"x", 1, 1),))
    with pytest.raises(InvalidInput):
        write_bundle_zip(
            tmp_path / "b.zip", posts=[clash], batch=1, batches=1, created_at=CREATED, index_html=""
        )
    assert not (tmp_path / "b.zip").exists()


def test_other_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        BundleFile("photos/1-1.jpg", lambda sink: None, 1, 1)  # generated file without size_hint
    with pytest.raises(InvalidInput):
        BundlePost(1, "", False, None, None, None, {"lat": 95.0, "lon": 0.0})
    for args in ((1, 0, "jpg"), (1, 1, "jpg\n"), (-1, 1, "jpg"), (1, 1, "../x")):
        with pytest.raises(InvalidInput):
            photo_entry_name(*args)
    with pytest.raises(InvalidInput):
        write_bundle_zip(tmp_path / "b.zip", posts=[], batch=3, batches=2, created_at=CREATED, index_html="")
    with pytest.raises(InvalidInput):
        write_bundle_zip(
            tmp_path / "b.zip", posts=[], batch=1, batches=1, created_at="yesterday", index_html=""
        )


def test_crash_mid_write_leaves_nothing(tmp_path: Path, photos: list[Path]) -> None:
    dest = tmp_path / "out" / "bundle.zip"
    staging = tmp_path / "staging"

    def explode(sink: ByteSink) -> None:
        sink.write(b"\xff\xd8" + b"\0" * 100_000)
        raise OSError("disk full")

    posts = sample_posts(photos)
    posts.append(
        BundlePost(
            9,
            "boom",
            False,
            None,
            None,
            None,
            None,
            (BundleFile("photos/9-1.jpg", explode, 1, 1, size_hint=1),),
        )
    )
    with pytest.raises(OSError, match="disk full"):
        write_bundle_zip(
            dest, posts=posts, batch=1, batches=1, created_at=CREATED, index_html="", staging=staging
        )
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == [] and list(staging.iterdir()) == []


def test_crash_keeps_the_previous_file(tmp_path: Path) -> None:
    dest = tmp_path / "bundle.zip"
    dest.write_bytes(b"previous bundle")

    def explode(sink: ByteSink) -> None:
        raise RuntimeError("interrupted")

    post = BundlePost(
        1, "", False, None, None, None, None, (BundleFile("photos/1-1.jpg", explode, 1, 1, size_hint=1),)
    )
    with pytest.raises(RuntimeError):
        write_bundle_zip(dest, posts=[post], batch=1, batches=1, created_at=CREATED, index_html="")
    assert dest.read_bytes() == b"previous bundle"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.zip"]


def test_same_input_same_entries(tmp_path: Path, photos: list[Path]) -> None:
    one = build_bundle(tmp_path / "a.zip", Batch(sample_posts(photos), 1, 1, CREATED, "t"))
    two = build_bundle(tmp_path / "b.zip", Batch(sample_posts(photos), 1, 1, CREATED, "t"))
    with zipfile.ZipFile(one.path) as a, zipfile.ZipFile(two.path) as b:
        assert a.namelist() == b.namelist()
        # folium gives map elements random ids, so map.html differs between renders; nothing else may.
        for name in a.namelist():
            if name != "map.html":
                assert a.read(name) == b.read(name), name
                assert a.getinfo(name).date_time == (2024, 6, 1, 12, 0, 0)


@needs_tool("unzip")
def test_info_zip_reads_it(tmp_path: Path, written: zipbundle.BundleInfo) -> None:
    assert UNZIP is not None
    subprocess.run([UNZIP, "-tq", str(written.path)], check=True, capture_output=True)
    subprocess.run([UNZIP, "-q", str(written.path), "-d", str(tmp_path / "x")], check=True)
    assert (tmp_path / "x" / "index.html").is_file() and (tmp_path / "x" / "photos" / "7-2.jpg").is_file()


def tiny_jpeg() -> bytes:
    """A real JPEG of a few hundred bytes (bundles refuse files whose metadata they cannot read)."""
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (9, 90, 200)).save(out, "JPEG")
    return out.getvalue()


def test_a_known_hash_is_used_and_its_size_checked(tmp_path: Path) -> None:
    data = tiny_jpeg()
    known = hashlib.sha256(data).hexdigest()
    file = BundleFile(
        "photos/1-1.jpg", lambda sink: sink.write(data), 1, 1, size_hint=len(data), sha256=known
    )
    info = write_bundle_zip(
        tmp_path / "b.zip",
        posts=[BundlePost(1, "", False, None, None, None, None, (file,))],
        batch=1,
        batches=1,
        created_at=CREATED,
        index_html="",
    )
    assert info.manifest["posts"][0]["files"][0]["sha256"] == known
    with zipfile.ZipFile(info.path) as archive:
        assert archive.read("photos/1-1.jpg") == data
    short = BundleFile(
        "photos/1-1.jpg", lambda sink: sink.write(data[:-1]), 1, 1, size_hint=len(data), sha256=known
    )
    with pytest.raises(UnreadableFile, match="planned"):
        write_bundle_zip(
            tmp_path / "c.zip",
            posts=[BundlePost(1, "", False, None, None, None, None, (short,))],
            batch=1,
            batches=1,
            created_at=CREATED,
            index_html="",
        )
    assert not (tmp_path / "c.zip").exists()
    with pytest.raises(InvalidInput):
        BundleFile("photos/1-1.jpg", b"bytes", 1, 1, sha256=known)  # only for generated files
    with pytest.raises(InvalidInput):
        BundleFile("photos/1-1.jpg", lambda sink: None, 1, 1, size_hint=1, sha256="not a hash")


def test_zip64_entries_when_a_file_may_pass_2_gib(tmp_path: Path) -> None:
    tiny = tiny_jpeg()
    file = BundleFile("photos/1-1.jpg", lambda sink: sink.write(tiny), 1, 1, size_hint=3_000_000_000)
    post = BundlePost(1, "", False, None, None, None, None, (file,))
    info = write_bundle_zip(
        tmp_path / "b.zip", posts=[post], batch=1, batches=1, created_at=CREATED, index_html=""
    )
    with zipfile.ZipFile(info.path) as archive:
        assert archive.read("photos/1-1.jpg") == tiny
    if UNZIP is not None:
        subprocess.run([UNZIP, "-tq", str(info.path)], check=True, capture_output=True)


def test_memory_stays_flat_for_big_files(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    with big.open("wb") as handle:  # a JPEG header, 64 MB of scan data, an EOI
        handle.write(tiny_jpeg()[:-2])
        handle.truncate(64 * 1024 * 1024 - 2)
        handle.seek(0, io.SEEK_END)
        handle.write(b"\xff\xd9")
    post = BundlePost(1, "", False, None, None, None, None, (BundleFile("photos/1-1.jpg", big, 1, 1),))
    tracemalloc.start()
    try:
        write_bundle_zip(
            tmp_path / "b.zip", posts=[post], batch=1, batches=1, created_at=CREATED, index_html=""
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


def test_read_manifest(written: zipbundle.BundleInfo, tmp_path: Path) -> None:
    assert read_manifest(written.path) == written.manifest
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("manifest.json", '{"schema": "something/else"}')
    for path in (other, tmp_path / "missing.zip", written.path.parent / "nope.txt"):
        with pytest.raises(InvalidInput):
            read_manifest(path)


# --- pages ---


def test_index_html_escapes_and_links(written: zipbundle.BundleInfo) -> None:
    with zipfile.ZipFile(written.path) as archive:
        page = archive.read("index.html").decode()
        names = set(archive.namelist())
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "Summer &lt;trip&gt;" in page
    assert '<iframe class="map" src="map.html"' in page
    for target in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert target in names, target
    assert "2024-05-01 20:00" in page and "Lyon" in page and "part 1/2" in page


def test_no_request_leaves_the_machine(written: zipbundle.BundleInfo) -> None:
    with zipfile.ZipFile(written.path) as archive:
        names = set(archive.namelist())
        for page_name in ("index.html", "map.html"):
            page = archive.read(page_name).decode()
            assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page), page_name
            assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", page)
        map_page = archive.read("map.html").decode()
    for target in re.findall(r'(?:src|href)="([^"#]+)"', map_page):
        assert target in names, target
    assert "assets/vendor/leaflet/leaflet.js" in names


def test_no_map_without_positions(tmp_path: Path, photos: list[Path]) -> None:
    posts = [p for p in sample_posts(photos) if p.location is None]
    info = build_bundle(tmp_path / "b.zip", Batch(posts, 1, 1, CREATED, "t"))
    with zipfile.ZipFile(info.path) as archive:
        names = archive.namelist()
        page = archive.read("index.html").decode()
    assert "map.html" not in names and not [n for n in names if n.startswith("assets/")]
    assert "<iframe" not in page


def _open_offline(folder: Path) -> tuple[list[str], list[str], bool, str]:
    """Open index.html from disk in Chromium: (requested URLs, page errors, images ok, typeof L in map)."""
    from playwright.sync_api import sync_playwright

    from tests.browser import launch_chromium

    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright, launch_chromium(playwright) as browser:
        context = browser.new_context(service_workers="block")
        context.on("request", lambda request: requests.append(request.url))
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((folder / "index.html").as_uri(), wait_until="load")
        page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
        images_ok = bool(
            page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        )
        iframe = page.wait_for_selector("iframe.map")
        map_frame = iframe.content_frame() if iframe else None  # lazy: it may still be on its way
        assert map_frame is not None
        map_frame.wait_for_url("**/map.html")
        map_frame.wait_for_load_state("load")
        leaflet = str(map_frame.evaluate("typeof L"))
        context.close()
    return requests, errors, images_ok, leaflet


@pytest.mark.browser
def test_unzipped_bundle_reads_offline(tmp_path: Path, written: zipbundle.BundleInfo) -> None:
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(written.path) as archive:
        archive.extractall(folder)
    requests, errors, images_ok, leaflet = _open_offline(folder)
    assert [url for url in requests if not url.startswith("file://")] == []
    assert errors == []
    assert images_ok and leaflet == "object"
    assert any(url.endswith("/assets/basemap/world.js") for url in requests)


def test_empty_index_renders() -> None:
    page = render_index_html([], title="Nothing", has_map=False)
    assert "<h1>Nothing</h1>" in page and "0 posts" in page


# --- batching with real sizes ---


def test_planned_batches_stay_under_the_limit(tmp_path: Path) -> None:
    rng = random.Random(11)
    folder = tmp_path / "src"
    folder.mkdir()
    groups: list[list[BundlePost]] = []
    for post_id in range(1, 13):
        files = [
            BundleFile(
                photo_entry_name(post_id, n),
                make_jpeg(
                    folder / f"{post_id}-{n}.jpg", (rng.randint(40, 200), rng.randint(40, 200)), rng.random()
                ),
                1,
                1,
            )
            for n in range(1, rng.randint(1, 3) + 1)
        ]
        location = {"lat": rng.uniform(-60, 60), "lon": rng.uniform(-170, 170)} if post_id % 3 else None
        groups.append(
            [
                BundlePost(
                    post_id,
                    "Ünïcödé ✈️ <b> " * rng.randint(0, 40),
                    False,
                    None,
                    None,
                    "Somewhere",
                    location,
                    files,
                )
            ]
        )
    unlimited = plan_bundles(groups, None, title="Trip")
    assert [[p.id for p in batch] for batch in unlimited] == [list(range(1, 13))]
    assert plan_bundles([], None, title="Trip") == []
    limit = 1_600_000  # the map assets alone are about 1.2 MB
    batches = plan_bundles(groups, limit, title="Trip")
    assert len(batches) > 1
    assert [p.id for batch in batches for p in batch] == list(range(1, 13))
    for index, posts in enumerate(batches, start=1):
        info = build_bundle(tmp_path / f"b{index}.zip", Batch(posts, index, len(batches), CREATED, "Trip"))
        assert info.bytes <= limit or len(posts) == 1
        assert info.bytes <= sum(estimate_post_bytes(p) for p in posts) + zipbundle.estimate_fixed_bytes(
            title="Trip", with_map=True
        )


def test_the_map_shows_thumbnails_shipped_beside_the_photos(tmp_path: Path, photos: list[Path]) -> None:
    thumbs = [make_jpeg(tmp_path / f"thumb-{i}.jpg", (40, 30), seed=10 + i) for i in range(2)]
    files = (
        BundleFile(photo_entry_name(3, 1), photos[0], 120, 80, thumb=thumbs[0]),
        BundleFile(photo_entry_name(3, 2), photos[1], 120, 80, thumb=thumbs[1]),
    )
    post = BundlePost(3, "x", False, None, None, "Lyon", {"lat": 45.76, "lon": 4.84}, files)
    bare = BundlePost(
        4,
        "y",
        False,
        None,
        None,
        "Lyon",
        {"lat": 45.7, "lon": 4.8},
        (BundleFile(photo_entry_name(4, 1), photos[2], 120, 80),),
    )
    info = build_bundle(tmp_path / "b.zip", Batch([post, bare], 1, 1, CREATED, "t"))
    with zipfile.ZipFile(info.path) as archive:
        assert archive.read("thumbs/3-1.jpg") == thumbs[0].read_bytes()
        assert archive.getinfo("thumbs/3-1.jpg").compress_type == zipfile.ZIP_STORED
        # Only the map's marker image (a located post's first photo) needs one.
        assert [name for name in archive.namelist() if name.startswith("thumbs/")] == ["thumbs/3-1.jpg"]
        map_page = archive.read("map.html").decode()
    assert '"thumb_url":"thumbs/3-1.jpg"' in map_page  # not the full photo
    assert '"thumb_url":"photos/4-1.jpg"' in map_page  # no thumbnail: the photo itself
    assert [f["path"] for p in info.manifest["posts"] for f in p["files"]] == [
        "photos/3-1.jpg",
        "photos/3-2.jpg",
        "photos/4-1.jpg",
    ]  # thumbnails are not files to publish
    assert info.bytes <= sum(estimate_post_bytes(p) for p in (post, bare)) + zipbundle.estimate_fixed_bytes(
        title="t", with_map=True
    )
    unlocated = dataclasses.replace(post, location=None)
    assert estimate_post_bytes(post) - estimate_post_bytes(unlocated) >= thumbs[0].stat().st_size
