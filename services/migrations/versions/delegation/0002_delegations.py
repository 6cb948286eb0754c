"""Delegation: the delegated matters.

Revision ID: delegation_0002
Revises: delegation_0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "delegation_0002"
down_revision = "delegation_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delegation",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("requesting_court_id", sa.String(32), nullable=False),
        sa.Column("entrusted_court_id", sa.String(32), nullable=False),
        sa.Column("case_name", sa.String(200), nullable=False),
        sa.Column("matter_kind", sa.String(48), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True, unique=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("traceparent", sa.String(64), nullable=False, server_default=""),
        sa.Column("tracestate", sa.String(512), nullable=False, server_default=""),
    )
    # (court, seq): lists are keyset scans of one court's sent or received delegations.
    op.create_index("ix_delegation_requesting", "delegation", ["requesting_court_id", "seq"])
    op.create_index("ix_delegation_entrusted", "delegation", ["entrusted_court_id", "seq"])
    op.create_index("ix_delegation_case", "delegation", ["case_name"])


def downgrade() -> None:
    op.drop_table("delegation")
