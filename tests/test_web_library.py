"""The library blueprint and the GeoJSON feed through the Flask test client."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from journal.config import Settings
from journal.models import Photo
from journal.services import editing, library
from tests.imaging import make_jpeg
from tests.test_services_library import BANGKOK, BERLIN, import_photos
from tests.web import csrf_token, make_user

XSS = "<script>alert(1)</script>"


def app_settings(app: Flask) -> Settings:
    settings: Settings = app.config["JOURNAL_SETTINGS"]
    return settings


def app_sessions(app: Flask) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = app.extensions["journal.sessions"]
    return factory


def add_photos(
    app: Flask, user_id: int, tmp_path: Path, specs: list[dict[str, Any]], **kwargs: Any
) -> list[int]:
    """Import made-up JPEGs (one per spec of EXIF fields) for a user; their ids in order."""
    paths = [
        make_jpeg(tmp_path / f"u{user_id}-{i}.jpg", (120, 80), seed=user_id * 1000 + i, **spec)
        for i, spec in enumerate(specs)
    ]
    return import_photos(app_settings(app), app_sessions(app), user_id, paths, **kwargs)


def user_id_of(app: Flask, name: str) -> int:
    from sqlalchemy import select

    from journal.models import User

    with app_sessions(app)() as s:
        uid = s.scalar(select(User.id).where(User.name == name))
    assert uid is not None
    return uid


def load(app: Flask, photo_id: int) -> Photo | None:
    with app_sessions(app)() as s:
        return s.get(Photo, photo_id)


@pytest.fixture
def photos(app: Flask, user_client: FlaskClient, tmp_path: Path) -> list[int]:
    """Alice's photos: placed in Berlin (on trip "Berlin"), Bangkok, and one with no position."""
    alice = user_id_of(app, "alice")
    in_berlin = {"taken_at": datetime(2024, 5, 1, 10), "offset": "+02:00", "lat": BERLIN[0], "lon": BERLIN[1]}
    in_bangkok = {"taken_at": datetime(2024, 4, 1, 18), "lat": BANGKOK[0], "lon": BANGKOK[1]}
    berlin = add_photos(app, alice, tmp_path, [in_berlin], trip="Berlin")
    return berlin + add_photos(app, alice, tmp_path, [in_bangkok, {"taken_at": datetime(2024, 3, 1, 9)}])


@pytest.fixture
def bob_photo(app: Flask, tmp_path: Path) -> int:
    bob = make_user(app, "bob")
    return add_photos(app, bob, tmp_path, [{"lat": BERLIN[0], "lon": BERLIN[1]}])[0]


