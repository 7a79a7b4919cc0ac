"""Health check and the front page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, redirect, url_for

bp = Blueprint("main", __name__)


@bp.route("/healthz")
def healthz() -> Any:
    """Liveness check for scripts and monitors; no login needed."""
    return jsonify(status="ok")


@bp.route("/")
def index() -> Any:
    """The journal's front page is the photo library."""
    return redirect(url_for("library.index"))
