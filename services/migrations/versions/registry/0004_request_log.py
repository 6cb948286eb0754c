"""Registry: the request log, request ids scoped to (caller, method, parent) (issue 15, point 1).

The resources' own request_id columns are dropped (the documents' applied_requests lists are
no longer read): a retry that spans the upgrade is a new request.

Revision ID: registry_0004
Revises: registry_0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from services.migrations.common import create_request_log

revision = "registry_0004"
down_revision = "registry_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_request_log()
    with op.batch_alter_table("enforcement_case") as table:
        table.drop_column("request_id")
        table.drop_column("close_request_id")


def downgrade() -> None:
    with op.batch_alter_table("enforcement_case") as table:
        table.add_column(sa.Column("request_id", sa.String(64), nullable=True))
        table.add_column(sa.Column("close_request_id", sa.String(64), nullable=True))
    op.drop_table("request_log")
