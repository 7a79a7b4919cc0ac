"""Image serving: originals and renditions, only to their owner, only by photo id.

URLs carry `?v=<content hash prefix>` (see `photo_url`): such a URL always means the same
bytes, so it may be cached for a year without asking again. Without it (or with a stale one)
the browser revalidates with the ETag and gets a cheap 304; photo ids can be reused after a
delete, so an id alone must never be cached as immutable.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from flask import Blueprint, request, send_file, url_for
from flask_login import current_user

from journal import storage
from journal.errors import InvalidInput, NotFound
from journal.models import Photo
from journal.web.context import get_db, get_settings

logger = logging.getLogger(__name__)

bp = Blueprint("media", __name__)

KINDS = ("original", "web", "thumb")
VERSION_CHARS = 16
IMMUTABLE = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"
_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "tif": "image/tiff",
    "heic": "image/heic",
    "avif": "image/avif",
    "dng": "image/x-adobe-dng",
}
_UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f-\x9f"\\/]')


def photo_url(photo: Photo, kind: str = "thumb") -> str:
    """The cacheable URL of a photo's original or rendition (usable in templates and the GeoJSON)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    return url_for("media.photo_file", photo_id=photo.id, kind=kind, v=photo.sha256[:VERSION_CHARS])


def owned_photo(user_id: int, photo_id: int) -> Photo:
    """The user's photo with that id; NotFound also for another user's, so ids do not leak."""
    photo = get_db().get(Photo, photo_id)
    if photo is None or photo.user_id != user_id:
        raise NotFound("no such photo")
    return photo


def file_path(photo: Photo, kind: str) -> Path:
    """Where the photo's file of that kind is, resolved under uploads/ (never a client path)."""
    rel = (
        photo.stored_path
        if kind == "original"
        else storage.rendition_relpath(photo.user_id, photo.sha256, kind)
    )
    try:
        path = storage.safe_join(get_settings().uploads_dir, rel)
    except InvalidInput:
        logger.error("photo %d has a stored path outside uploads/: %r", photo.id, rel)
        raise NotFound("no such photo") from None
    if not path.is_file():
        logger.warning("photo %d: %s file missing at %s", photo.id, kind, path)
        raise NotFound("the file of this photo is missing")
    return path


def download_name(photo: Photo, kind: str, path: Path) -> str:
    """A harmless file name for `Content-Disposition`: the original's base name, else photo-<id>."""
    base = _UNSAFE_IN_NAME.sub("", re.split(r"[\\/]", photo.original_name)[-1]).strip(" .")[-200:]
    if kind == "original":
        return base or f"photo-{photo.id}{path.suffix}"
    stem = Path(base).stem or f"photo-{photo.id}"
    return f"{stem}-{kind}{path.suffix}"


@bp.get("/photos/<int:photo_id>/<any(original, web, thumb):kind>")
def photo_file(photo_id: int, kind: str) -> Any:
    """Send a photo's original, web image or thumbnail to its owner; `?download=1` as an attachment."""
    photo = owned_photo(current_user.id, photo_id)
    path = file_path(photo, kind)
    response = send_file(
        path,
        mimetype=_TYPES.get(path.suffix.lstrip(".").lower(), "application/octet-stream"),
        etag=f"{photo.sha256}-{kind}",
        conditional=True,
        as_attachment=request.args.get("download") == "1",
        download_name=download_name(photo, kind, path),
    )
    versioned = request.args.get("v") == photo.sha256[:VERSION_CHARS]
    response.headers["Cache-Control"] = IMMUTABLE if versioned else REVALIDATE
    return response
