"""library order: photos.sort_at and the indexes of the library grid

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 04:00:00

`sort_at` is taken_at_utc (naive UTC) when known, else the local taken_at, else NULL. The library
grid and a photo's previous/next are keyset-paginated on (user_id, sort_at, id), so photos from a
camera with no offset and no GPS sort by their local time instead of falling to the end.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sort_at", sa.DateTime(), nullable=True))
    # Both columns hold naive UTC/local times in the same storage format, so COALESCE keeps the order.
    op.execute("UPDATE photos SET sort_at = COALESCE(taken_at_utc, taken_at)")
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.create_index("ix_photos_user_sort", ["user_id", "sort_at"], unique=False)
        # "No position" (lat IS NULL) pages and counts as index range scans.
        batch_op.create_index("ix_photos_user_lat_sort", ["user_id", "lat", "sort_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_index("ix_photos_user_lat_sort")
        batch_op.drop_index("ix_photos_user_sort")
        batch_op.drop_column("sort_at")
