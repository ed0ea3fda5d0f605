"""token kinds, campaign scope and expiry

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:10:00
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

import include.store.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="submit"))
        batch.add_column(sa.Column("campaign_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("expires_at", include.store.models.UTCDateTime(timezone=True), nullable=True))
    # Tokens issued before kinds existed: the province's is the office's, and none lives on for ever.
    op.execute("UPDATE tokens SET kind = 'office' WHERE unit = 'province'")
    instant = include.store.models.UTCDateTime()
    tokens = sa.table(
        "tokens", sa.column("id", sa.Integer), sa.column("issued_at", instant), sa.column("expires_at", instant)
    )
    connection = op.get_bind()
    for token_id, issued_at in connection.execute(sa.select(tokens.c.id, tokens.c.issued_at)).all():
        connection.execute(
            tokens.update().where(tokens.c.id == token_id).values(expires_at=issued_at + dt.timedelta(days=365))
        )


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("campaign_id")
        batch.drop_column("kind")
