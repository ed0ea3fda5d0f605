"""workload (工作台账) and daily entries: a unit's households to do this year, and its trajectory

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import include.store.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workload",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("household", sa.String(length=64), nullable=False),
        sa.Column("loaded_at", include.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workload")),
        sa.UniqueConstraint("campaign_id", "unit", "household", name=op.f("uq_workload_campaign_id")),
    )
    with op.batch_alter_table("workload", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workload_campaign_id"), ["campaign_id"], unique=False)
    op.create_table(
        "daily_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("on_list", sa.Integer(), nullable=True),
        sa.Column("recorded_at", include.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_entries")),
        sa.UniqueConstraint("campaign_id", "unit", "day", name=op.f("uq_daily_entries_campaign_id")),
    )
    with op.batch_alter_table("daily_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_daily_entries_campaign_id"), ["campaign_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("daily_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_daily_entries_campaign_id"))
    op.drop_table("daily_entries")
    with op.batch_alter_table("workload", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workload_campaign_id"))
    op.drop_table("workload")
