"""Trips: the list, a trip's page with its posts, editing a trip, and fixing a camera's clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import Session

from journal.app import get_db
from journal.models import Trip
from journal.services import editing, trips
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
    """Shift the time of every photo one camera took on this trip by a fixed amount."""
    form, changed = request.form, []

    def change(session: Session, trip: Trip) -> None:
        camera, delta = (
            editing.parse_camera(form.get("camera", "")),
            editing.parse_shift(form.get("shift", "")),
        )
        changed.append(editing.shift_camera_clock(session, current_user.id, trip.id, camera, delta))

    return _edit_trip(
        trip_id, change, lambda: f"Clock shifted on {changed[0]} photo{'' if changed[0] == 1 else 's'}."
    )


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
