"""PostgreSQL unreachable for a while (issue 6): the registry answers UNAVAILABLE at once, its
health service says NOT_SERVING, and when the database is back everything recovers by
itself — no restart, nothing lost, nothing written twice.

The outage is a real one for the service: it reaches PostgreSQL through a TCP proxy the test
cuts (refusing new connections and dropping open ones) and restores.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.js import JetStreamContext
from rogatory.delegation.v1 import delegation_pb2_grpc
from rogatory.registry.v1 import registry_pb2 as pb
from rogatory.registry.v1 import registry_pb2_grpc
from sqlalchemy import select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from services.contract.case_replica import CASE_REGISTERED_ALL_COURTS, REPLICA, apply_case_registered
from services.delegation.main import CASE_REPLICA_CONSUMER
from services.delegation.main import wire as wire_delegation
from services.delegation.projector import wire as wire_projector
from services.delegation.turnaround import CONSUMER as TURNAROUND_CONSUMER
from services.plumbing import db as db_module
from services.plumbing.auth import dev_credentials
from services.plumbing.config import Settings
from services.plumbing.consumer import INBOX, Consumer, JetStreamSource, OnApplied
from services.plumbing.db import Database
from services.plumbing.host import ServiceHost
from services.plumbing.ids import new_id
from services.plumbing.messaging import connect, ensure_stream
from services.plumbing.migrations import upgrade_to_head
from services.plumbing.nats_server import EmbeddedNatsServer, free_port
from services.plumbing.subscriber import read_events
from services.plumbing.unit_of_work import Writer
from services.registry.main import wire as wire_registry
from services.tools.demo import freeze_request
from tests.conftest import drop_schemas, require_postgres, wait_for
from tests.e2e.test_registry_e2e import as_owner, create_request
from tests.integration.test_consumer_inbox import count, publish_case_registered

T = TypeVar("T")

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


class TcpProxy:
    """127.0.0.1:port → PostgreSQL; `cut()` is the database going away, `restore()` its return."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._forward, "127.0.0.1", self.port, reuse_address=True)

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self.writers |= {client_writer, upstream_writer}
        await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            self.writers.discard(writer)

    async def cut(self) -> None:
        assert self.server
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        await self.server.wait_closed()
        self.writers.clear()

    async def restore(self) -> None:
        if self.server is None or not self.server.is_serving():
            await self.start()


@pytest.fixture
async def proxied_registry(tmp_path: Path, nats_server: EmbeddedNatsServer) -> AsyncIterator[tuple[ServiceHost, TcpProxy]]:
    url = make_url(await require_postgres())
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    prefix = f"outage{free_port()}_"
    settings = Settings(  # type: ignore[call-arg]
        NATS_URL=nats_server.url,
        DATABASE_URL=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        ROGATORY_DB_SCHEMA_PREFIX=prefix,
        ROGATORY_DATA_DIR=tmp_path,
        REGISTRY_ADDR="127.0.0.1:0",
        ROGATORY_HEALTH_INTERVAL=0.2,
        ROGATORY_DB_CONNECT_TIMEOUT=1.0,
        ROGATORY_SHUTDOWN_GRACE=2,
    )
    host = ServiceHost("registry", settings)
    await host.start(wire_registry)
    try:
        yield host, proxy
    finally:
        with contextlib.suppress(Exception):
            await proxy.restore()  # so the host can flush and the schemas can be dropped
        await host.stop()
        if proxy.server:
            proxy.server.close()
        await drop_schemas(str(url), prefix)


async def health_becomes(stub: health_pb2_grpc.HealthStub, status: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (await stub.Check(health_pb2.HealthCheckRequest())).status != status:
        assert time.monotonic() < deadline, f"health did not become {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}"
        await asyncio.sleep(0.05)


async def unavailable_within(seconds: float, call: Callable[[], Awaitable[object]]) -> None:
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
    assert time.monotonic() - started < seconds, "did not fail fast"


async def test_outage_fails_fast_reports_not_serving_and_recovers(
    proxied_registry: tuple[ServiceHost, TcpProxy], nats_server: EmbeddedNatsServer
) -> None:
    host, proxy = proxied_registry
    async with grpc.aio.insecure_channel(host.address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        court = as_owner(create_request(1))
        before = await registry.CreateCase(create_request(1), metadata=court)

        await proxy.cut()
        during = create_request(2)
        await unavailable_within(5.0, lambda: registry.CreateCase(during, metadata=court))
        await unavailable_within(5.0, lambda: registry.GetCase(pb.GetCaseRequest(name=before.name), metadata=court))
        await health_becomes(health, NOT_SERVING)
        assert (
            await registry.GetCourt(pb.GetCourtRequest(name="courts/zj0326"), metadata=court)
        ).name  # reference data still answers

        await proxy.restore()
        await health_becomes(health, SERVING)
        assert (await registry.GetCase(pb.GetCaseRequest(name=before.name), metadata=court)).case_number == before.case_number
        retried = await registry.CreateCase(during, metadata=court)  # the client's retry, same request_id: written once now
        after = await registry.CreateCase(create_request(3), metadata=court)

    nc = host.nc
    events = await read_events(nc.jetstream(), host.settings.stream_name, "rogatory.v1.case.>", until_count=3, timeout=10)
    registered = [e.headers.get("ce-id") for e in events]
    assert len(registered) == len(set(registered)) == 3  # each case once, none lost
    assert len({before.name, retried.name, after.name}) == 3


# Issue 15 point 6: an outage is not a poison event. The issue saw a 66 s PostgreSQL outage
# dead-letter the delegation service's events after 5 deliveries. The outages below last at
# least ROGATORY_TEST_OUTAGE_SECONDS (`=60` reproduces the issue's) and, for the consumers,
# until each has met the outage more often than MAX_DELIVERIES: long enough for the old code,
# which counted every failed try, to dead-letter everything that arrived during it.
OUTAGE_SECONDS = float(os.environ.get("ROGATORY_TEST_OUTAGE_SECONDS", "4"))
MAX_DELIVERIES = 2
STREAM = "ROGATORY"


class SqliteWriteLock:
    """SQLite 'away': another process's connection holds the write lock (a stuck job, a
    backup), so every writer gets 'database is locked' after busy_timeout; readers still read."""

    def __init__(self, path: Path):
        self.path = path
        self.conn: sqlite3.Connection | None = None

    async def cut(self) -> None:
        self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        await asyncio.to_thread(self.conn.execute, "BEGIN EXCLUSIVE")

    async def restore(self) -> None:
        if self.conn is not None:
            await asyncio.to_thread(self.conn.execute, "ROLLBACK")
            self.conn.close()
            self.conn = None


@dataclass
class OutageSetup:
    database_url: str  # DATABASE_URL as the service gets it ({service}, {data_dir} substituted)
    schema_prefix: str
    data_dir: Path
    outage: TcpProxy | SqliteWriteLock

    def url_for(self, service: str) -> str:
        return self.database_url.format(service=service, data_dir=self.data_dir)


@pytest.fixture(params=["sqlite", "postgres"])
async def outage_setup(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[OutageSetup]:
    """A database the test can take away: PostgreSQL behind a TCP proxy, or SQLite whose write
    lock another connection takes."""
    if request.param == "sqlite":
        # Each write waits busy_timeout for the lock before failing: shortened so that a
        # few seconds of outage span several tries, as PostgreSQL's refused connections do.
        pragmas = tuple("PRAGMA busy_timeout=100" if "busy_timeout" in p else p for p in db_module.SQLITE_PRAGMAS)
        monkeypatch.setattr(db_module, "SQLITE_PRAGMAS", pragmas)
        lock = SqliteWriteLock(tmp_path / "delegation.db")
        try:
            yield OutageSetup("sqlite+aiosqlite:///{data_dir}/{service}.db", "", tmp_path, lock)
        finally:
            await lock.restore()
        return
    url = make_url(await require_postgres())
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    prefix = f"outage{free_port()}_"
    try:
        yield OutageSetup(
            url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), prefix, tmp_path, proxy
        )
    finally:
        await proxy.restore()  # so the schemas can be dropped
        assert proxy.server
        proxy.server.close()
        await drop_schemas(str(url), prefix)


class CountingDatabase(Database):
    """The real database, counting its failed transactions: how often a consumer met the outage."""

    failed = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with super().transaction() as conn:
                yield conn
        except Exception:
            self.failed += 1
            raise

    async def run_transaction(self, work: Callable[[Connection], T]) -> T:
        if not self.is_sqlite:  # PostgreSQL: runs in transaction(), counted there
            return await super().run_transaction(work)
        try:
            return await super().run_transaction(work)
        except Exception:
            self.failed += 1
            raise


async def dead_letters_in_stream(js: JetStreamContext) -> int:
    info = await js.stream_info(STREAM, subjects_filter="rogatory.v1.deadletter.>")
    return sum((info.state.subjects or {}).values())


async def inbox_rows(db: Database, consumer: str) -> list[str]:
    async with db.read() as conn:
        return list((await conn.execute(select(INBOX.c.event_id).where(INBOX.c.consumer == consumer))).scalars())


def met_outage(db: CountingDatabase, consumer: Consumer) -> Callable[[], bool]:
    """More often than the limit, or (the old code) dead-lettered on it."""
    return lambda: db.failed > MAX_DELIVERIES or consumer.dead_lettered > 0


async def outage_lasted(started: float, *conditions: Callable[[], bool]) -> None:
    await wait_for(
        lambda: time.monotonic() - started >= OUTAGE_SECONDS and all(c() for c in conditions), timeout=OUTAGE_SECONDS + 60
    )


async def test_i15_p6_outage_under_traffic_dead_letters_nothing_and_applies_each_event_once(
    outage_setup: OutageSetup, nats_server: EmbeddedNatsServer
) -> None:
    """A consumer (the case replica) and a batch consumer (as the turnaround projection) keep
    receiving events while their database is away. They wait the outage out, however many
    times they meet it, and afterwards every event is applied once and none is dead-lettered."""
    nc = await connect(nats_server.url, name="test")
    js = nc.jetstream()
    await ensure_stream(js, STREAM)
    url = outage_setup.url_for("delegation")
    dbs = [CountingDatabase(url, schema=f"{outage_setup.schema_prefix}delegation", connect_timeout=1.0) for _ in range(2)]
    await dbs[0].create_schema()
    await upgrade_to_head(dbs[0], "delegation")
    committed: list[str] = []
    replica = Consumer(
        JetStreamSource(js, stream=STREAM, durable="t-outage-replica", filter_subjects=[CASE_REGISTERED_ALL_COURTS]),
        writer=Writer(dbs[0]), handler=apply_case_registered, max_deliveries=MAX_DELIVERIES,
    )  # fmt: skip
    projection = Consumer(
        JetStreamSource(js, stream=STREAM, durable="t-outage-batch", filter_subjects=[CASE_REGISTERED_ALL_COURTS]),
        writer=Writer(dbs[1]), batch_handler=lambda _conn, _events: None,
        hooks=OnApplied(lambda events: committed.extend(e.event_id for e in events)), max_deliveries=MAX_DELIVERIES,
    )  # fmt: skip
    consumers: list[Consumer] = [replica, projection]
    sent: list[str] = []

    async def traffic(count: int) -> None:  # as the registry publishes cases
        for _ in range(count):
            sent.append(new_id())
            await publish_case_registered(nc, sent[-1], number=len(sent))

    for consumer in consumers:
        consumer.start()
    try:
        await traffic(5)
        await wait_for(lambda: all(c.applied == 5 for c in consumers))
        await outage_setup.outage.cut()
        started = time.monotonic()
        await traffic(10)
        await outage_lasted(started, *(met_outage(db, c) for db, c in zip(dbs, consumers, strict=True)))
        held = [getattr(c, "unavailable", None) for c in consumers]
        await outage_setup.outage.restore()
        await traffic(5)
        await wait_for(lambda: all(c.applied + c.dead_lettered == len(sent) for c in consumers), timeout=60)
    finally:
        for consumer in consumers:
            await consumer.stop()
    try:
        assert [c.dead_lettered for c in consumers] == [0, 0], "an outage was counted against the events"
        assert await dead_letters_in_stream(js) == 0
        assert [db.failed > MAX_DELIVERIES for db in dbs] == [True, True]  # each met the outage more often than the limit
        assert all(held) and [c.unavailable for c in consumers] == [None, None]  # NOT_SERVING while it lasted, not after
        assert sorted(committed) == sorted(sent)  # the batch consumer: each event once
        for consumer in consumers:
            assert sorted(await inbox_rows(dbs[0], consumer.name)) == sorted(sent)
        assert await count(dbs[0], REPLICA) == len(sent)
    finally:
        for db in dbs:
            await db.dispose()
        await nc.drain()


async def test_i15_p6_delegation_service_waits_out_a_database_outage(
    outage_setup: OutageSetup, nats_server: EmbeddedNatsServer
) -> None:
    """The issue's scenario on the delegation service itself: cases registered while its
    database is away reach its replica once it is back — none dead-lettered, CreateDelegation
    accepts them, the turnaround statistics count every matter — and health says NOT_SERVING
    while the outage lasts (on SQLite only the consumers see it: reads still work)."""
    settings = Settings(  # type: ignore[call-arg]
        NATS_URL=nats_server.url,
        DATABASE_URL=outage_setup.database_url,
        ROGATORY_DB_SCHEMA_PREFIX=outage_setup.schema_prefix,
        ROGATORY_DATA_DIR=outage_setup.data_dir,
        DELEGATION_ADDR="127.0.0.1:0",
        TURNAROUND_ADDR="127.0.0.1:0",
        ROGATORY_HEALTH_INTERVAL=0.2,
        ROGATORY_DB_CONNECT_TIMEOUT=1.0,
        ROGATORY_SHUTDOWN_GRACE=2,
        ROGATORY_SCAN_INTERVAL=0,
        ROGATORY_MAX_DELIVERIES=MAX_DELIVERIES,
    )
    host, projector = ServiceHost("delegation", settings), ServiceHost("turnaround", settings)
    await host.start(wire_delegation)
    await projector.start(wire_projector)  # after: Alembic's context is one per process
    replica = next(c for c in host.consumers if c.name == CASE_REPLICA_CONSUMER)
    turnaround = next(c for c in projector.consumers if c.name == TURNAROUND_CONSUMER)
    cases = [new_id() for _ in range(3)]
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            await health_becomes(health, SERVING)
            await outage_setup.outage.cut()
            started = time.monotonic()
            for number, event_id in enumerate(cases, start=1):
                await publish_case_registered(host.nc, event_id, number=number)
            await health_becomes(health, NOT_SERVING, timeout=OUTAGE_SECONDS + 30)
            await outage_lasted(started)
            await outage_setup.outage.restore()
            await wait_for(lambda: replica.applied + replica.dead_lettered == len(cases), timeout=60)
            assert replica.dead_lettered == 0, "the outage was counted against the events"
            await health_becomes(health, SERVING)
            stub = delegation_pb2_grpc.DelegationServiceStub(channel)
            for number in range(1, len(cases) + 1):  # each case has reached the service: no FAILED_PRECONDITION
                request = freeze_request(f"courts/gd0112/cases/2020-enf-{number}")
                await stub.CreateDelegation(request, metadata=dev_credentials("court", "gd0112"))
            await wait_for(lambda: turnaround.applied == len(cases), timeout=30)  # statistics miss no matter
        assert await dead_letters_in_stream(host.js) == 0
        assert sorted(await inbox_rows(host.db, CASE_REPLICA_CONSUMER)) == sorted(cases)
    finally:
        await outage_setup.outage.restore()
        await asyncio.gather(host.stop(), projector.stop())


async def test_i15_p6_a_restart_during_an_outage_costs_the_held_events_no_delivery(
    outage_setup: OutageSetup, nats_server: EmbeddedNatsServer
) -> None:
    """The service is stopped while its consumer waits out an outage and started again after
    it: the redelivery the stop causes is excused (KV bucket rogatory-consumer-excuses), so
    even at ROGATORY_MAX_DELIVERIES=1 the event is applied, not taken for one that crashed
    the process and parked unhandled."""
    nc = await connect(nats_server.url, name="test")
    js = nc.jetstream()
    await ensure_stream(js, STREAM)
    db = Database(outage_setup.url_for("delegation"), schema=f"{outage_setup.schema_prefix}delegation", connect_timeout=1.0)
    await db.create_schema()
    await upgrade_to_head(db, "delegation")

    def make() -> Consumer:
        return Consumer(
            JetStreamSource(js, stream=STREAM, durable="t-restarted", filter_subjects=[CASE_REGISTERED_ALL_COURTS]),
            writer=Writer(db), handler=apply_case_registered, max_deliveries=1,
        )  # fmt: skip

    first, second = make(), make()
    event_id = new_id()
    try:
        await outage_setup.outage.cut()
        first.start()
        await publish_case_registered(nc, event_id)
        await wait_for(lambda: getattr(first, "outage_retries", 0) >= 2 or first.dead_lettered > 0, timeout=30)
        await first.stop()  # mid-outage: the event goes back, its redelivery excused
        await outage_setup.outage.restore()
        second.start()
        await wait_for(lambda: second.applied + second.dead_lettered + first.dead_lettered == 1, timeout=30)
    finally:
        await first.stop()
        await second.stop()
    try:
        assert first.dead_lettered + second.dead_lettered == 0 and second.applied == 1
        assert await inbox_rows(db, "t-restarted") == [event_id]
    finally:
        await db.dispose()
        await nc.drain()


async def test_i15_p6_nats_outage_is_waited_out_with_health_not_serving(tmp_path: Path, nats_server: EmbeddedNatsServer) -> None:
    """NATS away: the delegation service's consumers receive nothing, so its health says
    NOT_SERVING until NATS is back; a case registered then reaches its replica, once."""
    settings = Settings(  # type: ignore[call-arg]
        NATS_URL=nats_server.url,
        ROGATORY_DATA_DIR=tmp_path,
        DELEGATION_ADDR="127.0.0.1:0",
        ROGATORY_HEALTH_INTERVAL=0.2,
        ROGATORY_SHUTDOWN_GRACE=2,
        ROGATORY_SCAN_INTERVAL=0,
        ROGATORY_MAX_DELIVERIES=MAX_DELIVERIES,
    )
    host = ServiceHost("delegation", settings)
    await host.start(wire_delegation)
    replica = next(c for c in host.consumers if c.name == CASE_REPLICA_CONSUMER)
    event_id = new_id()
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            await health_becomes(health, SERVING)
            nats_server.stop(kill=True)
            await health_becomes(health, NOT_SERVING)
            nats_server.start()  # same port, same JetStream store
            await health_becomes(health, SERVING, timeout=30)
        await publish_case_registered(host.nc, event_id)
        await wait_for(lambda: replica.applied == 1, timeout=30)
        assert await inbox_rows(host.db, CASE_REPLICA_CONSUMER) == [event_id] and replica.dead_lettered == 0
    finally:
        await host.stop()
