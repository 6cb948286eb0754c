"""The migrations and the table definitions describe one schema (issue 16, point 6).

Each service's database is upgraded to head with Alembic, as in production, and Alembic's
autogenerate comparison is run against the sqlmodel tables of the same names: the diff must
be empty, on SQLite and on PostgreSQL. A new migration that forgets a column the code reads, a
table edited without a migration, an index in one and not the other: the test names it.

What is compared (both backends run in CI: `.ci/run` runs the suite on SQLite and PostgreSQL):
- tables (one no migration creates, a migrated one the code lost), columns and nullability;
- types (`compare_type`): Text vs VARCHAR, BigInteger vs Integer, DateTime(timezone=True) vs
  String all show (SQLite reflects the declared type name, PostgreSQL its catalog type);
- indexes (name, columns in order, uniqueness) and foreign keys, on both; named and unique
  constraints too, but an unnamed UNIQUE (`Field(unique=True)`) only on PostgreSQL: SQLite
  reflects it without a name and Alembic skips those;
- server defaults, by value (`server_default_agrees`). Alembic's own comparison wants a server
  default on both sides, but the tables declare what the application writes as a Python
  default (sqlmodel's `Field(default=…)`, sent with every insert), and the migrations a server
  default for rows already there when a column was added. So when a table declares no server
  default, the database's default is evaluated by the database, as the column's type, and must
  equal the Python default: a migration that back-fills old rows with a value new rows never
  get is drift. A server default declared in a table is compared by Alembic itself;
- partial indexes' WHERE clauses, which autogenerate ignores: the declared tables are created
  in a scratch database of the same backend and both reflections must agree (PostgreSQL
  normalises the clause; SQLite keeps the text as written, so there it must match verbatim).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, MetaData, cast, inspect, literal_column, select
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from services.plumbing.db import Database
from services.plumbing.migrations import MIGRATIONS
from services.tools.launcher import MODULES

# Every process with a version chain of its own; its composition root imports all its tables.
SERVICES = sorted(p.name for p in (MIGRATIONS / "versions").iterdir() if p.is_dir() and not p.name.startswith("_"))


def declared_tables() -> MetaData:
    for service in SERVICES:
        importlib.import_module(MODULES[service])
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


def tables_of(conn: Connection, tables: MetaData) -> MetaData:
    """The declared tables this database has (a table no migration creates is reported apart)."""
    present = set(inspect(conn).get_table_names())
    mine = MetaData()
    for table in tables.tables.values():
        if table.name in present:
            table.to_metadata(mine)
    return mine


def schema_diff(conn: Connection, tables: MetaData) -> list[str]:
    """What autogenerate would write to make the database match `tables`, one line per change."""
    options = {"compare_type": True, "compare_server_default": server_default_agrees}
    context = MigrationContext.configure(conn, opts=options)
    return [describe(change) for entry in compare_metadata(context, tables) for change in _flat(entry)]


def partial_indexes(conn: Connection) -> dict[str, str]:
    """Each partial index's WHERE clause as the database reports it (PostgreSQL normalises it)."""
    inspector = inspect(conn)
    found = {}
    for table in inspector.get_table_names():
        for index in inspector.get_indexes(table):
            where = [v for k, v in index.get("dialect_options", {}).items() if k.endswith("_where")]
            if where:
                found[f"{table}.{index['name']}"] = " ".join(str(getattr(where[0], "text", where[0])).split())
    return found


async def declared_partial_indexes(make: Any, tmp_path: Path, service: str, tables: MetaData) -> dict[str, str]:
    """The same, from the tables created as declared in a scratch database of the same backend."""
    if make.url:
        db = Database(make.url, schema=f"{make.prefix}declared_{service}")  # dropped with the fixture's schemas
    else:
        db = Database(f"sqlite+aiosqlite:///{tmp_path}/declared_{service}.db")
    try:
        await db.create_schema()
        async with db.engine.begin() as conn:
            await conn.run_sync(tables.create_all)
            return await conn.run_sync(partial_indexes)
    finally:
        await db.dispose()


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


async def test_migrations_create_what_the_tables_declare(service_db_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tables = declared_tables()
    drift: list[str] = []
    migrated: set[str] = set()
    for service in SERVICES:
        db = await service_db_factory(service)
        async with db.read() as conn:
            migrated |= set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
            mine = await conn.run_sync(tables_of, tables)
            drift += [f"{service}: {line}" for line in await conn.run_sync(schema_diff, mine)]
            where = await conn.run_sync(partial_indexes)
        declared = await declared_partial_indexes(service_db_factory, tmp_path, service, mine)
        drift += [
            f"{service}: partial index {name}: migrations WHERE {where.get(name)!r}, tables WHERE {declared.get(name)!r}"
            for name in sorted(where.keys() | declared.keys())
            if where.get(name) != declared.get(name)
        ]
    drift += [f"no migration creates table {name}" for name in sorted(set(tables.tables) - migrated)]
    assert not drift, "\n" + "\n".join(drift)
