"""The posts blueprint: a post from selected photos, reordering, caption, trip, taking photos out."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from journal.models import Photo, Post
from journal.services import library, posts
from tests.databases import use_database
from tests.test_web_library import XSS, add_photos, app_sessions, user_id_of
from tests.web import csrf_token, make_user


@pytest.fixture
def three(app: Flask, user_client: FlaskClient, tmp_path: Path) -> list[int]:
    """Three of Alice's photos, oldest first, each in a post of its own, on trip "Laos"."""
    alice = user_id_of(app, "alice")
    specs: list[dict[str, Any]] = [{"taken_at": datetime(2024, 1, 1, h)} for h in (8, 9, 10)]
    return add_photos(app, alice, tmp_path, specs, trip="Laos")


def form(client: FlaskClient, data: dict[str, str | list[str]] | None = None) -> dict[str, str | list[str]]:
    return {**(data or {}), "csrf_token": csrf_token(client, "/library")}


def make_post(client: FlaskClient, ids: list[int], **fields: str) -> int:
    response = client.post("/posts", data=form(client, {"photo": [str(i) for i in ids], **fields}))
    assert response.status_code == 303, response.get_data(as_text=True)
    match = re.search(r"/posts/(\d+)$", response.location)
    assert match
    return int(match.group(1))


def order(app: Flask, post_id: int) -> list[int]:
    with app_sessions(app)() as s:
        return [
            p.id for p in s.scalars(select(Photo).where(Photo.post_id == post_id).order_by(Photo.position))
        ]


def test_make_a_post_from_the_selection(app: Flask, user_client: FlaskClient, three: list[int]) -> None:
    post_id = make_post(user_client, [three[2], three[0]], caption="Morning walk")
    assert order(app, post_id) == [three[0], three[2]]
    html = user_client.get(f"/posts/{post_id}").get_data(as_text=True)
    assert "Post made of 2 photos." in html and "Morning walk" in html and "2 photos" in html
    assert ">Laos</a>" in html  # the trip the photos shared
    grid = user_client.get("/library").get_data(as_text=True)
    assert 'title="In a post of 2 photos"' in grid


def test_make_a_post_errors(app: Flask, user_client: FlaskClient, three: list[int], tmp_path: Path) -> None:
    response = user_client.post("/posts", data=form(user_client))
    assert response.status_code == 400 and "select at least one photo" in response.get_data(as_text=True)
    bob = make_user(app, "bob")
    bobs = add_photos(app, bob, tmp_path, [{}])
    response = user_client.post("/posts", data=form(user_client, {"photo": [str(three[0]), str(bobs[0])]}))
    assert response.status_code == 404
    assert user_client.post("/posts", data={"photo": [str(three[0])]}).status_code == 400  # no CSRF token


def test_post_page_reorder_and_take_out(app: Flask, user_client: FlaskClient, three: list[int]) -> None:
    post_id = make_post(user_client, three)
    page = user_client.get(f"/posts/{post_id}")
    assert page.status_code == 200 and "Photos, in the order they are published" in page.get_data(
        as_text=True
    )
    move = user_client.post(
        f"/posts/{post_id}/photos/{three[2]}/move", data=form(user_client, {"direction": "up"})
    )
    assert move.status_code == 303
    assert order(app, post_id) == [three[0], three[2], three[1]]
    bad = user_client.post(
        f"/posts/{post_id}/photos/{three[2]}/move", data=form(user_client, {"direction": "left"})
    )
    assert bad.status_code == 400
    out = user_client.post(f"/posts/{post_id}/photos/{three[0]}/remove", data=form(user_client))
    assert out.status_code == 303 and order(app, post_id) == [three[2], three[1]]
    assert "a post of its own now" in user_client.get(f"/posts/{post_id}").get_data(as_text=True)
    missing = user_client.post(f"/posts/{post_id}/photos/{three[0]}/remove", data=form(user_client))
    assert missing.status_code == 404


def test_caption_trip_and_split(app: Flask, user_client: FlaskClient, three: list[int]) -> None:
    post_id = make_post(user_client, three[:2])
    saved = user_client.post(f"/posts/{post_id}/caption", data=form(user_client, {"caption": XSS}))
    assert saved.status_code == 303
    html = user_client.get(f"/posts/{post_id}").get_data(as_text=True)
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert user_client.post(f"/posts/{post_id}/trip", data=form(user_client, {"trip": ""})).status_code == 303
    with app_sessions(app)() as s:
        post = s.get(Post, post_id)
        assert post is not None and post.trip_id is None and post.caption == XSS
        trip_id = library.list_trips(s, user_id_of(app, "alice"))[0].id
    assert (
        user_client.post(f"/posts/{post_id}/trip", data=form(user_client, {"trip": str(trip_id)})).status_code
        == 303
    )
    assert user_client.post(f"/posts/{post_id}/split", data=form(user_client)).status_code == 303
    assert len(order(app, post_id)) == 1


def test_taking_out_the_only_photo_is_refused(user_client: FlaskClient, three: list[int]) -> None:
    post_id = make_post(user_client, three[:1])
    response = user_client.post(f"/posts/{post_id}/photos/{three[0]}/remove", data=form(user_client))
    assert response.status_code == 400 and "only photo" in response.get_data(as_text=True)


def test_other_users_post_is_404(app: Flask, user_client: FlaskClient, tmp_path: Path) -> None:
    bob = make_user(app, "bob")
    bobs = add_photos(app, bob, tmp_path, [{}])
    with app_sessions(app)() as s:
        bob_post = posts.get_post(s, bob, s.get(Photo, bobs[0]).post_id)  # type: ignore[union-attr,arg-type]
        post_id = bob_post.id
    assert user_client.get(f"/posts/{post_id}").status_code == 404
    assert (
        user_client.post(f"/posts/{post_id}/caption", data=form(user_client, {"caption": "x"})).status_code
        == 404
    )
    assert user_client.post(f"/posts/{post_id}/split", data=form(user_client)).status_code == 404
    assert user_client.get("/posts/424242").status_code == 404


@pytest.mark.parametrize("path", ["caption", "trip", "split"])
def test_post_edits_need_csrf(app: Flask, user_client: FlaskClient, three: list[int], path: str) -> None:
    post_id = make_post(user_client, three[:2])
    response = user_client.post(f"/posts/{post_id}/{path}", data={"caption": "x"})
    assert response.status_code == 400 and "did not come from this site" in response.get_data(as_text=True)


def test_post_page_shows_export_and_publication_status(
    app: Flask, user_client: FlaskClient, three: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from journal.cli import cli

    post_id = make_post(user_client, [three[0]], caption="status")
    assert ">not exported</span>" in user_client.get(f"/posts/{post_id}").get_data(as_text=True)
    use_database(monkeypatch, app.config["JOURNAL_SETTINGS"])
    result = CliRunner().invoke(cli, ["export", "--user", "alice", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    bundle = Path(result.stdout.strip().splitlines()[0])
    page = user_client.get(f"/posts/{post_id}").get_data(as_text=True)
    assert ">exported</span>" in page and bundle.name in page
    assert CliRunner().invoke(cli, ["published", str(bundle)]).exit_code == 0
    assert ">published</span>" in user_client.get(f"/posts/{post_id}").get_data(as_text=True)