def post(client: FlaskClient, path: str, data: dict[str, str] | None = None) -> object:
    """POST a form with the session's CSRF token."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, "/library")})


# --- grid ------------------------------------------------------------------------------------------------


def test_library_needs_login(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    response = client.get("/library")
    assert response.status_code == 302 and "/login" in response.location


def test_empty_library_points_to_upload(user_client: FlaskClient) -> None:
    response = user_client.get("/library")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Your library is empty" in html and 'href="/upload"' in html


def test_grid_newest_first_with_lazy_sized_thumbnails(user_client: FlaskClient, photos: list[int]) -> None:
    html = user_client.get("/library").get_data(as_text=True)
    assert re.findall(r'href="/photos/(\d+)"', html) == [str(i) for i in photos]
    assert 'loading="lazy"' in html and 'width="120" height="80"' in html
    assert "3 photos" in html and "1 photo without a position" in html
    assert 'action="/posts"' in html and 'name="photo"' in html  # the selection form


def test_filters(app: Flask, user_client: FlaskClient, photos: list[int]) -> None:
    def ids(query: str) -> list[int]:
        response = user_client.get("/library" + query)
        assert response.status_code == 200
        return [int(i) for i in re.findall(r'href="/photos/(\d+)\?', response.get_data(as_text=True))]

    with app_sessions(app)() as s:
        trip_id = library.list_trips(s, user_id_of(app, "alice"))[0].id
    assert ids(f"?trip={trip_id}") == [photos[0]]
    assert ids("?nolocation=1") == [photos[2]]
    assert ids("?from=2024-03-15&to=2024-04-30") == [photos[1]]
    assert "1 photo match" in user_client.get("/library?nolocation=1").get_data(as_text=True)
    empty = user_client.get("/library?from=2030-01-01").get_data(as_text=True)
    assert "No photo matches these filters" in empty


def test_bad_filters_and_cursors(user_client: FlaskClient, photos: list[int]) -> None:
    assert user_client.get("/library?from=yesterday").status_code == 400
    assert user_client.get("/library?trip=abc").status_code == 400
    response = user_client.get("/library?after=garbage")
    assert response.status_code == 400 and "page link is not valid" in response.get_data(as_text=True)


def test_filter_by_another_users_trip_is_404(app: Flask, user_client: FlaskClient, tmp_path: Path) -> None:
    bob = make_user(app, "bob")
    add_photos(app, bob, tmp_path, [{}], trip="Secret")
    with app_sessions(app)() as s:
        trip_id = library.list_trips(s, bob)[0].id
    assert user_client.get(f"/library?trip={trip_id}").status_code == 404


def test_pagination_links(
    user_client: FlaskClient, photos: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(library, "PAGE_SIZE", 2)
    first = user_client.get("/library").get_data(as_text=True)
    older = re.search(r'rel="next" href="([^"]+)"', first)
    assert older and "Newer" not in first
    second = user_client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert re.findall(r'href="/photos/(\d+)"', second) == [str(photos[2])]
    newer = re.search(r'rel="prev" href="([^"]+)"', second)
    assert newer and 'rel="next"' not in second
    back = user_client.get(newer.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert re.findall(r'href="/photos/(\d+)"', back) == [str(photos[0]), str(photos[1])]


# --- photo page ------------------------------------------------------------------------------------------


def test_photo_page(user_client: FlaskClient, photos: list[int]) -> None:
    response = user_client.get(f"/photos/{photos[0]}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Wednesday 01 May 2024, 10:00" in html and "UTC+02:00" in html and "recorded by the camera" in html
    assert "Germany" in html and "52.52000° N" in html and "from the camera&#39;s GPS" in html
    assert "TestCam T-1" in html and "JPEG" in html and "120 × 80" in html
    assert f"/photos/{photos[0]}/web?v=" in html
    assert 'id="photo-map"' in html and "vendor/leaflet/leaflet.js" in html
    assert 'data-nav="next"' in html and 'data-nav="prev"' not in html  # the newest photo
    assert '<option value="Asia/Bangkok">' in html


def test_photo_page_time_zone_source_in_words(user_client: FlaskClient, photos: list[int]) -> None:
    html = user_client.get(f"/photos/{photos[1]}").get_data(as_text=True)
    assert "Asia/Bangkok" in html and "from the time zone at the photo&#39;s position" in html
    html = user_client.get(f"/photos/{photos[2]}").get_data(as_text=True)
    assert "No position" in html and "UTC time unknown" in html


def test_photo_page_keeps_the_filter_in_prev_next(user_client: FlaskClient, photos: list[int]) -> None:
    html = user_client.get(f"/photos/{photos[1]}?nolocation=1").get_data(as_text=True)
    assert f'href="/photos/{photos[2]}?nolocation=1"' in html  # older among unplaced photos


def test_other_users_photo_is_404(user_client: FlaskClient, bob_photo: int) -> None:
    assert user_client.get(f"/photos/{bob_photo}").status_code == 404
    assert user_client.get("/photos/999999").status_code == 404
    assert post(user_client, f"/photos/{bob_photo}/caption", {"caption": "mine now"}).status_code == 404  # type: ignore[attr-defined]
    assert post(user_client, f"/photos/{bob_photo}/delete").status_code == 404  # type: ignore[attr-defined]


# --- edits -------------------------------------------------------------------------------------------------


def test_caption_is_saved_and_shown_escaped(user_client: FlaskClient, photos: list[int]) -> None:
    response = post(user_client, f"/photos/{photos[0]}/caption", {"caption": XSS})
    assert response.status_code == 303  # type: ignore[attr-defined]
    html = user_client.get(f"/photos/{photos[0]}").get_data(as_text=True)
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Caption saved." in html


def test_tags_and_trip(app: Flask, user_client: FlaskClient, photos: list[int]) -> None:
    assert post(user_client, f"/photos/{photos[1]}/tags", {"tags": f"food, {XSS}"}).status_code == 303  # type: ignore[attr-defined]
    html = user_client.get(f"/photos/{photos[1]}").get_data(as_text=True)
    assert "<li>food</li>" in html and XSS not in html
    with app_sessions(app)() as s:
        trip_id = library.list_trips(s, user_id_of(app, "alice"))[0].id
    assert post(user_client, f"/photos/{photos[1]}/trip", {"trip": str(trip_id)}).status_code == 303  # type: ignore[attr-defined]
    with app_sessions(app)() as s:
        photo = s.get(Photo, photos[1])
        assert photo is not None and photo.post is not None and photo.post.trip_id == trip_id
    response = post(user_client, f"/photos/{photos[1]}/trip", {"trip": "x"})
    assert response.status_code == 400 and "not a valid trip" in response.get_data(as_text=True)  # type: ignore[attr-defined]


def test_position_set_invalid_and_cleared(app: Flask, user_client: FlaskClient, photos: list[int]) -> None:
    response = post(
        user_client, f"/photos/{photos[2]}/position", {"lat": str(BANGKOK[0]), "lon": str(BANGKOK[1])}
    )
    assert response.status_code == 303  # type: ignore[attr-defined]
    html = user_client.get(response.location).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Position saved: Bangkok" in html and "set by you" in html
    photo = load(app, photos[2])
    assert photo is not None and photo.location_source == "manual" and photo.timezone == "Asia/Bangkok"
    bad = post(user_client, f"/photos/{photos[2]}/position", {"lat": "95", "lon": "10"})
    assert bad.status_code == 400 and "latitude must be between -90 and 90" in bad.get_data(as_text=True)  # type: ignore[attr-defined]
    assert post(user_client, f"/photos/{photos[2]}/position/clear").status_code == 303  # type: ignore[attr-defined]
    photo = load(app, photos[2])
    assert photo is not None and photo.lat is None and photo.place is None


def test_time_zone(app: Flask, user_client: FlaskClient, photos: list[int]) -> None:
    response = post(user_client, f"/photos/{photos[2]}/timezone", {"timezone": "America/New_York"})
    assert response.status_code == 303  # type: ignore[attr-defined]
    photo = load(app, photos[2])
    assert photo is not None
    assert (photo.timezone, photo.utc_offset_min, photo.offset_source) == ("America/New_York", -300, "manual")
    html = user_client.get(f"/photos/{photos[2]}").get_data(as_text=True)
    assert "UTC-05:00 · America/New_York · set by you" in html
    bad = post(user_client, f"/photos/{photos[2]}/timezone", {"timezone": "Moon/Base"})
    assert bad.status_code == 400 and "pick a time zone from the list" in bad.get_data(as_text=True)  # type: ignore[attr-defined]


def test_delete_photo_removes_row_then_files(app: Flask, user_client: FlaskClient, photos: list[int]) -> None:
    photo = load(app, photos[1])
    assert photo is not None
    files = editing.photo_files(app_settings(app).uploads_dir, photo)
    assert all(f.is_file() for f in files)
    response = post(user_client, f"/photos/{photos[1]}/delete")
    assert response.status_code == 303 and response.location.endswith(f"/photos/{photos[2]}")  # type: ignore[attr-defined]
    assert load(app, photos[1]) is None and not any(f.exists() for f in files)
    assert "Photo deleted." in user_client.get(f"/photos/{photos[2]}").get_data(as_text=True)
    assert user_client.get(f"/photos/{photos[1]}").status_code == 404


def test_deleting_the_last_photo_goes_back_to_the_library(
    app: Flask, user_client: FlaskClient, tmp_path: Path
) -> None:
    only = add_photos(app, user_id_of(app, "alice"), tmp_path, [{}])[0]
    response = post(user_client, f"/photos/{only}/delete")
    assert response.status_code == 303 and response.location.endswith("/library")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "path", ["caption", "tags", "trip", "position", "position/clear", "timezone", "delete"]
)
def test_edits_without_csrf_are_refused(
    app: Flask, user_client: FlaskClient, photos: list[int], path: str
) -> None:
    response = user_client.post(f"/photos/{photos[0]}/{path}", data={"caption": "x", "lat": "1", "lon": "1"})
    assert response.status_code == 400 and "did not come from this site" in response.get_data(as_text=True)
    assert load(app, photos[0]) is not None


# --- GeoJSON -------------------------------------------------------------------------------------------


def test_geojson_needs_login(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    response = client.get("/api/photos.geojson")
    assert response.status_code == 401 and response.is_json


def test_geojson_shape_and_isolation(
    app: Flask, user_client: FlaskClient, photos: list[int], bob_photo: int
) -> None:
    post(user_client, f"/photos/{photos[0]}/caption", {"caption": XSS})
    response = user_client.get("/api/photos.geojson")
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    body = response.get_data(as_text=True)
    assert "<script>" not in body and ", " not in body[:200]  # compact, HTML-safe
    data = json.loads(body)
    assert data["type"] == "FeatureCollection"
    features = {f["properties"]["id"]: f for f in data["features"]}
    assert set(features) == {photos[0], photos[1]}  # located photos only, never Bob's
    berlin = features[photos[0]]
    assert berlin["geometry"] == {
        "type": "Point",
        "coordinates": [pytest.approx(BERLIN[1]), pytest.approx(BERLIN[0])],
    }
    props = berlin["properties"]
    assert (
        props["caption"] == XSS
        and props["taken_at_utc"] == "2024-05-01T08:00:00Z"
        and "Germany" in props["place"]
    )
    thumb = user_client.get(props["thumb_url"])
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert bob_photo not in features


def test_geojson_by_trip(app: Flask, user_client: FlaskClient, photos: list[int], bob_photo: int) -> None:
    with app_sessions(app)() as s:
        trip_id = library.list_trips(s, user_id_of(app, "alice"))[0].id
    data = user_client.get(f"/api/photos.geojson?trip={trip_id}").get_json(force=True)
    assert [f["properties"]["id"] for f in data["features"]] == [photos[0]]
    assert user_client.get("/api/photos.geojson?trip=nope").status_code == 400
    assert user_client.get("/api/photos.geojson?trip=999").status_code == 404


def test_photo_page_with_another_users_trip_filter_is_404(
    app: Flask, user_client: FlaskClient, photos: list[int], tmp_path: Path
) -> None:
    bob = make_user(app, "bob")
    add_photos(app, bob, tmp_path, [{}], trip="Secret")
    with app_sessions(app)() as s:
        trip_id = library.list_trips(s, bob)[0].id
    assert user_client.get(f"/photos/{photos[0]}?trip={trip_id}").status_code == 404
