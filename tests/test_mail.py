"""E-mail bundles: building messages, and sending each exactly once to a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from journal.errors import InvalidInput
from journal.publish.mail import (
    PendingMessage,
    SmtpTarget,
    build_eml,
    eml_fits,
    make_message_id,
    parse_smtp_url,
    pending_from_eml,
    send_messages,
)
from tests.machine import needs_tool
from tests.servers import free_port

SENDER = "Traveller <me@example.org>"
FRIEND = "friend@example.org"


# --- building ---


def test_build_eml_round_trip(tmp_path: Path) -> None:
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"\xff\xd8" + bytes(range(256)) * 40 + b"\xff\xd9")
    raw = build_eml(
        subject="Dinner in Lyon\nBcc: victim@example.org",
        body_text='Caption with <b>markup</b> & "quotes" — kept as plain text.\n',
        attachments=[
            ("photos/7-1.jpg", photo, "image/jpeg"),
            ("bundle-1.zip", b"PK\x05\x06" + b"\0" * 18, ""),
        ],
        to=FRIEND,
        sender=SENDER,
        message_id="<abc123@journal.invalid>",
    )
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == "Dinner in Lyon Bcc: victim@example.org"  # no header injection
    assert message["Bcc"] is None
    assert message["To"] == FRIEND and message["Message-ID"] == "<abc123@journal.invalid>"
    body = message.get_body(("plain",))
    assert (
        body is not None
        and body.get_content().replace("\r\n", "\n")
        == 'Caption with <b>markup</b> & "quotes" — kept as plain text.\n'
    )
    parts = list(message.iter_attachments())
    assert [part.get_filename() for part in parts] == ["7-1.jpg", "bundle-1.zip"]
    assert parts[0].get_content() == photo.read_bytes()
    assert parts[1].get_content_type() == "application/zip"


def test_build_eml_refuses_bad_headers() -> None:
    good: dict[str, Any] = {
        "subject": "s",
        "body_text": "b",
        "attachments": [],
        "to": None,
        "sender": SENDER,
        "message_id": "<a@b>",
    }
    assert b"To:" not in build_eml(**good)
    for key, value in (("sender", "nobody"), ("message_id", "no-brackets@x"), ("to", "a@b\r\nBcc: c@d")):
        with pytest.raises(InvalidInput):
            build_eml(**{**good, key: value})
    with pytest.raises(InvalidInput):
        build_eml(**{**good, "attachments": [("..", b"x", "image/jpeg")]})


def test_eml_fits() -> None:
    assert eml_fits([1_000_000], "caption", 2_000_000)
    assert not eml_fits([1_000_000], "caption", 1_300_000)  # base64 makes 1 MB about 1.37 MB
    assert eml_fits([10**9], "", None)


def test_make_message_id_is_unique() -> None:
    ids = {make_message_id() for _ in range(100)}
    assert len(ids) == 100 and all(i.startswith("<") and i.endswith("@journal.invalid>") for i in ids)


def test_pending_from_eml() -> None:
    raw = build_eml(
        subject="s",
        body_text="b",
        attachments=[],
        to=FRIEND,
        sender=SENDER,
        message_id="<m1@journal.invalid>",
    )
    pending = pending_from_eml(raw)
    assert (pending.message_id, pending.sender, pending.recipients) == (
        "<m1@journal.invalid>",
        "me@example.org",
        (FRIEND,),
    )
    assert pending_from_eml(raw, to="Other <other@example.org>").recipients == ("other@example.org",)


# --- SMTP URLs ---


def test_parse_smtp_url() -> None:
    assert parse_smtp_url("smtp://mail.example.org") == SmtpTarget("smtp", "mail.example.org", 587)
    target = parse_smtp_url("smtps://me%40example.org:p%3Ass%2Fw@mail.example.org:2465")
    assert (target.scheme, target.port, target.username, target.password) == (
        "smtps",
        2465,
        "me@example.org",
        "p:ss/w",
    )
    assert "p:ss" not in repr(target)
    assert parse_smtp_url("smtp://127.0.0.1:25?starttls=off").starttls == "off"
    assert parse_smtp_url("smtp://[::1]:25").is_loopback
    for bad in (
        "http://x",
        "smtp://",
        "smtp://h:99999",
        "smtp://h?starttls=maybe",
        "smtp://h?x=1",
        "smtps://h?starttls=off",
    ):
        with pytest.raises(InvalidInput):
            parse_smtp_url(bad)


# --- a real SMTP server ---


@dataclass
class Recorder:
    """aiosmtpd handler: records accepted messages; `plan` scripts replies per Message-ID."""

    accepted: list[tuple[str, list[str]]] = field(default_factory=list)
    plan: dict[str, list[str]] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message_id = str(message["Message-ID"])
        self.attempts.append(message_id)
        script = self.plan.get(message_id)
        if script:
            reply = script[0] if len(script) == 1 else script.pop(0)  # the last reply repeats
            if reply == "drop":
                script.clear()
                server.transport.close()
                return "421 4.4.2 connection dropped"
            if reply != "250":
                return reply
        self.accepted.append((message_id, list(envelope.rcpt_tos)))
        return "250 2.0.0 OK"


@pytest.fixture
def server() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


def messages(count: int) -> list[PendingMessage]:
    result = []
    for index in range(1, count + 1):
        message_id = f"<m{index}@journal.invalid>"
        raw = build_eml(
            subject=f"Post {index}",
            body_text=f"caption {index}",
            attachments=[(f"{index}-1.jpg", b"\xff\xd8data\xff\xd9", "image/jpeg")],
            to=FRIEND,
            sender=SENDER,
            message_id=message_id,
        )
        result.append(pending_from_eml(raw))
    return result


@dataclass
class Ledger:
    """Stands in for the lead's DB records of sent Message-IDs."""

    sent: set[str] = field(default_factory=set)
    sleeps: list[float] = field(default_factory=list)

    def kwargs(self) -> dict[str, Any]:
        return {
            "already_sent": self.sent.__contains__,
            "mark_sent": self.sent.add,
            "sleep": self.sleeps.append,
            "backoff_s": 0.5,
            "timeout_s": 10,
        }


