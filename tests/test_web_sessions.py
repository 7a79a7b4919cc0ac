"""Revocable sessions: logout, password change and "sign out everywhere" end cookies on the server;
Secure cookies over HTTPS (and behind a proxy); trusted hosts against DNS rebinding on /setup."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_login.utils import encode_cookie
from sqlalchemy import select

from journal.app import create_app
from journal.config import Settings
from journal.models import LoginThrottle
from journal.services import users
from tests.web import PASSWORD, csrf_token, make_user, sign_in

NEW_PASSWORD = "a brand new passphrase"


def session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def replay(app: Flask, cookie: str, name: str = "session") -> FlaskClient:
    """Another browser that was handed a copy of the cookie."""
    other = app.test_client()
    other.set_cookie(name, cookie)
    return other


def signed_in(client: FlaskClient) -> bool:
    return client.get("/accounts").status_code != 302


def test_cookie_copied_before_logout_stops_working(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    sign_in(client)
    copied = session_cookie(client)
    assert signed_in(replay(app, copied))  # the copy works while the session lives
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/accounts")}).status_code == 302
    assert not signed_in(client)
    assert not signed_in(replay(app, copied))


def test_a_remember_cookie_cannot_bring_an_ended_session_back(app: Flask, client: FlaskClient) -> None:
    user_id = make_user(app)
    sign_in(client)
    with client.session_transaction() as cookie_session:
        kept_id = cookie_session["_user_id"]
    client.post("/logout", data={"csrf_token": csrf_token(client, "/accounts")})
    with app.test_request_context():
        remembered = encode_cookie(kept_id)
        forged = encode_cookie(str(user_id))  # the old cookies' format: a bare user id
    assert not signed_in(replay(app, remembered, "remember_token"))
    assert not signed_in(replay(app, forged, "remember_token"))


def change_password(client: FlaskClient, current: str, new: str = NEW_PASSWORD) -> Any:
    token = csrf_token(client, "/account")
    data = {"current": current, "password": new, "confirm": new, "csrf_token": token}
    return client.post("/account", data=data)


def test_password_change_signs_out_every_other_session(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    sign_in(client)
    phone = app.test_client()
    sign_in(phone)
    copied = session_cookie(client)
    response = change_password(client, PASSWORD)
    assert response.status_code == 302
    assert signed_in(client)  # the browser that changed it stays signed in
    assert not signed_in(phone)
    fresh = app.test_client()
    assert (
        fresh.post(
            "/login", data={"name": "alice", "password": PASSWORD, "csrf_token": csrf_token(fresh)}
        ).status_code
        == 401
    )
    sign_in(fresh, password=NEW_PASSWORD)
    assert signed_in(replay(app, copied))  # same session: its cookie was not revoked


def test_password_change_needs_the_current_password(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    sign_in(client)
    phone = app.test_client()
    sign_in(phone)
    response = change_password(client, "not my password")
    assert response.status_code == 400 and "current password is wrong" in response.get_data(as_text=True)
    assert signed_in(phone)
    sign_in(app.test_client())  # the old password still works
    short = change_password(client, PASSWORD, new="short")
    assert short.status_code == 200 and signed_in(phone)
    forged = client.post(
        "/account", data={"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert forged.status_code == 400 and signed_in(phone)  # no CSRF token
    sign_in(app.test_client())  # the old password still works


def test_sign_out_everywhere(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    make_user(app, "bob")
    sign_in(client)
    phone = app.test_client()
    sign_in(phone)
    bob = app.test_client()
    sign_in(bob, "bob")
    copied = session_cookie(client)
    token = csrf_token(client, "/account")
    assert client.post("/account/sign-out-everywhere", data={"csrf_token": token}).status_code == 302
    assert not signed_in(client) and not signed_in(phone) and not signed_in(replay(app, copied))
    assert signed_in(bob)  # other accounts are not touched


def test_account_page_shows_sessions(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    sign_in(client)
    sign_in(app.test_client())
    page = client.get("/account").get_data(as_text=True)
    assert "2 browser sessions" in page and "Sign out everywhere" in page


def test_idle_sessions_are_pruned(app: Flask, client: FlaskClient) -> None:
    from datetime import timedelta

    from journal.models import UserSession, utcnow

    make_user(app)
    sign_in(client)
    with app.extensions["journal.sessions"]() as s, s.begin():
        for row in s.scalars(select(UserSession)):
            row.last_seen_at = utcnow() - users.SESSION_IDLE - timedelta(minutes=1)
    assert not signed_in(client)
    sign_in(app.test_client())  # a new login prunes the idle row
    with app.extensions["journal.sessions"]() as s:
        assert len(s.scalars(select(UserSession)).all()) == 1


# --- cookies over HTTPS, reverse proxies -------------------------------------------------------


@pytest.fixture
def make_app(settings: Settings) -> Iterator[Any]:
    """Build apps with changed settings on the test's data home; disposed at the end."""
    built: list[Flask] = []

    def build(**changes: Any) -> Flask:
        application = create_app(settings.with_(**changes), TESTING=True)
        built.append(application)
        return application

    yield build
    for application in built:
        application.extensions["journal.engine"].dispose()


