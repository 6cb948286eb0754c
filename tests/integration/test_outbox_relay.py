"""Transactional outbox → JetStream, against real SQLite/PostgreSQL and a real nats-server. The
events are written as units of the write door (`tx.emit`), the only way rows reach the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from rogatory.events.v1 import events_pb2
from rogatory.registry.v1 import registry_pb2
from sqlalchemy import func, select, update

from services.plumbing.db import Database
from services.plumbing.events import Event, subject
from services.plumbing.messaging import connect, ensure_stream
from services.plumbing.nats_server import EmbeddedNatsServer
from services.plumbing.outbox import OUTBOX, Outbox
from services.plumbing.relay import OutboxRelay
from services.plumbing.subscriber import read_events
from services.plumbing.unit_of_work import Tx, Writer
from tests.conftest import wait_for

STREAM = "ROGATORY"


@pytest.fixture
async def nats_client(nats_server: EmbeddedNatsServer) -> AsyncIterator[NATS]:
    nc = await connect(nats_server.url, name="test")
    await ensure_stream(nc.jetstream(), STREAM)
    yield nc
    await nc.drain()


def case_event(court: str, number: int) -> Event:
    case = registry_pb2.Case(name=f"courts/{court}/cases/2023-enf-{number}", case_number=f"（2023）浙0326执{number}号")
    return Event("rogatory.case.registered.v1", subject("case", court, "registered"), events_pb2.CaseRegistered(case=case))


async def commit(db: Database, outbox: Outbox, events: list[Event]) -> None:
    """Writes `events` to the outbox as one unit of the write door, committed."""
    writer = Writer(db, outbox)
    try:
        await writer.run(lambda tx: tx.emit(*events))
    finally:
        await writer.close()


async def unsent(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).where(OUTBOX.c.sent_at.is_(None)))).scalar_one())


async def test_committed_events_are_published_once_with_envelope(service_db_factory, nats_client: NATS) -> None:
    db = await service_db_factory("registry")
    outbox = Outbox()
    relay = OutboxRelay(db, nats_client.jetstream(), outbox, source="rogatory/test")
    events = [case_event("zj0326", n) for n in range(1, 6)]
    await commit(db, outbox, events)

    assert await relay.drain() == 5
    assert await unsent(db) == 0
    received = await read_events(nats_client.jetstream(), STREAM, "rogatory.v1.case.>", until_count=5)
    assert [e.event_id for e in received] == [e.event_id for e in events]  # in commit order
    first = received[0]
    assert first.headers["Nats-Msg-Id"] == events[0].event_id
    assert first.event_type == "rogatory.case.registered.v1"
    assert first.source == "rogatory/test"
    assert first.headers["content-type"] == "application/protobuf"
    assert first.parse(events_pb2.CaseRegistered).case.name == "courts/zj0326/cases/2023-enf-1"


async def test_republishing_after_a_crash_adds_no_duplicate(service_db_factory, nats_client: NATS) -> None:
    db = await service_db_factory("registry")
    outbox = Outbox()
    relay = OutboxRelay(db, nats_client.jetstream(), outbox, source="rogatory/test")
    await commit(db, outbox, [case_event("zj0326", n) for n in range(1, 4)])
    await relay.drain()
    # A crash between publish and "mark sent" leaves rows unsent: the next relay sends them again.
    async with db.transaction() as conn:
        await conn.execute(update(OUTBOX).values(sent_at=None))
    restarted = OutboxRelay(db, nats_client.jetstream(), outbox, source="rogatory/test")
    assert await restarted.drain() == 3
    info = await nats_client.jetstream().stream_info(STREAM)
    assert info.state.messages == 3


async def test_rolled_back_transaction_publishes_nothing(service_db_factory, nats_client: NATS) -> None:
    db = await service_db_factory("registry")
    outbox = Outbox()
    relay = OutboxRelay(db, nats_client.jetstream(), outbox, source="rogatory/test")
    writer = Writer(db, outbox)

    def failing(tx: Tx) -> None:
        tx.emit(case_event("zj0326", 1))
        raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError):
        await writer.run(failing)
    await writer.close()
    assert not outbox.new_rows.is_set()  # nothing committed: the relay is not woken
    assert await relay.drain() == 0
    assert (await nats_client.jetstream().stream_info(STREAM)).state.messages == 0


async def jetstream_answers(js: JetStreamContext) -> bool:
    try:
        await js.stream_info(STREAM)
    except (NatsError, TimeoutError):
        return False
    return True


async def test_relay_keeps_rows_while_nats_is_down_and_sends_them_after(service_db_factory, tmp_path) -> None:
    db = await service_db_factory("registry")
    server = EmbeddedNatsServer(tmp_path / "nats-restart").start()
    try:
        nc = await connect(server.url, name="test")
        js = nc.jetstream()
        await ensure_stream(js, STREAM)
        outbox = Outbox()
        relay = OutboxRelay(db, js, outbox, source="rogatory/test", publish_timeout=0.5)
        server.stop()
        await commit(db, outbox, [case_event("zj0326", n) for n in range(1, 4)])
        with pytest.raises((NatsError, TimeoutError)):
            await relay.publish_batch()
        assert await unsent(db) == 3  # nothing marked sent while NATS is away
        server.start()
        await nc.flush(timeout=10)  # reconnected
        await wait_for(lambda: jetstream_answers(js))  # JetStream recovers its streams after the client reconnects
        assert await relay.drain() == 3
        assert (await js.stream_info(STREAM)).state.messages == 3
        await nc.drain()
    finally:
        server.stop()


async def test_publishing_does_not_wait_behind_request_writers(service_db_factory, nats_client: NATS) -> None:
    """On SQLite the relay marks rows sent in the background: while a request writer holds
    the write lock, it still publishes, skips the rows it published, and marks them after."""
    db = await service_db_factory("registry")
    if not db.is_sqlite:
        pytest.skip("on PostgreSQL relays keep their rows locked until marked (SKIP LOCKED)")
    outbox = Outbox()
    relay = OutboxRelay(db, nats_client.jetstream(), outbox, source="rogatory/test")
    await commit(db, outbox, [case_event("zj0326", n) for n in range(1, 4)])
    async with db.transaction():  # a request writer holding the write lock
        assert await asyncio.wait_for(relay.publish_batch(), timeout=10) == 3
        assert await relay.publish_batch() == 0  # published, not yet marked: not read again
        assert await unsent(db) == 3
    await relay.mark_published()
    assert await unsent(db) == 0
    assert (await nats_client.jetstream().stream_info(STREAM)).state.messages == 3


async def test_retrying_through_a_nats_outage_buffers_nothing_and_keeps_no_ack_waiting(service_db_factory, tmp_path) -> None:
    """The relay publishes nothing while NATS is away. Before, each retry added a copy of every
    unsent row to the client's buffer (all sent again on reconnection), and once the buffer was
    full each failed publish kept its ack future, one of publish_async's 4,000 permits, for good:
    after enough retries the relay waited for a permit for ever and published nothing more."""
    db = await service_db_factory("registry")
    server = EmbeddedNatsServer(tmp_path / "nats-outage").start()
    try:
        nc = await connect(server.url, name="test")
        js = nc.jetstream()
        await ensure_stream(js, STREAM)
        outbox = Outbox()
        relay = OutboxRelay(db, js, outbox, source="rogatory/test", publish_timeout=0.2, connected=lambda: nc.is_connected)
        await commit(db, outbox, [case_event("zj0326", n) for n in range(1, 41)])
        server.stop(kill=True)
        await wait_for(lambda: not nc.is_connected)
        buffered = nc.pending_data_size
        for _ in range(10):  # the relay's retries through the outage
            with pytest.raises((NatsError, ConnectionError, TimeoutError)):
                await relay.publish_batch()
        assert nc.pending_data_size == buffered, "copies of the unsent rows buffered for the reconnection"
        assert js.publish_async_pending() == 0, "acks still awaited for publishes that were given up"
        assert await unsent(db) == 40

        server.start()
        await wait_for(lambda: jetstream_answers(js))
        relay.publish_timeout = 10.0  # short only so that the retries above were quick before the fix
        assert await relay.drain() == 40
        assert (await js.stream_info(STREAM)).state.messages == 40
        await nc.drain()
    finally:
        server.stop()
