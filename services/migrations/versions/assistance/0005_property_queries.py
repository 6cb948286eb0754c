"""Assistance: property query fan-out (网络查控): queries and per-agency replies (issue 4 item 5).

Revision ID: assistance_0005
Revises: assistance_0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "assistance_0005"
down_revision = "assistance_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "property_query",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("court_id", sa.String(32), nullable=False),
        sa.Column("case_name", sa.String(200), nullable=False),
        sa.Column("debtor_name", sa.String(200), nullable=False),
        sa.Column("debtor_kind", sa.String(16), nullable=False, server_default=""),
        sa.Column("debtor_id_masked", sa.String(32), nullable=False, server_default=""),
        sa.Column("categories", sa.String(300), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("complete_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True, unique=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("traceparent", sa.String(64), nullable=False, server_default=""),
        sa.Column("tracestate", sa.String(512), nullable=False, server_default=""),
    )
    op.create_index("ix_property_query_court", "property_query", ["court_id", "seq"])
    op.create_index("ix_property_query_running", "property_query", ["state", "deadline_time"])
    op.create_table(
        "property_query_agency",
        sa.Column("query_id", sa.String(36), primary_key=True),
        sa.Column("agency_id", sa.String(48), primary_key=True),
        sa.Column("categories", sa.String(300), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reply_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("items", sa.LargeBinary(), nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("value_fen", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("failure_reason", sa.String(500), nullable=False, server_default=""),
        # When the request reached JetStream: the agency rows are the fan-out's outbox.
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_property_query_agency_unsent", "property_query_agency", ["sent_at", "query_id"])


def downgrade() -> None:
    op.drop_table("property_query_agency")
    op.drop_table("property_query")
