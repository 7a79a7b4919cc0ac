"""journal.mapview: offline map pages, safe inline data, CSP nonces and the asset list."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from posixpath import dirname, normpath

import folium
import folium.plugins
import pytest

from journal.errors import InvalidInput
from journal.mapview import MapPoint, asset_files, build_map_html, points_geojson

EVIL = "</script><img src=x onerror=alert(1)><!-- \u2028\u2029 & </SCRIPT >"
CDN = re.compile(r"https?://", re.IGNORECASE)


class Page(HTMLParser):
    """The parts of a page the tests look at: tags with their attributes, and script bodies."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._in_script: dict[str, str | None] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            attrs, body = self.scripts[-1]
            self.scripts[-1] = (attrs, body + data)

    def urls(self) -> list[str]:
        """Every URL the browser would fetch: script src, link href, img src."""
        wanted = {"script": "src", "link": "href", "img": "src"}
        return [a[wanted[t]] or "" for t, a in self.tags if t in wanted and a.get(wanted[t])]


def point(i: int, caption: str = "A view", thumb: str | None = None) -> MapPoint:
    """A located photo near Ljubljana."""
    return MapPoint(i, 46.05 + i * 1e-4, 14.5 + i * 1e-4, caption, "2024-05-01T10:00:00", "Ljubljana", thumb)


def pages() -> dict[str, str]:
    """One page per way of building it, all with the app's asset base."""
    route = [(46.0, 14.0), (46.1, 14.2), (46.2, 14.3)]
    return {
        "inline": build_map_html(asset_base="/static/", points=[point(1), point(2)]),
        "url": build_map_html(asset_base="/static/", points_url="/api/photos.geojson"),
        "routes+tiles": build_map_html(
            asset_base="/static/",
            routes=[route, route[::-1]],
            tiles_url="/tiles/{z}/{x}/{y}.png",
            bounds=((45.0, 13.0), (47.0, 16.0)),
            attribution_extra="© OpenStreetMap contributors",
        ),
        "empty": build_map_html(asset_base="/static/"),
    }


@pytest.mark.parametrize(("name", "html"), sorted(pages().items()))
def test_no_remote_url_anywhere(name: str, html: str) -> None:
    assert not CDN.search(html), f"{name}: {CDN.search(html)}"
    assert "cdn" not in html.lower() and "jquery" not in html.lower() and "bootstrap" not in html.lower()


@pytest.mark.parametrize(("name", "html"), sorted(pages().items()))
def test_every_url_is_a_listed_asset(name: str, html: str) -> None:
    listed = {rel for rel, _ in asset_files()}
    urls = Page(html).urls()
    assert urls, name
    for url in urls:
        assert url.startswith("/static/"), url
        assert url.removeprefix("/static/") in listed, url


def test_relative_asset_base_for_bundles() -> None:
    html = build_map_html(asset_base="assets", points=[point(1)])
    assert all(url.startswith("assets/") for url in Page(html).urls())


def test_asset_files_exist_and_are_small() -> None:
    files = asset_files()
    assert len({rel for rel, _ in files}) == len(files)
    missing = [rel for rel, path in files if not path.is_file()]
    assert missing == []
    assert sum(path.stat().st_size for _, path in files) < 2_000_000
    assert any(rel.endswith("LICENSE") for rel, _ in files)


def test_css_urls_are_local_listed_assets() -> None:
    listed = {rel for rel, _ in asset_files()}
    for rel, path in asset_files():
        if not rel.endswith(".css"):
            continue
        for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)", path.read_text(encoding="utf-8")):
            if ref.startswith(("data:", "#")):  # inline data, or an old-IE behaviour fragment
                continue
            assert not CDN.match(ref), (rel, ref)
            assert normpath(f"{dirname(rel)}/{ref}") in listed, (rel, ref)


def test_vendored_scripts_carry_no_source_map_comment() -> None:
    for rel, path in asset_files():
        if rel.endswith((".js", ".css")):
            assert "sourceMappingURL" not in path.read_text(encoding="utf-8")[-300:], rel


def test_folium_defaults_are_not_changed_globally() -> None:
    before = (list(folium.Map.default_js), list(folium.plugins.MarkerCluster.default_js))
    build_map_html(asset_base="/static/", points=[point(1)])
    after = (list(folium.Map.default_js), list(folium.plugins.MarkerCluster.default_js))
    assert before == after
    assert any("leaflet" in url for _, url in folium.Map.default_js)


