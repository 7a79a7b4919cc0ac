"""The export blueprint: the page, running exports (in the background and without JS), bundles, zones."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from journal.config import Settings
from journal.errors import Conflict, NotFound
from journal.models import Export, PrivacyZone, Trip
from journal.services import zones
from journal.web.export import Job, Jobs, parse_export_form
from tests.test_services_exporting import Library, create_user, make_library
from tests.waiting import wait_until
from tests.web import csrf_token, sign_in

XSS = "<script>alert(1)</script>"
PASSWORD = "password123"
JSON = {"Accept": "application/json"}


@pytest.fixture
def library(
    app: Flask, settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> Library:
    return make_library(settings, session_factory, tmp_path)


@pytest.fixture
def alice(client: FlaskClient, library: Library) -> FlaskClient:
    sign_in(client, "alice", PASSWORD)
    return client


@pytest.fixture
def bob(app: Flask, session_factory: sessionmaker[Session], library: Library) -> FlaskClient:
    create_user(session_factory, "bob")
    other = app.test_client()
    sign_in(other, "bob", PASSWORD)
    return other


def form(client: FlaskClient, **fields: str) -> dict[str, str]:
    return {**fields, "csrf_token": csrf_token(client, "/export")}


def export_sync(client: FlaskClient, **fields: str) -> int:
    """Run an export through the no-JS form; returns the newest bundle's id."""
    response = client.post("/export", data=form(client, **fields))
    assert response.status_code == 303, response.get_data(as_text=True)
    ids = [
        int(i)
        for i in re.findall(r"/export/bundles/(\d+)/download", client.get("/export").get_data(as_text=True))
    ]
    return max(ids)


def wait_for(client: FlaskClient, status_url: str, timeout_s: float = 120) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        state: dict[str, Any] = client.get(status_url, headers=JSON).get_json()
        return state if state["state"] != "running" else None

    return wait_until(finished, timeout_s, "the export job to finish", interval_s=0.1)


def test_pages_need_login(app: Flask, client: FlaskClient, library: Library) -> None:
    for path in ("/export", "/export/jobs/abc", "/export/bundles/1/download"):
        assert client.get(path).status_code == 302


def test_page_lists_platforms_zones_and_nothing_yet(alice: FlaskClient) -> None:
    response = alice.get("/export")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "New export" in html and "Privacy zones" in html and "No bundles yet" in html
    assert 'value="instagram"' in html and "1080 px wide, 10 photos per post" in html
    assert 'src="/static/js/export.js"' in html and "<script>" not in html
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])
    assert nonce and "unsafe-inline" not in response.headers["Content-Security-Policy"]


def test_forms_need_csrf(alice: FlaskClient) -> None:
    assert alice.post("/export", data={"platform": "original"}).status_code == 400
    assert alice.post("/export/zones", data={"lat": "1", "lon": "1", "radius_m": "100"}).status_code == 400
    assert alice.post("/export/bundles/1/published", data={}).status_code == 400


