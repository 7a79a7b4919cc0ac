"""Data home files are private (0600, folders 0700) unless JOURNAL_FILE_MODE shares them with a group."""

from __future__ import annotations

import io
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from journal import storage
from journal.app import create_app
from journal.cli import cli
from journal.config import Settings
from tests.imaging import make_jpeg
from tests.web import csrf_token, make_user, sign_in


@pytest.fixture(autouse=True)
def restore_policy() -> Iterator[None]:
    """The mode policy is per process: put the default back for the tests that follow."""
    yield
    storage.set_modes(0o600, 0o700)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def written(home: Path) -> list[Path]:
    """Everything the journal wrote under the data home (a database's -wal/-shm may come and go)."""
    return [p for p in home.rglob("*") if p.exists() and not p.name.startswith("journal.db-")]


def assert_modes(settings: Settings, file_mode: int, dir_mode: int) -> None:
    home = settings.home
    found = written(home)
    wrong = [(str(p), oct(mode(p))) for p in found if mode(p) != (dir_mode if p.is_dir() else file_mode)]
    assert not wrong, wrong
    for suffix in ("-wal", "-shm"):
        side = home / f"journal.db{suffix}"
        if side.exists():
            assert mode(side) == file_mode, side
    assert any(p.name == "journal.db" for p in found) == settings.is_sqlite


def add_user_and_import(runner: CliRunner, tmp_path: Path, env: dict[str, str] | None = None) -> None:
    result = runner.invoke(cli, ["user", "add", "alice", "--password-stdin"], input="password123\n", env=env)
    assert result.exit_code == 0, result.output
    make_jpeg(tmp_path / "in" / "a.jpg", seed=1)
    make_jpeg(tmp_path / "in" / "b.jpg", seed=2)
    result = runner.invoke(cli, ["import", str(tmp_path / "in")], env=env)
    assert result.exit_code == 0, result.output


def test_import_and_export_write_private_files(runner: CliRunner, settings: Settings, tmp_path: Path) -> None:
    add_user_and_import(runner, tmp_path)
    export = runner.invoke(cli, ["export"])
    assert export.exit_code == 0, export.output
    bundles = list(settings.exports_dir.glob("*.zip"))
    assert bundles and all(mode(b) == 0o600 for b in bundles)
    originals = list((settings.uploads_dir / "originals").rglob("*.jpg"))
    assert len(originals) == 2 and all(mode(p) == 0o600 for p in originals)
    for folder in (settings.uploads_dir, settings.exports_dir, settings.staging_dir):
        assert mode(folder) == 0o700, folder
    if settings.is_sqlite:
        assert mode(settings.home / "journal.db") == 0o600
    assert_modes(settings, 0o600, 0o700)


def test_upload_writes_private_files(settings: Settings, tmp_path: Path) -> None:
    app = create_app(settings, TESTING=True)
    make_user(app)
    client: FlaskClient = app.test_client()
    sign_in(client)
    body = make_jpeg(tmp_path / "up.jpg", seed=3).read_bytes()
    response = client.post(
        "/api/photos",
        data={"file": [(io.BytesIO(body), "up.jpg")]},
        headers={"X-CSRFToken": csrf_token(client, "/upload")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200 and response.get_json()["results"][0]["status"] == "imported"
    assert mode(settings.secret_key_path) == 0o600
    if settings.is_sqlite:
        with sqlite3.connect(settings.home / "journal.db") as conn:  # the app's WAL files exist now
            conn.execute("SELECT 1")
    assert_modes(settings, 0o600, 0o700)
    app.extensions["journal.engine"].dispose()


def test_group_shared_mode_from_the_environment(
    runner: CliRunner, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNAL_FILE_MODE", "0640")
    assert Settings.from_env(settings.home).dir_mode == 0o750
    add_user_and_import(runner, tmp_path)
    assert runner.invoke(cli, ["export"]).exit_code == 0
    if settings.is_sqlite:
        assert mode(settings.home / "journal.db") == 0o640
    assert all(mode(b) == 0o640 for b in settings.exports_dir.glob("*.zip"))
    assert_modes(settings, 0o640, 0o750)


@pytest.mark.sqlite_only  # the mode of an existing journal.db file
def test_existing_home_is_tightened(runner: CliRunner, settings: Settings) -> None:
    settings.uploads_dir.mkdir(parents=True)
    os.chmod(settings.uploads_dir, 0o755)
    (settings.home / "journal.db").touch()
    os.chmod(settings.home / "journal.db", 0o644)
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    assert mode(settings.uploads_dir) == 0o700 and mode(settings.home / "journal.db") == 0o600


@pytest.mark.parametrize("value", ["0700", "0400", "1600", "0606x"])
def test_bad_file_modes_are_refused(value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_FILE_MODE", value)
    with pytest.raises(ValueError):
        Settings.from_env(tmp_path)


def test_atomic_write_defaults_to_private(tmp_path: Path) -> None:
    with storage.atomic_write(tmp_path / "new" / "deep" / "f.bin") as handle:
        handle.write(b"x")
    assert mode(tmp_path / "new" / "deep" / "f.bin") == 0o600
    assert mode(tmp_path / "new") == 0o700 and mode(tmp_path / "new" / "deep") == 0o700
