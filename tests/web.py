"""Driving the web app through a Flask test client: accounts, signing in, CSRF tokens."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

#: The password of the accounts the tests make.
PASSWORD = "correct horse battery"


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page's form."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def make_user(app: Flask, name: str = "alice", password: str = PASSWORD) -> int:
    """Create an account directly through the service; returns its id."""
    from journal.services import users

    with app.extensions["journal.sessions"]() as s, s.begin():
        return users.create_user(s, name, password).id


def sign_in(client: FlaskClient, name: str = "alice", password: str = PASSWORD) -> None:
    """Sign the client in through the real login form."""
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"name": name, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
