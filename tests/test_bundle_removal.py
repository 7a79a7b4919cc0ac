"""Deleting bundles: from the export page (owner only) and `journal bundles list|rm|prune`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from journal.cli import cli
from journal.config import Settings
from journal.models import Export, ExportPost, OutgoingMessage, Publication
from journal.services import exporting, publishing
from tests.databases import use_database
from tests.imaging import make_jpeg
from tests.test_services_exporting import import_files
from tests.web import csrf_token, make_user, sign_in


def factory_of(app: Flask) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = app.extensions["journal.sessions"]
    return factory


def add_photos(app: Flask, settings: Settings, user_id: int, tmp_path: Path, count: int = 1) -> None:
    paths = [
        make_jpeg(
            tmp_path / f"u{user_id}" / f"{i}.jpg",
            (320, 240),
            seed=user_id * 10 + i,
            taken_at=datetime(2025, 5, 1, 9, i),
        )
        for i in range(count)
    ]
    import_files(settings, factory_of(app), user_id, *paths)


def export(app: Flask, settings: Settings, user_id: int, **fields: object) -> exporting.WrittenBundle:
    outcome = exporting.run_export(
        factory_of(app),
        settings,
        exporting.ExportRequest(user_id=user_id, include_exported=True, **fields),  # type: ignore[arg-type]
    )
    (written,) = outcome.bundles
    return written


def count(app: Flask, model: type[object]) -> int:
    with factory_of(app)() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_web_delete_is_owner_checked_and_consistent(app: Flask, settings: Settings, tmp_path: Path) -> None:
    alice, bob = make_user(app, "alice"), make_user(app, "bob")
    add_photos(app, settings, alice, tmp_path)
    first = export(app, settings, alice)
    published = export(app, settings, alice, platform="instagram")
    with factory_of(app)() as s, s.begin():
        publishing.mark_published(s, publishing.get_export(s, alice, published.export_id))
    intruder = app.test_client()
    sign_in(intruder, "bob")
    token = csrf_token(intruder, "/export")
    for export_id in (first.export_id, published.export_id, 99999999999):
        response = intruder.post(f"/export/bundles/{export_id}/delete", data={"csrf_token": token})
        assert response.status_code == 404
    assert first.path.is_file() and count(app, Export) == 2

    owner = app.test_client()
    sign_in(owner, "alice")
    page = owner.get("/export").get_data(as_text=True)
    assert f'action="/export/bundles/{first.export_id}/delete"' in page
    assert owner.post(f"/export/bundles/{first.export_id}/delete").status_code in (400, 403)  # CSRF
    token = csrf_token(owner, "/export")
    done = owner.post(f"/export/bundles/{first.export_id}/delete", data={"csrf_token": token})
    assert done.status_code == 303 and not first.path.exists()
    again = owner.post(f"/export/bundles/{published.export_id}/delete", data={"csrf_token": token})
    assert again.status_code == 303 and not published.path.exists()
    assert count(app, Export) == 0 and count(app, ExportPost) == 0
    with factory_of(app)() as s:
        (publication,) = s.scalars(select(Publication)).all()
        assert publication.export_id is None  # published records survive their bundle
        post_id = publication.post_id
        status = publishing.post_status(s, alice, [post_id])[post_id]
    assert status == ("published", [])
    with factory_of(app)() as s:  # a deleted bundle's posts count as not exported again
        waiting = exporting.select_posts(s, settings, exporting.ExportRequest(user_id=alice))
    assert [p.id for p in waiting] == [post_id]
    assert bob  # bob owns nothing


def test_delete_keeps_a_file_that_is_no_longer_the_bundle(
    app: Flask, settings: Settings, tmp_path: Path
) -> None:
    alice = make_user(app, "alice")
    add_photos(app, settings, alice, tmp_path)
    written = export(app, settings, alice)
    written.path.write_bytes(b"somebody else's file now")
    with factory_of(app)() as s, s.begin():
        removal = publishing.delete_bundles(s, alice, [written.export_id])
    problems = publishing.remove_bundle_files(removal)
    assert written.path.read_bytes() == b"somebody else's file now"
    assert problems and "left in place" in problems[0] and count(app, Export) == 0


@pytest.fixture
def home(app: Flask, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Flask:
    use_database(monkeypatch, settings)
    return app


def test_bundles_list_and_rm(home: Flask, settings: Settings, tmp_path: Path) -> None:
    alice, bob = make_user(home, "alice"), make_user(home, "bob")
    add_photos(home, settings, alice, tmp_path)
    add_photos(home, settings, bob, tmp_path)
    mine = export(home, settings, alice, format="eml", mail_to="me@example.org")
    theirs = export(home, settings, bob)
    runner = CliRunner()
    listed = runner.invoke(cli, ["bundles", "list", "--user", "alice"])
    assert listed.exit_code == 0, listed.output
    header, row = listed.stdout.splitlines()
    assert header.split() == ["ID", "FILE", "SIZE", "CREATED", "PUBLISHED"]
    assert re.match(
        rf"^{mine.export_id}\s+{re.escape(mine.path.name)}\s+\S+ (kB|MB|B)\s+\d{{4}}-\d\d-\d\dT\S+Z\s+no$",
        row,
    )
    both = runner.invoke(cli, ["bundles", "list", "--all-users"]).stdout
    assert mine.path.name in both and theirs.path.name in both
    assert runner.invoke(cli, ["bundles", "list"]).exit_code == 1  # two accounts: say whose

    refused = runner.invoke(cli, ["bundles", "rm", "--user", "alice", str(theirs.export_id)])
    assert refused.exit_code == 1 and f"no bundle {theirs.export_id}" in refused.output
    assert theirs.path.is_file()
    removed = runner.invoke(cli, ["bundles", "rm", "--user", "alice", str(mine.export_id)])
    assert removed.exit_code == 0, removed.output
    assert f"removed: {mine.path.name}" in removed.stdout and not mine.path.exists()
    assert count(home, OutgoingMessage) == 0  # a deleted e-mail bundle is never sent


def test_bundles_prune(home: Flask, settings: Settings, tmp_path: Path) -> None:
    alice = make_user(home, "alice")
    add_photos(home, settings, alice, tmp_path)
    old, published, fresh = (export(home, settings, alice, platform=p) for p in ("original", "x", "mastodon"))
    with factory_of(home)() as s, s.begin():
        s.get(Export, old.export_id).created_at = datetime.now(UTC) - timedelta(days=40)  # type: ignore[union-attr]
        publishing.mark_published(s, publishing.get_export(s, alice, published.export_id))
    runner = CliRunner()
    dry = runner.invoke(cli, ["bundles", "prune", "--older-than", "30", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert sorted(dry.stdout.splitlines()[:-1]) == sorted(
        [f"would remove: {old.path.name}", f"would remove: {published.path.name}"]
    )
    assert old.path.exists() and published.path.exists() and count(home, Export) == 3
    only_published = runner.invoke(cli, ["bundles", "prune"])
    assert only_published.stdout.splitlines()[0].startswith(f"removed: {published.path.name} (")
    assert not published.path.exists() and old.path.exists()
    aged = runner.invoke(cli, ["bundles", "prune", "--older-than", "30"])
    assert f"removed: {old.path.name}" in aged.stdout and "removed 1 bundle" in aged.stdout
    assert not old.path.exists() and fresh.path.exists() and count(home, Export) == 1


def test_bundles_commands_have_help(runner: CliRunner) -> None:
    for command in ("list", "rm", "prune"):
        result = runner.invoke(cli, ["bundles", command, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, command