def test_inline_caption_cannot_break_out() -> None:
    html = build_map_html(asset_base="/static/", points=[point(1, EVIL), point(2, "plain")])
    page = Page(html)
    assert "img" not in [tag for tag, _ in page.tags]
    data = [body for attrs, body in page.scripts if attrs.get("type") == "application/json"]
    assert len(data) == 1
    assert "<" not in data[0] and "\u2028" not in data[0]
    collection = json.loads(data[0])
    assert collection == points_geojson([point(1, EVIL), point(2, "plain")])
    assert collection["features"][0]["properties"]["caption"] == EVIL
    # The same scripts as a page without the caption: nothing was cut short or added.
    plain = Page(build_map_html(asset_base="/static/", points=[point(1), point(2, "plain")]))
    assert len(page.scripts) == len(plain.scripts)


def test_evil_title_and_attribution_are_escaped() -> None:
    html = build_map_html(asset_base="/static/", title=EVIL, attribution_extra=EVIL)
    page = Page(html)
    assert "img" not in [tag for tag, _ in page.tags]
    assert len(page.scripts) == len(Page(build_map_html(asset_base="/static/")).scripts)


def test_points_url_mode_with_100k_points_stays_small() -> None:
    html = build_map_html(
        asset_base="/static/",
        points_url="/api/photos.geojson",
        routes=[[(46.0 + i * 1e-3, 14.0 + i * 1e-3) for i in range(200)]],
    )
    assert len(html.encode("utf-8")) < 200_000
    assert '"pointsUrl":"/api/photos.geojson"' in html


def test_inline_points_are_all_embedded() -> None:
    points = [point(i) for i in range(500)]
    html = build_map_html(asset_base="/static/", points=points)
    data = next(body for attrs, body in Page(html).scripts if attrs.get("type") == "application/json")
    assert [f["properties"]["id"] for f in json.loads(data)["features"]] == list(range(500))


def test_nonce_on_every_script_and_style() -> None:
    html = build_map_html(
        asset_base="/static/", points=[point(1, EVIL)], routes=[[(0, 0), (1, 1)]], nonce="r4nd0m+N/once="
    )
    page = Page(html)
    scripts_and_styles = [(tag, attrs) for tag, attrs in page.tags if tag in {"script", "style"}]
    assert len(scripts_and_styles) >= 8
    assert all(attrs.get("nonce") == "r4nd0m+N/once=" for _, attrs in scripts_and_styles)
    assert html.lower().count("<script") == html.count('<script nonce="r4nd0m+N/once="')


def test_no_inline_event_handlers_or_style_attributes() -> None:
    for tag, attrs in Page(pages()["routes+tiles"]).tags:
        assert not any(name.startswith("on") for name in attrs), tag
        assert "style" not in attrs, tag


