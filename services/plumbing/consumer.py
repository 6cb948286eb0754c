"""Durable JetStream pull consumers that apply each event exactly once.

The handler runs in a database transaction that also inserts an inbox row keyed by
(consumer, event id); a redelivered event finds the row and is acknowledged without a
second effect. The message is acked only after the transaction commits.

A failed event is redelivered with a growing delay. After `max_deliveries` deliveries
(`ROGATORY_MAX_DELIVERIES`) the consumer stops trying: it copies the event to
`rogatory.v1.deadletter.{consumer}` (original headers and body, plus why), publishes an
`EventDeadLettered` alert on `rogatory.v1.alert.consumer.{consumer}.dead-lettered`, and
terminates the message, so one poison event cannot stall the events behind it. An event
that arrives past the limit — its earlier deliveries crashed the process before it could
fail cleanly — is dead-lettered without being handled again. The server-side
`max_deliver` is unlimited so that every poison event reaches this code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from rogatory.events.v1 import alert_events_pb2
from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from services.plumbing.db import BulkStatement, Database
from services.plumbing.events import ReceivedEvent, envelope_headers, parse_time, subject
from services.plumbing.tables import InboxEntry
from services.plumbing.telemetry import context_from_headers, event_span_attributes, tracer

log = logging.getLogger(__name__)
_tracer = tracer(__name__)
INBOX = InboxEntry.__table__  # type: ignore[attr-defined]
_INSERT_INBOX = BulkStatement(insert(INBOX), keys=["consumer", "event_id", "processed_at"])
# Built once (a consumer applies every event through them): building costs more than running.
_SEEN = select(INBOX.c.event_id).where(INBOX.c.consumer == bindparam("consumer"), INBOX.c.event_id == bindparam("event_id"))
_SEEN_ANY = select(INBOX.c.event_id).where(
    INBOX.c.consumer == bindparam("consumer"), INBOX.c.event_id.in_(bindparam("event_ids", expanding=True))
)

Handler = Callable[[AsyncConnection, ReceivedEvent], Awaitable[None]]
#: Applies the events of one batch, in stream order, inside Database.run_transaction.
BatchHandler = Callable[[Connection, Sequence[ReceivedEvent]], None]
DEAD_LETTERED = "rogatory.alert.dead-lettered.v1"


def _backoff(delivery_count: int) -> float:
    """Seconds before redelivering a failed event: 2, 4, 6, … capped at 30."""
    return min(2.0 * delivery_count, 30.0)


class EventConsumer:
    def __init__(
        self,
        db: Database,
        js: JetStreamContext,
        *,
        stream: str,
        durable: str,
        filter_subjects: list[str],
        handler: Handler,
        batch: int = 64,
        max_deliveries: int = 5,
        ack_wait: float = 30.0,
        redelivery_delay: Callable[[int], float] | None = None,
    ):
        self.db = db
        self.js = js
        self.stream = stream
        self.durable = durable
        self.filter_subjects = filter_subjects
        self.handler = handler
        self.batch = batch
        self.max_deliveries = max_deliveries
        self.ack_wait = ack_wait
        self.redelivery_delay = redelivery_delay or _backoff
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.applied = 0
        self.duplicates = 0
        self.dead_lettered = 0

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subjects=self.filter_subjects,
            max_deliver=-1,  # unlimited: this consumer dead-letters after max_deliveries itself
            ack_wait=self.ack_wait,
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.durable}")

    async def stop(self) -> None:
        """Lets the current fetch (≤ 1 s) and its messages finish, then unsubscribes.

        Cancelling mid-fetch would leave a pull request whose message goes to a dead
        inbox and comes back only after `ack_wait`.
        """
        self._stopping.set()
        if self._task:
            try:
                await asyncio.wait_for(self._task, timeout=self.ack_wait)
            except TimeoutError:
                log.warning("consumer %s did not stop in time", self.durable)

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        await self.js.add_consumer(self.stream, self.config())
        return await self.js.pull_subscribe_bind(self.durable, stream=self.stream)

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                # Re-created after any failure: pull subscriptions do not resume by
                # themselves after a server restart (nats.py #504).
                subscription = await self._subscribe()
                backoff = 0.1
                try:
                    await self._pull_loop(subscription)
                finally:
                    await _quietly_unsubscribe(subscription)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep consuming through outages
                log.warning("consumer %s: %s; resubscribing in %.1fs", self.durable, exc, backoff)
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, 5.0)

    async def _pull_loop(self, subscription: JetStreamContext.PullSubscription) -> None:
        while not self._stopping.is_set():
            try:
                messages = await subscription.fetch(self.batch, timeout=1.0)
            except (TimeoutError, NatsTimeoutError):
                continue  # nothing new: fetch raises by design
            await self.process_all(messages)

    async def process_all(self, messages: list[Msg]) -> None:
        for msg in messages:
            await self.process(msg)

    async def process(self, msg: Msg) -> None:
        event = to_received_event(msg)
        with trace.use_span(start_process_span(self.durable, msg, event), end_on_exit=True):
            if event.delivery_count > self.max_deliveries:
                await self._dead_letter(msg, event, f"still unprocessed after {event.delivery_count - 1} deliveries")
                return
            try:
                await self.apply_once(event)
            except Exception as exc:
                log.exception("consumer %s failed on event %s", self.durable, event.event_id)
                if event.delivery_count >= self.max_deliveries:
                    await self._dead_letter(msg, event, f"{type(exc).__name__}: {exc}")
                else:
                    await msg.nak(delay=self.redelivery_delay(event.delivery_count))
                return
            await msg.ack()

    async def _dead_letter(self, msg: Msg, event: ReceivedEvent, reason: str) -> None:
        """Parks the event on the dead-letter subject with an alert; only then lets it go."""
        dead_subject = subject("deadletter", self.durable)
        headers = {
            **event.headers,
            "Nats-Msg-Id": f"dead:{self.durable}:{event.event_id}",  # the same event parked twice is stored once
            "Rogatory-Dead-Letter-Consumer": self.durable,
            "Rogatory-Dead-Letter-Subject": event.subject,
            "Rogatory-Dead-Letter-Reason": reason[:500],
            "Rogatory-Deliveries": str(event.delivery_count),
        }
        now = datetime.now(UTC)
        alert = alert_events_pb2.EventDeadLettered(
            consumer=self.durable,
            event_id=event.event_id,
            event_type=event.event_type,
            subject=event.subject,
            dead_letter_subject=dead_subject,
            deliveries=event.delivery_count,
            reason=reason[:500],
        )
        alert.dead_letter_time.FromDatetime(now)
        alert_id = f"alert:{self.durable}:{event.event_id}"
        alert_headers = envelope_headers(
            event_id=alert_id, event_type=DEAD_LETTERED, occurred_at=now, source=f"rogatory/consumer/{self.durable}",
            traceparent=event.headers.get("traceparent", ""), tracestate=event.headers.get("tracestate", ""),
        )  # fmt: skip
        try:
            await self.js.publish(dead_subject, msg.data, headers=headers)
            await self.js.publish(
                subject("alert", "consumer", self.durable, "dead-lettered"), alert.SerializeToString(), headers=alert_headers
            )
        except Exception:  # noqa: BLE001 - NATS away: keep the message, it comes back
            log.exception("consumer %s could not dead-letter event %s", self.durable, event.event_id)
            await msg.nak(delay=self.redelivery_delay(event.delivery_count))
            return
        log.error("consumer %s dead-lettered event %s (%s): %s", self.durable, event.event_id, event.event_type, reason)
        self.dead_lettered += 1
        await msg.term()

    async def apply_once(self, event: ReceivedEvent) -> bool:
        """Applies the event unless this consumer already has; True when applied now."""
        async with self.db.transaction() as conn:
            seen = await conn.execute(_SEEN, {"consumer": self.durable, "event_id": event.event_id})
            if seen.first() is not None:
                self.duplicates += 1
                return False
            await _INSERT_INBOX.execute(
                conn, [{"consumer": self.durable, "event_id": event.event_id, "processed_at": datetime.now(UTC)}]
            )
            await self.handler(conn, event)
        self.applied += 1
        return True


class BatchEventConsumer(EventConsumer):
    """A consumer that applies all the events of a fetch in one transaction.

    For projections, where the events of a batch mostly touch the same rows: the handler
    reads those rows once and writes each once, and the transaction is one thread hop on
    SQLite (`Database.run_transaction`). The inbox works as in EventConsumer, for the batch
    at once. If the batch fails, its events are applied again one at a time, so that only a
    poison event is retried, backed off and finally dead-lettered.
    """

    def __init__(
        self,
        db: Database,
        js: JetStreamContext,
        *,
        batch_handler: BatchHandler,
        on_applied: Callable[[Sequence[ReceivedEvent]], None] | None = None,
        **options: Any,  # EventConsumer's: stream, durable, filter_subjects, …
    ):
        super().__init__(db, js, handler=_unused, **options)
        self.batch_handler = batch_handler
        self.on_applied = on_applied  # after the commit, with the events applied (e.g. metrics)

    async def process_all(self, messages: list[Msg]) -> None:
        received = [(msg, to_received_event(msg)) for msg in messages]
        for msg, event in received:
            if event.delivery_count > self.max_deliveries:
                await self.process(msg)  # dead-lettered there, unapplied
        batch = [(msg, event) for msg, event in received if event.delivery_count <= self.max_deliveries]
        if not batch:
            return
        spans = [start_process_span(self.durable, msg, event) for msg, event in batch]
        try:
            await self.apply_batch([event for _, event in batch])
        except Exception:  # noqa: BLE001 - one event may be the cause: find it by applying them alone
            log.warning("consumer %s: a batch of %d failed; applying its events one at a time", self.durable, len(batch))
            for span in spans:
                span.end()
            for msg, _ in batch:
                await self.process(msg)
            return
        for span in spans:
            span.end()
        for msg, _ in batch:
            await msg.ack()

    async def apply_once(self, event: ReceivedEvent) -> bool:
        return await self.apply_batch([event]) == 1

    async def apply_batch(self, events: Sequence[ReceivedEvent]) -> int:
        """Applies the events this consumer has not seen yet; returns how many it applied."""
        fresh = await self.db.run_transaction(lambda conn: self._apply_new(conn, events))
        self.applied += len(fresh)
        self.duplicates += len(events) - len(fresh)
        if fresh and self.on_applied:
            self.on_applied(fresh)
        return len(fresh)

    def _apply_new(self, conn: Connection, events: Sequence[ReceivedEvent]) -> list[ReceivedEvent]:
        fresh = _claim_in_inbox(conn, self.durable, events)
        if fresh:
            self.batch_handler(conn, fresh)
        return fresh


def _claim_in_inbox(conn: Connection, durable: str, events: Sequence[ReceivedEvent]) -> list[ReceivedEvent]:
    """The events not yet in `durable`'s inbox (the first copy of any repeated in the batch),
    now entered there."""
    ids = list(dict.fromkeys(event.event_id for event in events))
    taken = set(conn.execute(_SEEN_ANY, {"consumer": durable, "event_ids": ids}).scalars())
    fresh = []
    for event in events:
        if event.event_id not in taken:
            taken.add(event.event_id)
            fresh.append(event)
    if fresh:
        now = datetime.now(UTC)
        _INSERT_INBOX.execute_sync(conn, [{"consumer": durable, "event_id": e.event_id, "processed_at": now} for e in fresh])
    return fresh


async def _unused(_conn: AsyncConnection, _event: ReceivedEvent) -> None:
    raise NotImplementedError("a BatchEventConsumer applies events through its batch_handler")


def start_process_span(durable: str, msg: Msg, event: ReceivedEvent) -> trace.Span:
    """The CONSUMER span of one message, a child of the producer's span (OpenTelemetry
    messaging conventions), carrying what the event is about. The caller ends it."""
    span = _tracer.start_span(
        f"process {msg.subject}",
        context=context_from_headers(event.headers),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": msg.subject,
            "messaging.destination.subscription.name": durable,
            "messaging.consumer.group.name": durable,
            "messaging.message.id": event.event_id,
            "messaging.nats.delivery_count": event.delivery_count,
            "rogatory.event.type": event.event_type,
        },
    )
    if span.is_recording():  # parsing the payload is for the trace alone
        span.set_attributes(event_span_attributes(event.event_type, msg.data))
    return span


async def _quietly_unsubscribe(subscription: JetStreamContext.PullSubscription) -> None:
    try:
        await subscription.unsubscribe()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        pass


def to_received_event(msg: Msg) -> ReceivedEvent:
    headers = dict(msg.headers or {})
    event_id = headers.get("ce-id") or headers.get("Nats-Msg-Id", "")
    occurred = headers.get("ce-time")
    return ReceivedEvent(
        event_id=event_id,
        event_type=headers.get("ce-type", ""),
        subject=msg.subject,
        source=headers.get("ce-source", ""),
        occurred_at=parse_time(occurred) if occurred else datetime.now(UTC),
        data=msg.data,
        headers=headers,
        delivery_count=msg.metadata.num_delivered,
    )
