"""The maps blueprint: map journal pages, the story fragments, points and popup endpoints, placing photos."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from werkzeug.test import EnvironBuilder

from journal.config import Settings
from journal.models import Photo, Post, Trip
from journal.web.maps import online_origin
from tests.mapdata import add_photo
from tests.web import csrf_token, make_user, sign_in

EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture
def db(app: Flask) -> Iterator[Session]:
    """A session on the app's database whose changes are committed."""
    with app.extensions["journal.sessions"]() as session:
        yield session
        session.commit()


@pytest.fixture
def journey(app: Flask, user_client: FlaskClient, db: Session) -> dict[str, Any]:
    """alice's trip: two located photos (one with a hostile caption and place), one without a position."""
    user_id = db.scalar(select(Post.user_id)) or 1
    trip = Trip(user_id=user_id, title="Istria <script>")
    db.add(trip)
    db.flush()
    first = add_photo(db, user_id, datetime(2024, 5, 1, 9), 45.08, 13.64, trip=trip, caption=EVIL, place=EVIL)
    second = add_photo(db, user_id, datetime(2024, 5, 1, 12), 45.24, 13.60, trip=trip, place="Poreč")
    lost = add_photo(db, user_id, datetime(2024, 5, 2, 10), trip=trip)
    loose = add_photo(db, user_id, datetime(2024, 6, 1, 10), 46.05, 14.5)  # on no trip
    db.commit()
    return {
        "user": user_id,
        "trip": trip.id,
        "first": first.id,
        "second": second.id,
        "lost": lost.id,
        "loose": loose.id,
    }


def config_of(html: str) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="journal-map-config" nonce="[^"]+">(.*?)</script>', html
    )
    assert match, "no map config block"
    value: dict[str, Any] = json.loads(match.group(1))
    return value


@pytest.mark.parametrize("path", ["/map", "/trips/1/map", "/map/story", "/map/unlocated"])
def test_pages_need_a_session(app: Flask, client: FlaskClient, path: str) -> None:
    make_user(app)
    assert client.get(path).status_code in (302, 303)


@pytest.mark.parametrize("path", ["/api/photos.points", "/api/map/photos?ids=1"])
def test_api_needs_a_session(app: Flask, client: FlaskClient, path: str) -> None:
    make_user(app)
    assert client.get(path).status_code == 401
    assert client.post("/api/map/photos/1/position", json={"lat": 1, "lon": 1}).status_code in (400, 401)


def test_map_page(user_client: FlaskClient, journey: dict[str, Any]) -> None:
    response = user_client.get("/map")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>All trips</h1>" in html
    assert f'href="/trips/{journey["trip"]}/map"' in html  # each trip's own map journal is linked
    config = config_of(html)
    assert config["pointsUrl"] == "/api/photos.points" and config["detailsUrl"] == "/api/map/photos"
    assert (
        config["thumbUrl"] == "/photos/{id}/thumb" and config["placeUrl"] == "/api/map/photos/{id}/position"
    )
    assert config["bounds"] == [[45.08, 13.6], [46.05, 14.5]]
    assert config["onlineTiles"] is None and config["tiles"] is None
    assert "Not on the map" in html and f'data-place="{journey["lost"]}"' in html


def test_trip_map_page_and_story(user_client: FlaskClient, journey: dict[str, Any]) -> None:
    html = user_client.get(f"/trips/{journey['trip']}/map").get_data(as_text=True)
    assert "<h1>Istria &lt;script&gt;</h1>" in html
    assert config_of(html)["pointsUrl"] == f"/api/photos.points?trip={journey['trip']}"
    assert "Day 1" in html and "Day 2" in html and "Wednesday 1 May 2024" in html
    assert f'data-photo="{journey["loose"]}"' not in html  # not on this trip
    # The route between the two photos of day 1 is in the config.
    (route,) = config_of(html)["routes"]
    assert route["kind"] == "photos" and route["coords"] == [[45.08, 13.64], [45.24, 13.6]]


def test_user_text_is_escaped_everywhere(user_client: FlaskClient, journey: dict[str, Any]) -> None:
    html = user_client.get(f"/trips/{journey['trip']}/map").get_data(as_text=True)
    assert EVIL not in html and "onerror=alert(1)&gt;" in html
    scripts = re.findall(r"<script\b([^>]*)>", html)
    assert scripts and all("src=" in attrs or 'type="application/json"' in attrs for attrs in scripts)
    fragment = user_client.get(f"/map/story?trip={journey['trip']}&around={journey['first']}").get_data(
        as_text=True
    )
    assert EVIL not in fragment and "&lt;img src=x onerror=alert(1)&gt;" in fragment
    details = user_client.get(f"/api/map/photos?ids={journey['first']}").json
    assert details is not None
    card = details["photos"][str(journey["first"])]
    assert card["caption"] == EVIL and card["place"] == EVIL  # JSON text; the map writes it as text


