"""`journal user passwd`, `journal token add --name --expires-days`, `token list`, `token revoke`."""

from __future__ import annotations

from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from journal.cli import cli
from tests.web import PASSWORD, make_user, sign_in


def test_user_passwd_signs_out_every_session(app: Flask, client: FlaskClient, runner: CliRunner) -> None:
    make_user(app)
    sign_in(client)
    phone = app.test_client()
    sign_in(phone)
    result = runner.invoke(cli, ["user", "passwd", "alice", "--password-stdin"], input="n3w-s3cret-pass\n")
    assert result.exit_code == 0, result.output
    assert "2 sessions signed out" in result.output
    assert client.get("/accounts").status_code == 302 and phone.get("/accounts").status_code == 302
    sign_in(app.test_client(), password="n3w-s3cret-pass")
    short = runner.invoke(cli, ["user", "passwd", "alice", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least" in short.output
    missing = runner.invoke(cli, ["user", "passwd", "nobody", "--password-stdin"], input=PASSWORD + "\n")
    assert missing.exit_code == 1 and "no user named" in missing.output


def test_token_add_list_revoke(app: Flask, runner: CliRunner) -> None:
    make_user(app)
    make_user(app, "bob")
    added = runner.invoke(cli, ["token", "add", "--user", "alice", "--name", "phone", "--expires-days", "30"])
    assert added.exit_code == 0, added.output
    token = added.stdout.strip()
    assert token.startswith("jt_") and "\n" not in token  # scripts read just the token
    assert runner.invoke(cli, ["token", "add", "--user", "bob"]).exit_code == 0
    headers = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/photos.geojson", headers=headers).status_code == 200
    listing = runner.invoke(cli, ["token", "list"])
    assert listing.exit_code == 0
    header, *lines = listing.stdout.splitlines()
    assert header.split("\t") == ["id", "user", "name", "created", "last used", "expires"]
    cells = [line.split("\t") for line in lines]
    assert [(c[1], c[2]) for c in cells] == [("alice", "phone"), ("bob", "-")]
    assert cells[0][4] != "never" and cells[0][5] != "never" and cells[1][4:] == ["never", "never"]
    assert token not in listing.output
    only_bob = runner.invoke(cli, ["token", "list", "--user", "bob"])
    assert [line.split("\t")[1] for line in only_bob.stdout.splitlines()[1:]] == ["bob"]
    revoked = runner.invoke(cli, ["token", "revoke", cells[0][0]])
    assert revoked.exit_code == 0 and "phone" in revoked.output
    assert app.test_client().get("/api/photos.geojson", headers=headers).status_code == 401
    again = runner.invoke(cli, ["token", "revoke", cells[0][0]])
    assert again.exit_code == 1 and "no API token" in again.output
    bad = runner.invoke(cli, ["token", "add", "--user", "alice", "--expires-days", "0"])
    assert bad.exit_code == 2
