"""Assistance: the notice lifecycle: receipts, typed results, seizure queue, objections, seizure terms (issue 4 items 1-3, 7).

Revision ID: assistance_0003
Revises: assistance_0002
Create Date: 2026-11-27
"""

revision = "assistance_0003"
down_revision = "assistance_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: reserved in the chain so features can be built side by side


def downgrade() -> None:
    pass
