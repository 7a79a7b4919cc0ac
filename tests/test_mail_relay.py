"""Misuse by a second account: e-mail bundles only reach recipients the owner allows, one per message.

A real SMTP server (aiosmtpd on 127.0.0.1) records every RCPT TO it is asked for, so a recipient
smuggled past the checks would show up on the server side.
"""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from journal.app import create_app
from journal.cli import cli
from journal.config import Settings
from journal.errors import InvalidInput
from journal.models import Export, OutgoingMessage, User
from journal.publish import mail
from tests.databases import use_database
from tests.imaging import make_jpeg
from tests.test_services_exporting import import_files
from tests.web import PASSWORD, csrf_token, make_user, sign_in

ALLOWED = "blog@example.org"
EVIL = "evil@attacker.example"
HOSTILE_TO = [
    EVIL,
    f"{ALLOWED}, {EVIL}",
    f"{ALLOWED}; {EVIL}",
    f"{ALLOWED}\r\nBcc: {EVIL}",
    f"{ALLOWED}\nBcc: {EVIL}",
    f'"{ALLOWED}" <{EVIL}>',
    f"=?utf-8?q?blog=40example.org?= <{EVIL}>",
    f"{EVIL} ({ALLOWED})",
    f"friends: {ALLOWED}, {EVIL};",
    f'"{ALLOWED}"@attacker.example',
    f"{ALLOWED}@attacker.example",
    f"blog%attacker.example@{ALLOWED.split('@')[1]}",
    f"<{ALLOWED}>{EVIL}",
    "blog@example.org.attacker.example",
    "nobody",
]


