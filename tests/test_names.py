"""File names that are not valid UTF-8 (bytes such as 0xff on disk) are kept escaped and shown safely."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder

from journal import names
from journal.cli import cli
from journal.config import Settings
from tests.databases import db_rows
from tests.imaging import make_jpeg
from tests.web import csrf_token


def bytes_named(folder: Path, raw: bytes, content: bytes) -> Path:
    """A file whose name is the bytes `raw` (created through an os.fsencode path)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = os.path.join(os.fsencode(folder), raw)
    with open(target, "wb") as handle:
        handle.write(content)
    return Path(os.fsdecode(target))


def test_printable_escapes_only_what_is_not_utf8() -> None:
    assert names.printable("café.jpg") == "café.jpg"
    shown = names.printable(os.fsdecode(b"caf\xff\xfe.jpg"))
    assert shown == "caf\\xff\\xfe.jpg" and shown.encode("utf-8")
    assert names.original_bytes(shown) == b"caf\xff\xfe.jpg"


def test_import_keeps_going_and_keeps_the_names(
    runner: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    assert (
        runner.invoke(cli, ["user", "add", "alice", "--password-stdin"], input="password123\n").exit_code == 0
    )
    folder = tmp_path / "in"
    jpeg = make_jpeg(tmp_path / "a.jpg", seed=1).read_bytes()
    bytes_named(folder, b"caf\xff.jpg", jpeg)
    bytes_named(folder, b"\xfe\xfe-2.jpg", make_jpeg(tmp_path / "b.jpg", seed=2).read_bytes())
    bytes_named(folder, b"broken\xff.jpg", b"")
    make_jpeg(folder / "plain.jpg", seed=3)
    result = runner.invoke(cli, ["import", str(folder)])
    assert result.exit_code == 1, result.output  # one file failed, and only that one
    assert "imported 3, duplicates 0, failed 1" in result.stdout
    assert "broken\\xff.jpg: empty file" in result.stderr
    stored = {Path(n).name for (n,) in db_rows(settings, "SELECT original_name FROM photos")}
    failed = [Path(n).name for (n,) in db_rows(settings, "SELECT source_name FROM import_failures")]
    assert stored == {"caf\\xff.jpg", "\\xfe\\xfe-2.jpg", "plain.jpg"}
    assert failed == ["broken\\xff.jpg"]
    assert names.original_bytes(str(folder / "caf\\xff.jpg")) == os.fsencode(
        folder / os.fsdecode(b"caf\xff.jpg")
    )


def test_inspect_json_stays_utf8(tmp_path: Path) -> None:
    path = bytes_named(tmp_path, b"caf\xff.jpg", make_jpeg(tmp_path / "a.jpg", seed=4).read_bytes())
    bad = bytes_named(tmp_path, b"bad\xfe.jpg", b"\xff\xd8\xff not an image")
    done = subprocess.run(
        [sys.executable, "-m", "journal", "inspect", os.fsencode(path), os.fsencode(bad), "--json"],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 1  # the second file is unreadable, and reported
    items = json.loads(done.stdout.decode("utf-8"))
    assert [i["file"] for i in items] == [str(tmp_path / "caf\\xff.jpg"), str(tmp_path / "bad\\xfe.jpg")]
    assert names.original_bytes(items[0]["file"]) == os.fsencode(path)
    assert items[0]["error"] is None and items[0]["format"] == "JPEG"
    assert items[1]["error"] and "\udcfe" not in items[1]["error"]


def multipart(disposition: bytes, body: bytes) -> tuple[bytes, str]:
    """A multipart body with one `file` part whose Content-Disposition parameters are given as raw bytes."""
    data = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; '
        + disposition
        + b"\r\nContent-Type: image/jpeg\r\n\r\n"
        + body
        + b"\r\n--XyZ--\r\n"
    )
    return data, "multipart/form-data; boundary=XyZ"


def post_raw(client: FlaskClient, data: bytes, content_type: str) -> dict[str, Any]:
    token = csrf_token(client, "/upload")
    builder = EnvironBuilder(
        path="/api/photos",
        method="POST",
        input_stream=io.BytesIO(data),
        content_type=content_type,
        content_length=len(data),
        headers=[("X-CSRFToken", token)],
    )
    response = client.open(builder)
    payload = json.loads(response.get_data().decode("utf-8"))
    assert isinstance(payload, dict)
    payload["status_code"] = response.status_code
    return payload


def test_upload_with_percent_escaped_bytes_keeps_them(
    app: Flask, user_client: FlaskClient, tmp_path: Path
) -> None:
    jpeg = make_jpeg(tmp_path / "u.jpg", seed=5).read_bytes()
    answer = post_raw(user_client, *multipart(b"filename*=UTF-8''caf%FF%FE.jpg", jpeg))
    assert answer["status_code"] == 200, answer
    (result,) = answer["results"]
    assert result["status"] == "imported" and result["name"] == "caf\\xff\\xfe.jpg"
    stored = db_rows(app.config["JOURNAL_SETTINGS"], "SELECT original_name FROM photos")
    assert stored == [("caf\\xff\\xfe.jpg",)]


def test_upload_with_raw_invalid_utf8_in_the_filename_is_refused_clearly(
    app: Flask, user_client: FlaskClient, tmp_path: Path
) -> None:
    """Werkzeug reads part headers as UTF-8 only; the whole form used to vanish ("no file")."""
    jpeg = make_jpeg(tmp_path / "r.jpg", seed=6).read_bytes()
    answer = post_raw(user_client, *multipart(b'filename="caf\xff.jpg"', jpeg))
    assert answer["status_code"] == 400, answer
    assert "not UTF-8" in str(answer["error"]) and "filename*=UTF-8''" in str(answer["error"])
