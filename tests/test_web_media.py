"""Image serving: owner only, by id; content types, ETags, caching, downloads, no path tricks."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.test import TestResponse

from journal.models import Photo
from journal.web.media import IMMUTABLE, REVALIDATE, VERSION_CHARS, photo_url
from tests.imaging import make_jpeg
from tests.web import csrf_token, make_user, sign_in


def json_of(response: TestResponse) -> Any:
    """A response's JSON document (asserted to be there)."""
    data = response.get_json()
    assert data is not None
    return data


def store(client: FlaskClient, body: bytes, name: str) -> dict[str, Any]:
    """Upload one file through the API and return its result."""
    response = client.post(
        "/api/photos",
        data={"file": (io.BytesIO(body), name)},
        headers={"X-CSRFToken": csrf_token(client, "/upload")},
        content_type="multipart/form-data",
    )
    result: dict[str, Any] = json_of(response)["results"][0]
    assert result["status"] == "imported", result
    return result


@pytest.fixture
def photo(user_client: FlaskClient, tmp_path: Path) -> dict[str, Any]:
    """A JPEG stored for alice (the signed-in user)."""
    return store(user_client, make_jpeg(tmp_path / "p.jpg", (900, 600), seed=1).read_bytes(), "Beach day.jpg")


@pytest.mark.parametrize("kind", ["original", "web", "thumb"])
def test_owner_gets_each_kind_with_etag(user_client: FlaskClient, photo: dict[str, Any], kind: str) -> None:
    response = user_client.get(f"/photos/{photo['id']}/{kind}")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.headers["ETag"] == f'"{photo["sha256"]}-{kind}"'
    assert response.headers["Cache-Control"] == REVALIDATE  # no version in the URL: revalidate
    with Image.open(io.BytesIO(response.data)) as image:
        assert max(image.size) == {"original": 900, "web": 900, "thumb": 400}[kind]


def test_versioned_url_is_immutable_and_304s(user_client: FlaskClient, photo: dict[str, Any]) -> None:
    url = f"/photos/{photo['id']}/thumb?v={photo['sha256'][:VERSION_CHARS]}"
    response = user_client.get(url)
    assert response.headers["Cache-Control"] == IMMUTABLE == "private, max-age=31536000, immutable"
    again = user_client.get(url, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    stale = user_client.get(f"/photos/{photo['id']}/thumb?v=0123456789abcdef")
    assert stale.status_code == 200 and stale.headers["Cache-Control"] == REVALIDATE


def test_photo_url_helper(app: Flask) -> None:
    with app.test_request_context():
        url = photo_url(Photo(id=7, sha256="ab" * 32), "web")
    assert url == f"/photos/7/web?v={'ab' * 8}"


def test_samples_get_their_content_types(user_client: FlaskClient, sample: Callable[[str], Path]) -> None:
    for name, mimetype in [
        ("photoprism__iphone_15_pro.heic", "image/heic"),
        ("lychee__png.png", "image/png"),
    ]:
        stored = store(user_client, sample(name).read_bytes(), name)
        assert user_client.get(f"/photos/{stored['id']}/original").mimetype == mimetype
        assert user_client.get(f"/photos/{stored['id']}/web").mimetype == "image/jpeg"


def test_download_uses_a_safe_original_name(user_client: FlaskClient, tmp_path: Path) -> None:
    body = make_jpeg(tmp_path / "d.jpg", seed=2).read_bytes()
    stored = store(user_client, body, "../../Tokyo tower.jpg")
    response = user_client.get(f"/photos/{stored['id']}/original?download=1")
    assert response.status_code == 200 and response.data == body
    assert response.headers["Content-Disposition"] == 'attachment; filename="Tokyo tower.jpg"'
    web = user_client.get(f"/photos/{stored['id']}/web?download=1")
    assert web.headers["Content-Disposition"] == 'attachment; filename="Tokyo tower-web.jpg"'


def test_download_names_without_ascii_or_with_markup(user_client: FlaskClient, tmp_path: Path) -> None:
    unicode = store(user_client, make_jpeg(tmp_path / "u.jpg", seed=3).read_bytes(), "東京.jpg")
    header = user_client.get(f"/photos/{unicode['id']}/original?download=1").headers["Content-Disposition"]
    assert header.startswith("attachment;") and "filename*=UTF-8''%E6%9D%B1%E4%BA%AC.jpg" in header
    markup = store(user_client, make_jpeg(tmp_path / "m.jpg", seed=4).read_bytes(), "<script>.jpg")
    header = user_client.get(f"/photos/{markup['id']}/original?download=1").headers["Content-Disposition"]
    assert header == 'attachment; filename="<script>.jpg"'
    dots = store(user_client, make_jpeg(tmp_path / "n.jpg", seed=5).read_bytes(), "..")
    header = user_client.get(f"/photos/{dots['id']}/original?download=1").headers["Content-Disposition"]
    assert header == f"attachment; filename=photo-{dots['id']}.jpg"


def test_another_users_photo_is_404_not_403(app: Flask, photo: dict[str, Any]) -> None:
    make_user(app, "bob")
    bob = app.test_client()
    sign_in(bob, "bob")
    for kind in ("original", "web", "thumb"):
        response = bob.get(f"/photos/{photo['id']}/{kind}")
        assert response.status_code == 404 and photo["sha256"] not in response.get_data(as_text=True)
    assert bob.get("/photos/999999/thumb").status_code == 404


def test_anonymous_visitor_is_sent_to_login(app: Flask, client: FlaskClient, photo: dict[str, Any]) -> None:
    response = app.test_client().get(f"/photos/{photo['id']}/original")
    assert response.status_code in (302, 303) and "/login" in response.location


@pytest.mark.parametrize(
    "path",
    [
        "/photos/../../journal.db",
        "/photos/1/../../journal.db",
        "/photos/%2e%2e/%2e%2e/journal.db",
        "/photos/1/original/../../../journal.db",
        "/photos/1/..%2f..%2fjournal.db",
        "/photos/1/secret_key",
        "/photos/-1/thumb",
        "/static/../journal.db",
        "/static/..%2fjournal.db",
    ],
)
def test_paths_never_reach_the_data_home(user_client: FlaskClient, photo: dict[str, Any], path: str) -> None:
    response = user_client.get(path)
    assert response.status_code == 404
    assert b"SQLite format" not in response.data


def test_missing_file_is_404(app: Flask, user_client: FlaskClient, photo: dict[str, Any]) -> None:
    settings = app.config["JOURNAL_SETTINGS"]
    thumb = next((settings.uploads_dir / "thumb").rglob("*.jpg"))
    thumb.unlink()
    assert user_client.get(f"/photos/{photo['id']}/thumb").status_code == 404
    assert user_client.get(f"/photos/{photo['id']}/web").status_code == 200


def test_stored_path_outside_uploads_is_refused(
    app: Flask, user_client: FlaskClient, photo: dict[str, Any]
) -> None:
    with app.extensions["journal.sessions"].begin() as s:
        s.get(Photo, photo["id"]).stored_path = "../journal.db"
    assert user_client.get(f"/photos/{photo['id']}/original").status_code == 404
