"""Hostile requests: out-of-range ids, anonymous bodies, many parts in one upload, upload captions."""

from __future__ import annotations

import io
import json
import re
import resource
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.routing import Rule
from werkzeug.test import encode_multipart

from journal import db, ids
from journal.app import create_app
from journal.config import Settings
from journal.models import Photo, Post
from journal.services import editing, importing, uploads, users
from journal.web.upload import StagingRequest
from tests.databases import settings_for
from tests.imaging import make_jpeg
from tests.servers import LiveServer, live_journal
from tests.web import PASSWORD, csrf_token, make_user

# --- huge ids -----------------------------------------------------------------------------------

#: Ids no row can have: far past any integer column, just past SQLite's 64 bits, past our bound.
HOSTILE_IDS = [10**30, 2**63, ids.MAX_ID + 1, -1]
_ARGUMENT = re.compile(r"<(?:(?P<converter>\w+)(?:\((?P<options>[^)]*)\))?:)?(?P<name>\w+)>")


@pytest.fixture
def owner(app: Flask, user_client: FlaskClient, tmp_path: Path) -> FlaskClient:
    """The owner, signed in, with one located photo (id 1) in a post (id 1) of a trip (id 1)."""
    token = csrf_token(user_client, "/upload")
    body = make_jpeg(tmp_path / "one.jpg", (320, 240), seed=1, lat=46.05, lon=14.5).read_bytes()
    response = user_client.post(
        "/api/photos",
        data={"file": (io.BytesIO(body), "one.jpg"), "trip": "Ljubljana"},
        headers={"X-CSRFToken": token},
        content_type="multipart/form-data",
    )
    assert response.get_json()["results"][0]["id"] == 1
    user_client.environ_base["HTTP_X_CSRFTOKEN"] = token
    return user_client


def _url(rule: Rule, values: dict[str, object]) -> str:
    """The rule's path with each argument replaced (ints by values[name], others by a valid word)."""

    def fill(match: re.Match[str]) -> str:
        converter, name = match.group("converter"), match.group("name")
        if converter == "int":
            return str(values.get(name, 1))
        if converter == "any":
            return (match.group("options") or "x").split(",")[-1].strip()
        return "x"

    return _ARGUMENT.sub(fill, rule.rule)


def _int_arguments(rule: Rule) -> list[str]:
    return [m.group("name") for m in _ARGUMENT.finditer(rule.rule) if m.group("converter") == "int"]


def _methods(rule: Rule) -> Iterable[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def test_every_int_route_answers_404_for_ids_no_row_can_have(app: Flask, owner: FlaskClient) -> None:
    rules = [rule for rule in app.url_map.iter_rules() if _int_arguments(rule)]
    assert len(rules) > 20  # the walk really sees the app's routes
    answers: dict[str, int] = {}
    for rule in rules:
        for name in _int_arguments(rule):
            for value in HOSTILE_IDS:
                url = _url(rule, {name: value})
                for method in _methods(rule):
                    answers[f"{method} {url}"] = owner.open(url, method=method).status_code
    wrong = {request: status for request, status in answers.items() if status != 404}
    assert not wrong, wrong


QUERY_NAMES = ["trip", "post", "around", "before", "after", "ids", "cursor", "job", "v", "page"]
QUERY_VALUES = [str(v) for v in HOSTILE_IDS] + [f"n-{10**30}", f"n-{ids.MAX_ID + 1}", "²", "٣", "9" * 5000]


def test_hostile_id_query_arguments_never_give_500(app: Flask, owner: FlaskClient) -> None:
    rules = [
        rule for rule in app.url_map.iter_rules() if "GET" in _methods(rule) and rule.endpoint != "static"
    ]
    wrong = {}
    for rule in rules:
        for name in QUERY_NAMES:
            for value in QUERY_VALUES:
                url = _url(rule, {})
                status = owner.get(url, query_string={name: value}).status_code
                if status >= 500:
                    wrong[f"{url}?{name}={value[:40]}"] = status
    assert not wrong, wrong


@pytest.mark.parametrize(
    "path",
    [
        f"/library?trip={10**30}",
        f"/library?trip={2**63}",
        f"/map/story?trip={10**30}",
        f"/map/story?around={10**30}",
        f"/map/story?before=n-{ids.MAX_ID + 1}",
        f"/map/unlocated?after=n-{ids.MAX_ID + 1}",
        f"/api/photos.geojson?trip={10**30}",
        f"/api/photos.points?trip={10**30}",
        f"/photos/{10**30}",
        f"/photos/{'9' * 5000}",
    ],
)
def test_out_of_range_ids_in_query_strings_are_404(owner: FlaskClient, path: str) -> None:
    assert owner.get(path).status_code == 404


def test_photo_lists_leave_out_ids_no_row_can_have(owner: FlaskClient) -> None:
    response = owner.get("/api/map/photos", query_string={"ids": f"{10**30},1,{2**63},{ids.MAX_ID + 1}"})
    assert response.status_code == 200 and list(response.get_json()["photos"]) == ["1"]


@pytest.mark.parametrize("value", ["²", "1,²", "abc"])
def test_digits_int_cannot_read_are_400_not_500(owner: FlaskClient, value: str) -> None:
    assert owner.get("/api/map/photos", query_string={"ids": value}).status_code == 400
    assert owner.get("/library", query_string={"trip": value}).status_code == 400


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/export", {"trip": str(10**30)}),
        ("/posts", {"photo": ["1", str(10**30)]}),
        ("/posts", {"photo": "1", "trip": str(2**63)}),
        ("/photos/1/trip", {"trip": str(10**30)}),
        ("/posts/1/trip", {"trip": str(10**30)}),
    ],
)
def test_out_of_range_ids_in_forms_are_404(owner: FlaskClient, path: str, form: dict[str, Any]) -> None:
    assert owner.post(path, data=form).status_code == 404


