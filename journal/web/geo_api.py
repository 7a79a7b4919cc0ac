"""GET /api/photos.geojson: the signed-in user's located photos for the map, streamed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, stream_with_context, url_for
from flask_login import current_user

from journal.services import library
from journal.web.context import arg_id, get_db
from journal.web.media import VERSION_CHARS

bp = Blueprint("geo_api", __name__)

MEDIA_TYPE = "application/geo+json"
_ID, _VERSION = 987654321, "vvvvvvvv"


def thumb_url_maker() -> Callable[[int, str], str]:
    """A fast maker of versioned thumbnail URLs, built once from url_for (not called per photo)."""
    sample = url_for("media.photo_file", photo_id=_ID, kind="thumb", v=_VERSION)
    head, tail = sample.split(str(_ID), 1)
    middle, end = tail.split(_VERSION, 1)
    return lambda photo_id, sha256: f"{head}{photo_id}{middle}{sha256[:VERSION_CHARS]}{end}"


@bp.get("/api/photos.geojson")
def photos_geojson() -> Any:
    """The user's photos with a position as a GeoJSON FeatureCollection (`?trip=<id>` for one trip)."""
    trip_id = arg_id("trip")
    chunks = library.geojson_chunks(get_db(), current_user.id, thumb_url_maker(), trip_id=trip_id)
    first = next(chunks)  # runs the query now, so a bad trip id answers 404 before streaming starts
    body = stream_with_context(_prepend(first, chunks))
    return Response(body, mimetype=MEDIA_TYPE, headers={"Cache-Control": "private, no-cache"})


def _prepend(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest
