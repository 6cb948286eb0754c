"""Turnaround: the turnaround projector's own database (issue 18, point 1): the read model of
services/delegation/turnaround.py (per-matter facts and their aggregates, as delegation_0004,
0006 and 0008 left them), and the outbox, inbox and request log every service database has.

The projector's durable consumer is new (`turnaround-projector`), so on its first start it
replays the event stream from the beginning into this database: nothing is copied from the
delegation database, whose old turnaround tables stay as they were, no longer written. To
rebuild the read model, stop the projector, delete this database (or empty its tables) and
the durable consumer, and start it again.

Revision ID: turnaround_0001
Revises:
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

from services.migrations.common import create_outbox_and_inbox, create_request_log, index_request_log_age

revision = "turnaround_0001"
down_revision = None
branch_labels = None
depends_on = None

_TOTAL_COUNTS = (
    "matters",
    "completed",
    "returned",
    "withdrawn",
    "overdue",
    "open_overdue",
    "on_time",
    "on_time_known",
    "returned_not_within_jurisdiction",
    "returned_materials_incomplete",
    "returned_duplicate",
    "returned_other",
    "returned_unspecified",
    "ack_count",
    "complete_count",
)
_TOTAL_SECONDS = ("ack_seconds", "ack_working_seconds", "complete_seconds", "complete_working_seconds")


def _aware(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    create_outbox_and_inbox()
    create_request_log()
    index_request_log_age()
    op.create_table(
        "turnaround_fact",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("requesting_court_id", sa.String(32), nullable=False),
        sa.Column("entrusted_court_id", sa.String(32), nullable=False),
        sa.Column("requesting_province", sa.String(8), nullable=False),
        sa.Column("entrusted_province", sa.String(8), nullable=False),
        sa.Column("cross_province", sa.Boolean(), nullable=False),
        sa.Column("matter_kind", sa.String(48), nullable=False),
        sa.Column("month", sa.String(7), nullable=True),
        sa.Column("state", sa.String(32), nullable=False, server_default=""),
        _aware("state_at"),
        _aware("submitted_at"),
        _aware("acknowledged_at"),
        _aware("completed_at"),
        _aware("returned_at"),
        _aware("withdrawn_at"),
        sa.Column("return_reason", sa.String(48), nullable=False, server_default=""),
        _aware("finish_due_at"),
        _aware("finish_due_seen_at"),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("overdue_reported", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("overdue_now", sa.Boolean(), nullable=False, server_default=sa.false()),
        _aware("overdue_now_seen_at"),
        sa.Column("overdue", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("urge_count", sa.Integer(), nullable=False, server_default="0"),
        _aware("escalated_at"),
        *[sa.Column(name, sa.BigInteger(), nullable=True) for name in _TOTAL_SECONDS],
    )
    op.create_index("ix_turnaround_fact_entrusted", "turnaround_fact", ["entrusted_court_id", "month"])
    op.create_table(
        "turnaround_aggregate",
        # "" in a rolled-up key column, never NULL: the key columns form the primary key.
        sa.Column("grain", sa.String(4), primary_key=True),
        sa.Column("entrusted", sa.String(32), primary_key=True),
        sa.Column("requesting", sa.String(32), primary_key=True),
        sa.Column("matter_kind", sa.String(48), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("cross_province", sa.Boolean(), primary_key=True),
        sa.Column("entrusted_province", sa.String(8), nullable=False),
        sa.Column("requesting_province", sa.String(8), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in _TOTAL_COUNTS],
        *[sa.Column(name, sa.BigInteger(), nullable=False, server_default="0") for name in _TOTAL_SECONDS],
        # The four duration histograms as sparse entries (delegation.turnaround.encode_histograms).
        sa.Column("histograms", sa.LargeBinary(), nullable=False, server_default=""),
    )
    op.create_index("ix_turnaround_aggregate_requesting", "turnaround_aggregate", ["grain", "requesting", "matter_kind", "month"])
    op.create_index("ix_turnaround_aggregate_month", "turnaround_aggregate", ["grain", "month"])


def downgrade() -> None:
    op.drop_table("turnaround_aggregate")
    op.drop_table("turnaround_fact")
    op.drop_index("ix_request_log_created_at", table_name="request_log")
    op.drop_table("request_log")
    op.drop_table("inbox")
    op.drop_table("outbox")