@pytest.mark.parametrize("post", [str(10**30), str(2**63), str(ids.MAX_ID + 1)])
def test_upload_into_a_post_no_row_can_have_is_404(owner: FlaskClient, post: str) -> None:
    response = owner.post(
        "/api/photos",
        data={"file": (io.BytesIO(b"x"), "a.jpg"), "post": post},
        content_type="multipart/form-data",
    )
    assert response.status_code == 404 and "no such post" in response.get_json()["error"]


def test_map_index_with_an_undated_trip_is_200(app: Flask, owner: FlaskClient) -> None:
    with app.extensions["journal.sessions"].begin() as s:
        importing.get_or_create_trip(s, 1, "No photos yet")
    assert owner.get("/map").status_code == 200  # was a 500: datetime.min.timestamp() raises


# --- anonymous bodies -------------------------------------------------------------------------


class CountingInput:
    """wsgi.input that counts the bytes the application read from it."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.stream.read(size)
        self.count += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data: bytes = self.stream.readline(size)
        self.count += len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


@pytest.fixture
def counted(app: Flask) -> list[CountingInput]:
    """Every request's wsgi.input, counted (the app is wrapped for the test's duration)."""
    inputs: list[CountingInput] = []
    inner = app.wsgi_app

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        environ["wsgi.input"] = counting = CountingInput(environ["wsgi.input"])
        inputs.append(counting)
        return inner(environ, start_response)

    app.wsgi_app = wsgi  # type: ignore[method-assign]
    return inputs


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temp folder, replaced by an empty one of the test's."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


BIG = 20_000_000

ANONYMOUS_POSTS = [
    "/library",
    "/upload",
    "/photos/1/caption",
    "/posts",
    "/trips",
    "/export",
    "/export/zones",
    "/accounts",
    "/logout",
    "/nowhere",
]


def _big_multipart() -> tuple[bytes, str]:
    boundary, body = encode_multipart(
        {"caption": "x", "file": FileStorage(io.BytesIO(b"\0" * BIG), "big.jpg")}
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _staged(app: Flask) -> list[Path]:
    return _uploads_in(app.config["JOURNAL_SETTINGS"].staging_dir)


def _uploads_in(staging: Path) -> list[Path]:
    """Upload temp files left in a staging folder (the importer's lock file is no upload)."""
    return sorted(staging.glob(uploads.UPLOAD_PREFIX + "*"))


@pytest.mark.parametrize("accounts", [0, 1])
def test_anonymous_big_posts_are_refused_without_reading_the_body(
    app: Flask, client: FlaskClient, counted: list[CountingInput], temp_dir: Path, accounts: int
) -> None:
    if accounts:
        make_user(app)
    body, content_type = _big_multipart()
    for path in ANONYMOUS_POSTS:
        response = client.post(path, data=body, content_type=content_type)
        target = "/login" if accounts else "/setup"
        assert response.status_code in (302, 303) and target in response.location, path
        assert counted[-1].count == 0, path
    response = client.post("/api/photos", data=body, content_type=content_type)
    assert response.status_code == 401 and counted[-1].count == 0
    assert _staged(app) == [] and list(temp_dir.iterdir()) == []


@pytest.mark.parametrize("path", ["/login", "/setup"])
def test_public_forms_take_only_small_bodies(
    app: Flask, client: FlaskClient, counted: list[CountingInput], temp_dir: Path, path: str
) -> None:
    if path == "/login":
        make_user(app)
    body, content_type = _big_multipart()
    response = client.post(path, data=body, content_type=content_type)
    assert response.status_code == 413 and "too large" in response.get_data(as_text=True)
    assert counted[-1].count == 0
    fields = {"name": "alice", "password": PASSWORD, "confirm": PASSWORD, "junk": "x" * 70_000}
    fields["csrf_token"] = csrf_token(client, path)
    assert client.post(path, data=fields).status_code == 413
    assert _staged(app) == [] and list(temp_dir.iterdir()) == []
    del fields["junk"]
    assert client.post(path, data=fields).status_code == 302  # a real form still passes


# --- many parts in one upload -----------------------------------------------------------------


def _parts(count: int, body: bytes = b"x") -> dict[str, Any]:
    return {"file": [(io.BytesIO(body), f"{i}.jpg") for i in range(count)]}


def test_parts_hold_no_descriptor_once_received(app: Flask, tmp_path: Path) -> None:
    boundary, body = encode_multipart(
        {"file": [FileStorage(io.BytesIO(bytes([i]) * (i + 1)), f"{i}.jpg") for i in range(50)]}
    )
    environ = {"CONTENT_TYPE": f"multipart/form-data; boundary={boundary}"}
    with app.test_request_context("/api/photos", method="POST", data=body, environ_base=environ) as ctx:
        request = ctx.request
        assert isinstance(request, StagingRequest)
        parts = request.files.getlist("file")
        staged = list(request.staged_parts)
        assert len(parts) == len(staged) == 50 and not any(part.is_open for part in staged)
        assert [part.read() for part in parts[:3]] == [b"\0", b"\1\1", b"\2\2\2"]
        paths = [Path(part.name) for part in staged]
        assert all(path.is_file() for path in paths)
    assert not any(path.exists() for path in paths)  # the request's end removes every part


def test_too_many_files_is_a_clear_413(tmp_path: Path, database_url: str | None) -> None:
    app = create_app(settings_for(tmp_path / "home", database_url, max_upload_files=5), TESTING=True)
    make_user(app)
    client = app.test_client()
    client.post("/login", data={"name": "alice", "password": PASSWORD, "csrf_token": csrf_token(client)})
    headers = {"X-CSRFToken": csrf_token(client, "/upload")}
    response = client.post("/api/photos", data=_parts(6), headers=headers, content_type="multipart/form-data")
    assert response.status_code == 413
    assert response.get_json() == {"error": "That request has too many files: send at most 5 per request."}
    page = client.post(
        "/upload",
        data={**_parts(6), "csrf_token": headers["X-CSRFToken"]},
        content_type="multipart/form-data",
    )
    assert page.status_code == 413 and "at most 5 per request" in page.get_data(as_text=True)
    response = client.post("/api/photos", data=_parts(5), headers=headers, content_type="multipart/form-data")
    assert response.status_code == 200 and len(response.get_json()["results"]) == 5
    assert _staged(app) == []
    app.extensions["journal.engine"].dispose()


def test_the_file_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JOURNAL_MAX_UPLOAD_FILES", "7")
    assert Settings.from_env(tmp_path).max_upload_files == 7
    assert Settings(home=tmp_path).max_upload_files == 500
    with pytest.raises(ValueError, match="positive"):
        Settings(home=tmp_path, max_upload_files=0)


def test_too_many_fields_is_413(app: Flask, user_client: FlaskClient) -> None:
    headers = {"X-CSRFToken": csrf_token(user_client, "/upload")}
    fields = {"sha256": ["0" * 64] * 2000, **_parts(1)}
    response = user_client.post(
        "/api/photos", data=fields, headers=headers, content_type="multipart/form-data"
    )
    assert response.status_code == 413 and "too many parts" in response.get_json()["error"]


DESCRIPTORS = 256


@pytest.fixture
def scarce_server(tmp_path: Path, database_url: str | None) -> Iterator[tuple[str, str, Settings]]:
    """`journal serve` limited to 256 open files, with an account; (url, bearer token, its settings)."""
    settings = settings_for(tmp_path / "scarce-home", database_url)
    engine = db.make_engine(settings.database_url)
    db.ensure_schema(engine)
    with db.make_session_factory(engine).begin() as s:
        secret = users.create_token(s, users.create_user(s, "alice", PASSWORD))
    engine.dispose()

    def limit_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))

    # a generous wait: it only detects a server that never starts
    with live_journal(settings.home, database_url, timeout_s=60, preexec_fn=limit_descriptors) as server:
        yield server.url, secret, settings


