"""Assistance: drop the property-query agencies' `sent_at` index.

The dispatcher finds requests to send again from the running queries (their own index),
not by scanning agencies by `sent_at`; the index only slowed every fan-out's 1,000-row insert.

Revision ID: assistance_0006
Revises: assistance_0005
Create Date: 2026-11-27
"""

from alembic import op

revision = "assistance_0006"
down_revision = "assistance_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_property_query_agency_unsent", table_name="property_query_agency")


def downgrade() -> None:
    op.create_index("ix_property_query_agency_unsent", "property_query_agency", ["sent_at", "query_id"])
