"""The photo library: the grid, one photo's page, and the forms that change a photo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from journal.errors import Conflict, InvalidInput
from journal.models import Photo
from journal.services import editing, geotagging, library, quota
from journal.web.context import error_status, form_id, get_db, get_settings

bp = Blueprint("library", __name__)

#: Errors a form can show next to itself (anything else goes to the error page).
FORM_ERRORS = (InvalidInput, Conflict)
#: The photo page's map needs the vendored Leaflet (scripts/vendor_assets.py); without it, no map.
HAS_LEAFLET = (Path(__file__).resolve().parent.parent / "static/vendor/leaflet/leaflet.js").is_file()


def thumb_box(photo: Photo) -> tuple[int, int]:
    """Width and height of a photo's thumbnail (for the img attributes that prevent layout shift)."""
    return library.thumb_dimensions(photo.web_width, photo.web_height, get_settings().thumb_size)


def optional_url(endpoint: str, **values: Any) -> str | None:
    """The URL of an endpoint another module may not have registered yet, else None."""
    return url_for(endpoint, **values) if endpoint in current_app.view_functions else None


def apply_edit(
    change: Callable[[Session], object],
    message: str | Callable[[], str],
    *,
    done: Callable[[], str],
    page: Callable[[str], str],
) -> Any:
    """Run a change and commit it, then flash `message` and redirect to `done()` (303).

    When the input is refused, roll back and render `page(error)` with the error's status instead.
    """
    session = get_db()
    try:
        change(session)
    except FORM_ERRORS as exc:
        session.rollback()
        return page(str(exc)), error_status(exc)
    session.commit()
    flash(message if isinstance(message, str) else message())
    return redirect(done(), 303)


def _edit_photo(
    photo_id: int, change: Callable[[Session, Photo], object], message: str | Callable[[Photo], str]
) -> Any:
    """Apply a change to the user's photo (404 for anybody else's) and come back to its page."""
    photo = _photo(photo_id)
    return apply_edit(
        lambda session: change(session, photo),
        message if isinstance(message, str) else lambda: message(photo),
        done=_back(photo_id),
        page=lambda error: render_photo(photo_id, error),
    )


def _filter() -> library.LibraryFilter:
    return library.parse_filter(request.args)


def _back(photo_id: int) -> Callable[[], str]:
    return lambda: url_for(".photo", photo_id=photo_id, **_filter().query_args())


def _photo(photo_id: int) -> Photo:
    return library.get_photo(get_db(), current_user.id, photo_id)


def render_photo(photo_id: int, error: str | None = None) -> str:
    """The photo page (also shown again, with the error, when an edit was refused)."""
    flt = _filter()
    view = library.photo_page(get_db(), current_user.id, photo_id, flt)
    return render_template(
        "library/photo.html",
        view=view,
        photo=view.photo,
        flt=flt,
        error=error,
        tags_text=editing.tags_text(view.photo),
        zone_names=editing.zone_names(),
        show_map=HAS_LEAFLET,
    )


@bp.get("/library")
def index() -> Any:
    """The photo grid, newest first, filtered by trip, dates or missing position, a page at a time."""
    args, settings = request.args, get_settings()
    db, flt = get_db(), _filter()
    page = library.list_page(
        db,
        current_user.id,
        flt,
        after=args.get("after"),
        before=args.get("before"),
        limit=library.PAGE_SIZE,
        thumb_size=settings.thumb_size,
    )
    grid = library.grid_view(db, current_user.id, flt, page)
    return render_template(
        "library/index.html",
        grid=grid,
        page=grid.page,
        flt=grid.filter,
        upload_url=optional_url("upload.index"),
        storage_used=_storage_used(settings),
    )


def _storage_used(settings: Any) -> str | None:
    """ "N MB of M MB used" when a quota applies (the export page shows it always)."""
    if not settings.quota_bytes:
        return None
    return quota.usage(get_db(), settings, current_user.id).text()


@bp.get("/photos/<int:photo_id>")
def photo(photo_id: int) -> Any:
    """One photo: its web image, metadata, a small map, edit forms and previous/next."""
    return render_photo(photo_id)


@bp.post("/photos/<int:photo_id>/caption")
def caption(photo_id: int) -> Any:
    """Set the caption of the photo's post."""
    text = request.form.get("caption", "")
    return _edit_photo(
        photo_id, lambda s, p: editing.set_caption(s, editing.post_of(s, p), text), "Caption saved."
    )


@bp.post("/photos/<int:photo_id>/tags")
def tags(photo_id: int) -> Any:
    """Replace the photo's tags with the comma-separated list in the form."""
    text = request.form.get("tags", "")
    return _edit_photo(photo_id, lambda s, p: editing.set_tags(s, p, text), "Tags saved.")


@bp.post("/photos/<int:photo_id>/trip")
def trip(photo_id: int) -> Any:
    """Put the photo's post on a trip (or on none)."""

    def change(session: Session, photo: Photo) -> None:
        editing.set_trip(session, editing.post_of(session, photo), form_id("trip"))

    return _edit_photo(photo_id, change, "Trip saved.")


@bp.post("/photos/<int:photo_id>/position")
def position(photo_id: int) -> Any:
    """Set or correct the photo's position (typed, or clicked on the map) and name its place again."""
    lat, lon = request.form.get("lat", ""), request.form.get("lon", "")

    def change(session: Session, photo: Photo) -> None:
        editing.set_position(session, photo, *editing.parse_position(lat, lon))

    return _edit_photo(photo_id, change, lambda p: f"Position saved: {p.place or 'no place name there'}.")


@bp.post("/photos/<int:photo_id>/position/clear")
def clear_position(photo_id: int) -> Any:
    """Remove the photo's position and place name."""
    return _edit_photo(photo_id, editing.clear_position, "Position removed.")


@bp.post("/photos/<int:photo_id>/timezone")
def timezone(photo_id: int) -> Any:
    """Correct the photo's time zone by name: the local time stays, the UTC time follows."""
    name = request.form.get("timezone", "")

    def change(session: Session, photo: Photo) -> None:
        editing.set_timezone(session, photo, name)
        geotagging.refresh_positions(session, get_settings(), [photo])  # a track position follows the time

    return _edit_photo(photo_id, change, "Time zone saved.")


@bp.post("/photos/<int:photo_id>/delete")
def delete(photo_id: int) -> Response:
    """Delete the photo (row first, files after the commit) and show the next one."""
    session, flt = get_db(), _filter()
    photo = _photo(photo_id)
    near = library.neighbours(session, photo, flt)
    deleted = editing.delete_photo(session, get_settings().uploads_dir, photo)
    session.commit()
    editing.remove_files(session, deleted)
    flash("Photo deleted.")
    target = near.older or near.newer
    if target is None:
        return redirect(url_for(".index", **flt.query_args()), 303)
    return redirect(url_for(".photo", photo_id=target, **flt.query_args()), 303)
