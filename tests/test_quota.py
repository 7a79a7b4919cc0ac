"""Disk filling: one export at a time per account on every path, and a per-account storage quota."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from journal import db
from journal.app import create_app
from journal.cli import cli
from journal.config import Settings
from journal.models import Export, ImportFailure
from journal.services import exporting, quota
from tests.databases import use_database
from tests.imaging import make_jpeg
from tests.test_services_exporting import import_files
from tests.web import PASSWORD, csrf_token, make_user, sign_in

ROOT = Path(__file__).resolve().parents[1]


def photo(tmp_path: Path, name: str, seed: int) -> Path:
    return make_jpeg(
        tmp_path / "src" / f"{name}.jpg", (640, 480), seed=seed, taken_at=datetime(2025, 5, 1, 9)
    )


def factory_of(app: Flask) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = app.extensions["journal.sessions"]
    return factory


def usage_of(settings: Settings, factory: sessionmaker[Session], user_id: int) -> quota.Usage:
    with factory() as s:
        return quota.usage(s, settings, user_id)


@pytest.fixture
def env_home(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    use_database(monkeypatch, settings)
    monkeypatch.setenv("JOURNAL_WORKERS", "1")
    return settings


@pytest.fixture
def full(
    env_home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Settings, int]]:
    """alice with one photo and a quota leaving 1,000 bytes of room (set through JOURNAL_QUOTA_MB)."""
    engine = db.make_engine(env_home.database_url)
    db.ensure_schema(engine)
    factory = db.make_session_factory(engine)
    with factory() as s, s.begin():
        from journal.services import users

        alice = users.create_user(s, "alice", PASSWORD).id
    import_files(env_home, factory, alice, photo(tmp_path, "first", 1))
    used = usage_of(env_home, factory, alice).total
    assert used > 0
    monkeypatch.setenv("JOURNAL_QUOTA_MB", str((used + 1000) / 1_000_000))
    engine.dispose()
    yield Settings.from_env(env_home.home), used


# --- usage --------------------------------------------------------------------------------------


def test_usage_counts_originals_renditions_and_bundles(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    from journal.services import users

    with session_factory() as s, s.begin():
        alice = users.create_user(s, "alice", PASSWORD).id
        bob = users.create_user(s, "bob", PASSWORD).id
    source = photo(tmp_path, "p", 2)
    import_files(settings, session_factory, alice, source)
    before = usage_of(settings, session_factory, alice)
    assert before.originals == source.stat().st_size
    thumbs = [p for p in settings.uploads_dir.rglob("*") if p.is_file() and "originals" not in p.parts]
    assert before.renditions == sum(p.stat().st_size for p in thumbs) > 0
    assert before.bundles == 0 and before.quota == 0 and before.text().endswith("MB used")
    outcome = exporting.run_export(session_factory, settings, exporting.ExportRequest(user_id=alice))
    after = usage_of(settings, session_factory, alice)
    assert after.bundles == outcome.bundles[0].bytes and after.total == before.total + after.bundles
    assert usage_of(settings, session_factory, bob).total == 0  # per account
    limited = quota.Usage(originals=1_500_000, renditions=0, bundles=0, quota=5_000_000)
    assert limited.text() == "1.5 MB of 5 MB used"
    assert quota.Usage(originals=5_200_000, renditions=0, bundles=0, quota=5_000_000).message() == (
        "quota of 5 MB reached (5.2 MB used): delete bundles or photos"
    )


def test_quota_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JOURNAL_QUOTA_MB", "2.5")
    assert Settings.from_env(tmp_path).quota_bytes == 2_500_000
    monkeypatch.delenv("JOURNAL_QUOTA_MB")
    assert Settings.from_env(tmp_path).quota_bytes == 0
    for bad in ("nan", "-1", "lots"):
        monkeypatch.setenv("JOURNAL_QUOTA_MB", bad)
        with pytest.raises(ValueError):
            Settings.from_env(tmp_path)


# --- the quota on every writing path ------------------------------------------------------------


def test_quota_on_the_upload_api(full: tuple[Settings, int], tmp_path: Path) -> None:
    settings, used = full
    app = create_app(settings, TESTING=True)
    try:
        make_user(app, "bob")
        client = app.test_client()
        sign_in(client, "alice", PASSWORD)
        token = csrf_token(client, "/upload")
        second = photo(tmp_path, "second", 3)

        def upload(c: FlaskClient, path: Path, csrf: str) -> dict[str, Any]:
            data = {"file": (io.BytesIO(path.read_bytes()), path.name)}
            response = c.post("/api/photos", data=data, headers={"X-CSRFToken": csrf})
            assert response.status_code == 200
            (result,) = response.get_json()["results"]
            return dict(result)

        refused = upload(client, second, token)
        assert refused["status"] == "failed" and "id" not in refused
        quota_mb = f"{settings.quota_bytes / 1_000_000:f}".rstrip("0").rstrip(".")
        assert refused["error"] == (
            f"quota of {quota_mb} MB reached ({used / 1_000_000:.1f} MB used): delete bundles or photos"
        )
        assert not any((settings.uploads_dir / "originals").rglob(f"*{second.stem}*"))
        assert usage_of(settings, factory_of(app), 1).total == used  # nothing was written
        again = upload(client, tmp_path / "src" / "first.jpg", token)  # writes nothing: not refused
        assert again["status"] == "duplicate"
        other = app.test_client()
        sign_in(other, "bob", PASSWORD)
        assert upload(other, second, csrf_token(other, "/upload"))["status"] == "imported"  # per account
        page = client.get("/export").get_data(as_text=True)
        assert f"{used / 1_000_000:.1f} MB of {quota_mb} MB used" in page
        library = client.get("/library").get_data(as_text=True)
        assert f"{used / 1_000_000:.1f} MB of {quota_mb} MB used" in library
    finally:
        app.extensions["journal.engine"].dispose()


def test_quota_on_cli_import_and_export(full: tuple[Settings, int], tmp_path: Path) -> None:
    settings, used = full
    runner = CliRunner()
    result = runner.invoke(cli, ["import", str(photo(tmp_path, "second", 4))])
    assert result.exit_code == 1
    assert "imported 0, duplicates 0, failed 1" in result.stdout
    assert "quota of" in result.stderr and "MB used): delete bundles or photos" in result.stderr
    engine = db.make_engine(settings.database_url)
    with db.make_session_factory(engine)() as s:
        assert s.scalar(select(func.count(ImportFailure.id))) == 1
    exported = runner.invoke(cli, ["export"])
    assert (
        exported.exit_code == 1
        and "quota of" in exported.output
        and "delete bundles or photos" in exported.output
    )
    with db.make_session_factory(engine)() as s:
        assert s.scalar(select(func.count(Export.id))) == 0
    assert not settings.exports_dir.exists() or list(settings.exports_dir.iterdir()) == []
    engine.dispose()


def test_quota_off_by_default(env_home: Settings, runner: CliRunner, tmp_path: Path) -> None:
    assert (
        runner.invoke(cli, ["user", "add", "alice", "--password-stdin"], input="password123\n").exit_code == 0
    )
    result = runner.invoke(cli, ["import", str(photo(tmp_path, "a", 5)), str(photo(tmp_path, "b", 6))])
    assert result.exit_code == 0 and "imported 2" in result.stdout
    assert runner.invoke(cli, ["export"]).exit_code == 0


# --- one export at a time per account -------------------------------------------------------------


HOLD = """
import sys
from pathlib import Path
from journal.config import Settings
from journal.services.exporting import export_lock
with export_lock(Settings(home=Path(sys.argv[1])), int(sys.argv[2])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_export_lock_holds_across_processes(env_home: Settings, runner: CliRunner, tmp_path: Path) -> None:
    assert (
        runner.invoke(cli, ["user", "add", "alice", "--password-stdin"], input="password123\n").exit_code == 0
    )
    assert runner.invoke(cli, ["import", str(photo(tmp_path, "a", 7))]).exit_code == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(env_home.home), "1"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        busy = runner.invoke(cli, ["export"])
        assert busy.exit_code == 1 and "an export is already running for this account" in busy.output
        app = create_app(Settings.from_env(env_home.home), TESTING=True)
        client = app.test_client()
        sign_in(client, "alice", "password123")
        form = {"csrf_token": csrf_token(client, "/export")}
        assert client.post("/export", data=form).status_code == 409  # no JavaScript
        as_json = client.post("/export", data=form, headers={"Accept": "application/json"})
        assert as_json.status_code == 409 and "already running" in as_json.get_json()["error"]
        app.extensions["journal.engine"].dispose()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    done = runner.invoke(cli, ["export"])
    assert done.exit_code == 0, done.output


def test_plain_form_export_counts_as_running(
    app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Settings
) -> None:
    """A no-JavaScript export (run inside its request) blocks a JavaScript one for that account."""
    alice = make_user(app, "alice")
    import_files(settings, factory_of(app), alice, photo(tmp_path, "a", 8))
    entered, release = threading.Event(), threading.Event()
    real = exporting.select_posts

    def slow_select(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(exporting, "select_posts", slow_select)
    first, second = app.test_client(), app.test_client()
    for client in (first, second):
        sign_in(client, "alice")
    token_first, token_second = csrf_token(first, "/export"), csrf_token(second, "/export")
    answers: list[int] = []
    plain = threading.Thread(
        target=lambda: answers.append(first.post("/export", data={"csrf_token": token_first}).status_code)
    )
    plain.start()
    try:
        assert entered.wait(60)
        js = second.post("/export", data={"csrf_token": token_second}, headers={"Accept": "application/json"})
        assert js.status_code == 409
        assert second.post("/export", data={"csrf_token": token_second}).status_code == 409
    finally:
        release.set()
        plain.join(60)
    assert answers == [303]
