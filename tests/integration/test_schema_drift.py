"""The migrations and the table definitions describe one schema (issue 16, point 6).

Each service's database is upgraded to head with Alembic, as in production, and Alembic's
autogenerate comparison is run against the sqlmodel tables of the same names: the diff must
be empty, on SQLite and on PostgreSQL. A new migration that forgets a column the code reads, a
table edited without a migration, an index in one and not the other: the test names it.

What is compared, on both backends (what Alembic reflects reliably there):
- tables (one without a migration, a migrated one the code lost), columns and nullability;
- types (`compare_type`): Text vs VARCHAR, BigInteger vs Integer, DateTime(timezone=True) vs
  String all show (SQLite reflects the declared type name, PostgreSQL its catalog type);
- indexes and unique constraints (names, columns, uniqueness), foreign keys;
- server defaults, by value (`server_default_agrees` below). Alembic's own comparison needs a
  server default on both sides, but the tables declare what the application writes as a
  Python default (sqlmodel's `Field(default=…)`, sent with every insert), and the migrations
  a server default for rows already there when a column was added. So when the table declares
  no server default, the database's default is evaluated by the database and must equal the
  Python default: a migration that back-fills existing rows with a value new rows never get
  is drift. A server default declared in the table is compared by Alembic itself.
Not compared: a partial index's WHERE clause (Alembic does not reflect it on SQLite and does
not compare it on either backend; migration assistance_0007 and the table state it side by side).
"""

from __future__ import annotations

import importlib
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, MetaData, cast, inspect, literal_column, select
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from services.plumbing.migrations import MIGRATIONS

# Every service with a version chain of its own; its composition root imports all its tables.
SERVICES = sorted(p.name for p in (MIGRATIONS / "versions").iterdir() if p.is_dir() and not p.name.startswith("_"))


def declared_tables() -> MetaData:
    for service in SERVICES:
        importlib.import_module(f"services.{service}.main")
    return SQLModel.metadata


def server_default_agrees(
    context: MigrationContext,
    inspected: Column[Any],
    declared: Column[Any],
    inspected_default: str | None,
    declared_default: Any,
    rendered_declared_default: str | None,
) -> bool | None:
    """Alembic's hook: True is a difference, False none, None leaves it to Alembic."""
    if declared.server_default is not None or inspected.autoincrement is True:
        return None  # Alembic compares declared server defaults, and knows PostgreSQL's serial nextval()
    if inspected_default is None:
        return False
    python_default = declared.default.arg if declared.default is not None and declared.default.is_scalar else None
    # The database's own reading of its default, as the column's type (SQLite stores DEFAULT '1' as 1).
    stored = context.bind.execute(select(cast(literal_column(inspected_default), inspected.type))).scalar()
    return stored != python_default


def schema_diff(conn: Connection, tables: MetaData) -> list[str]:
    """What autogenerate would write to make the database match `tables`, one line per change."""
    present = set(inspect(conn).get_table_names())
    service_tables = MetaData()
    for table in tables.tables.values():
        if table.name in present:
            table.to_metadata(service_tables)
    options = {"compare_type": True, "compare_server_default": server_default_agrees}
    context = MigrationContext.configure(conn, opts=options)
    return [describe(change) for entry in compare_metadata(context, service_tables) for change in _flat(entry)]


def _flat(entry: Any) -> list[tuple[Any, ...]]:
    return entry if isinstance(entry, list) else [entry]  # column changes come grouped per column


def describe(change: tuple[Any, ...]) -> str:
    kind = change[0]
    if kind in ("add_table", "remove_table"):
        return f"{kind} {change[1].name}"
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        item = change[1]
        return f"{kind} {item.table.name}.{item.name} ({', '.join(c.name for c in item.columns)})"
    if kind in ("add_column", "remove_column"):
        return f"{kind} {change[2]}.{change[3].name}"
    if kind.startswith("modify_"):  # (kind, schema, table, column, existing, database's, tables')
        return f"{kind} {change[2]}.{change[3]}: migrations {_shown(change[5])}, tables {_shown(change[6])}"
    return repr(change)


def _shown(value: Any) -> str:
    arg = getattr(value, "arg", value)  # a server default's clause
    return repr(getattr(arg, "text", arg))


async def test_migrations_create_what_the_tables_declare(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    tables = declared_tables()
    drift: list[str] = []
    migrated: set[str] = set()
    for service in SERVICES:
        db = await service_db_factory(service)
        async with db.read() as conn:
            migrated |= set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
            drift += [f"{service}: {line}" for line in await conn.run_sync(schema_diff, tables)]
    drift += [f"no migration creates table {name}" for name in sorted(set(tables.tables) - migrated)]
    assert not drift, "\n" + "\n".join(drift)
