"""Shared fixtures: real nats-servers on free ports, real SQLite files and PostgreSQL schemas.

PostgreSQL tests use TEST_DATABASE_URL (or DATABASE_URL when it names PostgreSQL) and skip
with a reason when neither is set or the server does not answer.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.plumbing.db import Database
from services.plumbing.idempotency import RequestKey, scoped_key
from services.plumbing.migrations import upgrade_to_head
from services.plumbing.nats_server import EmbeddedNatsServer

BACKENDS = ["sqlite", "postgres"]


@dataclass
class Clock:
    """Time a test moves: handlers and scanners read it instead of the wall clock, so "two days
    later" needs no waiting. Starts at `now` (the wall clock's by default)."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def postgres_url() -> str | None:
    for variable in ("TEST_DATABASE_URL", "DATABASE_URL"):
        url = os.environ.get(variable, "")
        if url.startswith("postgresql"):
            return url if "+asyncpg" in url else url.replace("postgresql://", "postgresql+asyncpg://", 1)
    return None


_pg_reachable: bool | None = None


async def _postgres_reachable(url: str) -> bool:
    global _pg_reachable
    if _pg_reachable is None:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            _pg_reachable = True
        except Exception:  # noqa: BLE001 - any failure: skip with a reason
            _pg_reachable = False
        finally:
            await engine.dispose()
    return _pg_reachable


async def require_postgres() -> str:
    url = postgres_url()
    if not url:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL or DATABASE_URL=postgresql://… (.ci/run sets it)")
    if not await _postgres_reachable(url):
        pytest.skip(f"PostgreSQL at {url} does not answer")
    return url


async def drop_schemas(url: str, prefix: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            rows = await conn.execute(
                text("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :p"), {"p": f"{prefix}%"}
            )
            for (schema,) in rows:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await engine.dispose()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNatsServer]:
    server = EmbeddedNatsServer(tmp_path / "nats").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
async def service_db_factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[object]:
    """Returns an async factory: `await make("registry")` → a migrated Database of that service."""
    backend: str = request.param
    url = await require_postgres() if backend == "postgres" else None
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    created: list[Database] = []

    async def make(service: str) -> Database:
        if url:
            db = Database(url, schema=f"{prefix}{service}")
        else:
            db = Database(f"sqlite+aiosqlite:///{tmp_path}/{service}.db")
        await db.create_schema()
        await upgrade_to_head(db, service)
        created.append(db)
        return db

    make.backend = backend  # type: ignore[attr-defined]
    make.url = url  # type: ignore[attr-defined]
    make.prefix = prefix  # type: ignore[attr-defined]
    yield make
    for db in created:
        await db.dispose()
    if url:
        await drop_schemas(url, prefix)


async def wait_for(condition, timeout: float = 10.0, interval: float = 0.02) -> None:  # type: ignore[no-untyped-def]
    """Polls an async or sync condition until true: waiting for an outcome, not for time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def request_key(request_id: str, caller: str = "courts/tests", body: bytes = b"") -> RequestKey:
    """What wrap_unary makes of a request_id, for tests that call handlers directly."""
    return scoped_key(caller, "/tests/Method", "", request_id, body)
