"""The documents in docs/ as validators: OpenAPI response schemas and the bundle manifest's JSON Schema.

Published schemas leave objects open (clients ignore keys they do not know, and a bundle may gain
optional keys without a new schema version). Tests validate *strictly*: every object that lists its
properties refuses any other key, so a key the code writes but docs/ does not describe fails a test.
"""

from __future__ import annotations

import copy
import json
import zipfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
OPENAPI = DOCS / "openapi.json"
BUNDLE_SCHEMA = DOCS / "bundle.schema.json"
PRIVACY_SCHEMA = DOCS / "privacy.schema.json"
OPENAPI_URI = "urn:journal:openapi"

#: Keywords whose value is a schema, a list of schemas, or a map of names to schemas.
_ONE = ("items", "additionalProperties", "propertyNames", "not", "if", "then", "else", "contains")
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions")


def strict(schema: Any) -> Any:
    """A copy of a schema in which every object with `properties` (and no rule of its own) is closed."""
    schema = copy.deepcopy(schema)
    _close(schema)
    return schema


def _close(schema: Any) -> None:
    if not isinstance(schema, dict):
        return
    if "properties" in schema and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    for key in _ONE:
        _close(schema.get(key))
    for key in _LIST:
        for sub in schema.get(key, []):
            _close(sub)
    for key in _MAP:
        for sub in schema.get(key, {}).values():
            _close(sub)


def load_json(path: Path) -> Any:
    """A JSON file's document."""
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def openapi() -> dict[str, Any]:
    """docs/openapi.json as committed."""
    document: dict[str, Any] = load_json(OPENAPI)
    return document


def _strict_openapi(document: Any) -> Any:
    """The OpenAPI document with every schema in it made strict (schemas sit under `schema` keys and
    components.schemas)."""
    if isinstance(document, dict):
        out = {}
        for key, value in document.items():
            out[key] = strict(value) if key == "schema" else _strict_openapi(value)
        return out
    if isinstance(document, list):
        return [_strict_openapi(value) for value in document]
    return document


@cache
def _openapi_registry() -> Registry[Any]:
    document = _strict_openapi(openapi())
    document["components"]["schemas"] = {
        name: strict(schema) for name, schema in document["components"]["schemas"].items()
    }
    return Registry().with_resource(OPENAPI_URI, Resource.from_contents(document, DRAFT202012))


def pointer(*parts: str) -> str:
    """A JSON pointer (RFC 6901) to parts, percent-encoded for use in a URI fragment."""
    return "".join("/" + quote(part.replace("~", "~0").replace("/", "~1"), safe="~") for part in parts)


def openapi_validator(json_pointer: str) -> Draft202012Validator:
    """A strict validator for the schema at that pointer into docs/openapi.json."""
    return Draft202012Validator(
        {"$ref": f"{OPENAPI_URI}#{json_pointer}"},
        registry=_openapi_registry(),
        format_checker=FormatChecker(),
    )


# --- bundles ---------------------------------------------------------------------------------


@cache
def bundle_validator() -> Draft202012Validator:
    """A strict validator for manifest.json (docs/bundle.schema.json)."""
    schema = strict(load_json(BUNDLE_SCHEMA))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def _check(validator: Draft202012Validator, document: Any, what: str) -> None:
    """Fail with every problem the validator finds in the document (`what`: its name and schema)."""
    problems = [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator.iter_errors(document)
    ]
    assert not problems, f"{what}:\n" + "\n".join(problems)


def check_manifest(manifest: Any) -> None:
    """Fail with every problem when a manifest does not match docs/bundle.schema.json."""
    _check(bundle_validator(), manifest, "manifest.json does not match docs/bundle.schema.json")


def bundle_manifests(folder: Path) -> Iterator[tuple[Path, Any]]:
    """(zip, manifest) for every journal bundle under folder: zips with a journal.bundle manifest."""
    for path in sorted(folder.rglob("*.zip")):
        try:
            with zipfile.ZipFile(path) as archive, archive.open("manifest.json") as handle:
                manifest = json.load(handle)
        except (KeyError, zipfile.BadZipFile, ValueError, OSError):
            continue  # not a bundle (or one a test damaged on purpose)
        if isinstance(manifest, dict) and str(manifest.get("schema", "")).startswith("journal.bundle/"):
            yield path, manifest


@cache
def privacy_validator() -> Draft202012Validator:
    """A strict validator for privacy.json (docs/privacy.schema.json)."""
    schema = strict(load_json(PRIVACY_SCHEMA))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def check_privacy(report: Any) -> None:
    """Fail with every problem when a privacy.json does not match docs/privacy.schema.json."""
    _check(privacy_validator(), report, "privacy.json does not match docs/privacy.schema.json")


def bundle_privacy_reports(folder: Path) -> Iterator[tuple[Path, Any]]:
    """(zip, privacy report) for every journal bundle under folder that carries privacy.json."""
    for path, _manifest in bundle_manifests(folder):
        try:
            with zipfile.ZipFile(path) as archive, archive.open("privacy.json") as handle:
                yield path, json.load(handle)
        except KeyError:
            continue  # a bundle a test made by hand, without the report
