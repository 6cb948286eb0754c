"""Assistance: agency turnaround histograms stored as sparse entries instead of zlib streams
(the format of delegation_0006, which the two read models share).

Revision ID: assistance_0008
Revises: assistance_0007
Create Date: 2026-12-06
"""

from services.migrations.common import convert_histograms

revision = "assistance_0008"
down_revision = "assistance_0007"
branch_labels = None
depends_on = None

KEY = ("agency_id", "kind", "month")


def upgrade() -> None:
    convert_histograms("agency_turnaround_aggregate", KEY, to_sparse=True)


def downgrade() -> None:
    convert_histograms("agency_turnaround_aggregate", KEY, to_sparse=False)
