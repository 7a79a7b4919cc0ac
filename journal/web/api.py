"""The JSON API for uploads: session (with an X-CSRFToken header) or `Authorization: Bearer TOKEN`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask_login import current_user

from journal.errors import InvalidInput
from journal.services import uploads
from journal.web.context import get_db
from journal.web.upload import import_request_files

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.post("/photos")
def upload_photos() -> Any:
    """Store uploaded photos: multipart `file` parts, optional `caption`, `trip`, `mode`, `post`, `sha256`.

    Answers 200 with `{"results": [{"name", "status", "id", "post", "sha256", "error"}]}`, one per
    file in order, even when some failed; `post` is the post a photo went into, so a client can
    send `post=<id>` with later requests to put every file of a batch into one post.
    """
    return jsonify(results=[result.as_dict() for result in import_request_files()])


@bp.post("/photos/check")
def check_photos() -> Any:
    """Which contents are already stored: JSON `{"sha256": [hex, ...]}` -> `{"known": {hex: photo id}}`."""
    payload = request.get_json(silent=True)
    hashes = payload.get("sha256") if isinstance(payload, dict) else None
    if not isinstance(hashes, list):
        raise InvalidInput('send JSON like {"sha256": ["<64 hex digits>", ...]}')
    return jsonify(known=uploads.known_photos(get_db(), current_user.id, hashes))
