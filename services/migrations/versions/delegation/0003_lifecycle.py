"""Delegation: the whole matter as a document, its transitions (timeline) and its deadlines.

Revision ID: delegation_0003
Revises: delegation_0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "delegation_0003"
down_revision = "delegation_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delegation") as table:
        # Details, attachments, officers, completion… as JSON: read and written whole with
        # the row; only what is filtered on has a column of its own.
        table.add_column(sa.Column("document", sa.Text(), nullable=False, server_default="{}"))
        table.add_column(sa.Column("urge_count", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_delegation_state", "delegation", ["state"])
    op.create_table(
        "delegation_transition",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("delegation_name", sa.String(200), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=False, server_default=""),
        sa.Column("to_state", sa.String(32), nullable=False, server_default=""),
        sa.Column("actor_court_id", sa.String(32), nullable=False, server_default=""),
        sa.Column("officer", sa.String(200), nullable=False, server_default=""),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=False, server_default=""),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("trace_id", sa.String(32), nullable=False, server_default=""),
    )
    op.create_index("ix_transition_delegation", "delegation_transition", ["delegation_name", "seq"])
    op.create_table(
        "delegation_deadline",
        sa.Column("delegation_name", sa.String(200), primary_key=True),
        sa.Column("step", sa.String(24), primary_key=True),
        sa.Column("requesting_court_id", sa.String(32), nullable=False),
        sa.Column("entrusted_court_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # OPEN, MET, MET_LATE, OVERDUE, CANCELLED
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("rule", sa.Text(), nullable=False),  # JSON: kind, step, amount, unit, source, province
        sa.Column("extensions", sa.Text(), nullable=False, server_default="[]"),  # JSON list
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True),  # "due soon" sent
        sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True),  # marked overdue
        sa.Column("last_urged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),  # met or cancelled
    )
    # The scanner's query: open deadlines by due time.
    op.create_index("ix_deadline_open_due", "delegation_deadline", ["status", "due_at"])
    op.create_index("ix_deadline_entrusted", "delegation_deadline", ["entrusted_court_id", "status"])


def downgrade() -> None:
    op.drop_table("delegation_deadline")
    op.drop_table("delegation_transition")
    op.drop_index("ix_delegation_state", "delegation")
    with op.batch_alter_table("delegation") as table:
        table.drop_column("escalated_at")
        table.drop_column("urge_count")
        table.drop_column("document")