@pytest.mark.parametrize("nonce", ["", "short", 'bad"quote"nonce', "spaces are bad"])
def test_bad_nonce_refused(nonce: str) -> None:
    with pytest.raises(InvalidInput):
        build_map_html(asset_base="/static/", nonce=nonce)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"asset_base": "https://cdn.example.org/"},
        {"asset_base": "//cdn.example.org/"},
        {"asset_base": '/static/"><script>'},
        {"asset_base": "/static/", "points_url": "https://example.org/p.geojson"},
        {"asset_base": "/static/", "tiles_url": "https://tile.example.org/{z}/{x}/{y}.png"},
        {"asset_base": "/static/", "points": [point(1)], "points_url": "/p.geojson"},
    ],
)
def test_refuses_what_would_leave_the_machine(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        build_map_html(**kwargs)  # type: ignore[arg-type]


def test_online_tiles_are_listed_but_off() -> None:
    url = "https://tile.example.org/{z}/{x}/{y}.png"
    html = build_map_html(asset_base="/static/", online_tiles_url=url, attribution_extra="Example")
    assert html.count(url) == 1
    name = re.search(r"var (tile_layer_\w+) = L\.tileLayer\(", html)
    assert name is not None
    assert f"{name.group(1)}.addTo(" not in html
    assert f'"Online map" : {name.group(1)}' in html


def test_offline_tiles_are_on() -> None:
    html = pages()["routes+tiles"]
    name = re.search(r"var (tile_layer_\w+) = L\.tileLayer\(\s*\"/tiles/\{z\}/\{x\}/\{y\}\.png\"", html)
    assert name is not None and f"{name.group(1)}.addTo(" in html


def test_routes_have_lines_and_endpoints() -> None:
    routes = [[(46.0, 14.0), (46.1, 14.1)], [(47.0, 15.0), (47.1, 15.1), (47.2, 15.2)], [(48.0, 16.0)]]
    html = build_map_html(asset_base="/static/", routes=routes)
    assert html.count("L.polyline(") == 2  # the one-point route has nothing to draw
    assert html.count("L.circleMarker(") == 4
    assert html.count("Start") == 2 and html.count("End") == 2


def test_route_positions_are_rounded() -> None:
    html = build_map_html(asset_base="/static/", routes=[[(46.123456789, 14.987654321), (46.2, 15.0)]])
    assert "46.12346, 14.98765" in html and "46.123456789" not in html


def test_given_bounds_win() -> None:
    html = build_map_html(asset_base="/static/", points_url="/p.geojson", bounds=((45.0, 13.0), (47.0, 16.0)))
    assert "[[45.0, 13.0], [47.0, 16.0]]" in html and '"fitPoints":false' in html


def test_inline_content_is_fitted_in_python() -> None:
    html = build_map_html(asset_base="/static/", points=[point(0)], routes=[[(45.0, 13.0), (45.5, 13.5)]])
    assert '"fitPoints":false' in html
    assert "[[45.0, 13.0], [46.05, 14.5]]" in html
    assert '"maxZoom": 15' in html  # one photo alone does not zoom to street level


def test_points_url_page_fits_points_and_routes_itself() -> None:
    html = build_map_html(
        asset_base="/static/", points_url="/p.geojson", routes=[[(45.0, 13.0), (45.5, 13.5)]]
    )
    assert '"fitPoints":true,"fitAlso":[[45.0,13.0],[45.5,13.5]]' in html


def test_empty_page_shows_the_world() -> None:
    html = build_map_html(asset_base="/static/")
    assert "fitBounds" not in html and '"zoom": 2' in html


def test_clusters_come_from_supercluster_not_markercluster() -> None:
    html = pages()["url"]
    urls = Page(html).urls()
    assert "/static/vendor/supercluster/supercluster.min.js" in urls
    assert urls.index("/static/vendor/supercluster/supercluster.min.js") < urls.index(
        "/static/js/journal-map.js"
    )
    assert "markercluster" not in html.lower()
    assert re.search(r"journalMap\.attach\(map_\w+, \{", html)
    assert '"maxZoom": 18' in html


@pytest.mark.parametrize(("lat", "lon"), [(90.5, 0.0), (0.0, -180.5), (float("inf"), 0.0)])
def test_map_point_checks_range(lat: float, lon: float) -> None:
    with pytest.raises(InvalidInput):
        MapPoint(1, lat, lon, "", None, None, None)


def test_journal_map_script_never_uses_inner_html() -> None:
    script = dict(asset_files())["js/journal-map.js"].read_text(encoding="utf-8")
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script
    assert "textContent" in script


def test_asset_files_paths_are_relative_and_inside_static() -> None:
    for rel, path in asset_files():
        assert not rel.startswith("/") and ".." not in Path(rel).parts
        assert path.is_absolute() and path.as_posix().endswith("/static/" + rel)


def fiji_point(i: int, lat: float, lon: float) -> MapPoint:
    return MapPoint(id=i, lat=lat, lon=lon, caption="", taken_at=None, place=None, thumb_url=None)


def test_bundle_map_across_the_antimeridian_fits_the_short_way() -> None:
    page = build_map_html(
        asset_base="assets/", points=[fiji_point(1, -17.0, 179.99), fiji_point(2, -16.8, -179.99)]
    )
    fitted = re.search(r"fitBounds\(\s*\[\[([-\d.]+), ([-\d.]+)\], \[([-\d.]+), ([-\d.]+)\]\]", page)
    assert fitted is not None, "no fitBounds call"
    assert [float(v) for v in fitted.groups()] == pytest.approx([-17.0, 179.99, -16.8, 180.01])
    assert re.search(
        r'"maxBounds": \[\s*\[\s*-85,\s*-180,\s*\],\s*\[\s*85,\s*540,', page
    )  # the map reaches round past 180


def test_bundle_map_routes_across_the_antimeridian_are_unwrapped() -> None:
    page = build_map_html(asset_base="assets/", routes=[[(-17.0, 179.9), (-16.9, -179.8)]])
    assert "[-16.9, 180.2]" in page and "-179.8" not in page


def test_bundle_map_with_a_photo_at_the_pole_draws() -> None:
    page = build_map_html(asset_base="assets/", points=[fiji_point(1, 90.0, 0.0), fiji_point(2, 80.0, 10.0)])
    assert "85.0511287798" in page
