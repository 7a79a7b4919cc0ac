"""trip track policy: each trip keeps the user's rule for placing its photos on GPS tracks

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00

- trips.track_max_gap_s: the longest time between two track points a photo is placed across
  (None: the settings' default, 5 minutes);
- trips.track_nearest_s: how close to a track point a photo outside the track (or beside a longer
  gap) may be to take that point's position (None: the settings' default, off).
Kept on the trip so that a later clock fix places the photos again under the same rule.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trips", schema=None) as batch_op:
        batch_op.add_column(sa.Column("track_max_gap_s", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("track_nearest_s", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trips", schema=None) as batch_op:
        batch_op.drop_column("track_nearest_s")
        batch_op.drop_column("track_max_gap_s")
