"""tracks and tile sets: GPX tracks (drawn as routes, used to place photos) and offline tile sets

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 06:00:00

- tracks: one row per stored GPX file of a user (sha256 unique per user), its UTC time span for
  finding the photos it can place, and a simplified geometry (JSON segments of [lat, lon, unix
  time]) for drawing. The index on (user_id, started_at, ended_at) serves "which tracks cover this
  moment".
- tile_sets: offline raster tile sets registered with `journal tiles add`, shared by all accounts.
Times are naive UTC (the models' UTCDateTime), as in 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _create_tracks()
    _create_tile_sets()


def _create_tracks() -> None:
    op.create_table(
        "tracks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("trip_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("original_name", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("stored_path", sa.String(length=255), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("point_count", sa.Integer(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("geometry", sa.JSON(), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trip_id"], ["trips.id"], name=op.f("fk_tracks_trip_id_trips"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tracks_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracks")),
        sa.UniqueConstraint("user_id", "sha256", name=op.f("uq_tracks_user_id")),
    )
    with op.batch_alter_table("tracks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracks_trip_id"), ["trip_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tracks_user_id"), ["user_id"], unique=False)
        batch_op.create_index("ix_tracks_user_span", ["user_id", "started_at", "ended_at"], unique=False)


def _create_tile_sets() -> None:
    op.create_table(
        "tile_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=4096), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("tile_type", sa.String(length=8), nullable=False),
        sa.Column("min_zoom", sa.Integer(), nullable=False),
        sa.Column("max_zoom", sa.Integer(), nullable=False),
        sa.Column("west", sa.Float(), nullable=True),
        sa.Column("south", sa.Float(), nullable=True),
        sa.Column("east", sa.Float(), nullable=True),
        sa.Column("north", sa.Float(), nullable=True),
        sa.Column("attribution", sa.String(length=1024), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tile_sets")),
        sa.UniqueConstraint("path", name=op.f("uq_tile_sets_path")),
    )


def downgrade() -> None:
    op.drop_table("tile_sets")
    with op.batch_alter_table("tracks", schema=None) as batch_op:
        batch_op.drop_index("ix_tracks_user_span")
        batch_op.drop_index(batch_op.f("ix_tracks_user_id"))
        batch_op.drop_index(batch_op.f("ix_tracks_trip_id"))
    op.drop_table("tracks")