def test_each_message_once_through_transient_and_permanent_failures(server: tuple[Recorder, int]) -> None:
    recorder, port = server
    recorder.plan = {
        "<m2@journal.invalid>": ["451 4.3.0 try later", "250"],
        "<m3@journal.invalid>": ["554 5.7.1 no"],
    }
    ledger = Ledger()
    url = f"smtp://127.0.0.1:{port}"
    report = send_messages(url, messages(4), **ledger.kwargs())
    assert report.sent == ["<m1@journal.invalid>", "<m2@journal.invalid>", "<m4@journal.invalid>"]
    assert report.skipped == []
    assert len(report.failed) == 1 and report.failed[0][0] == "<m3@journal.invalid>"
    assert "554" in report.failed[0][1] and not report.ok
    assert ledger.sleeps == [0.5]  # one retry, for the 451
    assert [mid for mid, _ in recorder.accepted] == report.sent
    assert recorder.accepted[0][1] == [FRIEND]

    # A second run sends nothing twice; the permanent failure is tried again and fails again.
    again = send_messages(url, messages(4), **ledger.kwargs())
    assert again.skipped == report.sent and again.sent == []
    assert [mid for mid, _ in again.failed] == ["<m3@journal.invalid>"]

    # Once the server accepts it, only that one goes out.
    recorder.plan.clear()
    third = send_messages(url, messages(4), **ledger.kwargs())
    assert third.sent == ["<m3@journal.invalid>"] and len(third.skipped) == 3
    accepted = [mid for mid, _ in recorder.accepted]
    assert sorted(accepted) == [f"<m{i}@journal.invalid>" for i in range(1, 5)]
    assert third.summary() == "sent 1, skipped 3, failed 0"


def test_dropped_connection_is_retried_on_a_new_one(server: tuple[Recorder, int]) -> None:
    recorder, port = server
    recorder.plan = {"<m1@journal.invalid>": ["drop"]}
    ledger = Ledger()
    report = send_messages(f"smtp://127.0.0.1:{port}", messages(2), **ledger.kwargs())
    assert report.sent == ["<m1@journal.invalid>", "<m2@journal.invalid>"] and report.ok
    assert [mid for mid, _ in recorder.accepted] == report.sent
    assert recorder.attempts.count("<m1@journal.invalid>") == 2


def test_gives_up_after_the_retries(server: tuple[Recorder, int]) -> None:
    recorder, port = server
    recorder.plan = {"<m1@journal.invalid>": ["452 4.3.1 mailbox full"]}
    ledger = Ledger()
    report = send_messages(f"smtp://127.0.0.1:{port}", messages(2), retries=2, **ledger.kwargs())
    assert report.failed[0][0] == "<m1@journal.invalid>" and "after 3 attempts" in report.failed[0][1]
    assert report.sent == ["<m2@journal.invalid>"]
    assert ledger.sleeps == [0.5, 1.0]
    assert recorder.attempts.count("<m1@journal.invalid>") == 3


def test_mark_sent_right_after_acceptance(server: tuple[Recorder, int]) -> None:
    recorder, port = server
    seen_at_mark: list[list[str]] = []

    def mark(message_id: str) -> None:
        seen_at_mark.append([mid for mid, _ in recorder.accepted])

    send_messages(f"smtp://127.0.0.1:{port}", messages(2), already_sent=lambda _: False, mark_sent=mark)
    assert seen_at_mark == [["<m1@journal.invalid>"], ["<m1@journal.invalid>", "<m2@journal.invalid>"]]


def test_a_failing_mark_sent_stops_the_run(server: tuple[Recorder, int]) -> None:
    recorder, port = server

    def mark(message_id: str) -> None:
        raise RuntimeError("database is locked")

    with pytest.raises(RuntimeError):
        send_messages(f"smtp://127.0.0.1:{port}", messages(3), already_sent=lambda _: False, mark_sent=mark)
    assert len(recorder.accepted) == 1