def test_export_without_js_runs_in_the_request(alice: FlaskClient, settings: Settings) -> None:
    response = alice.post(
        "/export", data=form(alice, platform="instagram", location="none"), follow_redirects=True
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Exported 4 posts in 1 bundle." in html
    assert html.count("/download") == 1 and ">instagram<" in html and ">none<" in html and ">1/1<" in html
    assert list(settings.exports_dir.glob("*-instagram-*.zip"))
    again = alice.post("/export", data=form(alice, platform="instagram"), follow_redirects=True)
    assert "Nothing to export" in again.get_data(as_text=True)


def test_export_in_the_background_with_progress(alice: FlaskClient, bob: FlaskClient) -> None:
    started = alice.post("/export", data=form(alice, platform="mastodon", max_batch_mb="0.05"), headers=JSON)
    assert started.status_code == 202
    body = started.get_json()
    assert bob.get(body["status_url"], headers=JSON).status_code == 404  # not bob's job
    state = wait_for(alice, body["status_url"])
    assert state["state"] == "done" and state["percent"] == 100 and state["done"] == state["total"] == 8
    assert len(state["files"]) == 4 and state["error"] is None
    page = alice.get(body["page_url"]).get_data(as_text=True)
    assert "Exported 4 posts in 4 bundles." in page and page.count("/download") == 4
    assert bob.get("/export").get_data(as_text=True).count("/download") == 0


def test_refused_form_values(
    alice: FlaskClient, bob: FlaskClient, session_factory: sessionmaker[Session]
) -> None:
    bad = alice.post("/export", data=form(alice, platform="myspace"))
    assert bad.status_code == 400 and "unknown platform" in bad.get_data(as_text=True)
    assert alice.post("/export", data=form(alice, format="pdf")).status_code == 400
    assert alice.post("/export", data=form(alice, max_batch_mb="lots")).status_code == 400
    as_json = alice.post("/export", data=form(alice, location="fuzzy"), headers=JSON)
    assert as_json.status_code == 400 and "location" in as_json.get_json()["error"]
    with session_factory() as s:
        trip_id = s.scalars(select(Trip.id)).one()
    assert bob.post("/export", data=form(bob, trip=str(trip_id))).status_code == 404


def test_download_is_owner_only(
    alice: FlaskClient, bob: FlaskClient, session_factory: sessionmaker[Session]
) -> None:
    export_id = export_sync(alice, trip="", platform="original")
    response = alice.get(f"/export/bundles/{export_id}/download")
    with session_factory() as s:
        row = s.get(Export, export_id)
        assert row is not None
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == f"attachment; filename={row.name}"
    assert response.data == Path(row.path).read_bytes()
    response.close()
    assert bob.get(f"/export/bundles/{export_id}/download").status_code == 404
    assert alice.get("/export/bundles/99999/download").status_code == 404
    Path(row.path).unlink()
    assert alice.get(f"/export/bundles/{export_id}/download").status_code == 404
    assert "file gone" in alice.get("/export").get_data(as_text=True)


def test_mark_as_published(alice: FlaskClient, bob: FlaskClient) -> None:
    export_id = export_sync(alice)
    url = f"/export/bundles/{export_id}/published"
    bad = alice.post(url, data=form(alice, url="javascript:alert(1)"))
    assert bad.status_code == 400 and "http://" in bad.get_data(as_text=True)
    assert bob.post(url, data=form(bob, url="")).status_code == 404
    done = alice.post(url, data=form(alice, url="https://example.org/p/1"), follow_redirects=True)
    html = done.get_data(as_text=True)
    assert "Marked 4 posts" in html and 'class="status published"' in html
    assert 'href="https://example.org/p/1"' in html


def test_privacy_zones(alice: FlaskClient, bob: FlaskClient, session_factory: sessionmaker[Session]) -> None:
    added = alice.post(
        "/export/zones", data=form(alice, label=XSS, lat="52.52", lon="13,405", radius_m="300")
    )
    assert added.status_code == 303 and added.location.endswith("/export#zones")
    html = alice.get("/export").get_data(as_text=True)
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "52.52, 13.405" in html
    refused = alice.post("/export/zones", data=form(alice, label="x", lat="95", lon="0", radius_m="300"))
    assert refused.status_code == 400 and "not a position" in refused.get_data(as_text=True)
    with session_factory() as s:
        zone_id = s.scalars(select(PrivacyZone.id)).one()
    assert bob.post(f"/export/zones/{zone_id}/delete", data=form(bob)).status_code == 404
    assert alice.post(f"/export/zones/{zone_id}/delete", data=form(alice)).status_code == 303
    with session_factory() as s:
        assert zones.list_zones(s, 1) == []


def test_user_text_is_escaped(
    alice: FlaskClient, session_factory: sessionmaker[Session], library: Library
) -> None:
    with session_factory() as s, s.begin():
        s.add(Trip(user_id=library.user_id, title=XSS))
    html = alice.get("/export").get_data(as_text=True)
    assert XSS not in html and "&lt;script&gt;" in html


def test_jobs_are_per_user_and_one_at_a_time() -> None:
    registry = Jobs()
    release = threading.Event()

    def work(job: Job) -> None:
        release.wait(10)
        job.fail("stopped")

    job = registry.start(1, work)
    with pytest.raises(Conflict):
        registry.start(1, work)
    other = registry.start(2, work)
    assert registry.get(1, job.id) is job and registry.running(1) is job
    with pytest.raises(NotFound):
        registry.get(2, job.id)
    release.set()
    wait_until(lambda: job.state != "running" and other.state != "running", 10, "both jobs to stop")
    assert job.as_json()["state"] == "failed" and job.as_json()["error"] == "stopped"
    assert registry.running(1) is None


def test_parse_export_form() -> None:
    from werkzeug.datastructures import MultiDict

    request = parse_export_form(
        MultiDict(
            {"platform": "X", "location": "approx", "format": "eml", "max_batch_mb": "2,5", "all": "1"}
        ),
        7,
    )
    assert (request.user_id, request.platform, request.location, request.format) == (7, "x", "approx", "eml")
    assert request.max_batch_bytes == 2_500_000 and request.include_exported and request.trip_id is None
