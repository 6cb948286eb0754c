"""Registry: reference data, enforcement cases and parties, outbox and inbox.

Revision ID: registry_0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from services.migrations.common import create_outbox_and_inbox

revision = "registry_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_and_inbox()
    op.create_table(
        "court",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("province", sa.String(4), nullable=False, server_default=""),
        sa.Column("division_code", sa.String(6), nullable=False, server_default=""),
        sa.Column("parent_id", sa.String(32), nullable=True),
        sa.Column("special_kind", sa.String(16), nullable=False, server_default=""),
    )
    op.create_table(
        "agency",
        sa.Column("id", sa.String(48), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("division_code", sa.String(6), nullable=False, server_default=""),
        sa.Column("scope", sa.String(16), nullable=False),
    )
    op.create_table(
        "enforcement_case",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("court_id", sa.String(32), nullable=False, index=True),
        sa.Column("case_number", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("court_code", sa.String(16), nullable=False),
        sa.Column("special_code", sa.String(4), nullable=False, server_default=""),
        sa.Column("type_code", sa.String(8), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("amount_owed_fen", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("request_id", sa.String(64), nullable=True, unique=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.UniqueConstraint("court_id", "year", "special_code", "type_code", "sequence", name="uq_case_number"),
    )
    op.create_index("ix_case_court_year_type", "enforcement_case", ["court_id", "year", "type_code"])
    op.create_table(
        "case_party",
        sa.Column("case_name", sa.String(200), sa.ForeignKey("enforcement_case.name"), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False, index=True),
        sa.Column("id_number", sa.String(32), nullable=False, server_default=""),
    )


def downgrade() -> None:
    for table in ("case_party", "enforcement_case", "agency", "court", "inbox", "outbox"):
        op.drop_table(table)
