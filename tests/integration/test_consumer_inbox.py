"""Durable pull consumers with an inbox: a redelivered event has no second effect."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NotFoundError
from rogatory.events.v1 import alert_events_pb2, events_pb2
from rogatory.registry.v1 import registry_pb2
from sqlalchemy import func, select

from services.contract.case_replica import CASE_REGISTERED_ALL_COURTS, REPLICA, apply_case_registered
from services.plumbing.consumer import INBOX, Consumer, JetStreamSource, OnApplied
from services.plumbing.events import ReceivedEvent, envelope_headers
from services.plumbing.ids import new_id
from services.plumbing.messaging import connect, ensure_stream
from services.plumbing.nats_server import EmbeddedNatsServer
from services.plumbing.unit_of_work import Tx, Writer
from tests.conftest import run_cli, wait_for

STREAM = "ROGATORY"


@pytest.fixture
async def nats_client(nats_server: EmbeddedNatsServer) -> AsyncIterator[NATS]:
    nc = await connect(nats_server.url, name="test")
    await ensure_stream(nc.jetstream(), STREAM)
    yield nc
    await nc.drain()


async def publish_case_registered(nc: NATS, event_id: str, msg_id: str | None = None, number: int = 1) -> None:
    case = registry_pb2.Case(
        name=f"courts/gd0112/cases/2020-enf-{number}",
        case_number=f"（2020）粤0112执{number}号",
        parties=[
            registry_pb2.Party(role=registry_pb2.Party.RESPONDENT, kind=registry_pb2.Party.ORGANIZATION, display_name="某公司")
        ],
    )
    headers = envelope_headers(
        event_id=event_id,
        event_type="rogatory.case.registered.v1",
        occurred_at=datetime.now(UTC),
        source="rogatory/registry",
        traceparent="",
        tracestate="",
    )
    headers["Nats-Msg-Id"] = msg_id or event_id  # a different msg id gets past server de-duplication
    await nc.jetstream().publish(
        "rogatory.v1.case.gd0112.registered", events_pb2.CaseRegistered(case=case).SerializeToString(), headers=headers
    )


async def count(db, table) -> int:  # type: ignore[no-untyped-def]
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_redelivered_event_is_applied_once(service_db_factory, nats_client: NATS) -> None:
    db = await service_db_factory("delegation")
    consumer = Consumer(
        JetStreamSource(
            nats_client.jetstream(), stream=STREAM, durable="t-replica", filter_subjects=[CASE_REGISTERED_ALL_COURTS]
        ),
        writer=Writer(db),
        handler=apply_case_registered,
    )
    consumer.start()
    try:
        event_id = new_id()
        await publish_case_registered(nats_client, event_id)
        await publish_case_registered(nats_client, event_id, msg_id=new_id())  # the same event again
        await wait_for(lambda: consumer.applied + consumer.duplicates == 2)
    finally:
        await consumer.stop()
    assert consumer.applied == 1 and consumer.duplicates == 1
    assert await count(db, REPLICA) == 1
    assert await count(db, INBOX) == 1


async def test_failed_handler_is_retried_and_applied_once(service_db_factory, nats_client: NATS) -> None:
    db = await service_db_factory("delegation")
    calls: list[str] = []

    def flaky(tx: Tx, event: ReceivedEvent) -> None:
        calls.append(event.event_id)
        if len(calls) == 1:
            raise RuntimeError("crash in the middle of the message")
        apply_case_registered(tx, event)

    consumer = Consumer(
        JetStreamSource(nats_client.jetstream(), stream=STREAM, durable="t-flaky", filter_subjects=[CASE_REGISTERED_ALL_COURTS]),
        writer=Writer(db),
        handler=flaky,
    )
    consumer.start()
    try:
        await publish_case_registered(nats_client, new_id())
        await wait_for(lambda: consumer.applied == 1, timeout=15)
    finally:
        await consumer.stop()
    assert len(calls) == 2  # seen again after the failure
    assert await count(db, REPLICA) == 1
    assert await count(db, INBOX) == 1  # the failed attempt's inbox row was rolled back with it


async def test_durable_consumer_resumes_where_it_stopped(service_db_factory, nats_client: NATS) -> None:
    db = await service_db_factory("delegation")

    def make() -> Consumer:
        return Consumer(
            JetStreamSource(
                nats_client.jetstream(), stream=STREAM, durable="t-durable", filter_subjects=[CASE_REGISTERED_ALL_COURTS]
            ),
            writer=Writer(db),
            handler=apply_case_registered,
        )

    first = make()
    first.start()
    await publish_case_registered(nats_client, new_id())
    await wait_for(lambda: first.applied == 1)
    await first.stop()
    second = make()
    second.start()
    try:
        await publish_case_registered(nats_client, new_id(), number=2)
        await wait_for(lambda: second.applied == 1)
        assert second.duplicates == 0  # the event acked before the restart is not delivered again
    finally:
        await second.stop()
    assert await count(db, REPLICA) == 2


async def parked(nc: NATS, consumer: str) -> list[tuple[str, dict[str, str], bytes]]:
    """What is on a consumer's dead-letter subject and its alert subject, oldest first."""
    found = []
    for subject in (f"rogatory.v1.deadletter.{consumer}", f"rogatory.v1.alert.consumer.{consumer}.dead-lettered"):
        subscription = await nc.jetstream().subscribe(subject, ordered_consumer=True)
        try:
            while True:
                msg = await subscription.next_msg(timeout=0.5)
                found.append((msg.subject, dict(msg.headers or {}), msg.data))
        except NatsTimeoutError:
            pass
        finally:
            await subscription.unsubscribe()
    return found


