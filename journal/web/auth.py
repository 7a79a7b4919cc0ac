"""Owner set-up, login, logout, accounts; session and bearer-token authentication."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from journal.app import csrf, get_db, login_manager
from journal.errors import JournalError
from journal.models import User
from journal.services import users

bp = Blueprint("auth", __name__)

PUBLIC_ENDPOINTS = {"auth.login", "auth.setup", "main.healthz", "static"}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
#: The only bodies an anonymous client may send are the login and set-up forms: a few short fields.
PUBLIC_BODY_BYTES = 64_000
PUBLIC_FORM_PARTS = 20


class LoginUser:
    """Flask-Login's view of a User row."""

    is_active = True
    is_anonymous = False
    is_authenticated = True

    def __init__(self, user: User) -> None:
        self.user = user
        self.id = user.id
        self.name = user.name
        self.is_owner = user.is_owner

    def get_id(self) -> str:
        """The id kept in the session cookie."""
        return str(self.user.id)


class Throttle:
    """Slows down repeated failed logins per client address and name (in memory, per process)."""

    def __init__(self, free: int = 5, window_s: float = 900.0) -> None:
        self.free = free
        self.window_s = window_s
        self._failures: dict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()

    def wait_seconds(self, key: str) -> float:
        """Seconds the client must wait before the next try (0 when it may try now)."""
        with self._lock:
            now = time.monotonic()
            recent = [t for t in self._failures[key] if now - t < self.window_s]
            self._failures[key] = recent
            if len(recent) < self.free:
                return 0.0
            delay = min(2.0 ** (len(recent) - self.free + 1), self.window_s)
            return max(0.0, recent[-1] + delay - now)

    def failed(self, key: str) -> None:
        """Count a failed attempt."""
        with self._lock:
            self._failures[key].append(time.monotonic())

    def succeeded(self, key: str) -> None:
        """Forget the failures after a good login."""
        with self._lock:
            self._failures.pop(key, None)


throttle = Throttle()


class SetupForm(FlaskForm):  # type: ignore[misc]
    """Create the owner account (and, for the owner, further accounts)."""

    name = StringField("User name", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=users.MIN_PASSWORD)])
    confirm = PasswordField("Repeat password", validators=[EqualTo("password", "The passwords differ.")])


class LoginForm(FlaskForm):  # type: ignore[misc]
    """Sign in."""

    name = StringField("User name", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


@login_manager.request_loader
def _load_from_bearer(req: Any) -> LoginUser | None:
    header = req.headers.get("Authorization", "")
    if not (req.path.startswith("/api/") and header.startswith("Bearer ")):
        return None
    user = users.user_for_token(get_db(), header[7:].strip())
    if user is None:
        return None
    get_db().commit()  # keeps last_used_at
    g.bearer = True
    return LoginUser(user)


def require_login() -> Response | tuple[Response, int] | None:
    """Before every request: decide who is asking, then check CSRF; an anonymous body is never read.

    Reading the body (the CSRF check parses the form) spools uploads to disk, so it waits until
    the request is known to come from an account; the public forms get a small body limit.
    """
    if request.endpoint in PUBLIC_ENDPOINTS:
        if request.method not in SAFE_METHODS:
            request.max_content_length = PUBLIC_BODY_BYTES
            request.max_form_parts = PUBLIC_FORM_PARTS
            csrf.protect()
        return None
    if not current_user.is_authenticated:
        return _refuse_anonymous()
    if request.method not in SAFE_METHODS and not g.get("bearer"):
        csrf.protect()
    return None


def _refuse_anonymous() -> Response | tuple[Response, int]:
    """401 on /api/, else to set-up (no account yet) or login; nothing of the request body is read."""
    if request.path.startswith("/api/"):
        return jsonify(error="sign in or send an API token"), 401
    if users.count_users(get_db()) == 0:
        return redirect(url_for("auth.setup"))
    if request.method in SAFE_METHODS:
        return redirect(url_for("auth.login", next=request.full_path))
    return redirect(url_for("auth.login"), 303)


def _safe_next(target: str | None) -> str:
    if target and not urlsplit(target).netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("main.index")


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> Any:
    """First visit: create the owner account."""
    session = get_db()
    if users.count_users(session) > 0:
        return redirect(url_for("auth.login"))
    form = SetupForm()
    if form.validate_on_submit():
        try:
            user = users.create_user(session, form.name.data, form.password.data)
        except JournalError as exc:
            form.name.errors.append(str(exc))
        else:
            session.commit()
            login_user(LoginUser(user))
            flash(f"Welcome, {user.name}. Your journal is ready: add your first photos.")
            return redirect(url_for("main.index"))
    return render_template("auth/setup.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Sign in with name and password (failed attempts slow down)."""
    session = get_db()
    if users.count_users(session) == 0:
        return redirect(url_for("auth.setup"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        key = f"{request.remote_addr}|{form.name.data.strip().lower()}"
        wait = throttle.wait_seconds(key)
        user = None if wait else users.authenticate(session, form.name.data, form.password.data)
        if wait:
            form.password.errors.append(f"Too many failed attempts. Try again in {int(wait) + 1} s.")
            status = 429
        elif user is None:
            throttle.failed(key)
            form.password.errors.append("Wrong user name or password.")
            status = 401
        else:
            throttle.succeeded(key)
            session.commit()
            login_user(LoginUser(user))
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    """Sign out."""
    logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/accounts", methods=["GET", "POST"])
@login_required
def accounts() -> Any:
    """The owner adds accounts; each account has its own journal."""
    if not current_user.is_owner:
        abort(403)
    session = get_db()
    form = SetupForm()
    if form.validate_on_submit():
        try:
            users.create_user(session, form.name.data, form.password.data)
        except JournalError as exc:
            form.name.errors.append(str(exc))
        else:
            session.commit()
            flash(f"Account {form.name.data} created.")
            return redirect(url_for("auth.accounts"))
    names = [u.name for u in session.query(User).order_by(User.name)]
    return render_template("auth/accounts.html", form=form, names=names)
