"""POST /api/photos and /api/photos/check: statuses, auth, CSRF, limits, hostile names, concurrency."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse, encode_multipart

from journal import db
from journal.app import create_app
from journal.models import ImportFailure, Photo, Post, Trip, User
from journal.services import users
from tests.databases import settings_for
from tests.imaging import make_jpeg
from tests.samples import GPX_SAMPLES
from tests.servers import LiveServer
from tests.web import csrf_token, make_user, sign_in

GPX = b'<?xml version="1.0"?><gpx version="1.1" creator="t"><trk><trkseg></trkseg></trk></gpx>'


def json_of(response: TestResponse) -> Any:
    """A response's JSON document (asserted to be there)."""
    data = response.get_json()
    assert data is not None
    return data


@pytest.fixture
def jpeg(tmp_path: Path) -> Callable[[int], bytes]:
    """Bytes of a small JPEG with EXIF; each seed gives different content."""

    def make(seed: int = 0) -> bytes:
        return make_jpeg(tmp_path / "made" / f"{seed}.jpg", (320, 240), seed=seed).read_bytes()

    return make


def upload(client: FlaskClient, *files: tuple[bytes, str], token: str | None = None, **fields: Any) -> Any:
    """POST /api/photos with `file` parts (bytes, name) and form fields; CSRF header when a token is given."""
    data: dict[str, Any] = {"file": [(io.BytesIO(body), name) for body, name in files], **fields}
    headers = {"X-CSRFToken": token} if token else {}
    return client.post("/api/photos", data=data, headers=headers, content_type="multipart/form-data")


def sessions(app: Flask) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = app.extensions["journal.sessions"]
    return factory


def count(app: Flask, model: type[Any]) -> int:
    with sessions(app)() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def token(user_client: FlaskClient) -> str:
    """The signed-in client's CSRF token (read from the upload page's form)."""
    return csrf_token(user_client, "/upload")


def test_upload_imports_and_answers_the_contract_shape(
    app: Flask, user_client: FlaskClient, token: str, jpeg: Callable[[int], bytes]
) -> None:
    body = jpeg(1)
    response = upload(user_client, (body, "IMG_0001.jpg"), token=token)
    assert response.status_code == 200
    (result,) = response.json["results"]
    assert result["name"] == "IMG_0001.jpg" and result["status"] == "imported"
    assert isinstance(result["id"], int) and "error" not in result
    assert result["sha256"] == hashlib.sha256(body).hexdigest()
    with sessions(app)() as s:
        photo = s.get(Photo, result["id"])
        assert photo is not None and photo.original_name == "IMG_0001.jpg" and photo.post_id == result["post"]
        stored = app.config["JOURNAL_SETTINGS"].uploads_dir / photo.stored_path
    assert stored.read_bytes() == body
    staging = app.config["JOURNAL_SETTINGS"].staging_dir
    assert not [p for p in staging.iterdir() if p.name.startswith(".tmp-")]  # temp files are gone


def test_several_files_in_one_request_keep_their_order(
    app: Flask, user_client: FlaskClient, token: str, jpeg: Callable[[int], bytes]
) -> None:
    good = jpeg(2)
    truncated = jpeg(3)[:1500]
    files = [
        (good, "good.jpg"),
        (truncated, "broken.jpg"),
        (b"hello", "notes.txt"),
        (GPX, "walk.gpx"),
        (b"", "empty.jpg"),
    ]
    response = upload(user_client, *files, token=token)
    assert response.status_code == 200
    results = response.json["results"]
    assert [r["name"] for r in results] == ["good.jpg", "broken.jpg", "notes.txt", "walk.gpx", "empty.jpg"]
    assert [r["status"] for r in results] == ["imported", "failed", "failed", "failed", "failed"]
    assert all(r["error"] and "id" not in r for r in results[1:])
    assert "not a photo" in results[2]["error"]
    assert "no track points" in results[3]["error"]  # a GPX with nothing recorded
    assert "empty" in results[4]["error"]
    assert count(app, Photo) == 1
    assert count(app, ImportFailure) >= 2  # broken and empty files are remembered with their reason


