"""Schema creation and upgrades with Alembic, per service (its own version chain)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from services.plumbing.db import Database

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(service: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(MIGRATIONS / "versions" / service))
    return config


async def upgrade_to_head(db: Database, service: str) -> None:
    config = alembic_config(service)

    def upgrade(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with db.engine.begin() as conn:
        if not db.is_sqlite:  # a migration may rewrite a large table: not bounded by the calls' timeouts
            for setting in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
                await conn.exec_driver_sql(f"SET LOCAL {setting} = 0")
        await conn.run_sync(upgrade)
