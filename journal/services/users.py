"""Accounts, their signed-in sessions and API tokens."""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from journal.errors import AuthError, Conflict, InvalidInput, NotFound
from journal.models import ApiToken, User, UserSession, utcnow

logger = logging.getLogger(__name__)

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown names, so their logins take as long as known ones.

    Made on first use, not at import: hashing costs ~0.2 s, which every CLI command would pay.
    """
    return _hasher.hash("not a password")


MIN_PASSWORD = 8
#: A signed-in session unused for this long is forgotten (its cookie no longer works).
SESSION_IDLE = timedelta(days=30)
#: last_seen_at / last_used_at are written at most this often (not one write per request).
SEEN_EVERY = timedelta(minutes=1)
MAX_TOKEN_DAYS = 3650
#: Ids above this cannot exist (SQLite and PostgreSQL keys are signed 64-bit).
MAX_ID = 2**63 - 1


def count_users(session: Session) -> int:
    """How many accounts exist."""
    return session.scalar(select(func.count(User.id))) or 0


def create_user(session: Session, name: str, password: str) -> User:
    """Create an account; the first account becomes the owner."""
    name = name.strip()
    if not name or len(name) > 80 or any(ch.isspace() or not ch.isprintable() for ch in name):
        raise InvalidInput("a user name is 1-80 printable characters without spaces")
    _check_password(password)
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} exists already")
    user = User(name=name, password_hash=_hasher.hash(password), is_owner=count_users(session) == 0)
    session.add(user)
    session.flush()
    return user


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD} characters")


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The user when name and password match, else None."""
    user = session.scalar(select(User).where(User.name == name.strip()))
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is not None and _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def get_user(session: Session, name: str | None) -> User:
    """The named user, or the only account when no name is given."""
    if name is not None:
        user = session.scalar(select(User).where(User.name == name))
        if user is None:
            raise NotFound(f"no user named {name!r} (create one with: journal user add NAME)")
        return user
    users = session.scalars(select(User).limit(2)).all()
    if not users:
        raise NotFound("no account yet: create one with `journal user add NAME`")
    if len(users) > 1:
        raise InvalidInput("several accounts exist: say which with --user NAME")
    return users[0]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- signed-in sessions ---------------------------------------------------------------------------


def start_session(session: Session, user: User) -> str:
    """Record a new signed-in session and return its id (kept in the cookie; only its hash is stored)."""
    now = utcnow()
    session.execute(delete(UserSession).where(UserSession.last_seen_at < now - SESSION_IDLE))
    session_id = secrets.token_urlsafe(32)
    session.add(
        UserSession(user_id=user.id, token_hash=_token_hash(session_id), created_at=now, last_seen_at=now)
    )
    session.flush()
    return session_id


def user_for_session(session: Session, session_id: str) -> User | None:
    """The user of a signed-in session that was not ended (logout, password change) nor left idle."""
    row = session.scalar(select(UserSession).where(UserSession.token_hash == _token_hash(session_id)))
    now = utcnow()
    if row is None or now - row.last_seen_at > SESSION_IDLE:
        return None
    if now - row.last_seen_at > SEEN_EVERY:
        row.last_seen_at = now
    return session.get(User, row.user_id)


def end_session(session: Session, session_id: str) -> None:
    """Revoke one session (logout): its cookie stops working, even a copy of it."""
    session.execute(delete(UserSession).where(UserSession.token_hash == _token_hash(session_id)))


def end_sessions(session: Session, user: User, *, keep: str | None = None) -> int:
    """Revoke every session of the user but `keep`; returns how many were ended."""
    condition = UserSession.user_id == user.id
    if keep is not None:
        condition = condition & (UserSession.token_hash != _token_hash(keep))
    result = session.execute(delete(UserSession).where(condition))
    return int(result.rowcount)  # type: ignore[attr-defined]


def count_sessions(session: Session, user: User) -> int:
    """How many signed-in sessions the user has."""
    query = select(func.count(UserSession.id)).where(UserSession.user_id == user.id)
    return session.scalar(query) or 0


def set_password(session: Session, user: User, password: str, *, keep_session: str | None = None) -> int:
    """Set a new password and sign out every other session; returns how many were signed out."""
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    session.flush()
    return end_sessions(session, user, keep=keep_session)


def change_password(
    session: Session, user: User, current: str, new: str, *, keep_session: str | None = None
) -> int:
    """Like set_password, after checking the current password (AuthError when it is wrong)."""
    try:
        _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        raise AuthError("the current password is wrong") from None
    return set_password(session, user, new, keep_session=keep_session)


# --- API tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token (never the token itself)."""

    id: int
    user: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    expired: bool


def create_token(
    session: Session, user: User, label: str | None = None, *, expires_days: int | None = None
) -> str:
    """Make a new API token for the user; only its hash is stored, the token is returned once."""
    label = (label or "").strip() or None
    if label is not None and (len(label) > 200 or not label.isprintable()):
        raise InvalidInput("a token name is at most 200 printable characters")
    if expires_days is not None and not 1 <= expires_days <= MAX_TOKEN_DAYS:
        raise InvalidInput(f"a token expires after 1 to {MAX_TOKEN_DAYS} days (or never)")
    now = utcnow()
    expires_at = now + timedelta(days=expires_days) if expires_days is not None else None
    token = "jt_" + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_hash=_token_hash(token), label=label, expires_at=expires_at)
    session.add(row)
    session.flush()
    return token


def list_tokens(session: Session, user: User | None = None) -> list[TokenInfo]:
    """The tokens of one user (or of every user), oldest first."""
    query = select(ApiToken, User.name).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    now = utcnow()
    return [
        TokenInfo(
            id=row.id,
            user=name,
            name=row.label or "",
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            expired=row.expires_at is not None and row.expires_at <= now,
        )
        for row, name in session.execute(query)
    ]


def revoke_token(session: Session, token_id: int, *, user: User | None = None) -> str:
    """Delete a token (of that user, when given); returns its name. NotFound when there is none."""
    row = session.get(ApiToken, token_id) if 0 < token_id <= MAX_ID else None
    if row is None or (user is not None and row.user_id != user.id):
        raise NotFound(f"no API token with id {token_id}")
    name = row.label or ""
    session.delete(row)
    session.flush()
    return name


def user_for_token(session: Session, token: str) -> User | None:
    """The user a bearer token belongs to, or None (unknown, revoked or expired)."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    now = utcnow()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.last_used_at is None or now - row.last_used_at > SEEN_EVERY:
        row.last_used_at = now
    return session.get(User, row.user_id)