async def test_poison_event_is_dead_lettered_with_an_alert(service_db_factory, nats_client: NATS) -> None:
    db = await service_db_factory("delegation")
    poison = new_id()
    attempts: list[str] = []

    def choke_on_poison(tx: Tx, event: ReceivedEvent) -> None:
        attempts.append(event.event_id)
        if event.event_id == poison:
            raise ValueError("cannot apply this event")
        apply_case_registered(tx, event)

    consumer = Consumer(
        JetStreamSource(nats_client.jetstream(), stream=STREAM, durable="t-poison", filter_subjects=[CASE_REGISTERED_ALL_COURTS]),
        writer=Writer(db),
        handler=choke_on_poison,
        max_deliveries=3,
        redelivery_delay=lambda _count: 0.05,
    )
    consumer.start()
    try:
        await publish_case_registered(nats_client, poison, number=1)
        healthy = new_id()
        await publish_case_registered(nats_client, healthy, number=2)
        await wait_for(lambda: consumer.dead_lettered == 1 and consumer.applied == 1, timeout=15)

        async def settled() -> bool:  # the server applies acks and terms after it receives them: asked until it has
            info = await nats_client.jetstream().consumer_info(STREAM, "t-poison")
            return info.num_ack_pending == 0 and info.num_pending == 0

        await wait_for(settled, timeout=15)  # terminated, never delivered again
    finally:
        await consumer.stop()
    assert attempts.count(poison) == 3 and attempts.count(healthy) == 1  # bounded; the next event was not held up
    (dead_subject, dead_headers, body), (alert_subject, alert_headers, alert_body) = await parked(nats_client, "t-poison")
    assert dead_subject == "rogatory.v1.deadletter.t-poison" and body  # the original payload, untouched
    assert dead_headers["ce-id"] == poison and dead_headers["Rogatory-Deliveries"] == "3"
    assert dead_headers["Rogatory-Dead-Letter-Subject"] == "rogatory.v1.case.gd0112.registered"
    assert "ValueError: cannot apply this event" in dead_headers["Rogatory-Dead-Letter-Reason"]
    alert = alert_events_pb2.EventDeadLettered.FromString(alert_body)
    assert alert_subject == "rogatory.v1.alert.consumer.t-poison.dead-lettered"
    assert alert_headers["ce-type"] == "rogatory.alert.dead-lettered.v1"
    assert (alert.event_id, alert.consumer, alert.deliveries) == (poison, "t-poison", 3)
    assert await count(db, REPLICA) == 1 and await count(db, INBOX) == 1  # nothing of the poison event was written


