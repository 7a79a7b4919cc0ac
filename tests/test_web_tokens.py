"""API tokens: names, expiry, last use, revocation, and the tokens page."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from journal.models import ApiToken, User, utcnow
from journal.services import users
from tests.web import csrf_token, make_user, sign_in


def new_token(app: Flask, name: str = "alice", **options: object) -> str:
    with app.extensions["journal.sessions"]() as s, s.begin():
        user = s.scalars(select(User).where(User.name == name)).one()
        return users.create_token(s, user, "bob-s-script", **options)  # type: ignore[arg-type]


def api_status(app: Flask, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return app.test_client().get("/api/photos.geojson", headers=headers).status_code


def test_expired_token_is_refused(app: Flask) -> None:
    make_user(app)
    token = new_token(app, expires_days=30)
    assert api_status(app, token) == 200
    with app.extensions["journal.sessions"]() as s, s.begin():
        row = s.scalars(select(ApiToken)).one()
        assert row.expires_at is not None and row.last_used_at is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    assert api_status(app, token) == 401


def test_revoked_token_is_refused(app: Flask) -> None:
    make_user(app)
    token = new_token(app)
    assert api_status(app, token) == 200
    with app.extensions["journal.sessions"]() as s, s.begin():
        (info,) = users.list_tokens(s)
        assert info.name == "bob-s-script" and info.last_used_at is not None
        users.revoke_token(s, info.id)
    assert api_status(app, token) == 401


def test_tokens_page_creates_shows_once_and_revokes(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    sign_in(client)
    data = {
        "name": "phone <upload>",
        "expires_days": "7",
        "csrf_token": csrf_token(client, "/account/tokens"),
    }
    response = client.post("/account/tokens", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    (token,) = re.findall(r"jt_[A-Za-z0-9_-]+", page)
    assert "phone &lt;upload&gt;" in page and "<upload>" not in page
    assert api_status(app, token) == 200
    listing = client.get("/account/tokens").get_data(as_text=True)
    assert token not in listing and "phone &lt;upload&gt;" in listing
    with app.extensions["journal.sessions"]() as s:
        (info,) = users.list_tokens(s)
    assert info.expires_at is not None and info.expires_at - utcnow() > timedelta(days=6)
    revoke = client.post(
        f"/account/tokens/{info.id}/revoke", data={"csrf_token": csrf_token(client, "/account/tokens")}
    )
    assert revoke.status_code == 302 and api_status(app, token) == 401


def test_no_revoking_someone_elses_token(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    make_user(app, "bob")
    bobs = new_token(app, "bob")
    sign_in(client)
    with app.extensions["journal.sessions"]() as s:
        (info,) = users.list_tokens(s)
    token = csrf_token(client, "/account/tokens")
    assert "bob-s-script" not in client.get("/account/tokens").get_data(as_text=True)
    assert client.post(f"/account/tokens/{info.id}/revoke", data={"csrf_token": token}).status_code == 404
    huge = client.post("/account/tokens/99999999999999999999999/revoke", data={"csrf_token": token})
    assert huge.status_code == 404
    assert client.post(f"/account/tokens/{info.id}/revoke").status_code == 400  # no CSRF token
    assert api_status(app, bobs) == 200
