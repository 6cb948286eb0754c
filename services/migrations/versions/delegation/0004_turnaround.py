"""Delegation: the turnaround read model (per-matter facts and their aggregates).

Filled by the `delegation-turnaround` consumer from the event stream; see
services/delegation/turnaround.py. To rebuild it from scratch, drop the rows of both
tables and the consumer's inbox rows, and delete the durable consumer: it replays the stream.

Revision ID: delegation_0004
Revises: delegation_0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "delegation_0004"
down_revision = "delegation_0003"
branch_labels = None
depends_on = None

_TOTAL_COUNTS = (
    "matters",
    "completed",
    "returned",
    "withdrawn",
    "overdue",
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


def _key_columns() -> list[sa.Column]:
    # "" in a rolled-up column, never NULL: the columns form the primary key.
    return [
        sa.Column("grain", sa.String(4), primary_key=True),
        sa.Column("entrusted", sa.String(32), primary_key=True),
        sa.Column("requesting", sa.String(32), primary_key=True),
        sa.Column("matter_kind", sa.String(48), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("cross_province", sa.Boolean(), primary_key=True),
    ]


def _province_columns() -> list[sa.Column]:
    return [
        sa.Column("entrusted_province", sa.String(8), nullable=False),
        sa.Column("requesting_province", sa.String(8), nullable=False),
    ]


def _aware(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
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
        sa.Column("overdue", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("urge_count", sa.Integer(), nullable=False, server_default="0"),
        _aware("escalated_at"),
        *[sa.Column(name, sa.BigInteger(), nullable=True) for name in _TOTAL_SECONDS],
    )
    op.create_index("ix_turnaround_fact_entrusted", "turnaround_fact", ["entrusted_court_id", "month"])
    op.create_table(
        "turnaround_aggregate",
        *_key_columns(),
        *_province_columns(),
        *[sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in _TOTAL_COUNTS],
        *[sa.Column(name, sa.BigInteger(), nullable=False, server_default="0") for name in _TOTAL_SECONDS],
        # The four duration histograms, packed and compressed (delegation.turnaround.packed_hits).
        sa.Column("histograms", sa.LargeBinary(), nullable=False, server_default=""),
    )
    op.create_index("ix_turnaround_aggregate_requesting", "turnaround_aggregate", ["grain", "requesting", "matter_kind", "month"])
    op.create_index("ix_turnaround_aggregate_month", "turnaround_aggregate", ["grain", "month"])


def downgrade() -> None:
    op.drop_table("turnaround_aggregate")
    op.drop_table("turnaround_fact")
