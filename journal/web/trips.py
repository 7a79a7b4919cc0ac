"""Trips: the list, a trip's page with its posts, editing a trip, and fixing a camera's clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import Session

from journal.config import duration_s
from journal.errors import InvalidInput
from journal.geotag import PlacePolicy
from journal.models import Trip
from journal.services import editing, geotagging, trips
from journal.web.context import error_status, form_id, get_db, get_settings
from journal.web.library import apply_edit, optional_url

bp = Blueprint("trips", __name__)


def _form() -> trips.TripForm:
    form = request.form
    return trips.TripForm.parse(
        form.get("title", ""),
        form.get("start_date", ""),
        form.get("end_date", ""),
        form.get("description", ""),
    )


def render_index(error: str | None = None) -> str:
    """The trip list with the new-trip form (also shown again, with the error, when it was refused)."""
    summaries = trips.trip_summaries(get_db(), current_user.id)
    return render_template("trips/index.html", summaries=summaries, error=error, form=request.form)


def render_trip(trip_id: int, error: str | None = None) -> str:
    """A trip's page (also shown again, with the error, when an edit was refused)."""
    session = get_db()
    trip = trips.get_trip(session, current_user.id, trip_id)
    posts = trips.trip_posts(session, trip)
    return render_template(
        "trips/trip.html",
        trip=trip,
        posts=posts,
        photo_count=sum(len(item.photos) for item in posts),
        clock_wrong=sum(item.clock_wrong for item in posts),
        cameras=editing.trip_cameras(session, current_user.id, trip.id),
        map_url=optional_url("maps.trip", trip_id=trip.id),
        tracks=trips.trip_tracks(session, trip),
        policy=geotagging.trip_policy(get_settings(), trip),
        error=error,
    )


def _edit_trip(
    trip_id: int, change: Callable[[Session, Trip], object], message: str | Callable[[], str]
) -> Any:
    trip = trips.get_trip(get_db(), current_user.id, trip_id)  # 404 first for others' trips
    return apply_edit(
        lambda session: change(session, trip),
        message,
        done=lambda: url_for(".trip", trip_id=trip_id),
        page=lambda error: render_trip(trip_id, error),
    )


@bp.get("/trips")
def index() -> Any:
    """The user's trips, newest first, with counts and a form for a new one."""
    return render_index()


@bp.post("/trips")
def create() -> Any:
    """Create a trip and show its page."""
    made: list[Trip] = []
    return apply_edit(
        lambda session: made.append(trips.create_trip(session, current_user.id, _form())),
        lambda: f"Trip “{made[0].title}” created.",
        done=lambda: url_for(".trip", trip_id=made[0].id),
        page=render_index,
    )


@bp.get("/trips/<int:trip_id>")
def trip(trip_id: int) -> Any:
    """A trip: its details, its posts in the order they happened, and its cameras."""
    return render_trip(trip_id)


@bp.post("/trips/<int:trip_id>")
def update(trip_id: int) -> Any:
    """Change a trip's title, dates and description."""
    return _edit_trip(trip_id, lambda s, trip: trips.update_trip(s, trip, _form()), "Trip saved.")


@bp.post("/trips/<int:trip_id>/clock")
def shift_clock(trip_id: int) -> Any:
    """Shift the time of every photo one camera took on this trip, then place them from the tracks again."""
    form, done = request.form, []

    def change(session: Session, trip: Trip) -> None:
        camera, delta = (
            editing.parse_camera(form.get("camera", "")),
            editing.parse_shift(form.get("shift", "")),
        )
        done.append(
            geotagging.fix_camera_clock(session, get_settings(), current_user.id, trip.id, camera, delta)
        )

    return _edit_trip(trip_id, change, lambda: _sentence(done[0].summary()))


def _sentence(line: str) -> str:
    return line[:1].upper() + line[1:] + "."


def _duration_field(name: str, label: str) -> int:
    text = request.form.get(name, "").strip()
    if not text or text in ("0", "off"):
        return 0
    try:
        seconds = duration_s(text)
    except ValueError:
        raise InvalidInput(f"{label}: write a duration such as 5m, 45m or 1h30m") from None
    if seconds > 86_400:
        raise InvalidInput(f"{label}: at most one day")
    return seconds


@bp.post("/trips/<int:trip_id>/place")
def place(trip_id: int) -> Any:
    """Keep a rule for placing this trip's photos on its tracks, and place them again under it."""
    done = []

    def change(session: Session, trip: Trip) -> None:
        policy = PlacePolicy(
            max_gap_s=_duration_field("max_gap", "Longest gap") or get_settings().track_max_gap_s,
            nearest_s=_duration_field("nearest", "Nearest point"),
        )
        done.append(geotagging.place_trip(session, get_settings(), current_user.id, trip.id, policy=policy))

    return _edit_trip(trip_id, change, lambda: _sentence(done[0].summary()))


def _clock_photo_form() -> tuple[int, Any]:
    photo_id = form_id("photo")
    if photo_id is None:
        raise InvalidInput("pick the photo that shows a clock")
    return photo_id, geotagging.parse_shown_time(request.form.get("shown", ""))


@bp.post("/trips/<int:trip_id>/clock-photo")
def clock_photo(trip_id: int) -> Any:
    """From a photo of a clock: preview the camera's shift (nothing is changed until it is confirmed)."""
    session = get_db()
    trip = trips.get_trip(session, current_user.id, trip_id)
    try:
        photo_id, shown = _clock_photo_form()
        fix = geotagging.preview_clock_from_photo(session, get_settings(), current_user.id, photo_id, shown)
    except InvalidInput as exc:
        session.rollback()
        return render_trip(trip_id, str(exc)), error_status(exc)
    session.rollback()  # a preview: the shift is undone, the photos stay as they were
    return render_template(
        "trips/clock_preview.html",
        trip=trip,
        fix=fix,
        photo_id=photo_id,
        shown=request.form.get("shown", ""),
        shift=geotagging.format_shift(fix.shift),
    )


@bp.post("/trips/<int:trip_id>/clock-photo/apply")
def clock_photo_apply(trip_id: int) -> Any:
    """Apply the shift found from a photo of a clock, and place the trip's photos again."""
    done = []

    def change(session: Session, trip: Trip) -> None:
        photo_id, shown = _clock_photo_form()
        fix = geotagging.clock_from_photo(session, get_settings(), current_user.id, photo_id, shown)
        done.append(fix)

    return _edit_trip(trip_id, change, lambda: _sentence(done[0].summary()))


@bp.post("/trips/<int:trip_id>/tracks/<int:track_id>/delete")
def delete_track(trip_id: int, track_id: int) -> Any:
    """Delete a GPS track; the photos it placed are placed again from the other tracks (or lose it)."""
    session = get_db()
    trips.get_trip(session, current_user.id, trip_id)
    path, report = geotagging.delete_track(session, get_settings(), current_user.id, track_id)
    session.commit()
    geotagging.remove_track_file(session, current_user.id, path)
    flash(_sentence(f"Track deleted; {report.summary()}"))
    return redirect(url_for(".trip", trip_id=trip_id), 303)


@bp.post("/trips/<int:trip_id>/delete")
def delete(trip_id: int) -> Any:
    """Delete a trip; its posts and photos stay in the library."""
    trip = trips.get_trip(get_db(), current_user.id, trip_id)
    return apply_edit(
        lambda session: trips.delete_trip(session, trip),
        f"Trip “{trip.title}” deleted; its photos are still in your library.",
        done=lambda: url_for(".index"),
        page=lambda error: render_trip(trip_id, error),
    )
