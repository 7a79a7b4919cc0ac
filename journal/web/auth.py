"""Owner set-up, login, logout, accounts; session and bearer-token authentication."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.sansio.utils import host_is_trusted as werkzeug_host_is_trusted
from werkzeug.wrappers import Response
from wtforms import IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional

from journal.errors import AuthError, JournalError
from journal.models import User
from journal.services import users
from journal.services.throttle import Throttle
from journal.web.context import csrf, get_db, get_settings, login_manager

bp = Blueprint("auth", __name__)

#: Open without sign-in; /api/openapi.json describes the API and holds no account's data.
PUBLIC_ENDPOINTS = {"auth.login", "auth.setup", "main.healthz", "static", "openapi.spec"}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
#: The only bodies an anonymous client may send are the login and set-up forms: a few short fields.
PUBLIC_BODY_BYTES = 64_000
PUBLIC_FORM_PARTS = 20


class LoginUser:
    """Flask-Login's view of a User row, signed in through one server-side session (or a token)."""

    is_active = True
    is_anonymous = False
    is_authenticated = True

    def __init__(self, user: User, session_id: str | None = None) -> None:
        self.user = user
        self.id = user.id
        self.name = user.name
        self.is_owner = user.is_owner
        self.session_id = session_id

    def get_id(self) -> str | None:
        """What the session cookie keeps: the session's id, checked against the database each request."""
        return self.session_id


def get_throttle() -> Throttle:
    """The app's sign-in throttle (its state is in the database, shared by every process)."""
    throttle: Throttle = current_app.extensions["journal.throttle"]
    return throttle


def host_is_trusted(host: str, trusted: tuple[str, ...]) -> bool:
    """IP literals and localhost always (DNS rebinding needs a name); other names only when listed."""
    name = host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return True
    if name.lower() == "localhost":
        return True
    return bool(trusted) and werkzeug_host_is_trusted(host, trusted)


def check_host() -> None:
    """Before every request: answer only on a trusted Host when the names are configured, and on /setup."""
    trusted = get_settings().trusted_hosts
    if (trusted or request.endpoint == "auth.setup") and not host_is_trusted(request.host, trusted):
        where = "the address of this machine (such as http://127.0.0.1:5000/)"
        abort(
            400,
            description=f"This journal does not answer on that name. Open it at {where}, "
            "or add the name to JOURNAL_TRUSTED_HOSTS.",
        )


def _sign_in(user: User) -> None:
    """Start a server-side session for the user and put its id in the cookie (the caller commits first)."""
    session = get_db()
    session_id = users.start_session(session, user)
    session.commit()
    login_user(LoginUser(user, session_id=session_id))


class SetupForm(FlaskForm):  # type: ignore[misc]
    """Create the owner account (and, for the owner, further accounts)."""

    name = StringField("User name", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=users.MIN_PASSWORD)])
    confirm = PasswordField("Repeat password", validators=[EqualTo("password", "The passwords differ.")])