def test_duplicate_answers_the_stored_photo(
    user_client: FlaskClient, token: str, jpeg: Callable[[int], bytes]
) -> None:
    body = jpeg(4)
    first = upload(user_client, (body, "a.jpg"), token=token).json["results"][0]
    again = upload(user_client, (body, "renamed.jpg"), token=token).json["results"][0]
    assert again["status"] == "duplicate" and again["id"] == first["id"] and "error" not in again


def test_truncated_jpeg_fails_with_a_reason(user_client: FlaskClient, token: str, tmp_path: Path) -> None:
    body = make_jpeg(tmp_path / "big.jpg", (1200, 900), seed=5).read_bytes()
    result = upload(user_client, (body[: len(body) // 2], "half.jpg"), token=token).json["results"][0]
    assert result["status"] == "failed" and result["error"]


def test_anonymous_upload_is_401(app: Flask, client: FlaskClient, jpeg: Callable[[int], bytes]) -> None:
    make_user(app)
    assert upload(client, (jpeg(6), "a.jpg")).status_code == 401


def test_anonymous_check_and_upload_are_refused(
    app: Flask, client: FlaskClient, jpeg: Callable[[int], bytes]
) -> None:
    make_user(app)
    assert upload(client, (jpeg(6), "a.jpg")).status_code in (400, 401)
    assert client.post("/api/photos/check", json={"sha256": []}).status_code in (400, 401)
    assert client.get("/api/photos").status_code in (401, 405)
    assert count(app, Photo) == 0


def test_session_upload_without_csrf_is_refused(
    app: Flask, user_client: FlaskClient, jpeg: Callable[[int], bytes]
) -> None:
    response = upload(user_client, (jpeg(7), "a.jpg"))
    assert response.status_code == 400 and "error" in response.json
    assert user_client.post("/api/photos/check", json={"sha256": []}).status_code == 400
    assert count(app, Photo) == 0


def test_bearer_token_needs_no_csrf(app: Flask, client: FlaskClient, jpeg: Callable[[int], bytes]) -> None:
    make_user(app)
    with sessions(app).begin() as s:
        secret = users.create_token(s, s.scalars(select(User)).one())
    auth = {"Authorization": f"Bearer {secret}"}
    body = jpeg(8)
    response = client.post("/api/photos", data={"file": (io.BytesIO(body), "t.jpg")}, headers=auth)
    assert response.status_code == 200 and json_of(response)["results"][0]["status"] == "imported"
    check = client.post(
        "/api/photos/check", json={"sha256": [hashlib.sha256(body).hexdigest()]}, headers=auth
    )
    assert check.status_code == 200 and list(json_of(check)["known"]) == [hashlib.sha256(body).hexdigest()]
    wrong = client.post("/api/photos/check", json={"sha256": []}, headers={"Authorization": "Bearer jt_nope"})
    assert wrong.status_code in (400, 401)


def test_no_file_is_a_400(user_client: FlaskClient, token: str) -> None:
    response = user_client.post("/api/photos", data={"caption": "x"}, headers={"X-CSRFToken": token})
    assert response.status_code == 400 and "no file" in json_of(response)["error"]


@pytest.fixture
def small_app(tmp_path: Path, database_url: str | None) -> Flask:
    """An app whose upload limit is 100 kB."""
    application = create_app(
        settings_for(tmp_path / "small", database_url, max_upload_bytes=100_000), TESTING=True
    )
    make_user(application)
    return application


def test_over_the_limit_is_413_json(small_app: Flask, tmp_path: Path) -> None:
    client = small_app.test_client()
    sign_in(client)
    token = csrf_token(client, "/upload")
    body = make_jpeg(tmp_path / "big.jpg", (900, 700), seed=9, quality=95).read_bytes()
    assert len(body) > 100_000
    response = upload(client, (body, "big.jpg"), token=token)
    assert response.status_code == 413
    assert "too large" in response.json["error"] and "0.1 MB" in response.json["error"]
    assert upload(client, (body[:50_000], "small-part.jpg"), token=token).status_code == 200
    with sessions(small_app).begin() as s:
        secret = users.create_token(s, s.scalars(select(User)).one())
    bearer = small_app.test_client().post(
        "/api/photos",
        data={"file": (io.BytesIO(body), "big.jpg")},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert bearer.status_code == 413 and "too large" in json_of(bearer)["error"]
    small_app.extensions["journal.engine"].dispose()


HOSTILE = [
    "../../x.jpg",
    "<script>alert(1)</script>.jpg",
    "a" * 251 + ".jpg",
    "東京 タワー.jpg",
    "/etc/passwd",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_kept_as_data(
    app: Flask, user_client: FlaskClient, token: str, jpeg: Callable[[int], bytes], tmp_path: Path, name: str
) -> None:
    result = upload(user_client, (jpeg(HOSTILE.index(name) + 20), name), token=token).json["results"][0]
    assert result["status"] == "imported" and result["name"] == name
    with sessions(app)() as s:
        photo = s.get(Photo, result["id"])
        assert photo is not None and photo.original_name == name
        assert photo.stored_path.startswith("originals/") and photo.sha256 in photo.stored_path
    assert not (tmp_path / "x.jpg").exists() and not (tmp_path.parent / "x.jpg").exists()


def test_one_post_for_all_across_requests(
    app: Flask, user_client: FlaskClient, token: str, jpeg: Callable[[int], bytes]
) -> None:
    first = upload(user_client, (jpeg(30), "1.jpg"), token=token, mode="one", caption="Seoul", trip="Korea")
    post_id = first.json["results"][0]["post"]
    second = upload(
        user_client, (jpeg(31), "2.jpg"), (jpeg(32), "3.jpg"), token=token, mode="one", post=str(post_id)
    )
    assert {r["post"] for r in second.json["results"]} == {post_id}
    with sessions(app)() as s:
        post = s.get(Post, post_id)
        assert post is not None and post.caption == "Seoul" and len(post.photos) == 3
        assert post.trip is not None and post.trip.title == "Korea"


def test_each_photo_gets_its_own_post_in_a_new_trip(
    app: Flask, user_client: FlaskClient, token: str, jpeg: Callable[[int], bytes]
) -> None:
    response = upload(user_client, (jpeg(33), "1.jpg"), (jpeg(34), "2.jpg"), token=token, trip="  Patagonia ")
    posts = {r["post"] for r in response.json["results"]}
    assert len(posts) == 2
    with sessions(app)() as s:
        assert s.scalars(select(Trip.title)).all() == ["Patagonia"]


def test_post_must_be_the_users_own(
    app: Flask, user_client: FlaskClient, token: str, jpeg: Callable[[int], bytes]
) -> None:
    make_user(app, "bob")
    other = app.test_client()
    sign_in(other, "bob")
    bob_post = upload(other, (jpeg(35), "b.jpg"), token=csrf_token(other, "/upload")).json["results"][0][
        "post"
    ]
    response = upload(user_client, (jpeg(36), "a.jpg"), token=token, post=str(bob_post))
    assert response.status_code == 404 and "error" in response.json
    assert upload(user_client, (jpeg(36), "a.jpg"), token=token, post="12abc").status_code == 400
    assert upload(user_client, (jpeg(36), "a.jpg"), token=token, mode="sometimes").status_code == 400
    assert upload(user_client, (jpeg(36), "a.jpg"), token=token, trip="t" * 201).status_code == 400
    assert count(app, Photo) == 1


def test_hash_mismatch_stores_nothing_and_asks_for_a_retry(
    app: Flask, user_client: FlaskClient, token: str, jpeg: Callable[[int], bytes]
) -> None:
    body = jpeg(37)
    claimed = hashlib.sha256(body + b"x").hexdigest()
    result = upload(user_client, (body, "a.jpg"), token=token, sha256=claimed).json["results"][0]
    assert result["status"] == "failed" and result["retry"] is True and "changed" in result["error"]
    assert count(app, Photo) == 0
    good = upload(user_client, (body, "a.jpg"), token=token, sha256=hashlib.sha256(body).hexdigest().upper())
    assert good.json["results"][0]["status"] == "imported"
    assert upload(user_client, (body, "a.jpg"), token=token, sha256="xyz").status_code == 400


def test_check_tells_which_contents_are_known_per_user(
    app: Flask, user_client: FlaskClient, token: str, jpeg: Callable[[int], bytes]
) -> None:
    body = jpeg(40)
    stored = upload(user_client, (body, "a.jpg"), token=token).json["results"][0]
    known, unknown = hashlib.sha256(body).hexdigest(), hashlib.sha256(b"other").hexdigest()
    response = user_client.post(
        "/api/photos/check", json={"sha256": [known, unknown]}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 200 and response.json == {"known": {known: stored["id"]}}
    make_user(app, "bob")
    other = app.test_client()
    sign_in(other, "bob")
    theirs = other.post(
        "/api/photos/check", json={"sha256": [known]}, headers={"X-CSRFToken": csrf_token(other, "/upload")}
    )
    assert theirs.json == {"known": {}}


@pytest.mark.parametrize(
    "payload", [{"sha256": "abc"}, {"sha256": ["abc"]}, {"sha256": [1]}, ["x"], {"sha256": ["0" * 64] * 1001}]
)
def test_check_refuses_bad_input(user_client: FlaskClient, token: str, payload: object) -> None:
    response = user_client.post("/api/photos/check", json=payload, headers={"X-CSRFToken": token})
    assert response.status_code == 400 and json_of(response)["error"]


# --- concurrency against a real server ------------------------------------------------------------


def _bearer_for_live(server: LiveServer) -> str:
    engine = db.make_engine(server.settings.database_url)
    try:
        with db.make_session_factory(engine).begin() as s:
            user = users.create_user(s, "alice", "correct horse battery")
            return users.create_token(s, user)
    finally:
        engine.dispose()


def _post(url: str, secret: str, body: bytes, name: str) -> dict[str, Any]:
    # Every thread names the same new trip: creating it must not lose or misreport a photo.
    fields = {"file": FileStorage(io.BytesIO(body), filename=name), "trip": "Lofoten"}
    boundary, data = encode_multipart(fields)
    request = urllib.request.Request(
        url + "/api/photos",
        data=data,
        headers={
            "Authorization": f"Bearer {secret}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        result: dict[str, Any] = json.load(response)["results"][0]
        return result


@pytest.mark.slow
def test_parallel_uploads_store_each_distinct_file_once(live_server: LiveServer, tmp_path: Path) -> None:
    secret = _bearer_for_live(live_server)
    shared = [make_jpeg(tmp_path / f"s{i}.jpg", (400, 300), seed=100 + i).read_bytes() for i in range(10)]
    own = {
        t: [
            make_jpeg(tmp_path / f"o{t}-{i}.jpg", (400, 300), seed=200 + 10 * t + i).read_bytes()
            for i in range(3)
        ]
        for t in range(4)
    }
    outcomes: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        files = shared[t:] + shared[:t] + own[t]  # each thread starts at another file
        try:
            for i, body in enumerate(files):
                result = _post(live_server.url, secret, body, f"t{t}-{i}.jpg")
                with lock:
                    outcomes.append(result)
        except (OSError, urllib.error.HTTPError) as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    distinct = {
        hashlib.sha256(b).hexdigest() for b in shared + [b for bodies in own.values() for b in bodies]
    }
    assert len(outcomes) == 4 * 13 and {o["status"] for o in outcomes} <= {"imported", "duplicate"}
    assert sum(o["status"] == "imported" for o in outcomes) == len(distinct) == 22
    ids = {o["sha256"]: set() for o in outcomes}  # type: dict[str, set[int]]
    for o in outcomes:
        ids[o["sha256"]].add(o["id"])
    assert all(len(found) == 1 for found in ids.values())  # everyone was told the same photo id
    engine = db.make_engine(live_server.settings.database_url)
    try:
        with db.make_session_factory(engine)() as s:
            rows = s.scalars(select(Photo.sha256)).all()
            trips = s.scalars(select(Trip.title)).all()
            in_trip = s.scalar(
                select(func.count(Photo.id)).join(Post).join(Trip).where(Trip.title == "Lofoten")
            )
    finally:
        engine.dispose()
    assert sorted(rows) == sorted(distinct)
    assert trips == ["Lofoten"] and in_trip == len(rows)
    originals = [p for p in (live_server.home / "uploads" / "originals").rglob("*") if p.is_file()]
    assert len(originals) == len(rows)
    for kind in ("web", "thumb"):
        assert len([p for p in (live_server.home / "uploads" / kind).rglob("*") if p.is_file()]) == len(rows)


def test_gpx_upload_records_a_track(user_client: FlaskClient, token: str) -> None:
    gpx = (GPX_SAMPLES / "cerknicko-jezero.gpx").read_bytes()
    result = upload(user_client, (gpx, "walk.gpx"), token=token).json["results"][0]
    assert result["status"] == "imported" and result["track"] > 0
    again = upload(user_client, (gpx, "walk.gpx"), token=token).json["results"][0]
    assert again["status"] == "duplicate"


# --- a hostile GPX upload against a live server (issue 10 item 1) ---------------------------------------


ENTITY_GPX = (
    b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "><!--<gpx"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    b'<gpx version="1.1"><trk><name>&b;&b;&b;&b;</name><trkseg><trkpt lat="1" lon="2"/></trkseg></trk></gpx>'
)


def costly_gpx(megabytes: int) -> bytes:
    """A GPX file of timed points, about `megabytes` MB: the most work per byte a valid track makes."""
    point = '<trkpt lat="45.123456" lon="14.123456"><ele>300.5</ele><time>2020-01-01T10:00:00Z</time></trkpt>'
    body = point * (megabytes * 1_000_000 // len(point))
    return f'<?xml version="1.0"?><gpx version="1.1"><trk><trkseg>{body}</trkseg></trk></gpx>'.encode()


def live_token(server: LiveServer) -> str:
    """An account and API token in a live server's data home."""
    engine = db.make_engine(server.settings.database_url)
    try:
        with db.make_session_factory(engine).begin() as s:
            return users.create_token(s, users.create_user(s, "mallory", "password123"))
    finally:
        engine.dispose()


def poll_healthz(url: str, stop: threading.Event, delays: list[float], failures: list[str]) -> None:
    """GET /healthz every 50 ms until stopped, recording how long each answer took."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=30) as response:
                response.read()
            delays.append(time.monotonic() - started)
        except OSError as exc:
            failures.append(repr(exc))
        stop.wait(0.05)


def test_hostile_gpx_upload_never_stalls_healthz(live_server: LiveServer) -> None:
    token = live_token(live_server)
    files = {"bomb.gpx": ENTITY_GPX, "costly.gpx": costly_gpx(40)}
    delays: list[float] = []
    failures: list[str] = []
    stop = threading.Event()
    poller = threading.Thread(target=poll_healthz, args=(live_server.url, stop, delays, failures))
    poller.start()
    try:
        results = {}
        for name, data in files.items():
            boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(data), filename=name)})
            request = urllib.request.Request(
                live_server.url + "/api/photos",
                data=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                },
            )
            with urllib.request.urlopen(request, timeout=300) as response:
                results[name] = json.loads(response.read())["results"][0]
    finally:
        stop.set()
        poller.join()
    assert results["bomb.gpx"]["status"] == "failed"
    assert results["bomb.gpx"]["error"] == "GPX with a DTD/entities is refused"
    # Refused after its CPU limit on a slow machine, read on a fast one: either way within bounds.
    costly = results["costly.gpx"]
    assert costly["status"] == "imported" or costly["error"] == "took too long to read", costly
    assert not failures and len(delays) > 10
    assert max(delays) < 2.0, f"/healthz took up to {max(delays):.2f} s"  # generous: the CI machine is shared
