"""home identity: which data home a database belongs to, and how far its writers got

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:00:00

- home_identity: one row (id 1) with the data home's id and a generation that every writer raises;
  the data home keeps the same pair in its .journal-home file. A database with no row, another id
  or a lower generation (a mistyped JOURNAL_DATABASE_URL, a restored older copy) is refused by writers
  instead of having the files it does not know swept away.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "home_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("home_id", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_home_identity")),
    )


def downgrade() -> None:
    op.drop_table("home_identity")
