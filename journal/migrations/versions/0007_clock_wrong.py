"""clock looks wrong: photos.clock_wrong, for capture times that cannot be right

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00

True when the capture time is before 1900 or more than a day after the photo was imported (a local
time without offset: for every offset in use). Trip spans, day counts and the story's day headings
leave such photos out; they keep their time and their place in the library order. The rule is
journal.clock.photo_clock_wrong; it is copied here as it stood, so this revision never changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_EARLIEST = datetime(1900, 1, 1)
_SLACK, _EAST, _WEST = timedelta(days=1), timedelta(hours=14), timedelta(hours=12)


def upgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clock_wrong", sa.Boolean(), server_default=sa.false(), nullable=False))
    photos = sa.table(
        "photos",
        sa.column("id", sa.Integer),
        sa.column("taken_at", sa.DateTime),
        sa.column("taken_at_utc", sa.DateTime),
        sa.column("imported_at", sa.DateTime),
        sa.column("clock_wrong", sa.Boolean),
    )
    bind = op.get_bind()
    timed = sa.or_(photos.c.taken_at.is_not(None), photos.c.taken_at_utc.is_not(None))
    wrong = [
        row.id
        for row in bind.execute(
            sa.select(photos.c.id, photos.c.taken_at, photos.c.taken_at_utc, photos.c.imported_at).where(
                timed
            )
        )
        if _wrong(row.taken_at_utc, row.taken_at, row.imported_at)
    ]
    for start in range(0, len(wrong), 500):
        bind.execute(
            photos.update().where(photos.c.id.in_(wrong[start : start + 500])).values(clock_wrong=True)
        )


def _wrong(utc: datetime | None, local: datetime | None, imported: datetime | None) -> bool:
    latest = _naive(imported or datetime.now(UTC)) + _SLACK
    if utc is not None:
        return _naive(utc) < _EARLIEST or _naive(utc) > latest
    if local is None:
        return False
    return local < _EARLIEST - _WEST or local > latest + _EAST


def _naive(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def downgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_column("clock_wrong")
