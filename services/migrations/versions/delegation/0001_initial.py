"""Delegation: outbox, inbox and the replica of registered cases.

Revision ID: delegation_0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op

from services.migrations.common import create_case_replica, create_outbox_and_inbox

revision = "delegation_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_and_inbox()
    create_case_replica()


def downgrade() -> None:
    for table in ("case_replica", "inbox", "outbox"):
        op.drop_table(table)
