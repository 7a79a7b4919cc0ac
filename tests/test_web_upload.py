"""The upload page: login, the form the script drives, the no-script POST, staging, limits."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from journal.app import create_app
from journal.config import Settings
from journal.services import importing
from journal.web.upload import StagingRequest
from tests.databases import settings_for
from tests.imaging import make_jpeg
from tests.web import csrf_token, make_user, sign_in


def json_of(response: TestResponse) -> Any:
    """A response's JSON document (asserted to be there)."""
    data = response.get_json()
    assert data is not None
    return data


def test_upload_page_needs_login(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    response = client.get("/upload")
    assert response.status_code in (302, 303) and "/login" in response.location


def test_upload_page_offers_the_form(user_client: FlaskClient) -> None:
    response = user_client.get("/upload")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'type="file" name="file" multiple accept="image/*,.heic,.heif,.gpx"' in page
    assert 'name="csrf_token"' in page and 'data-upload-url="/api/photos"' in page
    assert 'data-check-url="/api/photos/check"' in page and 'data-max-bytes="200000000"' in page
    assert 'name="mode" value="one"' in page and 'list="trip-titles"' in page
    assert "js/upload.js" in page and "<script>" not in page  # no inline script: the CSP has none


def test_upload_page_lists_trips_escaped(app: Flask, user_client: FlaskClient) -> None:
    with app.extensions["journal.sessions"].begin() as s:
        importing.get_or_create_trip(s, 1, '<b>"Korea"</b>')
    page = user_client.get("/upload").get_data(as_text=True)
    assert '<option value="&lt;b&gt;&#34;Korea&#34;&lt;/b&gt;">' in page


def test_limit_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str | None
) -> None:
    monkeypatch.setenv("JOURNAL_MAX_UPLOAD_MB", "3")
    settings = Settings.from_env(tmp_path / "env-home", workers=1, database_url=database_url or "")
    assert settings.max_upload_bytes == 3_000_000
    app = create_app(settings, TESTING=True)
    make_user(app)
    client = app.test_client()
    sign_in(client)
    page = client.get("/upload").get_data(as_text=True)
    assert 'data-max-bytes="3000000"' in page and "up to 3.0 MB each" in page
    app.extensions["journal.engine"].dispose()


def test_no_script_form_imports_and_shows_names_escaped(user_client: FlaskClient, tmp_path: Path) -> None:
    token = csrf_token(user_client, "/upload")
    good = make_jpeg(tmp_path / "a.jpg", seed=1).read_bytes()
    data = {
        "csrf_token": token,
        "caption": "Harbour",
        "mode": "one",
        "file": [(io.BytesIO(good), "<script>alert(1)</script>.jpg"), (io.BytesIO(b"nope"), "broken.jpg")],
    }
    response = user_client.post("/upload", data=data, content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.jpg" in page and "<script>alert" not in page
    assert 'data-state="imported"' in page and 'data-state="failed"' in page
    assert "not a readable JPG file" in page and "Done: 2 files" in page


def test_no_script_form_without_csrf_is_refused(user_client: FlaskClient, tmp_path: Path) -> None:
    body = make_jpeg(tmp_path / "a.jpg", seed=2).read_bytes()
    response = user_client.post("/upload", data={"file": (io.BytesIO(body), "a.jpg")})
    assert response.status_code == 400


def test_no_script_form_without_files_says_so(user_client: FlaskClient) -> None:
    token = csrf_token(user_client, "/upload")
    data = {"csrf_token": token, "file": (io.BytesIO(b""), "")}
    response = user_client.post("/upload", data=data, content_type="multipart/form-data")
    assert response.status_code == 400 and "no file" in response.get_data(as_text=True)


def test_over_the_limit_page_post_is_413(tmp_path: Path, database_url: str | None) -> None:
    app = create_app(settings_for(tmp_path / "small", database_url, max_upload_bytes=50_000), TESTING=True)
    make_user(app)
    client = app.test_client()
    sign_in(client)
    body = make_jpeg(tmp_path / "big.jpg", (800, 600), seed=3, quality=95).read_bytes()
    data = {"csrf_token": csrf_token(client, "/upload"), "file": (io.BytesIO(body), "big.jpg")}
    response = client.post("/upload", data=data, content_type="multipart/form-data")
    assert response.status_code == 413 and "too large" in response.get_data(as_text=True)
    app.extensions["journal.engine"].dispose()


def test_uploads_are_spooled_in_staging_and_removed(
    app: Flask, user_client: FlaskClient, tmp_path: Path
) -> None:
    assert issubclass(app.request_class, StagingRequest)
    staging = app.config["JOURNAL_SETTINGS"].staging_dir
    body = make_jpeg(tmp_path / "a.jpg", (1200, 900), seed=4).read_bytes()
    seen: list[Path] = []
    original = StagingRequest._get_file_stream

    def spy(self: StagingRequest, *args: object, **kwargs: object) -> object:
        stream = original(self, *args, **kwargs)  # type: ignore[arg-type]
        seen.append(Path(stream.name))
        return stream

    token = csrf_token(user_client, "/upload")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(StagingRequest, "_get_file_stream", spy)
        response = user_client.post(
            "/api/photos",
            data={"file": (io.BytesIO(body), "../evil name.JPG")},
            headers={"X-CSRFToken": token},
            content_type="multipart/form-data",
        )
    assert json_of(response)["results"][0]["status"] == "imported"
    (path,) = seen
    assert path.parent == staging and path.name.startswith(".tmp-upload-") and path.suffix == ".jpg"
    assert not path.exists()
