"""One user's rows: every lookup by id goes through here, so somebody else's row is simply "not found"."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session

from journal.errors import NotFound
from journal.models import UserOwned

Owned = TypeVar("Owned", bound=UserOwned)


def owned(session: Session, model: type[Owned], row_id: int, user_id: int, what: str) -> Owned:
    """The user's row of `model` with that id; NotFound ("no such <what>") for a missing id or
    somebody else's row, never a hint that the row exists."""
    row = session.get(model, row_id)
    if row is None or row.user_id != user_id:
        raise NotFound(f"no such {what}")
    return row
