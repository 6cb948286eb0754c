"""Assistance: at most one live control of a vehicle per court, enforced by the database.

The handler refuses a second control of a plate or VIN the court already controls; two
creates racing on different service replicas (PostgreSQL) could both pass that check.
These partial unique indexes make the loser's insert fail instead.

Revision ID: assistance_0007
Revises: assistance_0006
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "assistance_0007"
down_revision = "assistance_0006"
branch_labels = None
depends_on = None

LIVE = "state IN ('ACTIVE', 'SIGHTED', 'SEIZED')"  # assistance.vehicles.ControlState, not ENDED


def upgrade() -> None:
    for column in ("plate", "vin"):
        where = sa.text(f"{column} <> '' AND {LIVE}")
        op.create_index(
            f"ux_vehicle_control_live_{column}",
            "vehicle_control",
            ["court_id", column],
            unique=True,
            sqlite_where=where,
            postgresql_where=where,
        )


def downgrade() -> None:
    for column in ("plate", "vin"):
        op.drop_index(f"ux_vehicle_control_live_{column}", table_name="vehicle_control")