def _post_parts(url: str, secret: str, files: list[tuple[bytes, str]]) -> tuple[int, Any]:
    fields = {"file": [FileStorage(io.BytesIO(body), filename=name) for body, name in files]}
    boundary, data = encode_multipart(fields)
    request = urllib.request.Request(
        url + "/api/photos",
        data=data,
        headers={
            "Authorization": f"Bearer {secret}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.mark.slow
def test_many_parts_on_a_server_with_few_descriptors(
    scarce_server: tuple[str, str, Settings], jpeg_bytes: Callable[[int], bytes]
) -> None:
    url, secret, settings = scarce_server
    files = [(b"x", f"{i}.jpg") for i in range(300)]
    files[100] = (jpeg_bytes(1), "real-1.jpg")
    files[299] = (jpeg_bytes(2), "real-2.jpg")
    status, answer = _post_parts(url, secret, files)
    assert status == 200, answer
    results = answer["results"]
    assert [r["name"] for r in results] == [name for _, name in files]
    assert [r["status"] for r in results].count("imported") == 2
    assert results[100]["status"] == results[299]["status"] == "imported"
    assert all(r["status"] == "failed" and "not a readable JPG" in r["error"] for r in results[:100])
    status, answer = _post_parts(url, secret, [(b"x", f"{i}.jpg") for i in range(501)])
    assert status == 413 and answer == {
        "error": "That request has too many files: send at most 500 per request."
    }
    with urllib.request.urlopen(url + "/healthz", timeout=10) as response:
        assert response.status == 200
    assert _uploads_in(settings.staging_dir) == []
    engine = db.make_engine(settings.database_url)
    with db.make_session_factory(engine)() as s:
        assert len(s.scalars(select(Photo.id)).all()) == 2
    engine.dispose()


@pytest.fixture
def jpeg_bytes(tmp_path: Path) -> Callable[[int], bytes]:
    """Bytes of a small JPEG; each seed gives different content."""

    def make(seed: int) -> bytes:
        return make_jpeg(tmp_path / "made" / f"{seed}.jpg", (320, 240), seed=seed).read_bytes()

    return make


# --- captions from the upload API -------------------------------------------------------------


def test_upload_captions_are_cleaned_like_edited_ones(
    app: Flask, user_client: FlaskClient, jpeg_bytes: Callable[[int], bytes]
) -> None:
    headers = {"X-CSRFToken": csrf_token(user_client, "/upload")}
    data = {"file": (io.BytesIO(jpeg_bytes(3)), "a.jpg"), "caption": "  Harbour\r\nat dawn\rcold \r\n"}
    response = user_client.post("/api/photos", data=data, headers=headers, content_type="multipart/form-data")
    post_id = response.get_json()["results"][0]["post"]
    with app.extensions["journal.sessions"]() as s:
        caption = s.get(Post, post_id).caption
    assert caption == "Harbour\nat dawn\ncold"
    assert caption == editing.clean_caption("  Harbour\r\nat dawn\rcold \r\n")


def test_an_upload_caption_over_the_limit_is_refused(user_client: FlaskClient) -> None:
    headers = {"X-CSRFToken": csrf_token(user_client, "/upload")}
    data = {"file": (io.BytesIO(b"x"), "a.jpg"), "caption": "x" * 10_001}
    response = user_client.post("/api/photos", data=data, headers=headers, content_type="multipart/form-data")
    assert response.status_code == 400 and "10,000" in response.get_json()["error"]


def test_the_server_refuses_a_huge_body_before_reading_it(live_server: LiveServer) -> None:
    # Over the 200 MB limit (+1 MB of slack), under waitress's own 1 GB: announce it, send none of it.
    port = int(live_server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /library HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: 500000000\r\n\r\n"
        )
        answer = sock.recv(4096)  # a server waiting for the body would time out here
    assert answer.startswith(b"HTTP/1.1 413")
