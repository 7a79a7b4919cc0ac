"""What every request handler shares: the settings, a session per request, CSRF, login, error statuses.

Blueprints import these from here, never from journal.app: the app factory imports the blueprints,
so the imports run one way only (journal.app -> journal.web).
"""

from __future__ import annotations

from flask import Flask, current_app, g, request
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session, sessionmaker

from journal import errors, ids
from journal.config import Settings

SETTINGS_KEY = "JOURNAL_SETTINGS"
SESSIONS_KEY = "journal.sessions"

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to see your journal."

#: The HTTP status of each kind of library error (a subclass takes its nearest listed base's).
ERROR_STATUS: dict[type[errors.JournalError], int] = {
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.InvalidInput: 400,
    errors.QuotaExceeded: 507,
    errors.AuthError: 401,
    errors.UnreadableFile: 422,
    errors.UnsupportedFile: 415,
    errors.WrongDatabase: 503,
}


def error_status(exc: errors.JournalError) -> int:
    """The HTTP status for a library error: its class's, or its nearest base's in ERROR_STATUS; else 400."""
    return next((ERROR_STATUS[cls] for cls in type(exc).__mro__ if cls in ERROR_STATUS), 400)


def init_sessions(app: Flask, factory: sessionmaker[Session]) -> None:
    """Give the app its session factory and close each request's session at teardown."""
    app.extensions[SESSIONS_KEY] = factory
    app.teardown_appcontext(close_db)


def get_settings() -> Settings:
    """The settings of the running app."""
    settings: Settings = current_app.config[SETTINGS_KEY]
    return settings


def session_factory() -> sessionmaker[Session]:
    """The app's session factory (for work that opens its own transactions, such as an import)."""
    factory: sessionmaker[Session] = current_app.extensions[SESSIONS_KEY]
    return factory


def get_db() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = session_factory()()
    session: Session = g.db
    return session


def close_db(_exc: BaseException | None = None) -> None:
    """Close the request's session, if one was opened."""
    session = g.pop("db", None)
    if session is not None:
        session.close()


def form_id(field: str, what: str | None = None) -> int | None:
    """The id posted in a form field (None when empty); InvalidInput for anything but an id."""
    return ids.parse_id(request.form.get(field), what or field)


def arg_id(field: str, what: str | None = None) -> int | None:
    """The id in a query-string argument (None when absent or empty); InvalidInput for anything but an id."""
    return ids.parse_id(request.args.get(field), what or field)
