"""approvals: three outcomes (approved, rejected, timed out), the officer's reason and name

Revision ID: 0006
Revises: 0005_outbox_lease
Create Date: 2026-12-02 15:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005_outbox_lease"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("outcome", sa.String(length=16), nullable=False, server_default="approved"))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("decided_by_name", sa.String(length=120), nullable=True))
        batch.alter_column("decided_by", existing_type=sa.String(length=120), nullable=True)
    # Decisions recorded before outcomes existed. The old approval task recorded a timeout as a rejection by
    # "airflow:unknown" (a timeout has no responder): those were timeouts. Every other refusal was a rejection.
    op.execute(
        "UPDATE approvals SET outcome = 'timed_out', decided_by = NULL "
        "WHERE NOT approved AND decided_by = 'airflow:unknown'"
    )
    op.execute("UPDATE approvals SET outcome = 'rejected' WHERE NOT approved AND outcome <> 'timed_out'")


def downgrade() -> None:
    op.execute("UPDATE approvals SET decided_by = 'airflow:timeout' WHERE decided_by IS NULL")
    with op.batch_alter_table("approvals") as batch:
        batch.alter_column("decided_by", existing_type=sa.String(length=120), nullable=False)
        batch.drop_column("decided_by_name")
        batch.drop_column("reason")
        batch.drop_column("outcome")
