"""Assistance: the request log, request ids scoped to (caller, method, parent) (issue 15, point 1).

The resources' own request_id columns are dropped (the documents' applied_requests lists are
no longer read): a retry that spans the upgrade is a new request.

Revision ID: assistance_0009
Revises: assistance_0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from services.migrations.common import create_request_log

revision = "assistance_0009"
down_revision = "assistance_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_request_log()
    with op.batch_alter_table("assistance_notice") as table:
        table.drop_column("request_id")
    with op.batch_alter_table("vehicle_control") as table:
        table.drop_column("request_id")
    with op.batch_alter_table("property_query") as table:
        table.drop_column("request_id")


def downgrade() -> None:
    with op.batch_alter_table("assistance_notice") as table:
        table.add_column(sa.Column("request_id", sa.String(64), nullable=True))
    with op.batch_alter_table("vehicle_control") as table:
        table.add_column(sa.Column("request_id", sa.String(64), nullable=True))
    with op.batch_alter_table("property_query") as table:
        table.add_column(sa.Column("request_id", sa.String(64), nullable=True))
    op.drop_table("request_log")
