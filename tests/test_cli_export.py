"""`journal export`, `send` and `published` through click's CliRunner; `send` against a real SMTP server."""

from __future__ import annotations

import email
import email.policy
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from journal.cli import cli
from journal.config import Settings
from journal.models import OutgoingMessage, Publication
from journal.publish.platforms import PLATFORMS
from tests.servers import free_port
from tests.test_services_exporting import Library, make_library

__all__ = ["SmtpRecorder", "smtp_server"]


@dataclass
class SmtpRecorder:
    """aiosmtpd handler: records accepted Message-IDs; refuses those listed in `refuse` (once each)."""

    accepted: list[str] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    refuse_nth: set[int] = field(default_factory=set)
    seen: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message_id = str(message["Message-ID"])
        self.seen += 1
        if message_id in self.refuse or self.seen in self.refuse_nth:
            self.refuse.discard(message_id)
            return "554 5.6.0 message refused by the test"
        self.accepted.append(message_id)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 2.0.0 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[SmtpRecorder, str]]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) and its smtp:// URL."""
    recorder = SmtpRecorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, f"smtp://127.0.0.1:{port}?starttls=off"
    finally:
        controller.stop()


@pytest.fixture
def library(settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path) -> Library:
    return make_library(settings, session_factory, tmp_path)


def test_every_command_has_help(runner: CliRunner) -> None:
    for command in ("export", "send", "published"):
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, command
    export_help = runner.invoke(cli, ["export", "--help"]).output
    assert "per platform" in export_help and all(name in export_help for name in PLATFORMS)


def test_export_prints_one_path_per_line(runner: CliRunner, library: Library, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        cli, ["export", "--out", str(out), "--max-batch-mb", "0.1", "--location", "approx"]
    )
    assert result.exit_code == 0, result.output
    paths = result.stdout.splitlines()
    assert len(paths) == 4 and all(Path(p).is_file() and Path(p).parent == out for p in paths)
    assert "exported 4 posts in 4 bundles" in result.stderr
    for path in paths:
        with zipfile.ZipFile(path) as archive:
            assert {"manifest.json", "index.html"} <= set(archive.namelist())
    again = runner.invoke(cli, ["export", "--out", str(out)])
    assert again.exit_code == 0 and again.stdout == "" and "nothing to export" in again.stderr


def test_export_default_folder_trip_and_platform(runner: CliRunner, library: Library, settings: Any) -> None:
    result = runner.invoke(cli, ["export", "--trip", "Korea", "--platform", "Mastodon"])
    assert result.exit_code == 0, result.output
    (path,) = result.stdout.splitlines()
    assert Path(path).parent == settings.exports_dir and "korea-mastodon-" in Path(path).name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trip", "Atlantis"], "no trip called 'Atlantis'"),
        (["--platform", "myspace"], "choose one of: instagram"),
        (["--format", "eml", "--to", "nobody"], "not an e-mail address"),
        (["--max-batch-mb", "0"], "0"),
        (["--user", "carol"], "no user named 'carol'"),
    ],
)
def test_export_refuses_bad_options(
    runner: CliRunner, library: Library, args: list[str], message: str
) -> None:
    result = runner.invoke(cli, ["export", *args])
    assert result.exit_code != 0 and message in result.output


def test_published_records_the_bundle(
    runner: CliRunner, library: Library, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = runner.invoke(cli, ["export", "--trip", "Korea"]).stdout.strip()
    moved = tmp_path / "elsewhere.zip"
    moved.write_bytes(Path(path).read_bytes())  # recognised by content, wherever it is
    result = runner.invoke(cli, ["published", str(moved), "--url", "https://example.org/p/9"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"published: {Path(path).name} (1 post) at https://example.org/p/9"
    with session_factory() as s:
        assert [(p.post_id, p.url) for p in s.scalars(select(Publication))] == [
            (library.posts["korea"], "https://example.org/p/9")
        ]
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("a.txt", "a")
    assert "not a journal bundle" in runner.invoke(cli, ["published", str(plain)]).output
    bad_url = runner.invoke(cli, ["published", str(moved), "--url", "javascript:alert(1)"])
    assert bad_url.exit_code == 1 and "http://" in bad_url.output


def test_send_failure_in_the_middle_then_rerun(
    runner: CliRunner,
    library: Library,
    session_factory: sessionmaker[Session],
    smtp_server: tuple[SmtpRecorder, str],
) -> None:
    recorder, url = smtp_server
    exported = runner.invoke(
        cli,
        [
            "export",
            "--format",
            "eml",
            "--platform",
            "email",
            "--max-batch-mb",
            "0.05",
            "--from",
            "me@example.org",
        ],
    )
    assert exported.exit_code == 0, exported.output
    files = exported.stdout.splitlines()
    assert len(files) == 4 and all(f.endswith(".eml") for f in files)
    recorder.refuse_nth = {2}
    first = runner.invoke(cli, ["send", "--smtp", url, "--to", "blog@example.org", "--retries", "0"])
    assert first.exit_code == 1
    assert first.stdout.count("sent: ") == 3 and "sent 3, skipped 0, failed 1" in first.stdout
    assert f"failed: {Path(files[1]).name}: 554 5.6.0 message refused by the test" in first.stderr
    with session_factory() as s:
        rows = {Path(m.path).name: m for m in s.scalars(select(OutgoingMessage))}
    failed = rows[Path(files[1]).name]
    assert failed.sent_at is None and failed.attempts == 1 and "554" in (failed.last_error or "")
    assert sum(1 for m in rows.values() if m.sent_at is not None) == 3

    second = runner.invoke(cli, ["send", "--smtp", url, "--to", "blog@example.org"])
    assert second.exit_code == 0, second.output
    assert second.stdout.splitlines() == [f"sent: {Path(files[1]).name}", "sent 1, skipped 0, failed 0"]
    assert sorted(recorder.accepted) == sorted(set(recorder.accepted)) and len(recorder.accepted) == 4
    assert all(rcpts == ["blog@example.org"] for rcpts in recorder.recipients)
    third = runner.invoke(cli, ["send", "--smtp", url])
    assert (
        third.exit_code == 0 and "sent 0, skipped 0, failed 0" in third.stdout and len(recorder.accepted) == 4
    )


def test_send_without_recipient_or_server(runner: CliRunner, library: Library) -> None:
    runner.invoke(cli, ["export", "--format", "eml", "--trip", "Korea"])
    no_rcpt = runner.invoke(cli, ["send", "--smtp", f"smtp://127.0.0.1:{free_port()}"])
    assert no_rcpt.exit_code == 1 and "no recipient (give one with --to)" in no_rcpt.stderr
    down = runner.invoke(
        cli, ["send", "--smtp", f"smtp://127.0.0.1:{free_port()}", "--to", "a@b.org", "--retries", "0"]
    )
    assert down.exit_code == 1 and "cannot connect" in down.stderr
    bad = runner.invoke(cli, ["send", "--smtp", "http://example.org"])
    assert bad.exit_code == 1 and "smtp://" in bad.output
