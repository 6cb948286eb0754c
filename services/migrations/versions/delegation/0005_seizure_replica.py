"""Delegation: the replica of seizures (from the assistance service's `seizure.*` events) and
the seizures handed over with each delegation (委托执行规定 art. 6).

Revision ID: delegation_0005
Revises: delegation_0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "delegation_0005"
down_revision = "delegation_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seizure_replica",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("court_id", sa.String(32), nullable=False),
        sa.Column("agency_id", sa.String(48), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "delegation_seizure_handover",
        sa.Column("delegation_name", sa.String(200), primary_key=True),
        sa.Column("seizure_name", sa.String(200), primary_key=True),
        # The term's end as the check saw it, so a later question "was it long enough?" has an answer.
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("delegation_seizure_handover")
    op.drop_table("seizure_replica")