async def test_event_that_crashed_the_process_too_often_is_dead_lettered_unhandled(service_db_factory, nats_client: NATS) -> None:
    """Each earlier delivery 'crashed the process' (fetched, never acked, nor nak'ed by a
    handler); past the limit the consumer parks it before handling it again."""
    db = await service_db_factory("delegation")
    handled: list[str] = []

    def would_apply(tx: Tx, event: ReceivedEvent) -> None:
        handled.append(event.event_id)
        apply_case_registered(tx, event)

    consumer = Consumer(
        JetStreamSource(
            nats_client.jetstream(), stream=STREAM, durable="t-crashloop", filter_subjects=[CASE_REGISTERED_ALL_COURTS]
        ),
        writer=Writer(db),
        handler=would_apply,
        max_deliveries=2,
    )
    js = nats_client.jetstream()
    await js.add_consumer(STREAM, consumer.source.config())
    crashing = await js.pull_subscribe_bind("t-crashloop", stream=STREAM)
    event_id = new_id()
    await publish_case_registered(nats_client, event_id)
    for _ in range(2):  # two deliveries whose process died: nak stands in for the ack wait running out
        (msg,) = await crashing.fetch(1, timeout=5)
        await msg.nak()
    await crashing.unsubscribe()
    consumer.start()
    try:
        await wait_for(lambda: consumer.dead_lettered == 1, timeout=15)
    finally:
        await consumer.stop()
    assert handled == []  # not handed to the handler a third time
    (_, headers, _), (_, _, alert_body) = await parked(nats_client, "t-crashloop")
    assert headers["ce-id"] == event_id and headers["Rogatory-Deliveries"] == "3"
    assert "still unprocessed after 2 deliveries" in headers["Rogatory-Dead-Letter-Reason"]
    assert alert_events_pb2.EventDeadLettered.FromString(alert_body).event_id == event_id


async def test_batch_consumer_applies_a_fetch_in_one_transaction_and_isolates_a_poison_event(
    service_db_factory, nats_client: NATS
) -> None:
    """Events waiting together are applied as one batch; a batch that fails is applied
    again one event at a time, so the healthy events commit and only the poison event is
    retried and dead-lettered. `OnApplied` hears of the applied events after their commit."""
    db = await service_db_factory("delegation")
    poison = new_id()
    batches: list[list[str]] = []
    committed: list[str] = []

    def choke_on_poison(tx: Tx, events: Sequence[ReceivedEvent]) -> None:
        batches.append([e.event_id for e in events])
        if any(e.event_id == poison for e in events):
            raise ValueError("cannot apply this event")

    consumer = Consumer(
        JetStreamSource(nats_client.jetstream(), stream=STREAM, durable="t-batch", filter_subjects=[CASE_REGISTERED_ALL_COURTS]),
        writer=Writer(db),
        batch_handler=choke_on_poison,
        hooks=OnApplied(lambda events: committed.extend(e.event_id for e in events)),
        max_deliveries=2,
        redelivery_delay=lambda _count: 0.05,
    )
    healthy = [new_id() for _ in range(4)]
    for number, event_id in enumerate([healthy[0], healthy[1], poison, healthy[2], healthy[3]], start=1):
        await publish_case_registered(nats_client, event_id, number=number)
    await publish_case_registered(nats_client, healthy[0], msg_id=new_id())  # a redelivered copy
    consumer.start()
    try:
        await wait_for(lambda: consumer.dead_lettered == 1 and consumer.applied == 4, timeout=15)
    finally:
        await consumer.stop()
    assert len(batches[0]) == 5  # the fetch, as one batch (the copy of healthy[0] dropped by the inbox)
    assert batches[1:5] == [[healthy[0]], [healthy[1]], [poison], [healthy[2]]]  # then one at a time
    assert sorted(committed) == sorted(healthy) and consumer.duplicates >= 1
    assert await count(db, INBOX) == 4  # the poison event's inbox row was rolled back with it


