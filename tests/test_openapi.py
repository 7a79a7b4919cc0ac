"""docs/openapi.json: a valid OpenAPI 3.1 description, served at /api/openapi.json, true to the app.

Every `/api/*` rule of the app is documented (and nothing else); every documented status of every
operation is produced here by a real request, and its body validates (strictly: no undocumented key)
against the documented schema.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from sqlalchemy import select
from werkzeug.test import TestResponse

from journal import __version__
from journal.app import create_app
from journal.models import Photo, User
from journal.services import users
from tests.databases import settings_for
from tests.imaging import make_jpeg
from tests.schemas import openapi, openapi_validator, pointer
from tests.web import csrf_token, make_user, sign_in

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
MAX_UPLOAD = 300_000


def gpx(start: str, end: str) -> bytes:
    """A GPX track of two timed points (in Ljubljana)."""
    return (
        '<?xml version="1.0"?><gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">'
        f'<trk><name>walk</name><trkseg><trkpt lat="46.05" lon="14.50"><time>{start}</time></trkpt>'
        f'<trkpt lat="46.06" lon="14.51"><time>{end}</time></trkpt></trkseg></trk></gpx>'
    ).encode()


def operations() -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (method, path, operation) of every documented operation."""
    found = {}
    for path, item in openapi()["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                found[operation["operationId"]] = (method, path, operation)
    return found


# --- the document --------------------------------------------------------------------------------


def test_the_description_is_valid_openapi_3_1() -> None:
    spec = openapi()
    assert spec["openapi"].startswith("3.1.")
    validate(spec)  # openapi-spec-validator: the 3.1 meta-schema plus its semantic checks


def test_every_api_rule_of_the_app_is_documented_and_nothing_more(app: Flask) -> None:
    rules = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            rules |= {
                (method.lower(), path) for method in rule.methods or () if method not in ("HEAD", "OPTIONS")
            }
    documented = {(method, path) for method, path, _ in operations().values()}
    assert rules - documented == set(), "routes missing from docs/openapi.json"
    assert documented - rules == set(), "docs/openapi.json describes routes the app does not have"


def test_served_without_sign_in_with_the_app_version(client: FlaskClient) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    served = response.get_json()
    assert served["info"]["version"] == __version__
    assert {**served, "info": {**served["info"], "version": openapi()["info"]["version"]}} == openapi()
    assert client.get("/api/photos.geojson").status_code == 401  # the rest of /api/ still needs sign-in


# --- the live app ----------------------------------------------------------------------------------


@dataclass
class World:
    """Two accounts with trips, posts and photos; alice's clients; ids the cases refer to."""

    app: Flask
    alice: FlaskClient
    anon: FlaskClient
    csrf: str
    token: str
    ids: dict[str, Any] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)


def _upload(client: FlaskClient, csrf: str, *files: tuple[bytes, str], **fields: str) -> list[dict[str, Any]]:
    data: dict[str, Any] = {"file": [(io.BytesIO(b), n) for b, n in files], **fields}
    response = client.post("/api/photos", data=data, headers={"X-CSRFToken": csrf})
    assert response.status_code == 200, response.get_data(as_text=True)
    results: list[dict[str, Any]] = response.get_json()["results"]
    return results


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None) -> Iterator[World]:
    """One app for every case (requests only: the cases take well under a second each)."""
    tmp = tmp_path_factory.mktemp("openapi")
    settings = settings_for(tmp / "home", module_database_url, max_upload_bytes=MAX_UPLOAD)
    app = create_app(settings, TESTING=True)
    make_user(app, "alice")
    make_user(app, "bob")

    def jpeg(seed: int, **exif: Any) -> bytes:
        return make_jpeg(tmp / "made" / f"{seed}.jpg", (160, 120), seed=seed, **exif).read_bytes()

    bob = app.test_client()
    sign_in(bob, "bob")
    (bob_photo,) = _upload(
        bob, csrf_token(bob, "/upload"), (jpeg(1, lat=59.3, lon=18.1), "b.jpg"), trip="Bob's"
    )
    alice = app.test_client()
    sign_in(alice, "alice")
    csrf = csrf_token(alice, "/upload")
    _upload(alice, csrf, (gpx("2024-05-01T10:00:00Z", "2024-05-01T10:04:00Z"), "walk.gpx"))
    located_body = jpeg(2, lat=46.05, lon=14.5)
    located, unlocated = _upload(alice, csrf, (located_body, "a.jpg"), (jpeg(3), "u.jpg"), trip="Lakes")
    with app.extensions["journal.sessions"]() as s, s.begin():
        token = users.create_token(s, s.scalars(select(User).where(User.name == "alice")).one(), "docs")
        trips = {p.id: p.post.trip_id for p in s.scalars(select(Photo)) if p.post is not None}
    w = World(app, alice, app.test_client(), csrf, token)
    w.ids = {
        "bob_photo": bob_photo["id"],
        "bob_post": bob_photo["post"],
        "bob_trip": trips[bob_photo["id"]],
        "alice_trip": trips[located["id"]],
        "located": located["id"],
        "unlocated": unlocated["id"],
        "unlocated2": unlocated["id"],
        "located_sha": located["sha256"],
        "unknown_sha": hashlib.sha256(b"never stored").hexdigest(),
    }
    w.bodies = {
        "new": jpeg(10),
        "new_bearer": jpeg(11),
        "located": located_body,
        "timed": jpeg(12, taken_at=datetime(2024, 5, 1, 10, 2), offset="+00:00"),
        "text": b"hello, not a photo",
        "gpx": gpx("2024-06-01T08:00:00Z", "2024-06-01T08:30:00Z"),
        "big": b"\0" * (MAX_UPLOAD + 1),
        "spare": jpeg(13),
    }
    yield w
    app.extensions["journal.engine"].dispose()


