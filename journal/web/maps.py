"""The map journal: a map of the photos and routes beside the story of the trip, day by day.

Pages: ``/map`` (everything) and ``/trips/<id>/map``. The story loads in chunks (``/map/story``) and
the photos without a position in pages (``/map/unlocated``), both as HTML fragments rendered with
autoescaping. The map reads compact points from ``/api/photos.points`` and popup details from
``/api/map/photos``; a photo is placed by hand with ``POST /api/map/photos/<id>/position``.
Offline tiles registered with ``journal tiles add`` are served at ``/tiles/<z>/<x>/<y>``.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, g, jsonify, render_template, request, url_for
from flask_login import current_user
from PIL import Image

from journal import route
from journal.errors import InvalidInput
from journal.services import (
    editing,
    geotagging,
    library,
    map_points,
    map_routes,
    map_story,
    maps,
    mapscope,
    tilesets,
)
from journal.web.context import arg_id, get_db, get_settings
from journal.web.media import VERSION_CHARS

bp = Blueprint("maps", __name__)

#: Vendored libraries and basemap data change only with a release: let browsers keep them a week.
STATIC_MAX_AGE = 7 * 24 * 3600
_LONG_CACHED = ("basemap/", "vendor/")
TILE_CACHE = "private, max-age=86400"
_SENTINEL_ID = 987654321
_TEMPLATE_HOST = re.compile(r"\{[a-z]\}")


@functools.cache
def empty_tile() -> bytes:
    """A 1x1 transparent PNG for places no tile set covers (the basemap shows through)."""
    buffer = io.BytesIO()
    Image.new("RGBA", (1, 1), (0, 0, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def cache_static_assets(response: Response) -> Response:
    """A week's cache for /static/basemap/* and /static/vendor/*: the map's big, rarely changing files."""
    filename = (request.view_args or {}).get("filename", "")
    if request.endpoint == "static" and response.status_code == 200 and filename.startswith(_LONG_CACHED):
        response.cache_control.public = True
        response.cache_control.max_age = STATIC_MAX_AGE
        response.cache_control.no_cache = None
    return response


def _scope(trip_id: int | None) -> mapscope.Scope:
    return mapscope.scope_for(get_db(), current_user.id, trip_id)


def _pattern(endpoint: str, **values: Any) -> str:
    """A URL with "{id}" where a photo id goes (built once, not per photo)."""
    return url_for(endpoint, photo_id=_SENTINEL_ID, **values).replace(str(_SENTINEL_ID), "{id}")


def _urls(scope: mapscope.Scope) -> Callable[[str], str]:
    trip: dict[str, Any] = {"trip": scope.trip_id} if scope.trip_id is not None else {}
    static = {
        "worker": "js/journal-map-worker.js",
        "supercluster": "vendor/supercluster/supercluster.min.js",
        "cluster": "js/journal-cluster.js",
    }
    named = {
        "points": lambda: url_for(".points", **trip),
        "details": lambda: url_for(".details"),
        "thumb": lambda: _pattern("media.photo_file", kind="thumb"),
        "place": lambda: _pattern(".place"),
        "tiles": lambda: url_for(".tile", z=0, x=0, y=0).replace("/0/0/0", "/{z}/{x}/{y}"),
    }
    return lambda name: url_for("static", filename=static[name]) if name in static else named[name]()


def online_origin(template: str) -> str | None:
    """The CSP source for an online tile URL template ("https://*.tile.example.org"), or None if unusable."""
    parts = urlsplit(_TEMPLATE_HOST.sub("*", template.strip()))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _online_tiles() -> str:
    """The online tile URL when one is set and usable; lets the page's CSP load images from its host."""
    template = get_settings().online_tiles_url
    origin = online_origin(template) if template else None
    if origin is None:
        return ""
    g.csp_img_extra = [*g.get("csp_img_extra", []), origin]
    return template


def render_map(scope: mapscope.Scope) -> str:
    """A map journal page: map config, routes, the first story chunk and photos without a position."""
    session = get_db()
    info = maps.summary(session, scope)
    routes = map_routes.routes(session, scope, bounds=info.bounds)
    config = maps.map_config(
        urls=_urls(scope),
        bounds=route.extent(info.bounds, routes.lines),
        lines=routes.lines,
        layer=tilesets.tile_layer(session),
        online_tiles_url=_online_tiles(),
    )
    return render_template(
        "maps/map.html",
        info=info,
        routes=routes,
        chunk=map_story.story_chunk(session, scope, number_days=scope.trip_id is not None),
        unlocated=map_story.unlocated(session, scope),
        trips=maps.trip_links(session, current_user.id) if scope.trip_id is None else [],
        scope=scope,
        config_json=maps.config_json(config),
    )


