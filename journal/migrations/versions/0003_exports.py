"""exports: bundles, the posts in them, publications, outgoing e-mail and privacy zones

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 05:00:00

- exports: one row per written bundle (zip or .eml), inserted only once the file is in place; the
  batches of one `journal export` run share run_id. sha256 is indexed for `journal published`.
- export_posts: which posts (and which numbered part of a split post) each bundle holds.
- publications: a post was published, from a bundle (export_id) or by hand (export_id NULL).
- outgoing_messages: e-mail bundles; sent_at NULL means pending. message_id is unique, so a message
  is recorded once and `journal send` can skip what went out before.
- privacy_zones: circles inside which no position leaves the journal.
Times are naive UTC (the models' UTCDateTime), as in 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _create_privacy_zones()
    _create_exports()
    _create_export_posts()
    _create_outgoing_messages()
    _create_publications()


def _create_privacy_zones() -> None:
    op.create_table(
        "privacy_zones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_privacy_zones_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_zones")),
    )
    with op.batch_alter_table("privacy_zones", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_privacy_zones_user_id"), ["user_id"], unique=False)


def _create_exports() -> None:
    op.create_table(
        "exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("trip_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=4096), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("location_mode", sa.String(length=8), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("max_batch_bytes", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["trip_id"], ["trips.id"], name=op.f("fk_exports_trip_id_trips"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_exports_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
    )
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exports_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_exports_sha256"), ["sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_exports_trip_id"), ["trip_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_exports_user_id"), ["user_id"], unique=False)


def _create_export_posts() -> None:
    op.create_table(
        "export_posts",
        sa.Column("export_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"], ["exports.id"], name=op.f("fk_export_posts_export_id_exports"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_export_posts_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("export_id", "post_id", "part", name=op.f("pk_export_posts")),
    )
    with op.batch_alter_table("export_posts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_export_posts_post_id"), ["post_id"], unique=False)


def _create_outgoing_messages() -> None:
    op.create_table(
        "outgoing_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("export_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=4096), nullable=False),
        sa.Column("to", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=1024), nullable=True),
        sa.ForeignKeyConstraint(
            ["export_id"],
            ["exports.id"],
            name=op.f("fk_outgoing_messages_export_id_exports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outgoing_messages")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outgoing_messages_message_id")),
    )
    with op.batch_alter_table("outgoing_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outgoing_messages_export_id"), ["export_id"], unique=False)


def _create_publications() -> None:
    op.create_table(
        "publications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("export_id", sa.Integer(), nullable=True),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.ForeignKeyConstraint(
            ["export_id"], ["exports.id"], name=op.f("fk_publications_export_id_exports"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_publications_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publications")),
        sa.UniqueConstraint("post_id", "export_id", name=op.f("uq_publications_post_id")),
    )
    with op.batch_alter_table("publications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_publications_export_id"), ["export_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_publications_post_id"), ["post_id"], unique=False)


def downgrade() -> None:
    for table, indexes in (
        ("publications", ("ix_publications_post_id", "ix_publications_export_id")),
        ("outgoing_messages", ("ix_outgoing_messages_export_id",)),
        ("export_posts", ("ix_export_posts_post_id",)),
        ("exports", ("ix_exports_user_id", "ix_exports_trip_id", "ix_exports_sha256", "ix_exports_run_id")),
        ("privacy_zones", ("ix_privacy_zones_user_id",)),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for index in indexes:
                batch_op.drop_index(index)
        op.drop_table(table)
