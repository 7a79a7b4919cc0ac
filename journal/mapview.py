"""Folium map pages from plain points and routes, with every asset served locally (no CDN, no online tiles).

The page loads Leaflet, supercluster, the offline basemap data and journal-map.js from
``asset_base`` (see journal/static and scripts/vendor_assets.py). folium renders inline ``<script>``
and ``<style>`` blocks by design; under a Content-Security-Policy without 'unsafe-inline', pass a fresh
per-response ``nonce`` and send ``script-src 'self' 'nonce-N'; style-src 'self' 'nonce-N'``: every
``<script>`` and ``<style>`` tag of the page then carries ``nonce="N"``. Photo fields never reach the
page as HTML: inline points travel as escaped JSON in a non-executed data block, and the popups are
built from DOM nodes with textContent by journal-map.js.
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import folium
from branca.element import Figure
from folium.elements import JSCSSMixin
from folium.template import Template

from journal import geo
from journal.errors import InvalidInput

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Zoom range of the map.
MIN_ZOOM = 2
MAX_ZOOM = 18
#: Closest zoom when fitting the view to the content (one photo alone should not fill the screen).
FIT_MAX_ZOOM = 15

Bounds = tuple[tuple[float, float], tuple[float, float]]

# Assets as (folium link name, path under asset_base), in load order.
_LEAFLET_JS = (("leaflet", "vendor/leaflet/leaflet.js"),)
_LEAFLET_CSS = (("leaflet_css", "vendor/leaflet/leaflet.css"),)
_JOURNAL_JS = (
    ("supercluster", "vendor/supercluster/supercluster.min.js"),
    ("journal_cluster", "js/journal-cluster.js"),
    ("journal_basemap_world", "basemap/world.js"),
    ("journal_basemap_places", "basemap/places.js"),
    ("journal_map", "js/journal-map.js"),
)
_JOURNAL_CSS = (("journal_map_css", "css/journal-map.css"),)
#: Files referenced from inside the CSS (url(...)) or shipped for their licence terms.
_EXTRA_FILES = (
    "vendor/leaflet/images/layers.png",
    "vendor/leaflet/images/layers-2x.png",
    "vendor/leaflet/images/marker-icon.png",
    "vendor/leaflet/images/marker-icon-2x.png",
    "vendor/leaflet/images/marker-shadow.png",
    "vendor/leaflet/LICENSE",
    "vendor/supercluster/LICENSE",
    "vendor/world-atlas/LICENSE",
    "basemap/NOTICE.txt",
)

_ROUTE_STYLE = {"color": "#1c7ed6", "weight": 3, "opacity": 0.85}
_START_COLOUR = "#2f9e44"
_END_COLOUR = "#c92a2a"

_SAFE_PATH = re.compile(r"^[A-Za-z0-9._~/%-]*$")
_NONCE = re.compile(r"^[A-Za-z0-9+/=_-]{8,}$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//")
_OPEN_TAG = re.compile(r"<(script|style)\b", re.IGNORECASE)
_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


@dataclass(frozen=True)
class MapPoint:
    """One located photo as the map shows it; caption and place are untrusted text."""

    id: int
    lat: float
    lon: float
    caption: str
    taken_at: str | None
    place: str | None
    thumb_url: str | None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and -90 <= self.lat <= 90):
            raise InvalidInput(f"latitude out of range: {self.lat!r}")
        if not (math.isfinite(self.lon) and -180 <= self.lon <= 180):
            raise InvalidInput(f"longitude out of range: {self.lon!r}")


class _JournalLayer(JSCSSMixin):
    """Loads journal-map.js, supercluster and the basemap data, holds inline points, and wires the map."""

    _template = Template(
        """
        {% macro html(this, kwargs) %}{{ this.points_block }}{% endmacro %}
        {% macro script(this, kwargs) %}
            journalMap.attach({{ this.map_name }}, {{ this.config_json }});
        {% endmacro %}
        """
    )

    def __init__(self, *, map_name: str, config: dict[str, Any], points_block: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "JournalLayer"
        self.map_name = map_name
        self.config_json = script_json(config)
        self.points_block = points_block


def script_json(value: Any) -> str:
    """JSON that is safe inside an HTML <script> element: no '<', '>', '&', U+2028 or U+2029 left raw."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.translate(_JSON_ESCAPES)


def point_feature(point: MapPoint) -> dict[str, Any]:
    """A GeoJSON Point feature with the properties journal-map.js reads."""
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [round(point.lon, 6), round(point.lat, 6)]},
        "properties": {
            "id": point.id,
            "caption": point.caption,
            "taken_at": point.taken_at,
            "place": point.place,
            "thumb_url": point.thumb_url,
        },
    }


def points_geojson(points: Sequence[MapPoint]) -> dict[str, Any]:
    """A FeatureCollection of the points, the same shape as GET /api/photos.geojson."""
    return {"type": "FeatureCollection", "features": [point_feature(p) for p in points]}