def test_csp_allows_no_inline_script(user_client: FlaskClient, journey: dict[str, Any]) -> None:
    response = user_client.get("/map")
    csp = response.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'nonce="{nonce.group(1)}"' in response.get_data(as_text=True)


def test_points_only_the_users(
    app: Flask, user_client: FlaskClient, journey: dict[str, Any], db: Session
) -> None:
    bob = make_user(app, "bob")
    add_photo(db, bob, datetime(2024, 5, 1, 9), 10.0, 10.0)
    db.commit()
    body = user_client.get("/api/photos.points").json
    assert body is not None and body["count"] == 3
    assert sorted(p[0] for p in body["points"]) == sorted(
        [journey["first"], journey["second"], journey["loose"]]
    )
    on_trip = user_client.get(f"/api/photos.points?trip={journey['trip']}").json
    assert on_trip is not None and [p[0] for p in on_trip["points"]] == [journey["first"], journey["second"]]
    other = app.test_client()
    sign_in(other, "bob")
    assert other.get(f"/api/photos.points?trip={journey['trip']}").status_code == 404
    theirs = other.get("/api/photos.points").json
    assert theirs is not None and theirs["count"] == 1
    assert other.get(f"/api/map/photos?ids={journey['first']}").json == {"photos": {}}


@pytest.mark.parametrize("ids", ["", "x", "1,,2;3"])
def test_details_refuse_bad_ids(user_client: FlaskClient, ids: str) -> None:
    assert user_client.get(f"/api/map/photos?ids={ids}").status_code == 400


def test_details(user_client: FlaskClient, journey: dict[str, Any]) -> None:
    body = user_client.get(f"/api/map/photos?ids={journey['second']},{journey['lost']}").json
    assert body is not None
    card = body["photos"][str(journey["second"])]
    assert card["taken_at"] == "Wed 1 May 2024, 12:00" and card["place"] == "Poreč"
    assert card["url"] == f"/photos/{journey['second']}"
    assert re.fullmatch(rf"/photos/{journey['second']}/thumb\?v=[0-9a-f]{{16}}", card["thumb_url"])