@dataclass
class RcptRecorder:
    """aiosmtpd handler: every RCPT TO asked for, and each accepted message's envelope recipients."""

    rcpts: list[str] = field(default_factory=list)
    accepted: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        self.rcpts.append(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.accepted.append((str(message["Message-ID"]), list(envelope.rcpt_tos)))
        return "250 2.0.0 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[RcptRecorder, str]]:
    recorder = RcptRecorder()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, f"smtp://127.0.0.1:{port}?starttls=off"
    finally:
        controller.stop()


@pytest.fixture
def home_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test's data home with the owner's allow-list set in the environment (as an admin would)."""
    use_database(monkeypatch, settings)
    monkeypatch.setenv("JOURNAL_MAIL_ALLOWED_RECIPIENTS", f"{ALLOWED}, @family.example")
    return Settings.from_env(settings.home, workers=1)


@pytest.fixture
def relay_app(home_settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    """alice (owner) and mallory (a second account), one photo each."""
    application = create_app(home_settings, TESTING=True)
    factory = application.extensions["journal.sessions"]
    for index, name in enumerate(("alice", "mallory")):
        user_id = make_user(application, name)
        photo = make_jpeg(tmp_path / name / "p.jpg", (320, 240), seed=index, taken_at=datetime(2025, 5, 1, 9))
        import_files(home_settings, factory, user_id, photo)
    yield application
    application.extensions["journal.engine"].dispose()


def factory_of(app: Flask) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = app.extensions["journal.sessions"]
    return factory


def user_id(app: Flask, name: str) -> int:
    with factory_of(app)() as s:
        found = s.scalar(select(User.id).where(User.name == name))
    assert found is not None
    return found


def export_email(client: FlaskClient, to: str) -> Any:
    token = csrf_token(client, "/export")
    form = {"csrf_token": token, "format": "eml", "platform": "email", "all": "1", "to": to}
    return client.post("/export", data=form)


def mallory(app: Flask) -> FlaskClient:
    client = app.test_client()
    sign_in(client, "mallory", PASSWORD)
    return client


def bundles_of(app: Flask, name: str) -> list[Export]:
    with factory_of(app)() as s:
        return list(s.scalars(select(Export).where(Export.user_id == user_id(app, name))))


# --- parsing: one plain address, nothing else -------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE_TO)
def test_parse_recipient_refuses_lists_injection_and_display_name_tricks(value: str) -> None:
    policy = mail.RecipientPolicy.parse(f"{ALLOWED}, @family.example")
    try:
        address = mail.parse_recipient(value)
    except InvalidInput:
        return
    assert not policy.allows(address), f"{value!r} came through as {address!r}"


def test_parse_recipient_and_policy() -> None:
    assert mail.parse_recipient("  Blog <Blog@Example.ORG> ") == "Blog@example.org"
    policy = mail.RecipientPolicy.parse(f"{ALLOWED}, @Family.Example")
    assert policy.allows("BLOG@example.org") and policy.allows("aunt@family.example")
    assert not policy.allows("aunt@sub.family.example") and not policy.allows("other@example.org")
    assert policy.describe() == [ALLOWED, "any address @family.example"]
    assert mail.RecipientPolicy.parse("").describe() == []
    for bad in ("not-an-address", "@", "@bad_domain", "@[127.0.0.1]", ["a@b.org, c@d.org"]):
        with pytest.raises(InvalidInput):
            mail.RecipientPolicy.parse(bad)


# --- the web export: a second account only gets allowed recipients ---------------------------------


def test_second_account_cannot_address_mail_outside_the_allow_list(relay_app: Flask) -> None:
    client = mallory(relay_app)
    page = client.get("/export").get_data(as_text=True)
    assert ALLOWED in page and "any address @family.example" in page  # who may receive, before exporting
    for value in HOSTILE_TO:
        response = export_email(client, value)
        assert response.status_code == 400, (value, response.status_code)
    assert bundles_of(relay_app, "mallory") == []
    done = export_email(client, "Blog <blog@example.org>")
    assert done.status_code == 303
    (bundle,) = bundles_of(relay_app, "mallory")
    message = email.message_from_bytes(Path(bundle.path).read_bytes(), policy=email.policy.default)
    assert message.get_all("To") == [ALLOWED] and message["Cc"] is None and message["Bcc"] is None
    page = client.get("/export").get_data(as_text=True)
    assert f"to {ALLOWED}" in page  # the bundle list says who receives it


def test_owner_may_address_anyone_but_only_one_address(relay_app: Flask) -> None:
    client = relay_app.test_client()
    sign_in(client, "alice", PASSWORD)
    assert export_email(client, f"friend@anywhere.example, {EVIL}").status_code == 400
    assert export_email(client, f"friend@anywhere.example\r\nBcc: {EVIL}").status_code == 400
    assert export_email(client, "friend@anywhere.example").status_code == 303


# --- journal send: the named account only, and every recipient checked again ------------------------


def _forge_message(app: Flask, settings: Settings, owner_name: str, to_header: str, tag: str) -> str:
    """A pending e-mail bundle whose To header was never checked (made before the rule, or edited)."""
    message_id = f"<{tag}@journal.invalid>"
    raw = (
        f"From: journal@localhost\r\nTo: {to_header}\r\nSubject: {tag}\r\nMessage-ID: {message_id}\r\n"
        f"Date: Thu, 01 May 2025 09:00:00 +0000\r\n\r\nbody\r\n"
    ).encode()
    path = settings.exports_dir / f"{tag}.eml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    with factory_of(app)() as s, s.begin():
        export = Export(
            user_id=user_id(app, owner_name),
            run_id=tag,
            name=path.name,
            path=str(path),
            sha256="0" * 64,
            bytes=len(raw),
            batch=1,
            batches=1,
            platform="email",
            location_mode="exact",
            format="eml",
        )
        s.add(export)
        s.flush()
        s.add(OutgoingMessage(export_id=export.id, message_id=message_id, path=str(path), to=to_header))
    return message_id


def test_send_only_the_named_accounts_messages(
    relay_app: Flask, home_settings: Settings, smtp: tuple[RcptRecorder, str]
) -> None:
    recorder, url = smtp
    runner = CliRunner()
    owner = runner.invoke(
        cli,
        [
            "export",
            "--user",
            "alice",
            "--format",
            "eml",
            "--platform",
            "email",
            "--to",
            "me@anywhere.example",
        ],
    )
    assert owner.exit_code == 0, owner.output
    assert export_email(mallory(relay_app), ALLOWED).status_code == 303

    ambiguous = runner.invoke(cli, ["send", "--smtp", url])
    assert ambiguous.exit_code != 0 and "--user" in ambiguous.output and "--all-users" in ambiguous.output
    assert recorder.rcpts == []

    alice_only = runner.invoke(cli, ["send", "--smtp", url, "--user", "alice"])
    assert alice_only.exit_code == 0, alice_only.output
    assert recorder.rcpts == ["me@anywhere.example"] and len(recorder.accepted) == 1
    with factory_of(relay_app)() as s:
        pending = s.scalars(select(OutgoingMessage).where(OutgoingMessage.sent_at.is_(None))).all()
    assert [m.to for m in pending] == [ALLOWED]  # mallory's message stayed where it was

    both = runner.invoke(cli, ["send", "--smtp", url, "--all-users"])
    assert both.exit_code == 0, both.output
    assert recorder.rcpts == ["me@anywhere.example", ALLOWED]


def test_send_refuses_smuggled_recipients(
    relay_app: Flask, home_settings: Settings, smtp: tuple[RcptRecorder, str]
) -> None:
    recorder, url = smtp
    forged = [
        _forge_message(relay_app, home_settings, "mallory", value, f"forged{index}")
        for index, value in enumerate(
            [EVIL, f"{ALLOWED}, {EVIL}", f'"{ALLOWED}" <{EVIL}>', f"x: {ALLOWED}, {EVIL};"]
        )
    ]
    good = _forge_message(relay_app, home_settings, "mallory", ALLOWED, "good")
    result = CliRunner().invoke(cli, ["send", "--smtp", url, "--user", "mallory", "--retries", "0"])
    assert result.exit_code == 1
    assert recorder.rcpts == [ALLOWED] and recorder.accepted == [(good, [ALLOWED])]  # RCPT TO count: 1
    for message_id in forged:
        with factory_of(relay_app)() as s:
            row = s.scalar(select(OutgoingMessage).where(OutgoingMessage.message_id == message_id))
        reason = (row.last_error or "") if row is not None else ""
        assert row is not None and row.sent_at is None
        assert "not allowed" in reason or "one e-mail address" in reason, reason
    assert "not allowed" in result.stderr


def test_send_to_refuses_lists(relay_app: Flask, smtp: tuple[RcptRecorder, str]) -> None:
    recorder, url = smtp
    for value in (f"{ALLOWED}, {EVIL}", f"{ALLOWED}\nBcc: {EVIL}"):
        result = CliRunner().invoke(cli, ["send", "--smtp", url, "--all-users", "--to", value])
        assert result.exit_code == 1 and "one e-mail address" in result.output
    assert recorder.rcpts == []


def test_single_account_home_keeps_the_contract_line(
    settings: Settings, runner: CliRunner, tmp_path: Path, smtp: tuple[RcptRecorder, str]
) -> None:
    recorder, url = smtp
    factory = Settings.from_env(settings.home)  # no allow-list: the owner's own mail goes where they say
    assert factory.mail_allowed_recipients == ()
    assert (
        runner.invoke(cli, ["user", "add", "solo", "--password-stdin"], input="password123\n").exit_code == 0
    )
    photo = make_jpeg(tmp_path / "solo.jpg", (320, 240), seed=4, taken_at=datetime(2025, 5, 1, 9))
    assert runner.invoke(cli, ["import", str(photo)]).exit_code == 0
    assert runner.invoke(cli, ["export", "--format", "eml", "--platform", "email"]).exit_code == 0
    sent = runner.invoke(cli, ["send", "--smtp", url, "--to", "friend@anywhere.example"])
    assert sent.exit_code == 0, sent.output
    assert recorder.rcpts == ["friend@anywhere.example"]
