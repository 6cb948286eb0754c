"""Registry: the hash-chained audit log of every event (services/audit).

Revision ID: registry_0003
Revises: registry_0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0003"
down_revision = "registry_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("stream_seq", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("event_id", sa.String(120), nullable=False, unique=True),
        sa.Column("event_type", sa.String(120), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("occurred_at", sa.String(40), nullable=False),
        sa.Column("source", sa.String(120), nullable=False),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_log")
