"""The Flask application factory: settings, a session per request, blueprints, errors."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from journal import db, errors, storage
from journal.config import Settings
from journal.models import User

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
if not TEMPLATES.is_dir():  # installed as a wheel: templates are packaged inside journal/
    TEMPLATES = Path(__file__).resolve().parent / "templates"

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to see your journal."

ERROR_STATUS: dict[type[errors.JournalError], int] = {
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.InvalidInput: 400,
    errors.AuthError: 401,
    errors.UnreadableFile: 422,
    errors.UnsupportedFile: 415,
    errors.WrongDatabase: 503,
}


def load_secret_key(settings: Settings) -> bytes:
    """The secret key kept in the data home (mode 0600), created on first start."""
    path = settings.secret_key_path
    try:
        return path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_hex(32).encode()
        with storage.atomic_write(path, mode=0o600) as handle:
            handle.write(key)
        return path.read_bytes()


def create_app(settings: Settings | None = None, **config: Any) -> Flask:
    """Build the app for a data home; `config` overrides Flask settings (tests)."""
    settings = settings or Settings.from_env()
    from journal.services import housekeeping

    housekeeping.secure_home(settings)
    app = Flask(__name__, template_folder=str(TEMPLATES))
    app.config.update(
        SECRET_KEY=load_secret_key(settings),
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        # CSRF is checked in a before_request hook so bearer-token API calls can skip it.
        WTF_CSRF_CHECK_DEFAULT=False,
        JOURNAL_SETTINGS=settings,
    )
    app.config.update(config)
    engine = db.make_engine(settings.database_url)
    db.ensure_schema(engine)
    app.extensions["journal.sessions"] = db.make_session_factory(engine)
    try:  # a wrong database (mistyped URL, older copy) must not meet the files: `journal check` says why
        housekeeping.verify_home(settings, app.extensions["journal.sessions"])
    except errors.WrongDatabase:
        engine.dispose()
        raise
    app.extensions["journal.engine"] = engine
    csrf.init_app(app)
    login_manager.init_app(app)
    _init_request_hooks(app)
    _init_errors(app)
    _register_blueprints(app)
    from journal.web import filters

    filters.init_app(app)
    return app


def get_settings() -> Settings:
    """The settings of the running app."""
    from flask import current_app

    settings: Settings = current_app.config["JOURNAL_SETTINGS"]
    return settings


def get_db() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    from flask import current_app

    if "db" not in g:
        g.db = current_app.extensions["journal.sessions"]()
    session: Session = g.db
    return session


@login_manager.user_loader
def _load_user(user_id: str) -> Any:
    from journal.web.auth import LoginUser

    user = get_db().get(User, int(user_id)) if user_id.isdigit() else None
    return LoginUser(user) if user else None


def _init_request_hooks(app: Flask) -> None:
    @app.before_request
    def make_nonce() -> None:
        g.csp_nonce = secrets.token_urlsafe(16)

    from journal.web.auth import require_login

    app.before_request(require_login)

    @app.after_request
    def security_headers(response: Response) -> Response:
        nonce = g.get("csp_nonce", "")
        # Only set when the user configured online tiles (off by default).
        img_extra = "".join(f" {source}" for source in g.get("csp_img_extra", ()))
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}'; "
            f"style-src 'self' 'nonce-{nonce}'; "
            f"img-src 'self' data: blob:{img_extra}; connect-src 'self'; font-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'self'; form-action 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return response

    @app.teardown_appcontext
    def close_db(_exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()

    nav = [
        ("library.index", "Library"),
        ("upload.index", "Upload"),
        ("maps.index", "Map"),
        ("trips.index", "Trips"),
        ("export.index", "Export"),
    ]

    @app.context_processor
    def template_globals() -> dict[str, Any]:
        items = [(endpoint, label) for endpoint, label in nav if endpoint in app.view_functions]
        return {"csp_nonce": g.get("csp_nonce", ""), "current_user": current_user, "nav_items": items}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _init_errors(app: Flask) -> None:
    @app.errorhandler(errors.JournalError)
    def journal_error(exc: errors.JournalError) -> tuple[Any, int]:
        status = next((code for cls, code in ERROR_STATUS.items() if isinstance(exc, cls)), 400)
        get_db().rollback()
        if _wants_json():
            return jsonify(error=str(exc)), status
        return render_template("error.html", status=status, message=str(exc)), status

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> tuple[Any, int]:
        message = "The form expired or did not come from this site. Reload the page and try again."
        if _wants_json():
            return jsonify(error=message), 400
        return render_template("error.html", status=400, message=message), 400

    @app.errorhandler(413)
    def too_large(_exc: HTTPException) -> tuple[Any, int]:
        limit = get_settings().max_upload_bytes / 1_000_000
        message = f"That file is too large: the limit is {limit:g} MB per request."
        if _wants_json():
            return jsonify(error=message), 413
        return render_template("error.html", status=413, message=message), 413

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if exc.code is None or exc.code < 400:
            return exc
        if _wants_json():
            return jsonify(error=exc.description), exc.code
        return render_template("error.html", status=exc.code, message=exc.description), exc.code

    @app.errorhandler(500)
    def server_error(_exc: Exception) -> tuple[Any, int]:
        if "db" in g:
            g.db.rollback()
        if _wants_json():
            return jsonify(error="internal error"), 500
        return render_template("error.html", status=500, message="Something went wrong on our side."), 500


def _register_blueprints(app: Flask) -> None:
    from journal.web import BLUEPRINTS

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)


def serve(app: Flask, host: str, port: int, threads: int | None = None) -> None:
    """Serve the app with waitress, a production WSGI server."""
    from waitress import serve as waitress_serve

    waitress_serve(app, host=host, port=port, threads=threads or max(4, (os.cpu_count() or 1) * 2))
