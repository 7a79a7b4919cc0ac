"""The command line: every command has help; inspect, user, token and import behave as the contract says."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from journal.cli import cli
from tests.imaging import make_jpeg
from tests.samples import EXIF_SAMPLES


def all_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        found.append((prefix + name, command))
        if isinstance(command, click.Group):
            found += all_commands(command, prefix + name + " ")
    return found


@pytest.mark.parametrize("name,command", all_commands(cli))
def test_every_command_has_help(name: str, command: click.Command) -> None:
    assert command.help and len(command.help.strip()) > 10, f"{name} has no help text"
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_inspect_json_contract(runner: CliRunner) -> None:
    path = str(EXIF_SAMPLES / "exiftool__Google.jpg")
    result = runner.invoke(cli, ["inspect", path, "--json"])
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.output)
    assert item["file"] == path and item["make"] == "Google" and item["utc_offset"] == "+02:00"
    assert item["taken_at"] == "2023-10-06T22:53:51.724000"  # SubSecTimeOriginal is 724
    assert item["taken_at_utc"].startswith("2023-10-06T20:53:51") and item["taken_at_utc"].endswith("Z")
    assert item["error"] is None


def test_inspect_reports_every_file_and_exits_1_on_error(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    good = str(EXIF_SAMPLES / "exifpy__DSCN0010.jpg")
    result = runner.invoke(cli, ["inspect", str(bad), good, "--json"])
    assert result.exit_code == 1
    items = json.loads(result.output)
    assert [i["file"] for i in items] == [str(bad), good]
    assert items[0]["error"] and items[1]["error"] is None


def test_user_add_token_and_import(runner: CliRunner, tmp_path: Path) -> None:
    assert (
        runner.invoke(cli, ["user", "add", "alice", "--password-stdin"], input="password123\n").exit_code == 0
    )
    dup = runner.invoke(cli, ["user", "add", "alice", "--password-stdin"], input="password123\n")
    assert dup.exit_code == 1 and "exists" in dup.output
    token = runner.invoke(cli, ["token", "add"])
    assert token.exit_code == 0 and token.output.startswith("jt_")
    make_jpeg(tmp_path / "in" / "a.jpg", seed=1)
    make_jpeg(tmp_path / "in" / "b.jpg", seed=2)
    (tmp_path / "in" / "broken.jpg").write_bytes(b"")
    result = runner.invoke(cli, ["import", str(tmp_path / "in"), "--trip", "Test trip"])
    assert result.exit_code == 1
    assert "imported 2, duplicates 0, failed 1" in result.stdout
    assert "broken.jpg: empty file" in result.stderr
    again = runner.invoke(cli, ["import", str(tmp_path / "in" / "a.jpg")])
    assert again.exit_code == 0 and "imported 0, duplicates 1, failed 0" in again.stdout


def test_import_needs_user_when_several(runner: CliRunner, tmp_path: Path) -> None:
    for name in ("alice", "bob"):
        runner.invoke(cli, ["user", "add", name, "--password-stdin"], input="password123\n")
    src = make_jpeg(tmp_path / "a.jpg")
    result = runner.invoke(cli, ["import", str(src)])
    assert result.exit_code == 1 and "--user" in result.output
    assert runner.invoke(cli, ["import", str(src), "--user", "bob"]).exit_code == 0


def test_db_upgrade(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0 and "revision" in result.output
