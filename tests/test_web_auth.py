"""Owner set-up, login, logout, throttling, CSRF, bearer tokens and security headers."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete

from journal.app import create_app
from journal.models import LoginThrottle
from tests.databases import settings_for
from tests.test_services_throttle import Clock
from tests.web import PASSWORD, csrf_token, make_user, sign_in


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


@pytest.fixture
def clock(app: Flask) -> Clock:
    """The app's throttle clock, moved by hand (no sleeping)."""
    fake = Clock()
    app.extensions["journal.throttle"].clock = fake
    return fake


def attempt(client: FlaskClient, name: str, password: str, address: str = "127.0.0.1") -> int:
    token = csrf_token(client)
    data = {"name": name, "password": password, "csrf_token": token}
    return client.post("/login", data=data, environ_base={"REMOTE_ADDR": address}).status_code


def test_wrong_password_and_throttle(app: Flask, client: FlaskClient, clock: Clock) -> None:
    make_user(app, "bob")
    statuses = [attempt(client, "bob", "nope-nope") for _ in range(7)]
    assert statuses == [401] * 5 + [429] * 2
    assert attempt(client, "bob", PASSWORD) == 429  # even the right password waits while throttled
    clock.advance(1)
    assert attempt(client, "bob", PASSWORD) == 302  # ... and works once the delay has run out


def test_other_addresses_get_no_fresh_tries(app: Flask, client: FlaskClient, clock: Clock) -> None:
    make_user(app, "bob")
    assert [attempt(client, "bob", "nope-nope", f"198.51.100.{i}") for i in range(5)] == [401] * 5
    assert attempt(client, "bob", "nope-nope", "198.51.100.99") == 429
    assert attempt(client, "bob", "nope-nope", "2001:db8::1") == 429
    page = client.post("/login", data={"name": "bob", "password": "x", "csrf_token": csrf_token(client)})
    assert "Try again in" in page.get_data(as_text=True)


def test_a_hostile_address_does_not_lock_out_the_real_user(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    make_user(app, "bob")
    for _ in range(21):  # each try as soon as the (capped) delay allows
        assert attempt(client, "bob", "nope-nope", "203.0.113.66") == 401
        clock.advance(60)
    attempt(client, "bob", "nope-nope", "203.0.113.66")
    assert attempt(client, "bob", PASSWORD, "192.0.2.10") == 429
    clock.advance(60)  # the cap: never longer
    assert attempt(client, "bob", PASSWORD, "192.0.2.10") == 302
    assert attempt(app.test_client(), "carol", "nope-nope", "203.0.113.66") == 401
    assert attempt(app.test_client(), "dave", "nope-nope", "203.0.113.66") == 429  # still slowed


def test_two_app_instances_share_the_throttle(app: Flask, client: FlaskClient, clock: Clock) -> None:
    make_user(app, "bob")
    second = create_app(app.config["JOURNAL_SETTINGS"], TESTING=True)
    second.extensions["journal.throttle"].clock = clock
    other = second.test_client()
    try:
        for i in range(5):
            assert attempt(client if i % 2 else other, "bob", "nope-nope", f"198.51.100.{i}") == 401
        assert attempt(other, "bob", PASSWORD, "192.0.2.1") == 429
        assert attempt(client, "bob", PASSWORD, "192.0.2.1") == 429
    finally:
        second.extensions["journal.engine"].dispose()


def test_throttle_state_lives_in_each_home_database_only(
    app: Flask, client: FlaskClient, clock: Clock, tmp_path: Path, another_database_url: str | None
) -> None:
    """Failures on one home's app never slow another home's; a new app on the same home knows
    exactly what that database holds (no state kept in the process between apps)."""
    make_user(app, "bob")
    elsewhere = create_app(settings_for(tmp_path / "other-home", another_database_url), TESTING=True)
    elsewhere.extensions["journal.throttle"].clock = clock
    make_user(elsewhere, "bob")
    try:
        assert [attempt(client, "bob", "nope-nope") for _ in range(6)] == [401] * 5 + [429]
        assert attempt(elsewhere.test_client(), "bob", PASSWORD) == 302  # the other home: not slowed

        again = create_app(app.config["JOURNAL_SETTINGS"], TESTING=True)
        again.extensions["journal.throttle"].clock = clock
        try:
            assert attempt(again.test_client(), "bob", PASSWORD) == 429  # the database remembers
            with app.extensions["journal.sessions"]() as s, s.begin():
                s.execute(delete(LoginThrottle))
            assert attempt(again.test_client(), "bob", PASSWORD) == 302  # ... and nothing else does
            assert attempt(client, "bob", "nope-nope") == 401
        finally:
            again.extensions["journal.engine"].dispose()
    finally:
        elsewhere.extensions["journal.engine"].dispose()


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