def test_place_a_photo_on_the_map(app: Flask, user_client: FlaskClient, journey: dict[str, Any]) -> None:
    url = f"/api/map/photos/{journey['lost']}/position"
    assert user_client.post(url, json={"lat": 45.2, "lon": 13.9}).status_code == 400  # no CSRF token
    token = csrf_token(user_client, "/map")
    headers = {"X-CSRFToken": token}
    assert user_client.post(url, json={"lat": 95, "lon": 13.9}, headers=headers).status_code == 400
    assert user_client.post(url, data="nope", headers=headers).status_code == 400
    response = user_client.post(url, json={"lat": 45.2, "lon": 13.9}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json is not None and response.json["lat"] == 45.2 and response.json["source"] == "manual"
    with app.extensions["journal.sessions"]() as s:
        photo = s.get(Photo, journey["lost"])
        assert photo is not None and (photo.lat, photo.lon, photo.location_source) == (45.2, 13.9, "manual")
        assert photo.place  # named from the offline places data
    other = app.test_client()
    make_user(app, "bob")
    sign_in(other, "bob")
    refused = other.post(url, json={"lat": 1, "lon": 1}, headers={"X-CSRFToken": csrf_token(other, "/map")})
    assert refused.status_code == 404


def test_story_fragments(user_client: FlaskClient, journey: dict[str, Any]) -> None:
    trip = journey["trip"]
    around = user_client.get(f"/map/story?trip={trip}&around={journey['lost']}")
    assert around.status_code == 200 and 'class="story-chunk"' in around.get_data(as_text=True)
    assert user_client.get(f"/map/story?trip={trip}&after=nonsense").status_code == 400
    assert user_client.get("/map/story?trip=999").status_code == 404
    unlocated = user_client.get(f"/map/unlocated?trip={trip}").get_data(as_text=True)
    assert f'data-place="{journey["lost"]}"' in unlocated


def test_trip_page_links_its_map(user_client: FlaskClient, journey: dict[str, Any]) -> None:
    html = user_client.get(f"/trips/{journey['trip']}").get_data(as_text=True)
    assert f'href="/trips/{journey["trip"]}/map"' in html


def test_map_with_no_photos(user_client: FlaskClient) -> None:
    html = user_client.get("/map").get_data(as_text=True)
    assert "Nothing on the map yet" in html and config_of(html)["bounds"] is None


def add_many_located_photos(db: Session, rows: int, user_id: int = 1) -> None:
    """`rows` located photos of alice's, each on a post of its own, inserted in bulk."""
    db.execute(insert(Post), [{"user_id": user_id, "caption": f"post {i} " + "x" * 80} for i in range(rows)])
    post_ids = list(db.scalars(select(Post.id).order_by(Post.id)))
    db.execute(
        insert(Photo),
        [
            {
                "user_id": user_id,
                "post_id": post_id,
                "sha256": f"{i:064x}",
                "stored_path": f"originals/1/{i:064x}.jpg",
                "bytes": 1,
                "format": "JPEG",
                "width": 1,
                "height": 1,
                "taken_at": datetime(2024, 1 + i // 3000, 1 + i % 3000 // 100, 8 + (i % 100) // 10, i % 10),
                "sort_at": datetime(2024, 1 + i // 3000, 1 + i % 3000 // 100, 6 + (i % 100) // 10, i % 10),
                "lat": 45 + (i % 97) / 50,
                "lon": 13 + (i % 89) / 40,
                "place": "Somewhere",
            }
            for i, post_id in enumerate(post_ids)
        ],
    )
    db.commit()


def test_big_library_page_stays_small(app: Flask, user_client: FlaskClient, db: Session) -> None:
    rows = 3000
    add_many_located_photos(db, rows)
    html = user_client.get("/map").get_data()
    assert len(html) < 200_000
    points = user_client.get("/api/photos.points").json
    assert points is not None and points["count"] == rows


def test_geojson_of_many_photos_arrives_whole(app: Flask, user_client: FlaskClient, db: Session) -> None:
    # More rows than one fetch of the streamed query (2000): the stream reads past the first batch
    # after the request's own session is closed (on PostgreSQL a server-side cursor must outlive it).
    rows = 4500
    add_many_located_photos(db, rows)
    response = user_client.get("/api/photos.geojson")
    assert response.status_code == 200
    collection = json.loads(response.get_data(as_text=True))
    ids = [feature["properties"]["id"] for feature in collection["features"]]
    assert len(ids) == rows and ids == sorted(ids) and len(set(ids)) == rows
    assert collection["features"][-1]["properties"]["place"] == "Somewhere"
    response.close()
    pool = app.extensions["journal.engine"].pool
    assert pool.checkedout() == 0  # the stream's own session is closed at its end
    # The server closes the body unread (the client went away before the first byte).
    cookie = user_client.get_cookie("session")
    assert cookie is not None
    environ = EnvironBuilder("/api/photos.geojson", headers=[("Cookie", f"session={cookie.value}")])
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> Any:
        statuses.append(status)

    body = app.wsgi_app(environ.get_environ(), start_response)
    assert statuses == ["200 OK"] and pool.checkedout() == 1
    body.close()  # type: ignore[attr-defined]
    assert pool.checkedout() == 0


def test_online_tiles_setting(app: Flask, user_client: FlaskClient, journey: dict[str, Any]) -> None:
    settings: Settings = app.config["JOURNAL_SETTINGS"]
    app.config["JOURNAL_SETTINGS"] = settings.with_(
        online_tiles_url="https://{s}.tile.example.org/{z}/{x}/{y}.png"
    )
    html = user_client.get("/map").get_data(as_text=True)
    online = config_of(html)["onlineTiles"]
    assert online == {"url": "https://{s}.tile.example.org/{z}/{x}/{y}.png", "attribution": "Online map"}


@pytest.mark.parametrize(
    ("template", "origin"),
    [
        ("https://{s}.tile.example.org/{z}/{x}/{y}.png", "https://*.tile.example.org"),
        ("http://tiles.local:8080/{z}/{x}/{y}.png", "http://tiles.local:8080"),
        ("javascript:alert(1)//{z}", None),
        ("/tiles/{z}/{x}/{y}", None),
    ],
)
def test_online_origin_for_the_csp(template: str, origin: str | None) -> None:
    assert online_origin(template) == origin


def test_vendored_assets_are_cached_long(user_client: FlaskClient) -> None:
    world = user_client.get("/static/basemap/world.js")
    assert world.status_code == 200 and "max-age=604800" in world.headers["Cache-Control"]
    script = user_client.get("/static/js/story.js")
    assert "max-age=604800" not in script.headers.get("Cache-Control", "")
    world.close()
    script.close()
