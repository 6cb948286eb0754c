"""Registry: case state and closure (CloseCase).

Revision ID: registry_0002
Revises: registry_0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0002"
down_revision = "registry_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every existing case is open; batch mode so SQLite gets the same columns.
    with op.batch_alter_table("enforcement_case") as table:
        table.add_column(sa.Column("state", sa.String(16), nullable=False, server_default="OPEN"))
        table.add_column(sa.Column("close_time", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("close_outcome", sa.String(32), nullable=False, server_default=""))
        table.add_column(sa.Column("close_reason", sa.Text(), nullable=False, server_default=""))
        table.add_column(sa.Column("close_request_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enforcement_case") as table:
        for column in ("close_request_id", "close_reason", "close_outcome", "close_time", "state"):
            table.drop_column(column)