@dataclass(frozen=True)
class Case:
    """One request and the documented answer it must get. `who`: alice (session and CSRF header),
    nocsrf (session, no header), bearer (alice's token), anon. Paths and JSON strings may hold
    {names} of World.ids; `files` name World.bodies."""

    operation: str
    status: int
    who: str
    path: str
    files: tuple[str, ...] = ()
    form: tuple[tuple[str, str], ...] = ()
    json: Any = None
    raw: str | None = None
    check: Callable[[Any], bool] | None = None

    @property
    def id(self) -> str:
        return f"{self.operation}-{self.status}-{self.who}-{self.path}-{'+'.join(self.files)}"


def _statuses(*expected: str) -> Callable[[Any], bool]:
    return lambda body: [r["status"] for r in body["results"]] == list(expected)


CASES = [
    # POST /api/photos
    Case(
        "uploadPhotos",
        200,
        "alice",
        "/api/photos",
        ("new",),
        (("caption", "<b>x</b>"), ("trip", "Lakes")),
        check=_statuses("imported"),
    ),
    Case(
        "uploadPhotos",
        200,
        "bearer",
        "/api/photos",
        ("new_bearer", "located", "text"),
        (("mode", "one"),),
        check=_statuses("imported", "duplicate", "failed"),
    ),
    Case(
        "uploadPhotos",
        200,
        "alice",
        "/api/photos",
        ("gpx", "timed"),
        check=lambda b: "track" in b["results"][0] and b["results"][1].get("position_source") == "track",
    ),
    Case("uploadPhotos", 400, "nocsrf", "/api/photos", ("spare",)),
    Case("uploadPhotos", 400, "alice", "/api/photos", ("spare",), (("mode", "several"),)),
    Case("uploadPhotos", 400, "alice", "/api/photos"),
    Case("uploadPhotos", 401, "anon", "/api/photos", ("spare",)),
    Case("uploadPhotos", 404, "alice", "/api/photos", ("spare",), (("post", "{bob_post}"),)),
    Case("uploadPhotos", 413, "alice", "/api/photos", ("big",)),
    # POST /api/photos/check
    Case(
        "checkPhotos",
        200,
        "alice",
        "/api/photos/check",
        json={"sha256": ["{located_sha}", "{unknown_sha}"]},
        check=lambda b: len(b["known"]) == 1,
    ),  # the unknown hash is left out
    Case("checkPhotos", 200, "bearer", "/api/photos/check", json={"sha256": []}),
    Case("checkPhotos", 400, "alice", "/api/photos/check", json={"sha256": "abc"}),
    Case("checkPhotos", 400, "alice", "/api/photos/check", json={"sha256": ["not hex"]}),
    Case("checkPhotos", 400, "alice", "/api/photos/check", raw="{not json"),
    Case("checkPhotos", 401, "anon", "/api/photos/check", json={"sha256": []}),
    Case("checkPhotos", 413, "alice", "/api/photos/check", json={"sha256": ["0" * 64] * (MAX_UPLOAD // 60)}),
    # GET /api/photos.geojson
    Case("photosGeojson", 200, "alice", "/api/photos.geojson", check=lambda b: len(b["features"]) >= 1),
    Case("photosGeojson", 200, "bearer", "/api/photos.geojson?trip={alice_trip}"),
    Case("photosGeojson", 400, "alice", "/api/photos.geojson?trip=abc"),
    Case("photosGeojson", 401, "anon", "/api/photos.geojson"),
    Case("photosGeojson", 404, "alice", "/api/photos.geojson?trip={bob_trip}"),
    # GET /api/photos.points
    Case(
        "photosPoints",
        200,
        "alice",
        "/api/photos.points",
        check=lambda b: b["count"] == len(b["points"]) >= 1,
    ),
    Case("photosPoints", 200, "bearer", "/api/photos.points?trip={alice_trip}"),
    Case("photosPoints", 400, "alice", "/api/photos.points?trip=-1"),
    Case("photosPoints", 401, "anon", "/api/photos.points"),
    Case("photosPoints", 404, "alice", "/api/photos.points?trip={bob_trip}"),
    # GET /api/map/photos
    Case(
        "mapPhotoDetails",
        200,
        "alice",
        "/api/map/photos?ids={located},{unlocated},{bob_photo}",
        check=lambda b: len(b["photos"]) == 2,
    ),  # bob's photo is left out
    Case("mapPhotoDetails", 200, "bearer", "/api/map/photos?ids={located}"),
    Case("mapPhotoDetails", 400, "alice", "/api/map/photos"),
    Case("mapPhotoDetails", 400, "alice", "/api/map/photos?ids=1,x"),
    Case("mapPhotoDetails", 401, "anon", "/api/map/photos?ids=1"),
    # POST /api/map/photos/{photo_id}/position
    Case(
        "placePhoto",
        200,
        "alice",
        "/api/map/photos/{unlocated}/position",
        json={"lat": 46.1, "lon": 14.6},
        check=lambda b: b["position_source"] == "manual",
    ),
    Case(
        "placePhoto", 200, "bearer", "/api/map/photos/{located}/position", json={"lat": "46.2", "lon": "14.7"}
    ),
    Case("placePhoto", 400, "alice", "/api/map/photos/{located}/position", json={"lat": 100, "lon": 14}),
    Case("placePhoto", 400, "alice", "/api/map/photos/{located}/position", json=[46, 14]),
    Case("placePhoto", 400, "nocsrf", "/api/map/photos/{located}/position", json={"lat": 46, "lon": 14}),
    Case("placePhoto", 401, "anon", "/api/map/photos/{located}/position", json={"lat": 46, "lon": 14}),
    Case("placePhoto", 404, "alice", "/api/map/photos/{bob_photo}/position", json={"lat": 46, "lon": 14}),
    Case(
        "placePhoto",
        413,
        "alice",
        "/api/map/photos/{located}/position",
        json={"lat": 46, "x": "y" * MAX_UPLOAD},
    ),
    # GET /api/openapi.json
    Case("openapi", 200, "anon", "/api/openapi.json"),
    Case("openapi", 200, "alice", "/api/openapi.json"),
]


def _fill(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format(**ids) if "{" in value and not value.startswith("{not") else value
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def send(world: World, case: Case) -> TestResponse:
    """Make the case's request as its `who`."""
    client = world.anon if case.who == "anon" else world.alice
    headers = {"Authorization": f"Bearer {world.token}"} if case.who == "bearer" else {}
    if case.who == "alice":
        headers["X-CSRFToken"] = world.csrf
    method, _, _ = operations()[case.operation]
    kwargs: dict[str, Any] = {"headers": headers}
    if case.files or case.form or (method == "post" and case.json is None and case.raw is None):
        kwargs["data"] = {
            "file": [(io.BytesIO(world.bodies[name]), f"{name}.bin") for name in case.files],
            **{key: _fill(value, world.ids) for key, value in case.form},
        }
        kwargs["content_type"] = "multipart/form-data"
    elif case.json is not None:
        kwargs["data"] = json.dumps(_fill(case.json, world.ids))
        kwargs["content_type"] = "application/json"
    elif case.raw is not None:
        kwargs["data"], kwargs["content_type"] = case.raw, "application/json"
    if case.who == "bearer":  # a script without the browser's cookie
        client = world.app.test_client()
    return client.open(_fill(case.path, world.ids), method=method.upper(), **kwargs)


def check_against_description(case: Case, response: TestResponse) -> Any:
    """The response's status is documented for the operation, and its body validates."""
    method, path, operation = operations()[case.operation]
    text = response.get_data(as_text=True)
    assert response.status_code == case.status, text[:500]
    answer = operation["responses"].get(str(response.status_code))
    assert answer is not None, f"{response.status_code} is not documented for {method.upper()} {path}"
    where = pointer("paths", path, method, "responses", str(response.status_code))
    if "$ref" in answer:
        where = answer["$ref"][1:]
        answer = openapi()["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    assert response.mimetype in answer["content"], f"{response.mimetype} is not documented"
    body = json.loads(text)
    validator = openapi_validator(f"{where}{pointer('content', str(response.mimetype), 'schema')}")
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not problems, "\n".join(problems)
    return body


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_operation_answers_as_documented(world: World, case: Case) -> None:
    body = check_against_description(case, send(world, case))
    if case.check is not None:
        assert case.check(body), body


def test_every_documented_status_is_produced_by_a_case() -> None:
    exercised = {(case.operation, case.status) for case in CASES}
    assert {case.operation for case in CASES} <= set(operations())
    documented = {
        (op_id, int(status))
        for op_id, (_, _, operation) in operations().items()
        for status in operation["responses"]
    }
    assert documented - exercised == set(), "documented statuses no case produces: add a case"
    assert exercised - documented == set()
    for op_id, (_, _, operation) in operations().items():
        if operation.get("security") != []:  # every signed-in operation says that anonymous gets 401
            assert (op_id, 401) in exercised


def test_a_key_the_description_lacks_fails_the_check(world: World) -> None:
    """The strict validation is real: an undocumented key in an answer is caught."""
    case = Case("photosPoints", 200, "alice", "/api/photos.points")
    response = send(world, case)
    response.set_data(json.dumps({**response.get_json(), "extra": 1}))
    with pytest.raises(AssertionError, match="extra"):
        check_against_description(case, response)