def test_unreachable_server_fails_fast() -> None:
    ledger = Ledger(sent={"<m2@journal.invalid>"})
    report = send_messages(f"smtp://127.0.0.1:{free_port()}", messages(3), retries=1, **ledger.kwargs())
    assert report.skipped == ["<m2@journal.invalid>"]
    assert [mid for mid, _ in report.failed] == ["<m1@journal.invalid>", "<m3@journal.invalid>"]
    assert "cannot connect" in report.failed[0][1] and report.failed[1][1].startswith("not sent:")
    assert ledger.sleeps == [0.5]  # retried the first message only


def test_message_without_recipient(server: tuple[Recorder, int]) -> None:
    _, port = server
    lonely = PendingMessage("<x@journal.invalid>", b"Subject: x\r\n\r\nx\r\n", "me@example.org", ())
    report = send_messages(
        f"smtp://127.0.0.1:{port}", [lonely], already_sent=lambda _: False, mark_sent=print
    )
    assert report.failed == [("<x@journal.invalid>", "no recipient (give one with --to)")]


def test_messages_from_files(tmp_path: Path, server: tuple[Recorder, int]) -> None:
    recorder, port = server
    path = tmp_path / "bundle-1.eml"
    path.write_bytes(
        build_eml(
            subject="s",
            body_text="b",
            attachments=[],
            to=None,
            sender=SENDER,
            message_id="<f@journal.invalid>",
        )
    )
    report = send_messages(
        f"smtp://127.0.0.1:{port}",
        [pending_from_eml(path, to=FRIEND)],
        already_sent=lambda _: False,
        mark_sent=print,
    )
    assert report.sent == ["<f@journal.invalid>"] and recorder.accepted == [("<f@journal.invalid>", [FRIEND])]


def test_password_is_not_sent_in_clear(monkeypatch: pytest.MonkeyPatch, server: tuple[Recorder, int]) -> None:
    recorder, port = server
    monkeypatch.setattr(SmtpTarget, "is_loopback", property(lambda self: False))
    report = send_messages(
        f"smtp://me:secret@127.0.0.1:{port}", messages(2), already_sent=lambda _: False, mark_sent=print
    )
    assert "unencrypted" in report.failed[0][1] and report.failed[1][1].startswith("not sent:")
    assert recorder.attempts == []


def test_starttls_required_but_not_offered(server: tuple[Recorder, int]) -> None:
    _, port = server
    report = send_messages(
        f"smtp://127.0.0.1:{port}?starttls=require",
        messages(1),
        already_sent=lambda _: False,
        mark_sent=print,
    )
    assert "STARTTLS" in report.failed[0][1]


# --- TLS and AUTH (needs openssl to make a certificate) ---


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    assert openssl is not None, "the tests using this are marked needs_tool('openssl')"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"me", b"s3cret")
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535 itself


@pytest.fixture(params=["starttls", "smtps"])
def tls_server(
    request: pytest.FixtureRequest, certificate: tuple[Path, Path]
) -> Iterator[tuple[Recorder, str]]:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    recorder = Recorder()
    port = free_port()
    if request.param == "smtps":
        # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; this connection is TLS from the start.
        controller = Controller(
            recorder,
            hostname="127.0.0.1",
            port=port,
            ssl_context=server_context,
            authenticator=check_login,
            auth_require_tls=False,
        )
    else:
        controller = Controller(
            recorder,
            hostname="127.0.0.1",
            port=port,
            tls_context=server_context,
            require_starttls=True,
            auth_required=True,
            authenticator=check_login,
        )
    controller.start()
    try:
        yield (
            recorder,
            f"{'smtps' if request.param == 'smtps' else 'smtp'}://me:{{password}}@127.0.0.1:{port}",
        )
    finally:
        controller.stop()


def client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


NEEDS_OPENSSL = needs_tool("openssl")


@NEEDS_OPENSSL
def test_tls_and_login(tls_server: tuple[Recorder, str], certificate: tuple[Path, Path]) -> None:
    recorder, url = tls_server
    ledger = Ledger()
    report = send_messages(
        url.format(password="s3cret"), messages(2), tls_context=client_context(certificate), **ledger.kwargs()
    )
    assert report.failed == []
    assert report.sent == ["<m1@journal.invalid>", "<m2@journal.invalid>"]
    assert len(recorder.accepted) == 2


@NEEDS_OPENSSL
def test_wrong_password_stops_at_once(
    tls_server: tuple[Recorder, str], certificate: tuple[Path, Path]
) -> None:
    recorder, url = tls_server
    ledger = Ledger()
    report = send_messages(
        url.format(password="nope"), messages(3), tls_context=client_context(certificate), **ledger.kwargs()
    )
    assert "login refused" in report.failed[0][1] and len(report.failed) == 3
    assert ledger.sleeps == [] and recorder.attempts == []


@NEEDS_OPENSSL
def test_untrusted_certificate_is_refused(tls_server: tuple[Recorder, str]) -> None:
    recorder, url = tls_server
    report = send_messages(
        url.format(password="s3cret"), messages(1), already_sent=lambda _: False, mark_sent=print
    )
    assert "TLS" in report.failed[0][1] and recorder.attempts == []
