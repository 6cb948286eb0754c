"""Assistance: property query fan-out (网络查控): queries and per-agency replies (issue 4 item 5).

Revision ID: assistance_0005
Revises: assistance_0004
Create Date: 2026-11-27
"""

revision = "assistance_0005"
down_revision = "assistance_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: reserved in the chain so features can be built side by side


def downgrade() -> None:
    pass