async def rogatory(nats_url: str, *args: str) -> tuple[int, str]:
    """The `rogatory` command as an operator runs it (tests/conftest.py run_cli), while the
    consumer under test goes on: its exit status and what it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_URL", "ROGATORY_STREAM"))}
    done = await asyncio.to_thread(run_cli, list(args), {**env, "NATS_URL": nats_url, "ROGATORY_STREAM": STREAM})
    return done.returncode, done.stdout + done.stderr


async def test_i15_p6_deadletter_list_shows_a_poisoned_event_and_replay_applies_it_once(
    service_db_factory, nats_server: EmbeddedNatsServer, nats_client: NATS
) -> None:
    """An event its handler cannot apply is parked; `rogatory deadletter list` shows it; a
    replay while the bug is still there parks it again; once the handler is fixed, a replay
    has the consumer that parked it apply it — once — and nothing is left parked."""
    db = await service_db_factory("delegation")
    poison, healthy = new_id(), new_id()
    fixed = False

    def buggy_until_fixed(tx: Tx, event: ReceivedEvent) -> None:
        if event.event_id == poison and not fixed:
            raise ValueError("respondent kind not understood")
        apply_case_registered(tx, event)

    consumer = Consumer(
        JetStreamSource(nats_client.jetstream(), stream=STREAM, durable="t-parking", filter_subjects=[CASE_REGISTERED_ALL_COURTS]),
        writer=Writer(db),
        handler=buggy_until_fixed, max_deliveries=2, redelivery_delay=lambda _count: 0.05,
    )  # fmt: skip
    consumer.start()
    try:
        await publish_case_registered(nats_client, poison, number=1)
        await publish_case_registered(nats_client, healthy, number=2)
        await wait_for(lambda: consumer.dead_lettered == 1 and consumer.applied == 1, timeout=15)

        code, listed = await rogatory(nats_server.url, "deadletter", "list")
        assert code == 0, listed
        (row,) = [line for line in listed.splitlines() if poison in line]
        for shown in ("t-parking", "rogatory.case.registered.v1", "rogatory.v1.case.gd0112.registered", "2"):
            assert shown in row
        assert "ValueError: respondent kind not understood" in row and "1 parked event(s) on stream ROGATORY" in listed

        code, replayed = await rogatory(nats_server.url, "deadletter", "replay", "--event", poison)  # not fixed yet
        assert code == 0 and f"replayed {poison}" in replayed and "to t-parking" in replayed, replayed
        await wait_for(lambda: consumer.dead_lettered == 2, timeout=15)  # parked again, by the same consumer
        code, listed = await rogatory(nats_server.url, "deadletter", "list", "--consumer", "t-parking")
        assert listed.count(poison) == 1 and "1 parked event(s)" in listed, listed

        fixed = True
        code, replayed = await rogatory(nats_server.url, "deadletter", "replay", "--consumer", "t-parking")
        assert code == 0 and f"replayed {poison}" in replayed, replayed
        await wait_for(lambda: consumer.applied == 2, timeout=15)
        code, listed = await rogatory(nats_server.url, "deadletter", "list")
        assert "no parked events" in listed, listed
        code, replayed = await rogatory(nats_server.url, "deadletter", "replay", "--all")
        assert code == 1 and "no parked event matches" in replayed
    finally:
        await consumer.stop()
    assert consumer.dead_lettered == 2 and consumer.applied == 2
    assert await count(db, REPLICA) == 2 and await count(db, INBOX) == 2  # the poison event applied once


async def waiting_pull_requests(nc: NATS, durable: str) -> int:
    """Pull requests of `durable` the server holds open (a fetch in flight); 0 before it exists."""
    try:
        return (await nc.jetstream().consumer_info(STREAM, durable)).num_waiting
    except NotFoundError:
        return 0


async def test_i16_p2_stop_cancels_the_fetch_in_flight_and_loses_nothing(service_db_factory, nats_client: NATS) -> None:
    """stop() does not wait out the fetch in flight (1 s): it cancels it, and its pull request
    goes with the subscription, so the next event is delivered, once, to the next consumer
    at once — not caught by a request left open and redelivered after ack_wait."""
    db = await service_db_factory("delegation")
    deliveries: list[int] = []

    def record(tx: Tx, event: ReceivedEvent) -> None:
        deliveries.append(event.delivery_count)
        apply_case_registered(tx, event)

    def make() -> Consumer:
        source = JetStreamSource(
            nats_client.jetstream(), stream=STREAM, durable="t-stop", filter_subjects=[CASE_REGISTERED_ALL_COURTS], ack_wait=60
        )
        return Consumer(source, writer=Writer(db), handler=record)

    first, second = make(), make()
    first.start()
    try:
        await wait_for(lambda: waiting_pull_requests(nats_client, "t-stop"), interval=0.005)  # fetching, nothing to fetch
        started = asyncio.get_running_loop().time()
        await first.stop()
        stopped_in = asyncio.get_running_loop().time() - started
        assert stopped_in < 0.5, f"stop() took {stopped_in:.2f}s: it waited out the fetch"
        assert await waiting_pull_requests(nats_client, "t-stop") == 0  # none left open on the server
        await publish_case_registered(nats_client, new_id())
        second.start()
        await wait_for(lambda: second.applied == 1, timeout=10)  # well inside ack_wait: not a redelivery
    finally:
        await first.stop()
        await second.stop()
    assert first.applied == 0 and deliveries == [1]
    assert await count(db, REPLICA) == 1
