"""Accounts and API tokens."""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from journal.errors import Conflict, InvalidInput, NotFound
from journal.models import ApiToken, User, utcnow

logger = logging.getLogger(__name__)

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown names, so their logins take as long as known ones.

    Made on first use, not at import: hashing costs ~0.2 s, which every CLI command would pay.
    """
    return _hasher.hash("not a password")


MIN_PASSWORD = 8


def count_users(session: Session) -> int:
    """How many accounts exist."""
    return session.scalar(select(func.count(User.id))) or 0


def create_user(session: Session, name: str, password: str) -> User:
    """Create an account; the first account becomes the owner."""
    name = name.strip()
    if not name or len(name) > 80 or any(ch.isspace() or not ch.isprintable() for ch in name):
        raise InvalidInput("a user name is 1-80 printable characters without spaces")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD} characters")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} exists already")
    user = User(name=name, password_hash=_hasher.hash(password), is_owner=count_users(session) == 0)
    session.add(user)
    session.flush()
    return user


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


def create_token(session: Session, user: User, label: str | None = None) -> str:
    """Make a new API token for the user; only its hash is stored, the token is returned once."""
    token = "jt_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_token_hash(token), label=label))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """The user a bearer token belongs to, or None."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None:
        return None
    row.last_used_at = utcnow()
    return session.get(User, row.user_id)
