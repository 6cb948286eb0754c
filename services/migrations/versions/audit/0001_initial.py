"""Audit: the audit process's own database (issue 18, point 1): the hash-chained audit log,
and the outbox, inbox and request log every service database has.

The chain was kept in the registry's database before (registry_0003), where its table stays
as it was, no longer written. A deployment that has entries there copies them into this
database before the audit process first starts (README, "Upgrading: the audit log's own
database"); otherwise the appender finds the last anchored head missing and refuses to
extend the chain (health `rogatory.audit` NOT_SERVING, an AuditChainBroken alert).

Revision ID: audit_0001
Revises:
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

from services.migrations.common import create_outbox_and_inbox, create_request_log, index_request_log_age

revision = "audit_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_and_inbox()
    create_request_log()
    index_request_log_age()
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
    op.drop_index("ix_request_log_created_at", table_name="request_log")
    op.drop_table("request_log")
    op.drop_table("inbox")
    op.drop_table("outbox")
