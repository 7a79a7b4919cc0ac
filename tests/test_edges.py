"""Edges of the calendar (issue 17): one bad file never ends a batch; undated and far-off times never
break a page; clocks that cannot be right are marked and left out of spans."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from journal import metadata
from journal.cli import cli
from journal.models import ImportFailure, Photo
from journal.services import importing
from tests.conftest import csrf_token
from tests.edgefiles import jpeg_with

OVERFLOWING = [
    ("9999:12:31 23:59:59", "-12:00"),
    ("0001:01:01 00:00:00", "+14:00"),
]


def _sessions(app: Flask) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = app.extensions["journal.sessions"]
    return factory


def _failing_reader(bad_name: str) -> Callable[..., metadata.PhotoMetadata]:
    """read_metadata, raising an unexpected error (naming the process it ran in) for one file name."""
    real = metadata.read_metadata

    def read(path: Path, **kwargs: Any) -> metadata.PhotoMetadata:
        if Path(path).name == bad_name:
            raise RuntimeError(f"injected failure in process {os.getpid()}")
        return real(path, **kwargs)

    return read


# --- item 1: one out-of-range time, or one unexpected error, is that file's failure alone -------------


@pytest.mark.parametrize(("taken", "offset"), OVERFLOWING)
def test_a_time_beyond_the_calendar_in_utc_is_kept_local_with_no_utc(
    tmp_path: Path, taken: str, offset: str
) -> None:
    path = jpeg_with(tmp_path / "far.jpg", taken_at=taken, offset=offset)
    meta = metadata.read_metadata(path)
    expected = taken.replace(":", "-", 2).replace(" ", "T")
    assert meta.taken_at is not None and meta.taken_at.isoformat() == expected
    assert meta.utc_offset == offset
    assert meta.taken_at_utc is None
    found = metadata.inspect_file(str(path))
    assert found["error"] is None
    assert found["taken_at_utc"] is None
    assert found["taken_at"] == expected


def test_gps_time_on_the_last_second_of_the_calendar_is_no_time(tmp_path: Path) -> None:
    gps = {0x1D: "9999:12:31", 0x07: (23.0, 59.0, 60.5)}
    path = jpeg_with(tmp_path / "leap.jpg", taken_at="9999:12:31 23:59:59", gps=gps)
    meta = metadata.read_metadata(path)
    assert meta.gps_time_utc is None
    assert meta.taken_at_utc is None


def test_inspect_reports_an_unexpected_error_for_its_file_only(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = jpeg_with(tmp_path / "good.jpg", taken_at="2024:05:01 12:00:00")
    bad = jpeg_with(tmp_path / "bad.jpg", colour=1)
    far = jpeg_with(tmp_path / "far.jpg", colour=2, taken_at="9999:12:31 23:59:59", offset="-12:00")
    monkeypatch.setattr(metadata, "read_metadata", _failing_reader("bad.jpg"))
    result = runner.invoke(cli, ["inspect", str(good), str(bad), str(far)])
    assert result.exit_code == 1
    good_json, bad_json, far_json = json.loads(result.stdout)
    assert good_json["error"] is None and good_json["taken_at"] == "2024-05-01T12:00:00"
    assert "internal error" in bad_json["error"] and "injected failure" in bad_json["error"]
    assert far_json["error"] is None and far_json["taken_at_utc"] is None
    assert "Traceback" not in result.stdout


def _folder_with_a_bad_file(root: Path) -> Path:
    for i in range(4):
        jpeg_with(root / f"ok{i}.jpg", colour=10 + i, taken_at=f"2024:05:0{i + 1} 12:00:00", offset="+02:00")
    jpeg_with(root / "bad.jpg", colour=3)
    jpeg_with(root / "far.jpg", colour=4, taken_at="9999:12:31 23:59:59", offset="-12:00")
    jpeg_with(root / "early.jpg", colour=5, taken_at="0001:01:01 00:00:00", offset="+14:00")
    return root


def test_cli_import_with_workers_turns_an_error_in_a_worker_into_that_files_failure(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_factory: sessionmaker[Session]
) -> None:
    folder = _folder_with_a_bad_file(tmp_path / "in")
    # The pool forks after this, so the workers read with the failing reader too.
    monkeypatch.setattr(importing, "read_metadata", _failing_reader("bad.jpg"))
    monkeypatch.setenv("JOURNAL_WORKERS", "2")
    assert (
        runner.invoke(cli, ["user", "add", "alice", "--password-stdin"], input="password123\n").exit_code == 0
    )
    result = runner.invoke(cli, ["import", str(folder)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines()[-1] == "imported 6, duplicates 0, failed 1"
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "bad.jpg" in failed[0] and "injected failure" in failed[0]
    worker_pid = int(failed[0].rsplit(" ", 1)[-1])
    assert worker_pid != os.getpid()  # it really failed inside a worker process
    with session_factory() as s:
        photos = {Path(p.original_name).name: p for p in s.scalars(select(Photo))}
        assert sorted(photos) == ["early.jpg", "far.jpg", "ok0.jpg", "ok1.jpg", "ok2.jpg", "ok3.jpg"]
        assert photos["far.jpg"].taken_at is not None and photos["far.jpg"].taken_at.year == 9999
        assert photos["far.jpg"].taken_at_utc is None
        failures = list(s.scalars(select(ImportFailure)))
        assert [Path(f.source_name).name for f in failures] == ["bad.jpg"]


def test_cli_import_of_far_off_times_in_a_real_process_pool(tmp_path: Path) -> None:
    """The real bug, no injection: `journal import` with two workers, in its own process."""
    folder = _folder_with_a_bad_file(tmp_path / "in")
    (folder / "bad.jpg").unlink()
    env = {**os.environ, "JOURNAL_HOME": str(tmp_path / "home"), "JOURNAL_WORKERS": "2"}
    env.pop("JOURNAL_DATABASE_URL", None)
    journal = [sys.executable, "-m", "journal"]
    subprocess.run(
        [*journal, "user", "add", "a", "--password-stdin"], input=b"password123\n", env=env, check=True
    )
    done = subprocess.run([*journal, "import", str(folder)], env=env, capture_output=True, timeout=300)
    assert b"Traceback" not in done.stderr, done.stderr.decode()
    assert done.stdout.decode().strip() == "imported 6, duplicates 0, failed 0"
    assert done.returncode == 0


def test_upload_api_answers_failed_for_the_bad_file_and_imports_the_rest(
    app: Flask, user_client: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder_with_a_bad_file(tmp_path / "in")
    names = ["ok0.jpg", "bad.jpg", "far.jpg", "early.jpg"]
    # Staged uploads keep only the extension: the injected reader looks at the original name instead.
    monkeypatch.setattr(importing, "read_metadata", _failing_staged(names.index("bad.jpg"), folder))
    data = {"file": [(io.BytesIO((folder / n).read_bytes()), n) for n in names]}
    token = csrf_token(user_client, "/upload")
    response = user_client.post(
        "/api/photos", data=data, headers={"X-CSRFToken": token}, content_type="multipart/form-data"
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == ["imported", "failed", "imported", "imported"]
    assert "injected failure" in results[1]["error"]
    with _sessions(app)() as s:
        far = s.get(Photo, results[2]["id"])
        assert far is not None and far.taken_at_utc is None and far.taken_at is not None
        assert [f.source_name for f in s.scalars(select(ImportFailure))] == ["bad.jpg"]


def _failing_staged(index: int, folder: Path) -> Callable[..., metadata.PhotoMetadata]:
    """read_metadata raising for the staged copy of one file (recognised by its bytes)."""
    real = metadata.read_metadata
    bad = (folder / "bad.jpg").read_bytes()

    def read(path: Path, **kwargs: Any) -> metadata.PhotoMetadata:
        if Path(path).read_bytes() == bad:
            raise RuntimeError(f"injected failure in process {os.getpid()}")
        return real(path, **kwargs)

    return read
