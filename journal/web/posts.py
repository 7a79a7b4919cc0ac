"""Posts: make one from photos selected in the grid, order its photos, edit its caption and trip."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from journal import ids
from journal.models import Post
from journal.services import editing, library, posts, publishing
from journal.web.context import form_id, get_db
from journal.web.library import apply_edit

bp = Blueprint("posts", __name__)


def render_post(post_id: int, error: str | None = None) -> str:
    """The post page (also shown again, with the error, when an edit was refused)."""
    session = get_db()
    post = posts.get_post(session, current_user.id, post_id)
    trips = library.list_trips(session, current_user.id)
    status, bundles = publishing.post_status(session, current_user.id, [post.id])[post.id]
    return render_template(
        "posts/post.html",
        post=post,
        photos=list(post.photos),
        trips=trips,
        error=error,
        status=status,
        bundles=bundles,
    )


def _edit_post(post_id: int, change: Callable[[Session, Post], object], message: str) -> Any:
    post = posts.get_post(get_db(), current_user.id, post_id)  # 404 first for others' posts
    return apply_edit(
        lambda session: change(session, post),
        message,
        done=lambda: url_for(".post", post_id=post_id),
        page=lambda error: render_post(post_id, error),
    )


def _selected_ids() -> list[int]:
    chosen = [ids.parse_id(value, "photo") for value in request.form.getlist("photo")]
    return [i for i in chosen if i is not None]


@bp.post("/posts")
def create() -> Response:
    """Make a post of the photos selected in the grid (they leave their old posts)."""
    session, form = get_db(), request.form
    trip_id = form_id("trip")
    post = posts.create_post(
        session, current_user.id, _selected_ids(), caption=form.get("caption", ""), trip_id=trip_id
    )
    session.commit()
    count = len(post.photos)
    flash(f"Post made of {count} photo{'' if count == 1 else 's'}.")
    return redirect(url_for(".post", post_id=post.id), 303)


@bp.get("/posts/<int:post_id>")
def post(post_id: int) -> Any:
    """A post: its photos in order, its caption and trip."""
    return render_post(post_id)


@bp.post("/posts/<int:post_id>/caption")
def caption(post_id: int) -> Any:
    """Set the post's caption."""
    text = request.form.get("caption", "")
    return _edit_post(post_id, lambda s, post: editing.set_caption(s, post, text), "Caption saved.")


@bp.post("/posts/<int:post_id>/trip")
def trip(post_id: int) -> Any:
    """Put the post on a trip, or on none."""
    return _edit_post(post_id, lambda s, post: editing.set_trip(s, post, form_id("trip")), "Trip saved.")


@bp.post("/posts/<int:post_id>/photos/<int:photo_id>/move")
def move(post_id: int, photo_id: int) -> Any:
    """Move a photo one place up or down in the post."""
    direction = posts.parse_direction(request.form.get("direction", ""))
    return _edit_post(post_id, lambda s, post: posts.move_photo(s, post, photo_id, direction), "Order saved.")


@bp.post("/posts/<int:post_id>/photos/<int:photo_id>/remove")
def remove(post_id: int, photo_id: int) -> Any:
    """Take a photo out of the post into a post of its own."""
    return _edit_post(
        post_id,
        lambda s, post: posts.remove_photo(s, post, photo_id),
        "Photo taken out of the post: it is a post of its own now.",
    )


@bp.post("/posts/<int:post_id>/split")
def split(post_id: int) -> Any:
    """Give every photo of the post a post of its own."""
    return _edit_post(
        post_id,
        lambda s, post: posts.split_post(s, post),
        "Post split: every photo is a post of its own now.",
    )
