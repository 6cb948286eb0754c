"""Registry: request_log indexed by its entries' age, which request_id expiry deletes by
(ROGATORY_REQUEST_ID_RETENTION, services/plumbing/request_expiry.py).

Revision ID: registry_0005
Revises: registry_0004
Create Date: 2026-12-08
"""

from alembic import op

from services.migrations.common import index_request_log_age

revision = "registry_0005"
down_revision = "registry_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    index_request_log_age()


def downgrade() -> None:
    op.drop_index("ix_request_log_created_at", table_name="request_log")
