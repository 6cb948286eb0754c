"""Delegation: "open and overdue now" in the turnaround read model (issue 17, point 6).

`turnaround_fact.overdue_now` follows the deadlines of each matter's newest event; the
aggregates count `open_overdue`: matters not completed, returned or withdrawn whose
deadline stands overdue (GetTurnaroundStatistics' `open_overdue_count`).

Facts written before this revision never recorded their deadlines' current status: they
start from what they did record, "reported overdue, not finished and not waiting for the
requesting court's supplement" (whose overdue SUPPLEMENT deadline is not the entrusted
court's), which the matter's next event corrects (e.g. an acknowledgement that met its
deadline late, an extension). The
aggregates' new column is then summed from the facts with one correlated UPDATE, each grain
matching its key columns (court, province or "" per side; kind; month).

Revision ID: delegation_0008
Revises: delegation_0007
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "delegation_0008"
down_revision = "delegation_0007"
branch_labels = None
depends_on = None

_OPEN_OVERDUE_FACT = (
    "f.overdue_now AND f.completed_at IS NULL AND f.returned_at IS NULL AND f.withdrawn_at IS NULL AND f.month IS NOT NULL"
)


def _side(position: int, court: str, province: str) -> str:
    """A fact's key value at the aggregate row's level on one side (grain letter C, P or A)."""
    return (
        f"CASE substr(turnaround_aggregate.grain, {position}, 1) WHEN 'C' THEN f.{court} WHEN 'P' THEN f.{province} ELSE '' END"
    )


def upgrade() -> None:
    with op.batch_alter_table("turnaround_fact") as table:
        table.add_column(sa.Column("overdue_now", sa.Boolean(), nullable=False, server_default=sa.false()))
        table.add_column(sa.Column("overdue_now_seen_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("turnaround_aggregate") as table:
        table.add_column(sa.Column("open_overdue", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE turnaround_fact SET overdue_now = overdue_reported, overdue_now_seen_at = state_at"
        " WHERE overdue_reported AND completed_at IS NULL AND returned_at IS NULL AND withdrawn_at IS NULL"
        " AND state <> 'RETURNED_FOR_SUPPLEMENT'"
    )
    in_row = (
        "f.cross_province = turnaround_aggregate.cross_province"
        f" AND {_side(1, 'entrusted_court_id', 'entrusted_province')} = turnaround_aggregate.entrusted"
        f" AND {_side(2, 'requesting_court_id', 'requesting_province')} = turnaround_aggregate.requesting"
        " AND CASE substr(turnaround_aggregate.grain, 3, 1) WHEN 'K' THEN f.matter_kind ELSE '' END"
        " = turnaround_aggregate.matter_kind"
        " AND CASE substr(turnaround_aggregate.grain, 4, 1) WHEN 'M' THEN f.month ELSE '' END = turnaround_aggregate.month"
    )
    # Most stores hold no open overdue fact: then no row is touched.
    op.execute(
        f"UPDATE turnaround_aggregate SET open_overdue = (SELECT count(*) FROM turnaround_fact f WHERE {_OPEN_OVERDUE_FACT}"
        f" AND {in_row}) WHERE EXISTS (SELECT 1 FROM turnaround_fact f WHERE {_OPEN_OVERDUE_FACT})"
    )


def downgrade() -> None:
    with op.batch_alter_table("turnaround_aggregate") as table:
        table.drop_column("open_overdue")
    with op.batch_alter_table("turnaround_fact") as table:
        table.drop_column("overdue_now_seen_at")
        table.drop_column("overdue_now")
