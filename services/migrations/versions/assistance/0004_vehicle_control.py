"""Assistance: the vehicle watch list (布控): controls, sightings, seizures, post-seizure steps (issue 4 item 4).

Revision ID: assistance_0004
Revises: assistance_0003
Create Date: 2026-11-27
"""

revision = "assistance_0004"
down_revision = "assistance_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: reserved in the chain so features can be built side by side


def downgrade() -> None:
    pass
