"""Durable JetStream pull consumers that apply each event exactly once.

The handler runs in a database transaction that also inserts an inbox row keyed by
(consumer, event id); a redelivered event finds the row and is acknowledged without a
second effect. The message is acked only after the transaction commits.

A failure is one of two kinds (`is_infrastructure_failure`):

- **An outage** — the database unavailable (unreachable, connection lost, locked by another
  process, out of disk), NATS or the network away — says nothing about the event. The
  consumer keeps the messages it holds, tells JetStream they are still in progress (so none
  is redelivered), and tries again after a delay that doubles up to a cap, for as long as
  the outage lasts. Meanwhile it reports itself `unavailable` (the host's health service
  says NOT_SERVING) until its first success. Waiting out an outage costs no delivery.
- **The event's own failure** — any other exception — is redelivered with a growing delay.
  After `max_deliveries` deliveries (`ROGATORY_MAX_DELIVERIES`) the consumer stops trying:
  it copies the event to `rogatory.v1.deadletter.{consumer}` (original headers and body,
  plus why), publishes an `EventDeadLettered` alert on
  `rogatory.v1.alert.consumer.{consumer}.dead-lettered`, and terminates the message, so one
  poison event cannot stall the events behind it.

Deliveries are counted by JetStream (`num_delivered`, kept by the server, so the count
survives a restart; the server-side `max_deliver` is unlimited so that every poison event
reaches this code). Besides the event's own failures, only its holder going away adds one:

- a stop in the middle of an outage gives the held messages back and first records each in
  the key-value bucket `rogatory-consumer-excuses` (key `{consumer}.{stream seq}`), read only
  when a message reaches the limit: restarting a service during an outage costs no event a try;
- a crash, or NATS going away, while events are held adds one delivery to each of them.
  That is the price of crash-loop protection: an event delivered more than `max_deliveries`
  times (excused deliveries aside) is taken for one whose earlier deliveries crashed the
  process before it could fail cleanly, and is dead-lettered without being handled again,
  unless the inbox shows it applied.

Every consumer also takes `rogatory.v1.replay.{consumer}`, where `rogatory deadletter
replay` sends parked events back to the consumer that parked them (deadletters.py); a
replayed event is handled as if published on its original subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import nats.errors
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, KeyValueConfig
from nats.js.errors import (
    BucketNotFoundError,
    KeyDeletedError,
    KeyNotFoundError,
    NoStreamResponseError,
    ServerError,
    ServiceUnavailableError,
)
from nats.js.kv import KeyValue
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from rogatory.events.v1 import alert_events_pb2
from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection

from services.plumbing.db import BulkStatement, Database, database_fault
from services.plumbing.events import SUBJECT_ROOT, ReceivedEvent, envelope_headers, parse_time, subject
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
#: Where `rogatory deadletter replay` sends a parked event back to the consumer that parked
#: it, with its original subject in ORIGINAL_SUBJECT.
REPLAY_ROOT = f"{SUBJECT_ROOT}.replay."
ORIGINAL_SUBJECT = "Rogatory-Original-Subject"
EXCUSES_BUCKET = "rogatory-consumer-excuses"
_EXCUSE_TTL = 30 * 24 * 3600.0  # seconds: an excuse matters only while its message is unsettled
T = TypeVar("T")

# NATS errors that say the connection, the server or the cluster is away — not the event.
_NATS_OUTAGES = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.NoServersError,
    nats.errors.NoRespondersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.errors.SlowConsumerError,
    NoStreamResponseError,
    ServiceUnavailableError,
    ServerError,
)


def is_infrastructure_failure(exc: BaseException) -> bool:
    """Whether `exc` is an outage (database, NATS, network, a timeout) rather than the event's
    own fault: an outage is waited out and never counts toward `max_deliveries`. Database
    faults are classified once, by error code, in services/plumbing/db.py (`database_fault`)."""
    if database_fault(exc) is not None or isinstance(exc, (PoolTimeout, DisconnectionError)):
        return True
    return isinstance(exc, (*_NATS_OUTAGES, ConnectionError, TimeoutError))


def replay_subject(durable: str) -> str:
    return subject("replay", durable)


def _backoff(delivery_count: int) -> float:
    """Seconds before redelivering a failed event: 2, 4, 6, … capped at 30."""
    return min(2.0 * delivery_count, 30.0)


def _outage_backoff(retry: int) -> float:
    """Seconds before trying again in an outage: 0.25, 0.5, 1, 2, 4, then 5 — a recovery is
    noticed within 5 s, and held messages are kept in progress well inside `ack_wait`."""
    return min(0.25 * 2.0**retry, 5.0)


class _Released(Exception):
    """The consumer is stopping in the middle of an outage: the messages it holds go back."""


class _Unprocessed(Exception):
    """Delivered past the limit without a clean failure: taken to crash the process."""


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
        outage_delay: Callable[[int], float] | None = None,
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
        self.outage_delay = outage_delay or _outage_backoff
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.applied = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self.unavailable: str | None = None  # the outage keeping this consumer from applying events, while it lasts
        self.outage_retries = 0  # attempts that met an outage (none of them a delivery)
        self._held: Sequence[Msg] = ()  # fetched, not settled yet: kept in progress through an outage
        self._excuses_kv: KeyValue | None = None

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subjects=_with_replay(self.filter_subjects, replay_subject(self.durable)),
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
                self._mark_available()
                try:
                    await self._pull_loop(subscription)
                finally:
                    await _quietly_unsubscribe(subscription)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep consuming through outages
                if is_infrastructure_failure(exc):
                    self._mark_unavailable(exc)
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
        try:
            for index, msg in enumerate(messages):
                self._held = messages[index:]
                await self.process(msg)
        except _Released:
            await self._release(self._held)
        finally:
            self._held = ()

    async def process(self, msg: Msg) -> None:
        event = to_received_event(msg)
        with trace.use_span(start_process_span(self.durable, msg, event), end_on_exit=True):
            try:
                await self._through_outages(lambda: self._handle(event))
            except _Released:
                raise
            except _Unprocessed as exc:
                await self._dead_letter(msg, event, str(exc))
                return
            except Exception as exc:
                log.exception("consumer %s failed on event %s", self.durable, event.event_id)
                await self._failed(msg, event, exc)
                return
            await msg.ack()

    async def _handle(self, event: ReceivedEvent) -> None:
        """Applies the event, unless it looks like one whose deliveries crashed the process."""
        if event.delivery_count > self.max_deliveries:
            deliveries = await self._deliveries(event)
            if deliveries > self.max_deliveries:
                if await self._seen(event):
                    self.duplicates += 1  # applied; only its acks were lost
                    return
                raise _Unprocessed(f"still unprocessed after {deliveries - 1} deliveries")
        await self.apply_once(event)

    async def _failed(self, msg: Msg, event: ReceivedEvent, exc: Exception) -> None:
        """The event's own failure: redelivered later, or dead-lettered at the limit."""
        deliveries = event.delivery_count
        if deliveries >= self.max_deliveries:
            try:
                deliveries = await self._deliveries(event)
            except Exception:  # noqa: BLE001 - NATS trouble: decided at the next delivery
                log.warning("consumer %s: excused deliveries of %s unknown", self.durable, event.event_id, exc_info=True)
                deliveries = 0
        if deliveries >= self.max_deliveries:
            await self._dead_letter(msg, event, f"{type(exc).__name__}: {exc}")
        else:
            await msg.nak(delay=self.redelivery_delay(max(deliveries, 1)))

    async def _through_outages(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Runs `attempt` until it succeeds or fails by the event's fault. An outage is waited
        out with the held messages kept in progress, so it costs no delivery."""
        retry = 0
        while True:
            try:
                result = await attempt()
            except Exception as exc:
                if not is_infrastructure_failure(exc):
                    self._mark_available()  # whatever failed, the database and NATS answered
                    raise
                self._mark_unavailable(exc)
                self.outage_retries += 1
                if await self._wait_out(retry):
                    raise _Released from exc
                retry += 1
                continue
            self._mark_available()
            return result

    async def _wait_out(self, retry: int) -> bool:
        """Keeps the held messages in progress, then waits before the next try; True when stopping."""
        for held in self._held:
            with contextlib.suppress(Exception):  # NATS away too: the messages come back after ack_wait
                await held.in_progress()
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=self.outage_delay(retry))
        except TimeoutError:
            return False
        return True

    def _mark_unavailable(self, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if self.unavailable is None:
            log.warning(
                "consumer %s: %s; holding %d event(s) and trying again until it is back (not counted as deliveries)",
                self.durable, reason, len(self._held),
            )  # fmt: skip
        self.unavailable = reason[:500]

    def _mark_available(self) -> None:
        if self.unavailable is not None:
            log.warning("consumer %s: applying events again after %s", self.durable, self.unavailable)
            self.unavailable = None

    async def _release(self, messages: Sequence[Msg]) -> None:
        """Stopping mid-outage: gives the held messages back, each redelivery excused first."""
        for msg in messages:
            try:
                await self._excuse(msg)
            except Exception:  # noqa: BLE001 - then that redelivery counts, as after a crash
                log.warning("consumer %s: could not excuse stream message %d", self.durable, _stream_seq(msg), exc_info=True)
            with contextlib.suppress(Exception):
                await msg.nak()
        log.warning("consumer %s stopped during an outage: %d event(s) given back", self.durable, len(messages))

    async def _deliveries(self, event: ReceivedEvent) -> int:
        """Deliveries that count against the event: JetStream's, less those excused."""
        return event.delivery_count - await self._excused(event.stream_seq)

    async def _excuses(self) -> KeyValue:
        if self._excuses_kv is None:
            try:
                self._excuses_kv = await self.js.key_value(EXCUSES_BUCKET)
            except BucketNotFoundError:
                replicas = (await self.js.stream_info(self.stream)).config.num_replicas or 1
                config = KeyValueConfig(bucket=EXCUSES_BUCKET, history=1, ttl=_EXCUSE_TTL, replicas=replicas)
                self._excuses_kv = await self.js.create_key_value(config)
        return self._excuses_kv

    async def _excused(self, stream_seq: int) -> int:
        kv = await self._excuses()
        try:
            return int((await kv.get(f"{self.durable}.{stream_seq}")).value or b"0")
        except (KeyNotFoundError, KeyDeletedError):
            return 0

    async def _excuse(self, msg: Msg) -> None:
        seq = _stream_seq(msg)
        await (await self._excuses()).put(f"{self.durable}.{seq}", str(await self._excused(seq) + 1).encode())

    async def _seen(self, event: ReceivedEvent) -> bool:
        async with self.db.read() as conn:
            return (await conn.execute(_SEEN, {"consumer": self.durable, "event_id": event.event_id})).first() is not None

    async def _dead_letter(self, msg: Msg, event: ReceivedEvent, reason: str) -> None:
        """Parks the event on the dead-letter subject with an alert; only then lets it go."""
        dead_subject = subject("deadletter", self.durable)
        # Keyed by the stream message: parking it again (e.g. the alert failed) stores it once,
        # while a replayed copy that fails again is parked anew.
        parking = f"{self.durable}:{event.event_id}:{event.stream_seq}"
        headers = {
            **{k: v for k, v in event.headers.items() if not k.startswith("Rogatory-")},
            "Nats-Msg-Id": f"dead:{parking}",
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
        alert_id = f"alert:{parking}"
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
        suspects = [msg for msg, event in received if event.delivery_count > self.max_deliveries]
        batch = [(msg, event) for msg, event in received if event.delivery_count <= self.max_deliveries]
        try:
            for index, msg in enumerate(suspects):  # delivered past the limit: the crash-loop guard decides, alone
                self._held = [*suspects[index:], *(m for m, _ in batch)]
                await self.process(msg)
            if batch:
                self._held = [msg for msg, _ in batch]
                await self._apply_fetched(batch)
        except _Released:
            await self._release(self._held)
        finally:
            self._held = ()

    async def _apply_fetched(self, batch: list[tuple[Msg, ReceivedEvent]]) -> None:
        spans = [start_process_span(self.durable, msg, event) for msg, event in batch]
        try:
            await self._through_outages(lambda: self.apply_batch([event for _, event in batch]))
        except _Released:
            raise
        except Exception:  # noqa: BLE001 - one event may be the cause: find it by applying them alone
            log.warning("consumer %s: a batch of %d failed; applying its events one at a time", self.durable, len(batch))
            for span in spans:
                span.end()
            for index, (msg, _) in enumerate(batch):
                self._held = [m for m, _ in batch[index:]]
                await self.process(msg)
            return
        finally:
            for span in spans:
                if span.is_recording():
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


def _with_replay(filters: list[str], replay: str) -> list[str]:
    """The consumer's filters and its replay subject, unless a filter takes it already
    (JetStream refuses overlapping filters)."""
    return list(filters) if takes_subject(filters, replay) else [*filters, replay]


def takes_subject(filters: Sequence[str], subject_: str) -> bool:
    """Whether one of the NATS subject filters (with `*`, `>`) takes `subject_`."""
    return any(_matches(pattern.split("."), subject_.split(".")) for pattern in filters)


def _matches(tokens: list[str], wanted: list[str]) -> bool:
    for index, token in enumerate(tokens):
        if token == ">":
            return len(wanted) > index
        if index >= len(wanted) or token not in ("*", wanted[index]):
            return False
    return len(tokens) == len(wanted)


def _stream_seq(msg: Msg) -> int:
    return int(msg.metadata.sequence.stream)


async def _quietly_unsubscribe(subscription: JetStreamContext.PullSubscription) -> None:
    try:
        await subscription.unsubscribe()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        pass


def to_received_event(msg: Msg) -> ReceivedEvent:
    headers = dict(msg.headers or {})
    event_id = headers.get("ce-id") or headers.get("Nats-Msg-Id", "")
    occurred = headers.get("ce-time")
    replayed = msg.subject.startswith(REPLAY_ROOT) and headers.get(ORIGINAL_SUBJECT)
    return ReceivedEvent(
        event_id=event_id,
        event_type=headers.get("ce-type", ""),
        subject=replayed or msg.subject,  # a replayed event is handled as on its original subject
        source=headers.get("ce-source", ""),
        occurred_at=parse_time(occurred) if occurred else datetime.now(UTC),
        data=msg.data,
        headers=headers,
        delivery_count=msg.metadata.num_delivered,
        stream_seq=msg.metadata.sequence.stream,
    )
