"""Assistance: the vehicle watch list (布控): controls, sightings, seizures, post-seizure steps (issue 4 item 4).

Revision ID: assistance_0004
Revises: assistance_0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "assistance_0004"
down_revision = "assistance_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vehicle_control",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("court_id", sa.String(32), nullable=False),
        sa.Column("case_name", sa.String(200), nullable=False),
        sa.Column("plate", sa.String(16), nullable=False, server_default=""),
        sa.Column("vin", sa.String(17), nullable=False, server_default=""),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True, unique=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("target_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("target_status", sa.String(16), nullable=False, server_default=""),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("traceparent", sa.String(64), nullable=False, server_default=""),
        sa.Column("tracestate", sa.String(512), nullable=False, server_default=""),
        sa.Column("document", sa.Text(), nullable=False, server_default="{}"),
    )
    op.create_index("ix_vehicle_control_court", "vehicle_control", ["court_id", "seq"])
    op.create_index("ix_vehicle_control_case", "vehicle_control", ["case_name"])
    op.create_index("ix_vehicle_control_plate", "vehicle_control", ["plate"])
    op.create_index("ix_vehicle_control_vin", "vehicle_control", ["vin"])
    op.create_index("ix_vehicle_control_expiry", "vehicle_control", ["state", "expire_time"])
    op.create_index("ix_vehicle_control_target", "vehicle_control", ["target_status", "target_due"])
    op.create_table(
        "vehicle_control_agency",
        sa.Column("agency_id", sa.String(48), primary_key=True),
        sa.Column("control_seq", sa.Integer(), primary_key=True),
        sa.Column("control_name", sa.String(200), nullable=False),
    )
    op.create_table(
        "vehicle_closed_case",
        sa.Column("case_name", sa.String(200), primary_key=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("vehicle_closed_case")
    op.drop_table("vehicle_control_agency")
    op.drop_table("vehicle_control")