def asset_files() -> list[tuple[str, Path]]:
    """Every (path relative to asset_base, absolute file) a map page needs, licences included."""
    groups = (_LEAFLET_JS, _LEAFLET_CSS, _JOURNAL_JS, _JOURNAL_CSS)
    relpaths = [rel for group in groups for _, rel in group] + list(_EXTRA_FILES)
    return [(rel, STATIC_DIR / rel) for rel in relpaths]


def _links(asset_base: str, assets: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Folium (name, url) link pairs for assets under asset_base."""
    return [(name, asset_base + rel) for name, rel in assets]


def _check_local(value: str, what: str) -> str:
    """Refuse a URL with a scheme or host: it would leave the machine."""
    if _SCHEME.match(value.strip()):
        raise InvalidInput(f"{what} must be a path on this site, not {value!r}")
    return value


def _normal_base(asset_base: str) -> str:
    """asset_base checked to be a plain local path and ending in '/' (or empty: the page's own folder)."""
    if not _SAFE_PATH.match(_check_local(asset_base, "asset_base")):
        raise InvalidInput(f"asset_base may hold only letters, digits and ._~/%-: {asset_base!r}")
    return asset_base if not asset_base or asset_base.endswith("/") else asset_base + "/"


def extent(positions: Iterable[tuple[float, float]]) -> Bounds | None:
    """((south, west), (north, east)) around the positions, or None when there are none.

    East exceeds 180 when the shortest box crosses the antimeridian (Fiji: west 179.9, east 180.2);
    latitudes are clamped to what Web Mercator draws.
    """
    lats, lons = [], []
    for lat, lon in positions:
        lats.append(lat)
        lons.append(lon)
    span = geo.unwrapped_span(lons)
    if not lats or span is None:
        return None
    return (geo.draw_latitude(min(lats)), span[0]), (geo.draw_latitude(max(lats)), span[1])


def _frame(lines: list[list[tuple[float, float]]], bounds: Bounds | None) -> list[list[tuple[float, float]]]:
    """Lines unwrapped (the short way across the antimeridian) and moved near the bounds' centre."""
    centre = (bounds[0][1] + bounds[1][1]) / 2 if bounds else 0.0
    framed = []
    for line in lines:
        unwrapped = geo.unwrap_positions(line)
        turn = geo.near(unwrapped[0][1], centre) - unwrapped[0][1]
        framed.append([(geo.draw_latitude(lat), round(lon + turn, 5)) for lat, lon in unwrapped])
    return framed


def _corners(bounds: Bounds | None) -> list[tuple[float, float]]:
    """The two corners of a bounds, or none."""
    return list(bounds) if bounds is not None else []


def _new_map(asset_base: str, bounds: Bounds | None, title: str) -> folium.Map:
    """A tile-less folium map whose Leaflet comes from asset_base (not folium's CDN defaults)."""
    fmap = folium.Map(
        location=(20.0, 0.0),
        zoom_start=2,
        tiles=None,
        prefer_canvas=True,
        control_scale=True,
        # One world: the vector basemap is not repeated east and west like tiles are.
        max_bounds=True,
        min_lat=-85,
        max_lat=85,
        min_lon=-180,
        # Content across the antimeridian is drawn east of 180: the map then reaches round once more
        # (journal-map.js draws a second copy of the basemap there).
        max_lon=540 if bounds is not None and bounds[1][1] > 180 else 180,
    )
    # folium hands min/max zoom to its default tile layer only; the map and its clusters need them.
    fmap.options.update(min_zoom=MIN_ZOOM, max_zoom=MAX_ZOOM)
    # Per instance, so other folium maps in the process keep their own defaults. jQuery, Bootstrap,
    # Font Awesome and awesome-markers are dropped: nothing on this page uses them.
    fmap.default_js = _links(asset_base, _LEAFLET_JS)
    fmap.default_css = _links(asset_base, _LEAFLET_CSS)
    root = fmap.get_root()
    assert isinstance(root, Figure)
    root.title = html.escape(title)
    if bounds is not None:
        (south, west), (north, east) = bounds
        fmap.fit_bounds([[south, west], [north, east]], padding=(24, 24), max_zoom=FIT_MAX_ZOOM)
    return fmap


def _add_tiles(
    fmap: folium.Map, tiles_url: str | None, online_tiles_url: str | None, attribution: str
) -> None:
    """Offline tiles (shown) and optional online tiles (listed, off until switched on) over the basemap."""
    attr = attribution or "Offline tiles"
    if tiles_url:
        folium.TileLayer(
            _check_local(tiles_url, "tiles_url"), attr=attr, name="Offline map", overlay=True
        ).add_to(fmap)
    if online_tiles_url:
        folium.TileLayer(online_tiles_url, attr=attr, name="Online map", overlay=True, show=False).add_to(
            fmap
        )


def _clean_route(route: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Route positions rounded to about 1 m (smaller page), dropping non-finite ones."""
    return [(round(lat, 5), round(lon, 5)) for lat, lon in route if math.isfinite(lat) and math.isfinite(lon)]


def _endpoint(position: tuple[float, float], colour: str, label: str) -> folium.CircleMarker:
    """A route's start or end marker."""
    return folium.CircleMarker(
        position,
        radius=6,
        color="#ffffff",
        weight=2,
        fill=True,
        fill_color=colour,
        fill_opacity=1.0,
        tooltip=label,
    )


def _add_routes(fmap: folium.Map, lines: Sequence[Sequence[tuple[float, float]]]) -> bool:
    """Draw each route (already in time order) as a polyline with start and end markers."""
    if not lines:
        return False
    group = folium.FeatureGroup(name="Routes")
    for line in lines:
        folium.PolyLine(line, **_ROUTE_STYLE).add_to(group)  # type: ignore[no-untyped-call]
        _endpoint(line[0], _START_COLOUR, "Start").add_to(group)
        _endpoint(line[-1], _END_COLOUR, "End").add_to(group)
    group.add_to(fmap)
    return True


def _points_block(element_id: str, points: Sequence[MapPoint]) -> str:
    """A non-executed JSON data block holding the inline points."""
    payload = script_json(points_geojson(points))
    return f'<script type="application/json" id="{element_id}">{payload}</script>'


def _add_journal_layer(
    fmap: folium.Map,
    *,
    asset_base: str,
    config: dict[str, Any],
    points: Sequence[MapPoint],
) -> None:
    """Attach journal-map.js, the basemap data and the points to the map."""
    block = ""
    if points:
        config["pointsElement"] = f"journal-points-{fmap.get_name()}"
        block = _points_block(config["pointsElement"], points)
    layer = _JournalLayer(map_name=fmap.get_name(), config=config, points_block=block)
    layer.default_js = _links(asset_base, _JOURNAL_JS)
    layer.default_css = _links(asset_base, _JOURNAL_CSS)
    layer.add_to(fmap)


def apply_nonce(page: str, nonce: str) -> str:
    """Put nonce="..." on every <script> and <style> tag (the page holds no raw user text)."""
    if not _NONCE.match(nonce):
        raise InvalidInput("a CSP nonce is 8 or more base64 characters")
    return _OPEN_TAG.sub(lambda match: f'<{match.group(1)} nonce="{nonce}"', page)


def build_map_html(
    *,
    asset_base: str,
    points: Sequence[MapPoint] = (),
    points_url: str | None = None,
    routes: Sequence[Sequence[tuple[float, float]]] = (),
    bounds: Bounds | None = None,
    tiles_url: str | None = None,
    online_tiles_url: str | None = None,
    attribution_extra: str = "",
    nonce: str | None = None,
    title: str = "Map",
) -> str:
    """A standalone HTML map page: offline basemap, optional tiles, routes and clustered photo points.

    Points come either inline (``points``, for small exported bundles) or from ``points_url``
    (a same-origin URL answering ``{"points": [[id, lat, lon], ...]}`` like /api/photos.points, or a
    GeoJSON FeatureCollection); the page itself stays small in that mode. Photos are clustered by
    supercluster in journal-map.js; only the clusters in view are drawn.
    ``attribution_extra`` is plain text (escaped here). ``online_tiles_url`` is listed in the layer
    control but off until the person switches it on.
    """
    if points and points_url:
        raise InvalidInput("give either inline points or points_url, not both")
    base = _normal_base(asset_base)
    lines = [line for line in (_clean_route(route) for route in routes) if len(line) >= 2]
    route_extent = extent(position for line in lines for position in line)
    if bounds is None and not points_url:
        bounds = extent([*((p.lat, p.lon) for p in points), *_corners(route_extent)])
    lines = _frame(lines, bounds or route_extent)
    route_extent = extent(position for line in lines for position in line)
    fmap = _new_map(base, bounds, title)
    _add_tiles(fmap, tiles_url, online_tiles_url, html.escape(attribution_extra))
    has_routes = _add_routes(fmap, lines)
    config: dict[str, Any] = {
        "pointsUrl": _check_local(points_url, "points_url") if points_url else None,
        # With points_url only the page knows where the points are: it fits them and the routes.
        "fitPoints": bounds is None,
        "fitAlso": route_extent,
        "attribution": html.escape(attribution_extra) if attribution_extra and not tiles_url else "",
    }
    _add_journal_layer(fmap, asset_base=base, config=config, points=points)
    if tiles_url or online_tiles_url or has_routes:
        folium.LayerControl(collapsed=True).add_to(fmap)
    page: str = fmap.get_root().render()
    return apply_nonce(page, nonce) if nonce is not None else page