@bp.get("/map")
def index() -> Any:
    """The map journal of all the user's photos, with links to each trip's own."""
    return render_map(_scope(None))


@bp.get("/trips/<int:trip_id>/map")
def trip(trip_id: int) -> Any:
    """One trip's map journal: its route and photos on the map, its story day by day."""
    return render_map(_scope(trip_id))


@bp.get("/map/story")
def story() -> Any:
    """A chunk of the story as HTML: `after`/`before` a cursor, or `around` a photo (its whole day)."""
    scope = _scope(arg_id("trip"))
    chunk = map_story.story_chunk(
        get_db(),
        scope,
        after=map_story.parse_cursor(request.args.get("after")),
        before=map_story.parse_cursor(request.args.get("before")),
        around=arg_id("around", "photo"),
        number_days=scope.trip_id is not None,
    )
    return render_template("maps/_chunk.html", chunk=chunk)


@bp.get("/map/unlocated")
def unlocated() -> Any:
    """More photos without a position, as list items."""
    scope = _scope(arg_id("trip"))
    page = map_story.unlocated(get_db(), scope, after=map_story.parse_cursor(request.args.get("after")))
    return render_template("maps/_unlocated.html", unlocated=page, scope=scope)


@bp.get("/api/photos.points")
def points() -> Any:
    """The user's located photos as compact arrays: ``{"count": n, "points": [[id, lat, lon], ...]}``.

    The map's answer to /api/photos.geojson at scale (about 30 bytes a photo); popups fetch their
    details from /api/map/photos. `?trip=<id>` for one trip.
    """
    body = map_points.points_json(get_db(), _scope(arg_id("trip")))
    return Response(body, mimetype="application/json", headers={"Cache-Control": "private, no-cache"})


def card_json(card: map_points.PhotoCard) -> dict[str, Any]:
    """A popup's fields; text stays text (the map writes it with textContent)."""
    return {
        "id": card.id,
        "caption": card.caption[: library.GEOJSON_CAPTION_CHARS],
        "taken_at": maps.local_time(card.taken_at),
        "place": card.place,
        "source": card.source,
        "position_source": geotagging.position_source(card.source),
        "lat": card.lat,
        "lon": card.lon,
        "thumb_url": url_for(
            "media.photo_file", photo_id=card.id, kind="thumb", v=card.sha256[:VERSION_CHARS]
        ),
        "url": url_for("library.photo", photo_id=card.id),
    }


@bp.get("/api/map/photos")
def details() -> Any:
    """Popup details of the user's photos: ``?ids=1,2,3`` -> ``{"photos": {"1": {...}, ...}}``."""
    cards = map_points.photo_cards(get_db(), current_user.id, map_points.parse_ids(request.args.get("ids")))
    return jsonify(photos={str(card.id): card_json(card) for card in cards})


@bp.post("/api/map/photos/<int:photo_id>/position")
def place(photo_id: int) -> Any:
    """Place a photo by hand (JSON ``{"lat", "lon"}``, clicked on the map); answers its popup details."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise InvalidInput('send JSON like {"lat": 46.05, "lon": 14.5}')
    session = get_db()
    photo = library.get_photo(session, current_user.id, photo_id)
    editing.set_position(
        session, photo, *editing.parse_position(str(payload.get("lat")), str(payload.get("lon")))
    )
    session.commit()
    (card,) = map_points.photo_cards(session, current_user.id, [photo_id])
    return jsonify(card_json(card))


@bp.get("/tiles/<int:z>/<int:x>/<int:y>")
def tile(z: int, x: int, y: int) -> Any:
    """A tile of the registered offline tile sets (a transparent one where none has it)."""
    found = tilesets.find_tile(get_db(), z, x, y)
    data, mimetype = found if found is not None else (empty_tile(), "image/png")
    return Response(data, mimetype=mimetype, headers={"Cache-Control": TILE_CACHE})
