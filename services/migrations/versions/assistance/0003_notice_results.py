"""Assistance: the notice lifecycle: receipts, typed results, seizure queue, objections, seizure terms (issue 4 items 1-3, 7).

Revision ID: assistance_0003
Revises: assistance_0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "assistance_0003"
down_revision = "assistance_0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("assistance_notice") as batch:
        batch.add_column(sa.Column("document", sa.Text(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("asset_key", sa.String(300), nullable=False, server_default=""))
        batch.add_column(sa.Column("queued", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("objection_due_at", TZ, nullable=True))
    # The seizure queue of one asset, and the scanner's watch of unanswered objections.
    op.create_index("ix_notice_queue", "assistance_notice", ["asset_key", "queued"])
    op.create_index("ix_notice_objection_due", "assistance_notice", ["state", "objection_due_at"])

    op.create_table(
        "assistance_notice_transition",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("notice_name", sa.String(200), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=False, server_default=""),
        sa.Column("to_state", sa.String(16), nullable=False, server_default=""),
        sa.Column("actor", sa.String(100), nullable=False, server_default=""),
        sa.Column("at", TZ, nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=False, server_default=""),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("trace_id", sa.String(32), nullable=False, server_default=""),
    )
    op.create_index("ix_notice_transition_notice", "assistance_notice_transition", ["notice_name", "seq"])

    op.create_table(
        "seizure",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("court_id", sa.String(32), nullable=False),
        sa.Column("agency_id", sa.String(48), nullable=False),
        sa.Column("case_name", sa.String(200), nullable=False),
        sa.Column("notice_name", sa.String(200), nullable=False),
        sa.Column("asset_key", sa.String(300), nullable=False),
        sa.Column("asset_class", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("update_time", TZ, nullable=False),
        sa.Column("document", sa.Text(), nullable=False, server_default="{}"),
    )
    op.create_index("ix_seizure_court", "seizure", ["court_id", "seq"])
    op.create_index("ix_seizure_agency", "seizure", ["agency_id", "seq"])
    op.create_index("ix_seizure_expiry", "seizure", ["state", "expires_at"])
    op.create_index("ix_seizure_asset", "seizure", ["asset_key"])

    op.create_table(
        "agency_turnaround_fact",
        sa.Column("notice_name", sa.String(200), primary_key=True),
        sa.Column("agency_id", sa.String(48), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("sent_at", TZ, nullable=True),
        sa.Column("received_at", TZ, nullable=True),
        sa.Column("result_at", TZ, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False, server_default=""),
        sa.Column("ack_seconds", sa.BigInteger(), nullable=True),
        sa.Column("ack_working_seconds", sa.BigInteger(), nullable=True),
        sa.Column("result_seconds", sa.BigInteger(), nullable=True),
        sa.Column("result_working_seconds", sa.BigInteger(), nullable=True),
    )
    counters = ("notices", "answered", "objected", "ack_count", "ack_seconds", "ack_working_seconds")
    counters += ("result_count", "result_seconds", "result_working_seconds")
    op.create_table(
        "agency_turnaround_aggregate",
        sa.Column("agency_id", sa.String(48), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        *(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0") for name in counters),
        sa.Column("histograms", sa.LargeBinary(), nullable=False, server_default=sa.text("''")),
    )


def downgrade() -> None:
    for table in ("agency_turnaround_aggregate", "agency_turnaround_fact", "seizure", "assistance_notice_transition"):
        op.drop_table(table)
    op.drop_index("ix_notice_objection_due", "assistance_notice")
    op.drop_index("ix_notice_queue", "assistance_notice")
    with op.batch_alter_table("assistance_notice") as batch:
        for column in ("objection_due_at", "queued", "asset_key", "document"):
            batch.drop_column(column)
