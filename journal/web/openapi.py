"""GET /api/openapi.json: the OpenAPI 3.1 description of /api/*, the one /api route open without sign-in.

The description is hand-kept in docs/openapi.json (packaged into the wheel as journal/openapi.json);
tests/test_openapi.py validates it and checks it against the running app, route by route.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response

from journal import __version__

bp = Blueprint("openapi", __name__)

#: Source tree (or editable install) first, then the copy packaged into the wheel.
SPEC_PATHS = (
    Path(__file__).resolve().parents[2] / "docs" / "openapi.json",
    Path(__file__).resolve().parents[1] / "openapi.json",
)


@functools.cache
def spec_text() -> str:
    """The description as served: the file's document with `info.version` set to this version."""
    path = next((p for p in SPEC_PATHS if p.is_file()), SPEC_PATHS[0])
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    document["info"]["version"] = __version__
    return json.dumps(document, ensure_ascii=False, indent=1)


@bp.get("/api/openapi.json")
def spec() -> Any:
    """The OpenAPI description of the HTTP API (no sign-in: it holds no account's data)."""
    return Response(spec_text(), mimetype="application/json", headers={"Cache-Control": "no-cache"})
