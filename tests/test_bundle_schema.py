"""docs/bundle.schema.json: a valid JSON Schema for manifest.json that every written bundle meets.

The suite-wide check lives in conftest.py (`bundles_match_the_schema`); these tests show that it is
on and that it catches what it should.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from journal.publish import zipbundle
from journal.publish.zipbundle import BundleFile, BundlePost, photo_entry_name, write_bundle_zip
from tests.imaging import make_jpeg
from tests.schemas import BUNDLE_SCHEMA, DOCS, bundle_manifests, bundle_validator, check_manifest, load_json

CREATED = "2026-05-01T18:00:00Z"


def posts(tmp_path: Path) -> list[BundlePost]:
    """A located post split in two parts and a post with nothing known."""
    photo = make_jpeg(tmp_path / "src" / "a.jpg", (120, 80), seed=1)
    other = make_jpeg(tmp_path / "src" / "b.jpg", (80, 120), seed=2)
    return [
        BundlePost(
            id=7,
            caption="Dinner <b>&</b>",
            caption_cut=True,
            taken_at_utc="2026-05-01T18:00:00Z",
            taken_at_local="2026-05-01T20:00:00",
            place="Lyon",
            location={"lat": 45.76, "lon": 4.84},
            position_source="track",
            files=(BundleFile(photo_entry_name(7, 1), photo, 120, 80),),
            platform="instagram",
            part=(1, 2),
        ),
        BundlePost(
            id=8,
            caption="",
            caption_cut=False,
            taken_at_utc=None,
            taken_at_local=None,
            place=None,
            location=None,
            files=(BundleFile(photo_entry_name(8, 1, "png"), other, 80, 120),),
        ),
    ]


def write(tmp_path: Path, name: str = "b.zip") -> Path:
    dest = tmp_path / "out" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_bundle_zip(dest, posts=posts(tmp_path), batch=1, batches=1, created_at=CREATED, index_html="<p>")
    return dest


def test_the_schemas_are_valid_json_schema_2020_12() -> None:
    for path in (BUNDLE_SCHEMA, DOCS / "privacy.schema.json"):
        Draft202012Validator.check_schema(load_json(path))


def test_the_schema_names_the_format_the_code_writes() -> None:
    schema = load_json(BUNDLE_SCHEMA)
    assert schema["properties"]["schema"]["const"] == zipbundle.SCHEMA == "journal.bundle/1"
    # The contract's keys are required, so a reader may rely on them.
    assert {"schema", "batch", "batches", "created_at", "posts"} <= set(schema["required"])
    post = schema["$defs"]["post"]
    assert {"id", "caption", "taken_at_utc", "place", "location", "files"} <= set(post["required"])
    assert set(schema["$defs"]["file"]["required"]) == {"path", "sha256", "width", "height", "bytes"}


def test_a_written_bundle_validates(tmp_path: Path) -> None:
    ((_, manifest),) = bundle_manifests(write(tmp_path).parent)
    check_manifest(manifest)
    assert [post["part"] for post in manifest["posts"]] == [[1, 2], None]


def test_an_undocumented_key_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = zipbundle._manifest_post

    def with_extra(post: BundlePost, files: list[dict[str, Any]]) -> dict[str, Any]:
        return {**original(post, files), "mood": "happy"}

    monkeypatch.setattr(zipbundle, "_manifest_post", with_extra)
    dest = write(tmp_path)
    ((_, manifest),) = bundle_manifests(dest.parent)
    with pytest.raises(AssertionError, match="mood"):
        check_manifest(manifest)
    dest.unlink()  # or this test's own teardown check would fail too


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda m: m["posts"][0].pop("files"), "posts/0"),
        (lambda m: m["posts"][0].update(location={"lat": 91, "lon": 0}), "posts/0/location"),
        (lambda m: m["posts"][0]["files"][0].update(path="../etc/passwd"), "posts/0/files/0/path"),
        (lambda m: m.update(created_at="2026-05-01 18:00"), "created_at"),
        (lambda m: m.update(schema="journal.bundle/2"), "schema"),
    ],
)
def test_a_broken_manifest_is_refused(tmp_path: Path, change: Any, path: str) -> None:
    ((_, manifest),) = bundle_manifests(write(tmp_path).parent)
    change(manifest)
    errors = list(bundle_validator().iter_errors(manifest))
    assert errors and any("/".join(str(p) for p in e.absolute_path).startswith(path) for e in errors)


def test_the_published_schema_lets_readers_meet_new_optional_keys(tmp_path: Path) -> None:
    """The compatibility rule: version 1 may gain keys, so the published schema does not forbid them."""
    ((_, manifest),) = bundle_manifests(write(tmp_path).parent)
    manifest["posts"][0]["files"][0]["duration_s"] = 3.5
    manifest["licence"] = "CC-BY-4.0"
    Draft202012Validator(load_json(BUNDLE_SCHEMA)).validate(manifest)  # no error
    with pytest.raises(AssertionError):
        check_manifest(manifest)  # but the tests insist that the code's keys are all described


def test_every_bundle_under_tmp_path_is_checked_after_the_test(request: pytest.FixtureRequest) -> None:
    assert "bundles_match_the_schema" in request.fixturenames


def test_the_check_finds_bundles_by_content_not_name(tmp_path: Path) -> None:
    write(tmp_path)
    with zipfile.ZipFile(tmp_path / "out" / "other.zip", "w") as archive:
        archive.writestr("manifest.json", json.dumps({"name": "some other tool's zip"}))
    (tmp_path / "out" / "broken.zip").write_bytes(b"PK not a zip")
    assert [path.name for path, _ in bundle_manifests(tmp_path)] == ["b.zip"]


def test_a_validation_error_names_the_key() -> None:
    with pytest.raises(ValidationError):
        bundle_validator().validate({"schema": "journal.bundle/1"})