def session_set_cookie(response: Any) -> str:
    (header,) = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]
    return str(header)


def test_session_cookie_is_secure_over_https_only(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    assert "Secure" in session_set_cookie(client.get("/login", base_url="https://localhost"))
    plain = app.test_client().get("/login")
    assert "Secure" not in session_set_cookie(plain) and "HttpOnly" in session_set_cookie(plain)


def test_cookie_secure_setting_forces_it(make_app: Any) -> None:
    application = make_app(cookie_secure=True)
    make_user(application)
    assert "Secure" in session_set_cookie(application.test_client().get("/login"))


def test_proxy_fix_trusts_one_proxy(make_app: Any) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    direct = make_app()
    make_user(direct)
    assert "Secure" not in session_set_cookie(direct.test_client().get("/login", headers=forwarded))
    proxied = make_app(proxy_fix=1)
    client = proxied.test_client()
    assert "Secure" in session_set_cookie(client.get("/login", headers=forwarded))
    token = csrf_token(client)
    client.post(
        "/login",
        data={"name": "alice", "password": "wrong-one", "csrf_token": token},
        headers={"X-Forwarded-For": "203.0.113.7"},
    )
    with proxied.extensions["journal.sessions"]() as s:
        keys = set(s.scalars(select(LoginThrottle.key)))
    assert "addr:203.0.113.7" in keys  # the client's address, not the proxy's


# --- trusted hosts: no claiming a fresh install through DNS rebinding ----------------------------


TRUSTED_BASES = ["http://127.0.0.1:5000", "http://[::1]:5000", "http://192.168.1.20:5000", "http://localhost"]


def test_setup_answers_on_ip_literals_and_localhost_only(app: Flask, client: FlaskClient) -> None:
    for base in TRUSTED_BASES:  # DNS rebinding needs a name: an IP literal cannot be rebound
        response = client.get("/setup", base_url=base)
        assert response.status_code == 200 and "Create account" in response.get_data(as_text=True)
    rebound = "http://attacker.example:5000"
    page = client.get("/setup", base_url=rebound)
    assert page.status_code == 400 and "JOURNAL_TRUSTED_HOSTS" in page.get_data(as_text=True)
    token = csrf_token(client, "/setup")
    data = {"name": "mallory", "password": PASSWORD, "confirm": PASSWORD, "csrf_token": token}
    assert client.post("/setup", data=data, base_url=rebound).status_code == 400
    assert client.post("/setup", data=data, headers={"Host": "attacker.example"}).status_code == 400
    with app.extensions["journal.sessions"]() as s:
        assert users.count_users(s) == 0


def test_trusted_hosts_setting_applies_to_every_page(make_app: Any) -> None:
    application = make_app(trusted_hosts=("journal.example.org", ".home.arpa"))
    client = application.test_client()
    assert client.get("/setup", base_url="http://journal.example.org").status_code == 200
    assert client.get("/setup", base_url="http://laptop.home.arpa").status_code == 200
    assert client.get("/healthz", base_url="http://127.0.0.1:5000").status_code == 200
    assert client.get("/healthz", base_url="http://attacker.example").status_code == 400
    make_user(application)
    assert client.get("/login", base_url="http://attacker.example").status_code == 400
    assert client.get("/login", base_url="http://journal.example.org").status_code == 200


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("JOURNAL_TRUSTED_HOSTS", "Journal.Example.org, .home.arpa ,")
    monkeypatch.setenv("JOURNAL_PROXY_FIX", "1")
    monkeypatch.setenv("JOURNAL_COOKIE_SECURE", "1")
    settings = Settings.from_env(tmp_path)
    assert settings.trusted_hosts == ("journal.example.org", ".home.arpa")
    assert settings.proxy_fix == 1 and settings.cookie_secure is True
    assert Settings(home=tmp_path).trusted_hosts == () and Settings(home=tmp_path).proxy_fix == 0
