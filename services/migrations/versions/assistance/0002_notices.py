"""Assistance: the assistance notices.

Revision ID: assistance_0002
Revises: assistance_0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "assistance_0002"
down_revision = "assistance_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assistance_notice",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("court_id", sa.String(32), nullable=False),
        sa.Column("agency_id", sa.String(48), nullable=False),
        sa.Column("case_name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.String(500), nullable=False, server_default=""),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True, unique=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("traceparent", sa.String(64), nullable=False, server_default=""),
        sa.Column("tracestate", sa.String(512), nullable=False, server_default=""),
    )
    # (party, seq): lists are keyset scans of one court's or one agency's notices.
    op.create_index("ix_notice_court", "assistance_notice", ["court_id", "seq"])
    op.create_index("ix_notice_agency", "assistance_notice", ["agency_id", "seq"])
    op.create_index("ix_notice_case", "assistance_notice", ["case_name"])


def downgrade() -> None:
    op.drop_table("assistance_notice")
