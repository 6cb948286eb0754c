"""Database set-up: SQLite in WAL mode, PostgreSQL schema per service, repeatable migrations."""

from __future__ import annotations

import contextvars
import threading

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from services.plumbing.migrations import upgrade_to_head

EXPECTED_TABLES = {
    "registry": {"court", "agency", "enforcement_case", "case_party", "outbox", "inbox"},
    "delegation": {"outbox", "inbox", "case_replica"},
    "assistance": {"outbox", "inbox", "case_replica"},
}


async def test_every_service_migrates_to_head_twice(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    for service, expected in EXPECTED_TABLES.items():
        db = await service_db_factory(service)
        await upgrade_to_head(db, service)  # a restart finds the schema at head and changes nothing
        async with db.read() as conn:
            tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        assert expected <= tables, (service, tables)


async def test_sqlite_runs_in_wal_mode(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    db = await service_db_factory("registry")
    if not db.is_sqlite:
        return
    async with db.read() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1


async def test_postgres_keeps_each_service_in_its_own_schema(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    registry = await service_db_factory("registry")
    delegation = await service_db_factory("delegation")
    if registry.is_sqlite:
        assert registry.url.database != delegation.url.database  # one file per service
        return
    async with registry.read() as conn:
        schema = (await conn.execute(text("SELECT current_schema()"))).scalar()
    assert schema == registry.schema and schema.endswith("registry")
    async with delegation.read() as conn:
        tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    assert "enforcement_case" not in tables


async def test_sqlite_wal_is_checkpointed_outside_the_commits(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    """SQLite's own checkpoint waits for 10,000 pages; Database.checkpoint copies the WAL into
    the database file without a writer paying for it (the service host runs it every second)."""
    db = await service_db_factory("registry")
    if not db.is_sqlite:
        assert await db.checkpoint() == (0, 0, 0)  # PostgreSQL checkpoints itself
        return
    async with db.read() as conn:
        assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 10_000
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE scratch (n INTEGER, padding TEXT)"))
        for n in range(200):
            await conn.execute(text("INSERT INTO scratch VALUES (:n, :padding)"), {"n": n, "padding": "x" * 500})
    busy, wal_pages, checkpointed = await db.checkpoint()
    assert busy == 0 and wal_pages > 20 and checkpointed == wal_pages
    assert await db.checkpoint() == (0, wal_pages, wal_pages)  # nothing new: the same WAL, already copied


CALLER = contextvars.ContextVar[str]("caller")


async def test_run_transaction_commits_the_whole_work_or_nothing(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    db = await service_db_factory("assistance")
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE scratch (n INTEGER)"))

    def insert(*numbers: int, fail: bool = False):  # type: ignore[no-untyped-def]
        def work(conn: Connection) -> str:
            for n in numbers:
                conn.execute(text("INSERT INTO scratch VALUES (:n)"), {"n": n})
            if fail:
                raise RuntimeError("the batch is refused half-way")
            return threading.current_thread().name

        return work

    thread = await db.run_transaction(insert(1, 2))
    with pytest.raises(RuntimeError):
        await db.run_transaction(insert(3, 4, fail=True))
    async with db.read() as conn:
        assert [n for (n,) in await conn.execute(text("SELECT n FROM scratch ORDER BY n"))] == [1, 2]
    # SQLite: one hop to the writer thread for the whole transaction; PostgreSQL: the loop's greenlet
    assert thread.startswith("sqlite-writer") if db.is_sqlite else thread == threading.current_thread().name


async def test_run_transaction_sees_the_callers_context(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    """The trace context (a contextvar) reaches the work, so outbox rows written there carry it."""
    db = await service_db_factory("assistance")
    CALLER.set("courts/gd0112")
    assert await db.run_transaction(lambda _conn: CALLER.get("")) == "courts/gd0112"


async def test_run_read_sees_committed_rows_while_a_writer_holds_the_lock(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    db = await service_db_factory("assistance")
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE scratch (n INTEGER)"))
        await conn.execute(text("INSERT INTO scratch VALUES (1)"))

    def read(conn: Connection) -> tuple[list[int], str]:
        return [n for (n,) in conn.execute(text("SELECT n FROM scratch"))], threading.current_thread().name

    async with db.transaction() as writer:  # uncommitted: the read must neither wait nor see it
        await writer.execute(text("INSERT INTO scratch VALUES (2)"))
        numbers, thread = await db.run_read(read)
    assert numbers == [1]
    assert thread.startswith("sqlite-reader") if db.is_sqlite else thread == threading.current_thread().name
    assert (await db.run_read(read))[0] == [1, 2]
