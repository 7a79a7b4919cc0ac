"""`journal check`: rows without files, files without rows, hash mismatches; --repair deletes no original."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from journal import storage
from journal.cli import cli
from journal.config import Settings
from tests.databases import db_rows
from tests.imaging import make_jpeg
from tests.samples import GPX_SAMPLES


def add_user(runner: CliRunner, name: str = "alice", env: dict[str, str] | None = None) -> None:
    result = runner.invoke(cli, ["user", "add", name, "--password-stdin"], input="password123\n", env=env)
    assert result.exit_code == 0, result.output


def import_photos(runner: CliRunner, folder: Path, count: int, seed: int = 0, **kw: object) -> None:
    for i in range(count):
        make_jpeg(folder / f"IMG_{seed + i}.jpg", seed=seed + i)
    result = runner.invoke(cli, ["import", str(folder)], **kw)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output


def rows(settings: Settings) -> list[tuple[int, str, str]]:
    return db_rows(settings, "SELECT user_id, sha256, stored_path FROM photos ORDER BY id")


def originals(settings: Settings) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in (settings.uploads_dir / "originals").rglob("*") if p.is_file()}


def check(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    result = runner.invoke(cli, ["check", "--json", *args], env=env)
    return result.exit_code, json.loads(result.stdout)


def kinds(report: dict[str, object]) -> list[str]:
    return sorted(p["kind"] for p in report["problems"])  # type: ignore[attr-defined]


def test_check_of_a_sound_home_is_ok(runner: CliRunner, settings: Settings, tmp_path: Path) -> None:
    add_user(runner)
    import_photos(runner, tmp_path / "in", 2)
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1].startswith("ok: 2 photos, 0 tracks, 6 files")
    code, report = check(runner)
    assert code == 0 and report["ok"] is True and report["problems"] == []


def test_check_reports_rows_without_files_and_hash_mismatches(
    runner: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    add_user(runner)
    import_photos(runner, tmp_path / "in", 3)
    (user_id, sha0, path0), (_, sha1, path1), (_, sha2, _) = rows(settings)
    (settings.uploads_dir / path0).unlink()
    (settings.uploads_dir / path1).write_bytes(b"changed bytes")
    (settings.uploads_dir / storage.rendition_relpath(user_id, sha2, "thumb")).unlink()
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 1
    assert f"row without file: {path0}" in result.stdout
    assert f"hash mismatch: {path1}" in result.stdout
    assert "row without rendition: thumb/" in result.stdout
    assert "rows without files 2, files without rows 0, hash mismatches 1" in result.stdout
    code, report = check(runner)
    assert code == 1 and kinds(report) == ["hash_mismatch", "missing_original", "missing_rendition"]


def test_repair_rebuilds_missing_renditions(runner: CliRunner, settings: Settings, tmp_path: Path) -> None:
    add_user(runner)
    import_photos(runner, tmp_path / "in", 1)
    ((user_id, sha, _),) = rows(settings)
    web = settings.uploads_dir / storage.rendition_relpath(user_id, sha, "web")
    web.unlink()
    code, report = check(runner, "--repair")
    assert code == 0, report
    assert web.stat().st_size > 0 and any("renditions rebuilt" in line for line in report["repaired"])  # type: ignore[attr-defined]


@pytest.mark.sqlite_only  # restores a backup of the SQLite file (sqlite3's backup API)
def test_restored_older_database_is_repaired_by_reindexing(
    runner: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    add_user(runner)
    import_photos(runner, tmp_path / "a", 2)
    with sqlite3.connect(settings.home / "journal.db") as live, sqlite3.connect(tmp_path / "backup.db") as to:
        live.backup(to)
    import_photos(runner, tmp_path / "b", 2, seed=10)
    kept = originals(settings)
    # The copy is restored beside the live file (this process still has that one open; the
    # subprocess test in test_housekeeping restores over it).
    restored = {"JOURNAL_DATABASE_URL": f"sqlite:///{tmp_path / 'backup.db'}"}

    refused = runner.invoke(cli, ["import", str(tmp_path / "a")], env=restored)
    assert refused.exit_code == 1 and "older than the files" in refused.output
    code, report = check(runner, env=restored)
    assert code == 1 and kinds(report) == ["orphan"] * 2 + ["stray_rendition"] * 4 + ["wrong_database"]
    code, report = check(runner, "--repair", env=restored)
    assert code == 0, report
    assert sum("re-indexed" in line for line in report["repaired"]) == 2  # type: ignore[attr-defined]
    assert originals(settings) == kept, "repair changed or deleted an original"
    with sqlite3.connect(tmp_path / "backup.db") as conn:
        assert conn.execute("SELECT count(*) FROM photos").fetchone()[0] == 4
    # Writers are welcome again, and the re-indexed photos count as known.
    again = runner.invoke(cli, ["import", str(tmp_path / "b")], env=restored)
    assert again.exit_code == 0 and "imported 0, duplicates 2" in again.stdout


def test_mistyped_database_repair_keeps_every_original(
    runner: CliRunner, settings: Settings, tmp_path: Path, another_database_url: str | None
) -> None:
    add_user(runner)
    import_photos(runner, tmp_path / "in", 2)
    kept = originals(settings)
    wrong_url = another_database_url or f"sqlite:///{tmp_path / 'jornal.db'}"
    wrong = {"JOURNAL_DATABASE_URL": wrong_url}
    code, report = check(runner, env=wrong)
    assert code == 1 and "wrong_database" in kinds(report)
    # No account in the new database: nothing can be re-indexed, nothing is deleted.
    code, report = check(runner, "--repair", env=wrong)
    assert code == 1 and any("no account 1" in line for line in report["repaired"])  # type: ignore[attr-defined]
    assert originals(settings) == kept
    add_user(runner, env=wrong)
    code, report = check(runner, "--repair", env=wrong)
    assert code == 0, report
    assert originals(settings) == kept
    assert db_rows(settings.with_(database_url=wrong_url), "SELECT count(*) FROM photos") == [(2,)]


def test_unknown_files_are_reported_not_deleted(
    runner: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    add_user(runner)
    import_photos(runner, tmp_path / "in", 1)
    stray = settings.uploads_dir / "originals" / "1" / "notes.txt"
    stray.write_text("mine")
    code, report = check(runner, "--repair")
    assert code == 1 and kinds(report) == ["unknown_file"]
    assert stray.read_text() == "mine"


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_check_help_mentions_repair(extra: list[str]) -> None:
    result = CliRunner().invoke(cli, ["check", *extra, "--help"])
    assert result.exit_code == 0 and "--repair" in result.output


def test_orphan_track_is_reindexed(runner: CliRunner, settings: Settings) -> None:
    add_user(runner)
    sample = sorted(GPX_SAMPLES.glob("*.gpx"))[0]
    assert runner.invoke(cli, ["import", str(sample)]).exit_code == 0
    ((stored,),) = db_rows(settings, "SELECT stored_path FROM tracks")
    db_rows(settings, "DELETE FROM tracks")
    code, report = check(runner)
    assert code == 1 and [(p["kind"], p["path"]) for p in report["problems"]] == [("orphan", stored)]  # type: ignore[attr-defined]
    code, report = check(runner, "--repair")
    assert code == 0, report
    assert (settings.uploads_dir / stored).is_file()
    assert db_rows(settings, "SELECT stored_path FROM tracks") == [(stored,)]
