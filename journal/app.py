"""The Flask application factory: settings, a session per request, blueprints, errors."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, has_request_context, jsonify, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

from journal import db, errors, ids, storage
from journal.config import Settings
from journal.services import housekeeping
from journal.services.throttle import Throttle
from journal.web import BLUEPRINTS, auth, export, filters, library, maps, media, upload
from journal.web.context import (
    SETTINGS_KEY,
    csrf,
    error_status,
    get_db,
    get_settings,
    init_sessions,
    login_manager,
)

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
if not TEMPLATES.is_dir():  # installed as a wheel: templates are packaged inside journal/
    TEMPLATES = Path(__file__).resolve().parent / "templates"


class IdConverter(IntegerConverter):
    """`<int:...>` bounded to the ids a row can have: a bigger number is a 404, never an overflow.

    The bound is in the pattern: werkzeug answers 405 instead of 404 when only the converter
    refuses a path that another method's rule would take.
    """

    regex = ids.ID_PATTERN
    signed_regex = "-?" + ids.ID_PATTERN

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = ids.MAX_ID,
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits, min, max, signed)

    def to_python(self, value: str) -> Any:
        """The number (leading zeros dropped first: int() refuses over 4,300 digits)."""
        return super().to_python(value.lstrip("0") or "0")


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


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the cookie Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure when configured so, or when this request is HTTPS (directly or via a trusted proxy)."""
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (has_request_context() and request.is_secure)


def create_app(settings: Settings | None = None, **config: Any) -> Flask:
    """Build the app for a data home; `config` overrides Flask settings (tests)."""
    settings = settings or Settings.from_env()
    housekeeping.secure_home(settings)
    app = Flask(__name__, template_folder=str(TEMPLATES))
    app.url_map.converters["int"] = IdConverter  # before any rule is added
    app.config.update(
        SECRET_KEY=load_secret_key(settings),
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        # Each file may come with its sha256 field, plus a few options (caption, trip, ...).
        MAX_FORM_PARTS=2 * settings.max_upload_files + 20,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        # Remember-me is not offered; should a remember cookie arrive, it names a session id that
        # the user loader checks like any other (so it cannot outlive a logout either).
        REMEMBER_COOKIE_SECURE=settings.cookie_secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        # CSRF is checked in a before_request hook so bearer-token API calls can skip it.
        WTF_CSRF_CHECK_DEFAULT=False,
    )
    app.config[SETTINGS_KEY] = settings
    app.config.update(config)
    app.session_interface = SessionInterface()
    # Uploaded files are spooled to staging as the form is parsed, and the CSRF check of any
    # blueprint parses it before the view runs: the request class is app-wide.
    app.request_class = upload.StagingRequest
    if settings.proxy_fix:
        # X-Forwarded-Host is not taken: a browser may send it, and the Host check must see the real one.
        hops = settings.proxy_fix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    _init_database(app, settings)
    app.extensions["journal.throttle"] = Throttle()  # failed sign-ins, per account and per network
    csrf.init_app(app)
    login_manager.init_app(app)  # its user and bearer-token loaders are in journal.web.auth
    _init_request_hooks(app)
    _init_errors(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.extensions[export.JOBS_KEY] = export.Jobs()  # background exports, in this process's memory
    _init_templates(app)
    return app


def _init_database(app: Flask, settings: Settings) -> None:
    """Open the database (migrated to head), check it belongs to the data home, give the app its sessions."""
    engine = db.make_engine(settings.database_url)
    db.ensure_schema(engine)
    factory = db.make_session_factory(engine)
    try:  # a wrong database (mistyped URL, older copy) must not meet the files: `journal check` says why
        housekeeping.run_verify_home(settings, factory)
    except errors.WrongDatabase:
        engine.dispose()
        raise
    init_sessions(app, factory)
    app.extensions["journal.engine"] = engine


def _init_templates(app: Flask) -> None:
    """The Jinja filters and the helpers every template may call."""
    filters.init_app(app)
    app.add_template_global(media.photo_url)
    app.add_template_global(library.thumb_box)


def _init_request_hooks(app: Flask) -> None:
    @app.before_request
    def make_nonce() -> None:
        g.csp_nonce = secrets.token_urlsafe(16)

    app.before_request(auth.check_host)
    app.before_request(auth.require_login)

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

    app.after_request(maps.cache_static_assets)

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


def _too_large_message(exc: HTTPException) -> str:
    """Why a request was refused with 413: its size, its number of parts, or what raised it says."""
    if exc.description and exc.description != RequestEntityTooLarge.description:
        return exc.description
    upload_limit = get_settings().max_upload_bytes
    limit = request.max_content_length or upload_limit
    length = request.content_length
    if length is not None and length <= limit:
        return "That request has too many parts or too long a field."
    what = "file" if limit == upload_limit else "request"
    return f"That {what} is too large: the limit is {limit / 1_000_000:g} MB per request."


def _init_errors(app: Flask) -> None:
    @app.errorhandler(errors.JournalError)
    def journal_error(exc: errors.JournalError) -> tuple[Any, int]:
        status = error_status(exc)
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
    def too_large(exc: HTTPException) -> tuple[Any, int]:
        message = _too_large_message(exc)
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


#: Waitress buffers a whole body before the app sees it: bodies this much past the upload limit
#: are refused by waitress from their Content-Length, unread (slightly larger ones get the app's 413).
BODY_SLACK = 1_000_000


def serve(app: Flask, host: str, port: int, threads: int | None = None) -> None:
    """Serve the app with waitress, a production WSGI server."""
    from waitress import serve as waitress_serve

    settings: Settings = app.config[SETTINGS_KEY]
    waitress_serve(
        app,
        host=host,
        port=port,
        threads=threads or max(4, (os.cpu_count() or 1) * 2),
        max_request_body_size=settings.max_upload_bytes + BODY_SLACK,
    )
