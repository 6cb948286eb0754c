"""request_ids are forgotten after the retention window (AIP-155, ROGATORY_REQUEST_ID_RETENTION):
a request_log entry older than the window is deleted, in batches, by a background worker of
every service, and the same request_id then creates anew; a younger one still replays. On
SQLite and PostgreSQL, on every service's request_log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from services.plumbing.config import Settings
from services.plumbing.db import Database
from services.plumbing.host import ServiceHost
from services.plumbing.idempotency import REQUEST_LOG, RequestKey
from services.plumbing.nats_server import EmbeddedNatsServer
from services.plumbing.request_expiry import EXPIRY_WORKER, expire_request_ids
from services.plumbing.unit_of_work import Tx, Writer
from services.registry.main import wire as wire_registry
from tests.conftest import drop_schemas, request_key, require_postgres

WEEK = timedelta(days=7)
SERVICES = ("registry", "delegation", "assistance", "audit", "turnaround")


async def _with_scratch(db: Database) -> Database:
    await db.run_transaction(lambda conn: conn.execute(text("CREATE TABLE scratch (n INTEGER PRIMARY KEY)")))
    return db


def _write(tx: Tx) -> str:
    """Writes a new scratch row: `scratch/{n}`, n counting the writes."""
    n = tx.connection.execute(text("SELECT COUNT(*) FROM scratch")).scalar_one() + 1
    tx.connection.execute(text("INSERT INTO scratch (n) VALUES (:n)"), {"n": n})
    return f"scratch/{n}"


async def _create(writer: Writer, key: RequestKey) -> str:
    """The write once per request key, through the write door; a retry gets the resource's name."""
    return await writer.run(_write, request=key, resource_of=lambda name: name, replay=lambda _conn, name: name)


async def _age(db: Database, key: RequestKey, age: timedelta) -> None:
    """Makes `key`'s log entry `age` old."""
    aged = update(REQUEST_LOG).where(REQUEST_LOG.c.key == key.key).values(created_at=datetime.now(UTC) - age)
    await db.run_transaction(lambda conn: conn.execute(aged))


async def _logged(db: Database) -> int:
    return await db.run_read(lambda conn: conn.execute(select(func.count()).select_from(REQUEST_LOG)).scalar_one())


@pytest.mark.parametrize("service", SERVICES)
async def test_an_expired_request_id_creates_anew_and_a_younger_one_replays(service_db_factory, service: str) -> None:  # type: ignore[no-untyped-def]
    db = await _with_scratch(await service_db_factory(service))
    writer = Writer(db)
    old, young = request_key("old"), request_key("young")
    assert (await _create(writer, old), await _create(writer, young)) == ("scratch/1", "scratch/2")
    await _age(db, old, WEEK + timedelta(minutes=1))
    await _age(db, young, WEEK - timedelta(minutes=1))

    assert await expire_request_ids(writer, WEEK) == 1
    assert await _logged(db) == 1
    assert await _create(writer, young) == "scratch/2"  # replayed: nothing written
    assert await _create(writer, old) == "scratch/3"  # forgotten: a new request, written anew
    assert await _create(writer, old) == "scratch/3"  # … and from now on replayed again
    assert await expire_request_ids(writer, WEEK) == 0
    await writer.close()


async def test_expiry_deletes_in_batches_until_none_is_left(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    db: Database = await service_db_factory("delegation")
    now = datetime.now(UTC)
    rows = [
        {"key": f"{n:064x}", "fingerprint": "0" * 32, "resource": f"delegations/{n}", "created_at": now - timedelta(days=n)}
        for n in range(1, 31)
    ]
    await db.run_transaction(lambda conn: conn.execute(REQUEST_LOG.insert(), rows))
    batches: list[int] = []
    writer = Writer(db)
    assert await expire_request_ids(writer, timedelta(days=10, hours=1), batch=7, on_batch=batches.append) == 20
    await writer.close()
    assert batches == [7, 7, 6]  # each batch its own short unit, committed before the next
    left = await db.run_read(lambda conn: conn.execute(select(REQUEST_LOG.c.resource)).scalars().all())
    assert sorted(left, key=lambda r: int(r.split("/")[1])) == [f"delegations/{n}" for n in range(1, 11)]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_every_service_host_expires_request_ids_with_the_configured_retention(
    backend: str, tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    overrides: dict[str, str] = {}
    if backend == "postgres":
        overrides = {"DATABASE_URL": await require_postgres(), "ROGATORY_DB_SCHEMA_PREFIX": f"t{abs(hash(tmp_path)) % 10**8}_"}
    config = Settings(  # type: ignore[call-arg]
        NATS_URL=nats_server.url,
        ROGATORY_DATA_DIR=tmp_path,
        REGISTRY_ADDR="127.0.0.1:0",
        ROGATORY_REQUEST_ID_RETENTION=3600,
        **overrides,
    )
    assert Settings().request_id_retention == WEEK.total_seconds()  # the documented default
    host = ServiceHost("registry", config)
    await host.start(wire_registry)
    try:
        old, young = request_key("old"), request_key("young")
        await _with_scratch(host.db)
        await _create(host.writer, old)
        await _create(host.writer, young)
        await _age(host.db, old, timedelta(hours=1, minutes=1))
        [worker] = [w for w in host.workers if getattr(w, "name", "") == EXPIRY_WORKER]
        await worker.run_once()  # type: ignore[attr-defined]
        assert await _logged(host.db) == 1
        assert await _create(host.writer, young) == "scratch/2"
    finally:
        await host.stop()
        if backend == "postgres":
            await drop_schemas(overrides["DATABASE_URL"], overrides["ROGATORY_DB_SCHEMA_PREFIX"])