class LoginForm(FlaskForm):  # type: ignore[misc]
    """Sign in."""

    name = StringField("User name", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class PasswordForm(FlaskForm):  # type: ignore[misc]
    """Change one's password (the current one is asked again)."""

    current = PasswordField("Current password", validators=[DataRequired()])
    password = PasswordField("New password", validators=[DataRequired(), Length(min=users.MIN_PASSWORD)])
    confirm = PasswordField("Repeat new password", validators=[EqualTo("password", "The passwords differ.")])


class TokenForm(FlaskForm):  # type: ignore[misc]
    """Create an API token."""

    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    expires_days = IntegerField(
        "Expires after (days, empty: never)",
        validators=[Optional(), NumberRange(min=1, max=users.MAX_TOKEN_DAYS)],
    )


@login_manager.user_loader
def _load_user(session_id: str) -> LoginUser | None:
    """The cookie names a server-side session (not a user id), so that ending it revokes the cookie."""
    session = get_db()
    user = users.user_for_session(session, session_id)
    if user is None:
        return None
    if session.dirty:
        session.commit()  # keeps last_seen_at
    return LoginUser(user, session_id=session_id)


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
            _sign_in(user)
            flash(f"Welcome, {user.name}. Your journal is ready: add your first photos.")
            return redirect(url_for("main.index"))
    return render_template("auth/setup.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Sign in with name and password (failed attempts impose a delay, per account and per network)."""
    session = get_db()
    if users.count_users(session) == 0:
        return redirect(url_for("auth.setup"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user, wait = _checked_login(form.name.data, form.password.data)
        if wait:
            form.password.errors.append(f"Too many failed attempts. Try again in {int(wait) + 1} s.")
            status = 429
        elif user is None:
            form.password.errors.append("Wrong user name or password.")
            status = 401
        else:
            _sign_in(user)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form), status


def _checked_login(name: str, password: str) -> tuple[User | None, float]:
    """(user, 0) for a right password, (None, 0) for a wrong one, (None, seconds) while throttled."""
    session, throttle, address = get_db(), get_throttle(), request.remote_addr
    wait = throttle.claim(session, name, address)
    session.commit()  # the attempt counts before the slow hash is checked
    if wait:
        return None, wait
    user = users.authenticate(session, name, password)
    if user is not None:
        throttle.succeeded(session, name, address)
    session.commit()
    return user, 0.0


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    """Sign out: this session is ended on the server, so a copy of its cookie stops working too."""
    if current_user.is_authenticated and current_user.session_id:
        users.end_session(get_db(), current_user.session_id)
        get_db().commit()
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


def _me() -> User:
    """The signed-in user's row (login_required has made sure there is one)."""
    user = get_db().get(User, current_user.id)
    assert user is not None
    return user


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> Any:
    """One's account: change the password (signs out every other session), sign out everywhere."""
    session, user = get_db(), _me()
    form = PasswordForm()
    status = 200
    if form.validate_on_submit():
        status = _change_password(user, form)
        if status == 200:
            flash("Password changed. Every other session was signed out.")
            return redirect(url_for("auth.account"))
    sessions = users.count_sessions(session, user)
    return render_template("auth/account.html", form=form, sessions=sessions), status


def _change_password(user: User, form: PasswordForm) -> int:
    """Check the current password (throttled like a login) and set the new one; the HTTP status."""
    session, throttle, address = get_db(), get_throttle(), request.remote_addr
    wait = throttle.claim(session, user.name, address)
    session.commit()
    if wait:
        form.current.errors.append(f"Too many failed attempts. Try again in {int(wait) + 1} s.")
        return 429
    try:
        users.change_password(
            session, user, form.current.data, form.password.data, keep_session=current_user.session_id
        )
    except AuthError as exc:
        session.commit()
        form.current.errors.append(str(exc).capitalize() + ".")
        return 400
    throttle.succeeded(session, user.name, address)
    session.commit()
    return 200


@bp.route("/account/sign-out-everywhere", methods=["POST"])
@login_required
def sign_out_everywhere() -> Any:
    """End every session of this account, this one included (tokens stay: revoke them on their page)."""
    session, user = get_db(), _me()
    users.end_sessions(session, user)
    session.commit()
    logout_user()
    flash("Signed out everywhere.")
    return redirect(url_for("auth.login"))


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def tokens() -> Any:
    """One's API tokens: list, create (the token is shown once, on this answer only), revoke."""
    session, user = get_db(), _me()
    form = TokenForm()
    new_token = None
    if form.validate_on_submit():
        new_token = users.create_token(session, user, form.name.data, expires_days=form.expires_days.data)
        session.commit()
        form = TokenForm(formdata=None)
    rows = users.list_tokens(session, user)
    page = render_template("auth/tokens.html", form=form, tokens=rows, new_token=new_token)
    response = current_app.make_response(page)
    response.headers["Cache-Control"] = "no-store"  # the new token must not stay in a cache
    return response


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int) -> Any:
    """Revoke one of one's tokens: it is refused from now on."""
    session, user = get_db(), _me()
    name = users.revoke_token(session, token_id, user=user)
    session.commit()
    flash(f"Token {name or token_id} revoked.")
    return redirect(url_for("auth.tokens"))
