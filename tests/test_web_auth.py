"""Owner set-up, login, logout, CSRF, bearer tokens and security headers."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, csrf_token, make_user, sign_in


def test_healthz_needs_no_login(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_first_visit_offers_owner_setup(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302 and response.location.endswith("/setup")
    page = client.get("/setup").get_data(as_text=True)
    assert "Create account" in page


def test_setup_creates_owner_and_signs_in(client: FlaskClient) -> None:
    token = csrf_token(client, "/setup")
    data = {"name": "owner", "password": PASSWORD, "confirm": PASSWORD, "csrf_token": token}
    response = client.post("/setup", data=data)
    assert response.status_code == 302
    assert client.get("/setup").status_code == 302  # offered only once
    assert client.get("/healthz").status_code == 200


def test_setup_without_csrf_is_refused(client: FlaskClient) -> None:
    response = client.post("/setup", data={"name": "x", "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 400
    assert client.get("/setup").status_code == 200  # nobody was created


def test_pages_redirect_to_login_and_api_answers_401(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    response = client.get("/")
    assert response.status_code in (302, 303) and "/login" in response.location
    assert client.get("/api/photos.geojson").status_code == 401


def test_wrong_password_and_throttle(app: Flask, client: FlaskClient) -> None:
    make_user(app, "bob")
    token = csrf_token(client)
    statuses = [
        client.post("/login", data={"name": "bob", "password": "nope-nope", "csrf_token": token}).status_code
        for _ in range(7)
    ]
    assert statuses[:5] == [401] * 5
    assert 429 in statuses[5:]
    # even the right password waits while throttled
    ok = client.post("/login", data={"name": "bob", "password": PASSWORD, "csrf_token": token})
    assert ok.status_code == 429


def test_login_and_logout(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    sign_in(client)
    token = csrf_token(client, "/accounts")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/accounts").status_code == 302


def test_login_next_must_stay_on_site(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    token = csrf_token(client)
    response = client.post(
        "/login?next=//evil.example/x", data={"name": "alice", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302 and "evil.example" not in response.location


def test_owner_adds_account_other_user_cannot(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    sign_in(client)
    token = csrf_token(client, "/accounts")
    data = {"name": "carol", "password": PASSWORD, "confirm": PASSWORD, "csrf_token": token}
    assert client.post("/accounts", data=data).status_code == 302
    other = app.test_client()
    sign_in(other, "carol")
    assert other.get("/accounts").status_code == 403


def test_security_headers(client: FlaskClient) -> None:
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_secret_key_file_is_private(app: Flask) -> None:
    settings = app.config["JOURNAL_SETTINGS"]
    assert settings.secret_key_path.stat().st_mode & 0o777 == 0o600
