"""Every page and API of a signed-in user's journal, visited with a test client, cursors followed.

Used by the edge tests and the property-based sweep: no answer may be a 5xx, and the JSON APIs keep
to the documented ranges (lat in [-90, 90], lon in [-180, 180], taken_at_utc ISO 8601 or null).
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from typing import Any

from flask.testing import FlaskClient

_CURSOR_ATTRS = re.compile(r'data-(?:after|before)="([^"]+)"')
_LIBRARY_LINKS = re.compile(r'href="(/library\?[^"]+)"')
_MORE_UNLOCATED = re.compile(r'data-url="(/map/unlocated\?[^"]+)"')
_ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z$")
#: Most cursor pages followed per list (the sweep's libraries are small).
MAX_PAGES = 20


def check_utc_text(value: object, where: str) -> None:
    """taken_at_utc as the contract has it: null or ISO 8601 with a Z, a real moment in years 1-9999."""
    if value is None:
        return
    assert isinstance(value, str) and _ISO_UTC.match(value), f"{where}: taken_at_utc {value!r}"
    datetime.fromisoformat(value.removesuffix("Z"))


def check_position(lat: object, lon: object, where: str) -> None:
    """Both null, or lat in [-90, 90] and lon in [-180, 180]."""
    if lat is None and lon is None:
        return
    assert isinstance(lat, float | int) and isinstance(lon, float | int), f"{where}: {lat!r}, {lon!r}"
    assert -90 <= lat <= 90 and -180 <= lon <= 180, f"{where}: position {lat}, {lon} out of range"


def get(client: FlaskClient, url: str) -> str:
    """GET a URL; its text, asserted to be no server error."""
    response = client.get(url)
    binary = (response.mimetype or "").startswith("image/")
    text = "" if binary else response.get_data(as_text=True)
    assert response.status_code < 500, f"GET {url} -> {response.status_code}\n{text[:2000]}"
    assert "Traceback" not in text, f"GET {url} shows a traceback"
    assert response.status_code in (200, 302, 303, 304, 404), f"GET {url} -> {response.status_code}"
    return text


def _follow(client: FlaskClient, base: str, first: str, pattern: re.Pattern[str]) -> int:
    """Follow cursors found by `pattern` from a first page; how many pages were visited."""
    seen: set[str] = set()
    todo = [html.unescape(found) for found in pattern.findall(first)]
    while todo and len(seen) < MAX_PAGES:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        url = item if item.startswith("/") else base + item
        todo += [html.unescape(found) for found in pattern.findall(get(client, url))]
    return len(seen)


def walk(client: FlaskClient, photo_ids: list[int], post_ids: list[int], trip_ids: list[int]) -> None:
    """Visit every page and API for these rows (the client is signed in as their owner)."""
    for url in ("/", "/library", "/library?nolocation=1", "/trips", "/upload", "/export"):
        text = get(client, url)
        if url.startswith("/library"):
            _follow(client, "", text, _LIBRARY_LINKS)
    for trip_id in [None, *trip_ids]:
        scope = f"trip={trip_id}" if trip_id else ""
        page = get(client, f"/trips/{trip_id}/map" if trip_id else "/map")
        _follow(client, f"/map/story?{scope}&after=", page, _CURSOR_ATTRS)
        _follow(client, "", page, _MORE_UNLOCATED)
        story = get(client, f"/map/story?{scope}")
        _follow(client, f"/map/story?{scope}&before=", story, _CURSOR_ATTRS)
        get(client, f"/map/unlocated?{scope}")
        points = json.loads(get(client, "/api/photos.points" + (f"?{scope}" if scope else "")))
        for point in points["points"]:
            check_position(point[1], point[2], "points")
        if trip_id:
            library = get(client, f"/library?{scope}")
            _follow(client, "", library, _LIBRARY_LINKS)
            get(client, f"/trips/{trip_id}")
    geojson = json.loads(get(client, "/api/photos.geojson"))
    for feature in geojson["features"]:
        lon, lat = feature["geometry"]["coordinates"]
        check_position(lat, lon, "geojson")
        check_utc_text(feature["properties"]["taken_at_utc"], "geojson")
    for photo_id in photo_ids:
        get(client, f"/photos/{photo_id}")
        for kind in ("thumb", "web", "original"):
            get(client, f"/photos/{photo_id}/{kind}")
        get(client, f"/map/story?around={photo_id}")
    if photo_ids:
        cards: dict[str, Any] = json.loads(
            get(client, "/api/map/photos?ids=" + ",".join(map(str, photo_ids[:200])))
        )
        for card in cards["photos"].values():
            check_position(card["lat"], card["lon"], "map card")
    for post_id in post_ids:
        get(client, f"/posts/{post_id}")
