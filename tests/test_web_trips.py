"""The trips blueprint: list, create, edit, delete, a trip's page and fixing a camera's clock."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from journal.models import Photo, Post, Trip
from journal.services import editing
from tests.test_web_library import XSS, add_photos, app_sessions, user_id_of
from tests.web import csrf_token, make_user


def form(client: FlaskClient, data: dict[str, str] | None = None) -> dict[str, str]:
    return {**(data or {}), "csrf_token": csrf_token(client, "/trips")}


def create(client: FlaskClient, title: str, **fields: str) -> int:
    response = client.post("/trips", data=form(client, {"title": title, **fields}))
    assert response.status_code == 303, response.get_data(as_text=True)
    match = re.search(r"/trips/(\d+)$", response.location)
    assert match
    return int(match.group(1))


def test_trips_need_login(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    assert client.get("/trips").status_code == 302


def test_empty_list_and_create(user_client: FlaskClient) -> None:
    html = user_client.get("/trips").get_data(as_text=True)
    assert "No trips yet" in html and "Create trip" in html
    trip_id = create(user_client, XSS, start_date="2025-03-01", end_date="2025-03-20", description="By boat")
    page = user_client.get(f"/trips/{trip_id}").get_data(as_text=True)
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "01 Mar 2025 – 20 Mar 2025" in page and "By boat" in page and "No posts on this trip yet" in page
    listing = user_client.get("/trips").get_data(as_text=True)
    assert "1 trip" in listing and "0 posts" in listing and XSS not in listing


def test_create_errors_show_the_form_again(user_client: FlaskClient) -> None:
    create(user_client, "Laos")
    clash = user_client.post("/trips", data=form(user_client, {"title": "Laos"}))
    assert clash.status_code == 409 and "already have a trip called" in clash.get_data(as_text=True)
    bad = user_client.post(
        "/trips", data=form(user_client, {"title": "T", "start_date": "2025-02-02", "end_date": "2025-01-01"})
    )
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "ends before it starts" in html and 'value="2025-02-02"' in html
    assert user_client.post("/trips", data=form(user_client, {"title": " "})).status_code == 400
    assert user_client.post("/trips", data={"title": "No token"}).status_code == 400


def test_edit_and_delete(app: Flask, user_client: FlaskClient, tmp_path: Path) -> None:
    trip_id = create(user_client, "Laos")
    saved = user_client.post(
        f"/trips/{trip_id}", data=form(user_client, {"title": "Laos 2025", "description": "Slow"})
    )
    assert saved.status_code == 303
    assert "Trip saved." in user_client.get(f"/trips/{trip_id}").get_data(as_text=True)
    bad = user_client.post(
        f"/trips/{trip_id}", data=form(user_client, {"title": "Laos", "start_date": "soon"})
    )
    assert bad.status_code == 400 and "not a date" in bad.get_data(as_text=True)
    photo = add_photos(app, user_id_of(app, "alice"), tmp_path, [{}], trip="Laos 2025")[0]
    gone = user_client.post(f"/trips/{trip_id}/delete", data=form(user_client))
    assert gone.status_code == 303 and gone.location.endswith("/trips")
    assert user_client.get(f"/trips/{trip_id}").status_code == 404
    with app_sessions(app)() as s:
        kept = s.get(Photo, photo)
        assert kept is not None and kept.post is not None and kept.post.trip_id is None


def test_trip_page_lists_posts_and_links_the_library(
    app: Flask, user_client: FlaskClient, tmp_path: Path
) -> None:
    alice = user_id_of(app, "alice")
    ids = add_photos(
        app, alice, tmp_path, [{"taken_at": datetime(2024, 3, d, 9)} for d in (2, 1)], trip="Laos"
    )
    with app_sessions(app)() as s:
        trip_id = s.scalar(select(Trip.id).where(Trip.title == "Laos"))
    html = user_client.get(f"/trips/{trip_id}").get_data(as_text=True)
    assert html.index(f"/photos/{ids[1]}?trip={trip_id}") < html.index(f"/photos/{ids[0]}?trip={trip_id}")
    assert f'href="/library?trip={trip_id}"' in html and "2 posts · 2 photos" in html
    assert "TestCam T-1 (2 photos)" in html
    listing = user_client.get("/trips").get_data(as_text=True)
    assert "01 Mar 2024 – 02 Mar 2024" in listing and "/thumb?v=" in listing


def test_shift_camera_clock(app: Flask, user_client: FlaskClient, tmp_path: Path) -> None:
    alice = user_id_of(app, "alice")
    ids = add_photos(
        app, alice, tmp_path, [{"taken_at": datetime(2024, 3, 1, 2), "offset": "+01:00"}], trip="Laos"
    )
    with app_sessions(app)() as s:
        trip_id = s.scalar(select(Trip.id).where(Trip.title == "Laos"))
        assert trip_id is not None
        camera = editing.trip_cameras(s, alice, trip_id)[0].key
    response = user_client.post(
        f"/trips/{trip_id}/clock", data=form(user_client, {"camera": camera, "shift": "+6:00"})
    )
    assert response.status_code == 303
    assert "Moved the time of 1 photo by +6:00." in user_client.get(f"/trips/{trip_id}").get_data(
        as_text=True
    )
    with app_sessions(app)() as s:
        photo = s.get(Photo, ids[0])
        assert photo is not None and photo.taken_at == datetime(2024, 3, 1, 8)
    bad = user_client.post(
        f"/trips/{trip_id}/clock", data=form(user_client, {"camera": camera, "shift": "6"})
    )
    assert bad.status_code == 400 and "with its sign" in bad.get_data(as_text=True)
    assert (
        user_client.post(f"/trips/{trip_id}/clock", data={"camera": camera, "shift": "+1"}).status_code == 400
    )


def test_other_users_trip_is_404(app: Flask, user_client: FlaskClient, tmp_path: Path) -> None:
    bob = make_user(app, "bob")
    add_photos(app, bob, tmp_path, [{}], trip="Bob's trip")
    with app_sessions(app)() as s:
        trip_id = s.scalar(select(Trip.id).where(Trip.user_id == bob))
        post_count = s.scalar(select(Post.id).where(Post.trip_id == trip_id))
    assert post_count is not None
    assert user_client.get(f"/trips/{trip_id}").status_code == 404
    assert user_client.post(f"/trips/{trip_id}", data=form(user_client, {"title": "Mine"})).status_code == 404
    assert user_client.post(f"/trips/{trip_id}/delete", data=form(user_client)).status_code == 404
    shift = user_client.post(
        f"/trips/{trip_id}/clock", data=form(user_client, {"camera": "[null, null]", "shift": "+1"})
    )
    assert shift.status_code == 404
    assert "Bob&#39;s trip" not in user_client.get("/trips").get_data(as_text=True)


@pytest.mark.parametrize("suffix", ["", "/clock", "/delete"])
def test_trip_edits_need_csrf(user_client: FlaskClient, suffix: str) -> None:
    trip_id = create(user_client, "Laos")
    response = user_client.post(f"/trips/{trip_id}{suffix}", data={"title": "x"})
    assert response.status_code == 400 and "did not come from this site" in response.get_data(as_text=True)
