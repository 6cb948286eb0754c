"""The one consumer class: `Consumer` takes messages from a source in batches and hands them
to its handler; projections, replicas, the audit appender and the property-query replies all
run on it, and extend it only through its public options and `ConsumerHooks`.

**Sources.** `JetStreamSource`: a durable pull consumer of the event stream (the usual case).
`CoreSource`: a core NATS subject shared by a queue group (the agencies' property-query
replies): nothing stored, nothing redelivered, so its handler answers every message itself.

**Handlers** (one per consumer):

- `handler(tx, event)` applies one event, as a unit of the service's write door
  (services/plumbing/unit_of_work.py: it shares a transaction with the units waiting with it,
  in a savepoint of its own) (replicas);
- `batch_handler(tx, events)` applies all the events of a fetch as one unit: batching, for
  projections and the audit chain, whose events mostly touch the same rows. If a batch fails, its events are applied again one at a time,
  so that only a poison event is retried, backed off and finally dead-lettered;
- `message_handler(messages)` gets each fetched batch as the source delivered it and
  settles every message itself (the property-query replies, answered one by one).

Both are synchronous, run by the consumer's `writer`, and may `tx.emit` events of their own.

With either of the first two, each event is applied exactly once: the unit also
inserts an inbox row keyed by (consumer, event id), and a redelivered event finds the row and
is acknowledged without a second effect (`inbox=False` leaves that to a handler that knows
by itself, as the audit chain does by event id). The message is acked only after the commit.

**Hooks** (`ConsumerHooks`, all no-ops unless overridden): `started`, `subscribing` (before
each subscription), `before_fetch` (False: not now, e.g. the audit appender while its chain
is tampered with), `idle` (a fetch found nothing), `applied` (events committed and acked),
`gave_back` (the handler raised `GiveBack`), `stopped`.

**Stopping** cancels the fetch in flight instead of waiting it out (its pull request goes
with the subscription: nats-server drops a waiting pull request whose inbox loses interest),
lets the batch in hand finish, and handles what a core source still holds. A message caught
by a fetch at the moment it is cancelled is not acked, so JetStream delivers it again after
`ack_wait` (one delivery counted, as after a crash). The host stops its consumers together.

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
  poison event cannot stall the events behind it. (`max_deliveries=None`: never given up on,
  e.g. by the audit chain, which must hold every event.)

A handler that cannot apply a batch for a reason that is neither (the audit chain no longer
holds its anchored head) raises `GiveBack`: the messages go back to the stream at once,
uncounted, and the consumer's hooks decide when to fetch again.

Deliveries are counted by JetStream (`num_delivered`, kept by the server, so the count
survives a restart; the server-side `max_deliver` is unlimited so that every poison event
reaches this code). Besides the event's own failures, only its holder going away adds one:

- a stop in the middle of an outage (or a `GiveBack`) gives the held messages back and first
  records each in the key-value bucket `rogatory-consumer-excuses` (key `{consumer}.{stream
  seq}`), read only when a message reaches the limit: restarting a service during an outage
  costs no event a try;
- a crash, or NATS going away, while events are held adds one delivery to each of them.
  That is the price of crash-loop protection: an event delivered more than `max_deliveries`
  times (excused deliveries aside) is taken for one whose earlier deliveries crashed the
  process before it could fail cleanly, and is dead-lettered without being handled again,
  unless the inbox shows it applied.

Every stream consumer also takes `rogatory.v1.replay.{consumer}`, where `rogatory deadletter
replay` sends parked events back to the consumer that parked them (deadletters.py); a
replayed event is handled as if published on its original subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, final

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
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
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from services.plumbing.db import database_fault
from services.plumbing.events import (
    SUBJECT_ROOT,
    EventType,
    ReceivedEvent,
    SubjectTemplate,
    envelope_headers,
    parse_time,
    subject,
)
from services.plumbing.tables import InboxEntry
from services.plumbing.telemetry import context_from_headers, event_span_attributes, tracer
from services.plumbing.unit_of_work import Reader, Tx, Writer

log = logging.getLogger(__name__)
_tracer = tracer(__name__)
INBOX = InboxEntry.__table__  # type: ignore[attr-defined]
# Built once (a consumer applies every event through them): building costs more than running.
_SEEN = select(INBOX.c.event_id).where(INBOX.c.consumer == bindparam("consumer"), INBOX.c.event_id == bindparam("event_id"))
_SEEN_ANY = select(INBOX.c.event_id).where(
    INBOX.c.consumer == bindparam("consumer"), INBOX.c.event_id.in_(bindparam("event_ids", expanding=True))
)

#: Applies one event as a unit of the write door (with the inbox row).
Handler = Callable[[Tx, ReceivedEvent], None]
#: Applies the events of one batch, in stream order, as one unit of the write door.
BatchHandler = Callable[[Tx, Sequence[ReceivedEvent]], None]
#: Gets a fetched batch as its source delivered it, and settles every message itself.
MessageHandler = Callable[[list[Any]], Awaitable[None]]
#: The alert a consumer publishes when it parks an event (listed in the event catalog,
#: services/contract/events.py, which the plumbing sits below).
DEAD_LETTERED = EventType(
    "rogatory.alert.dead-lettered.v1",
    SubjectTemplate(f"{SUBJECT_ROOT}.alert.consumer.{{consumer}}.dead-lettered"),
    alert_events_pb2.EventDeadLettered,
    ordering_key="consumer",
    doc="a consumer gave up on an event and parked it ([dead letters](#outages-dead-letters-and-replay))",
)
#: Where `rogatory deadletter replay` sends a parked event back to the consumer that parked
#: it, with its original subject in ORIGINAL_SUBJECT.
REPLAY_ROOT = f"{SUBJECT_ROOT}.replay."
ORIGINAL_SUBJECT = "Rogatory-Original-Subject"
EXCUSES_BUCKET = "rogatory-consumer-excuses"
_EXCUSE_TTL = 30 * 24 * 3600.0  # seconds: an excuse matters only while its message is unsettled
STOP_TIMEOUT = 30.0  # seconds stop() waits for the batch in hand before giving up on it
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


class GiveBack(Exception):
    """Raised by a handler that cannot apply its batch now, by no fault of the events and
    without an outage (e.g. the audit chain lost its anchored head): the consumer gives the
    messages back to the stream at once, uncounted, and tells `ConsumerHooks.gave_back`."""


class _Released(Exception):
    """The consumer is stopping in the middle of an outage: the messages it holds go back."""


class _Unprocessed(Exception):
    """Delivered past the limit without a clean failure: taken to crash the process."""


class _Stopped:
    """What a step cut short by stop() gives instead of its result."""


_STOPPED = _Stopped()


class JetStreamSource:
    """A durable pull consumer of the stream: `filter_subjects` plus the consumer's replay
    subject, acked explicitly, redelivered when not settled within `ack_wait` seconds."""

    def __init__(self, js: JetStreamContext, *, stream: str, durable: str, filter_subjects: list[str], ack_wait: float = 30.0):
        self.js = js
        self.stream = stream
        self.name = durable
        self.filter_subjects = filter_subjects
        self.ack_wait = ack_wait
        self._subscription: JetStreamContext.PullSubscription | None = None

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subjects=_with_replay(self.filter_subjects, replay_subject(self.name)),
            max_deliver=-1,  # unlimited: the consumer dead-letters after max_deliveries itself
            ack_wait=self.ack_wait,
        )

    async def open(self) -> None:
        """Creates the durable (or finds it) and binds a pull subscription to it. Done again
        after any failure: pull subscriptions do not resume by themselves after a server
        restart (nats.py #504)."""
        await self.js.add_consumer(self.stream, self.config())
        self._subscription = await self.js.pull_subscribe_bind(self.name, stream=self.stream)

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        """Up to `batch` messages; none when nothing came within `timeout` seconds."""
        if self._subscription is None:
            raise RuntimeError(f"consumer {self.name} fetched before it subscribed")
        try:
            return await self._subscription.fetch(batch, timeout=timeout)
        except (TimeoutError, NatsTimeoutError):
            return []  # nothing new: fetch raises by design

    async def close(self) -> list[Msg]:
        """Unsubscribes; nats-server then drops the pull request waiting on the inbox. Nothing
        is left over: what is delivered and not acked comes back after `ack_wait`."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await _quietly(subscription.unsubscribe())
        return []


def _as_is(msg: Msg) -> Msg:
    return msg


class CoreSource:
    """A core NATS subject shared by a queue group, so that each message reaches one instance.
    Nothing is stored or redelivered: the consumer's `message_handler` settles (answers)
    every message itself. `prepare` runs as each message arrives — while the batch before it
    is being applied — and what it returns is what the handler gets."""

    def __init__(self, nc: NATS, subject_: str, *, queue: str, prepare: Callable[[Msg], Any] = _as_is):
        self.nc = nc
        self.subject = subject_
        self.name = queue
        self.prepare = prepare
        self._waiting: list[Any] = []
        self._arrived = asyncio.Event()
        self._subscription: Subscription | None = None

    @property
    def waiting(self) -> int:
        """Messages arrived and not fetched yet."""
        return len(self._waiting)

    async def open(self) -> None:
        """Subscribes, once: core NATS subscriptions come back by themselves after a reconnect.
        A test may await it to collect messages before the consumer starts."""
        if self._subscription is None:
            self._subscription = await self.nc.subscribe(self.subject, queue=self.name, cb=self._received)

    async def _received(self, msg: Msg) -> None:
        self._waiting.append(self.prepare(msg))  # no await: a batch forms meanwhile
        self._arrived.set()

    async def fetch(self, batch: int, timeout: float) -> list[Any]:
        """Up to `batch` of the messages waiting, once there is one; none after `timeout` seconds."""
        if not self._waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)
        self._arrived.clear()
        taken, self._waiting = self._waiting[:batch], self._waiting[batch:]
        return taken

    async def close(self) -> list[Any]:
        """Unsubscribes — draining while connected, so that what the server sent still
        arrives — and returns what arrived and was not fetched: the consumer handles it."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            # nats-py leaves Subscription.drain unannotated
            await _quietly(subscription.drain() if self.nc.is_connected else subscription.unsubscribe())  # type: ignore[no-untyped-call]
        left, self._waiting = self._waiting, []
        return left


Source = JetStreamSource | CoreSource


class ConsumerHooks:
    """A consumer's extension points. Each does nothing here; a component that needs one
    passes an instance of its subclass as `hooks=` (the audit appender uses them all)."""

    async def started(self) -> None:
        """Once, as the consumer starts."""

    async def subscribing(self) -> None:
        """Before each (re)subscription; raising puts it off (an outage is reported as one)."""

    async def before_fetch(self) -> bool:
        """Before each fetch: False to fetch nothing now (the hook waits, e.g. with
        `Consumer.rest`, before saying so; it is asked again)."""
        return True

    async def idle(self) -> None:
        """After a fetch that found nothing."""

    async def applied(self, events: Sequence[ReceivedEvent]) -> None:
        """After events were applied, committed and acked (those applied now, not duplicates)."""

    async def gave_back(self, reason: GiveBack) -> None:
        """After the handler raised GiveBack and the messages went back to the stream."""

    async def stopped(self) -> None:
        """Once, as the consumer has stopped."""


class OnApplied(ConsumerHooks):
    """Hooks that only hear of the events applied, e.g. to count them."""

    def __init__(self, callback: Callable[[Sequence[ReceivedEvent]], None]):
        self.callback = callback

    async def applied(self, events: Sequence[ReceivedEvent]) -> None:
        self.callback(events)


@final
class Consumer:
    """Takes batches from its source and hands them to its one handler, until stopped.
    Not subclassed: a component extends it through its options and `ConsumerHooks`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError(f"{cls.__name__}: Consumer is not subclassed; give it a handler and ConsumerHooks")

    def __init__(
        self,
        source: Source,
        *,
        writer: Writer | None = None,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        message_handler: MessageHandler | None = None,
        hooks: ConsumerHooks | None = None,
        inbox: bool = True,
        batch: int = 64,
        max_deliveries: int | None = 5,
        fetch_timeout: float = 1.0,
        linger: float = 0.0,
        redelivery_delay: Callable[[int], float] | None = None,
        outage_delay: Callable[[int], float] | None = None,
    ):
        if [handler, batch_handler, message_handler].count(None) != 2:
            raise ValueError("a consumer has one of handler, batch_handler and message_handler")
        if message_handler is None and (writer is None or not isinstance(source, JetStreamSource)):
            raise ValueError(
                "handler and batch_handler apply stream events as units of the write door: give a writer and a JetStreamSource"
            )
        self.source = source
        self.name = source.name
        self.writer = writer
        self._reader = Reader(writer.db) if writer is not None else None
        self.handler = handler
        self.batch_handler = batch_handler
        self.message_handler = message_handler
        self.hooks = hooks or ConsumerHooks()
        self.inbox = inbox
        self.batch = batch
        self.max_deliveries = max_deliveries  # None: never dead-lettered, retried until applied
        self.fetch_timeout = fetch_timeout  # how long one fetch waits for a message
        # Seconds to wait after a batch smaller than `batch` before fetching again, so the next
        # gathers more: fewer, larger transactions for a worker whose events can wait that long
        # (the audit appender, the turnaround projector); 0: fetch again at once.
        self.linger = linger
        self.redelivery_delay = redelivery_delay or _backoff
        self.outage_delay = outage_delay or _outage_backoff
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._cancellable: asyncio.Future[Any] | None = None  # the fetch (or subscription) in flight
        self.applied = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self.unavailable: str | None = None  # the outage keeping this consumer from applying events, while it lasts
        self.outage_retries = 0  # attempts that met an outage (none of them a delivery)
        self._held: Sequence[Msg] = ()  # fetched, not settled yet: kept in progress through an outage
        self._excuses_kv: KeyValue | None = None

    # --- running and stopping ----------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.name}")

    async def stop(self) -> None:
        """Cancels the fetch in flight, lets the batch in hand finish (in an outage: gives it
        back), handles what the source still holds, and unsubscribes."""
        self._stopping.set()
        if self._cancellable is not None:
            self._cancellable.cancel()
        if self._task:
            try:
                await asyncio.wait_for(self._task, timeout=STOP_TIMEOUT)
            except TimeoutError:
                log.warning("consumer %s did not stop in time", self.name)

    async def rest(self, seconds: float) -> bool:
        """Waits `seconds`, or less if the consumer stops meanwhile; False when it is stopping."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False

    async def _run(self) -> None:
        await self.hooks.started()
        try:
            await self._consume()
        finally:
            await self._handle_left(await self.source.close())
            await self.hooks.stopped()

    async def _consume(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                await self.hooks.subscribing()
                if isinstance(await self._unless_stopped(self.source.open()), _Stopped):
                    return
                backoff = 0.1
                self._mark_available()
                await self._pull()
            except Exception as exc:  # noqa: BLE001 - keep consuming through outages
                if is_infrastructure_failure(exc):
                    self._mark_unavailable(exc)
                log.warning("consumer %s: %s; resubscribing in %.1fs", self.name, exc, backoff)
                await self._handle_left(await self.source.close())
                await self.rest(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _pull(self) -> None:
        while not self._stopping.is_set():
            if not await self.hooks.before_fetch():
                continue
            fetched = await self._unless_stopped(self.source.fetch(self.batch, self.fetch_timeout))
            if isinstance(fetched, _Stopped):
                return
            if fetched:
                await self._handle(fetched)
                if self.linger and len(fetched) < self.batch:
                    await self.rest(self.linger)
            else:
                await self.hooks.idle()

    async def _unless_stopped(self, step: Awaitable[T]) -> T | _Stopped:
        """`step`'s result, unless stop() cancels it first: a fetch or a subscription, where
        cancelling loses nothing (a message caught in a cancelled fetch comes back after
        `ack_wait`; see the module's docstring)."""
        task = asyncio.ensure_future(step)
        self._cancellable = task
        if self._stopping.is_set():
            task.cancel()
        try:
            await asyncio.wait({task})
        finally:
            self._cancellable = None
            task.cancel()  # this task itself cancelled: so is the step
        return _STOPPED if task.cancelled() else task.result()

    async def _handle(self, fetched: list[Any]) -> None:
        if self.message_handler is not None:
            try:
                await self.message_handler(fetched)
            except Exception:  # noqa: BLE001 - the consumer outlives one bad batch; its handler settles
                log.exception("consumer %s: a batch of %d message(s) failed", self.name, len(fetched))
        elif self.batch_handler is not None:
            await self._apply_batched(fetched)
        else:
            await self._apply_each(fetched)

    async def _handle_left(self, left: list[Any]) -> None:
        """What a core source still held when its subscription closed (a stream source holds none)."""
        for start in range(0, len(left), self.batch):
            await self._handle(left[start : start + self.batch])

    # --- stream events: one at a time, or a batch per transaction -------------------------------

    async def _apply_each(self, messages: list[Msg]) -> None:
        try:
            for index, msg in enumerate(messages):
                self._held = messages[index:]
                await self._process(msg)
        except (_Released, GiveBack) as exc:
            await self._give_back(self._held, exc)
        finally:
            self._held = ()

    async def _apply_batched(self, messages: list[Msg]) -> None:
        received = [(msg, to_received_event(msg)) for msg in messages]
        suspects = [msg for msg, event in received if self._past_the_limit(event)]
        batch = [(msg, event) for msg, event in received if not self._past_the_limit(event)]
        try:
            for index, msg in enumerate(suspects):  # delivered past the limit: the crash-loop guard decides, alone
                self._held = [*suspects[index:], *(m for m, _ in batch)]
                await self._process(msg)
            if batch:
                self._held = [msg for msg, _ in batch]
                await self._apply_fetched(batch)
        except (_Released, GiveBack) as exc:
            await self._give_back(self._held, exc)
        finally:
            self._held = ()

    def _past_the_limit(self, event: ReceivedEvent) -> bool:
        return self.max_deliveries is not None and event.delivery_count > self.max_deliveries

    async def _apply_fetched(self, batch: list[tuple[Msg, ReceivedEvent]]) -> None:
        spans = [start_process_span(self.name, msg, event) for msg, event in batch]
        try:
            fresh = await self._through_outages(lambda: self._apply_new_events([event for _, event in batch]))
        except (_Released, GiveBack):
            raise
        except Exception:  # noqa: BLE001 - one event may be the cause: find it by applying them alone
            log.warning("consumer %s: a batch of %d failed; applying its events one at a time", self.name, len(batch))
            for span in spans:
                span.end()
            for index, (msg, _) in enumerate(batch):
                self._held = [m for m, _ in batch[index:]]
                await self._process(msg)
            return
        finally:
            for span in spans:
                if span.is_recording():
                    span.end()
        for msg, _ in batch:
            await msg.ack()
        if fresh:
            await self.hooks.applied(fresh)

    async def _process(self, msg: Msg) -> None:
        event = to_received_event(msg)
        with trace.use_span(start_process_span(self.name, msg, event), end_on_exit=True):
            try:
                applied = await self._through_outages(lambda: self._handle_event(event))
            except (_Released, GiveBack):
                raise
            except _Unprocessed as exc:
                await self._dead_letter(msg, event, str(exc))
                return
            except Exception as exc:
                log.exception("consumer %s failed on event %s", self.name, event.event_id)
                await self._failed(msg, event, exc)
                return
            await msg.ack()
        if applied:
            await self.hooks.applied([event])

    async def _handle_event(self, event: ReceivedEvent) -> bool:
        """Applies the event, unless it looks like one whose deliveries crashed the process."""
        if self._past_the_limit(event):
            assert self.max_deliveries is not None
            deliveries = await self._deliveries(event)
            if deliveries > self.max_deliveries:
                if await self._seen(event):
                    self.duplicates += 1  # applied; only its acks were lost
                    return False
                raise _Unprocessed(f"still unprocessed after {deliveries - 1} deliveries")
        return await self.apply_once(event)

    async def _failed(self, msg: Msg, event: ReceivedEvent, exc: Exception) -> None:
        """The event's own failure: redelivered later, or dead-lettered at the limit."""
        deliveries = event.delivery_count
        if self.max_deliveries is not None and deliveries >= self.max_deliveries:
            try:
                deliveries = await self._deliveries(event)
            except Exception:  # noqa: BLE001 - NATS trouble: decided at the next delivery
                log.warning("consumer %s: excused deliveries of %s unknown", self.name, event.event_id, exc_info=True)
                deliveries = 0
        if self.max_deliveries is not None and deliveries >= self.max_deliveries:
            await self._dead_letter(msg, event, f"{type(exc).__name__}: {exc}")
        else:
            await msg.nak(delay=self.redelivery_delay(max(deliveries, 1)))

    async def apply_once(self, event: ReceivedEvent) -> bool:
        """Applies the event unless this consumer already has; True when applied now."""
        if self.batch_handler is not None:
            return bool(await self._apply_new_events([event]))
        assert self.handler is not None and self.writer is not None
        applied = await self.writer.run(lambda tx: self._apply_one(tx, event))
        if applied:
            self.applied += 1
        else:
            self.duplicates += 1
        return applied

    def _apply_one(self, tx: Tx, event: ReceivedEvent) -> bool:
        if self.inbox:
            if tx.connection.execute(_SEEN, {"consumer": self.name, "event_id": event.event_id}).first() is not None:
                return False
            tx.insert(INBOX, [{"consumer": self.name, "event_id": event.event_id, "processed_at": datetime.now(UTC)}])
        assert self.handler is not None
        self.handler(tx, event)
        return True

    async def apply_batch(self, events: Sequence[ReceivedEvent]) -> int:
        """Applies, in one transaction, the events this consumer has not seen yet; how many."""
        return len(await self._apply_new_events(events))

    async def _apply_new_events(self, events: Sequence[ReceivedEvent]) -> list[ReceivedEvent]:
        assert self.writer is not None
        fresh = await self.writer.run(lambda tx: self._apply_new(tx, events))
        self.applied += len(fresh)
        self.duplicates += len(events) - len(fresh)
        return fresh

    def _apply_new(self, tx: Tx, events: Sequence[ReceivedEvent]) -> list[ReceivedEvent]:
        assert self.batch_handler is not None
        fresh = list(events)
        if self.inbox:
            fresh = _unseen(tx.connection, self.name, events)
            now = datetime.now(UTC)
            tx.insert(INBOX, [{"consumer": self.name, "event_id": e.event_id, "processed_at": now} for e in fresh])
        if fresh:
            self.batch_handler(tx, fresh)
        return fresh

    # --- outages ---------------------------------------------------------------------------------

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
        return not await self.rest(self.outage_delay(retry))

    def _mark_unavailable(self, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if self.unavailable is None:
            log.warning(
                "consumer %s: %s; holding %d event(s) and trying again until it is back (not counted as deliveries)",
                self.name, reason, len(self._held),
            )  # fmt: skip
        self.unavailable = reason[:500]

    def _mark_available(self) -> None:
        if self.unavailable is not None:
            log.warning("consumer %s: applying events again after %s", self.name, self.unavailable)
            self.unavailable = None

    async def _give_back(self, messages: Sequence[Msg], why: _Released | GiveBack) -> None:
        """Gives the held messages back to the stream, each redelivery excused first: stopping
        mid-outage, or the handler said GiveBack."""
        if self.max_deliveries is not None:  # excuses are read only at the limit
            for msg in messages:
                try:
                    await self._excuse(msg)
                except Exception:  # noqa: BLE001 - then that redelivery counts, as after a crash
                    log.warning("consumer %s: could not excuse stream message %d", self.name, _stream_seq(msg), exc_info=True)
        for msg in messages:
            with contextlib.suppress(Exception):
                await msg.nak()
        if isinstance(why, GiveBack):
            log.warning("consumer %s: %d event(s) given back: %s", self.name, len(messages), why)
            await self.hooks.gave_back(why)
        else:
            log.warning("consumer %s stopped during an outage: %d event(s) given back", self.name, len(messages))

    # --- deliveries, excuses and dead letters ----------------------------------------------------

    @property
    def _js(self) -> JetStreamContext:
        assert isinstance(self.source, JetStreamSource)
        return self.source.js

    async def _deliveries(self, event: ReceivedEvent) -> int:
        """Deliveries that count against the event: JetStream's, less those excused."""
        return event.delivery_count - await self._excused(event.stream_seq)

    async def _excuses(self) -> KeyValue:
        if self._excuses_kv is None:
            try:
                self._excuses_kv = await self._js.key_value(EXCUSES_BUCKET)
            except BucketNotFoundError:
                assert isinstance(self.source, JetStreamSource)
                replicas = (await self._js.stream_info(self.source.stream)).config.num_replicas or 1
                config = KeyValueConfig(bucket=EXCUSES_BUCKET, history=1, ttl=_EXCUSE_TTL, replicas=replicas)
                self._excuses_kv = await self._js.create_key_value(config)
        return self._excuses_kv

    async def _excused(self, stream_seq: int) -> int:
        kv = await self._excuses()
        try:
            return int((await kv.get(f"{self.name}.{stream_seq}")).value or b"0")
        except (KeyNotFoundError, KeyDeletedError):
            return 0

    async def _excuse(self, msg: Msg) -> None:
        seq = _stream_seq(msg)
        await (await self._excuses()).put(f"{self.name}.{seq}", str(await self._excused(seq) + 1).encode())

    async def _seen(self, event: ReceivedEvent) -> bool:
        if not self.inbox or self._reader is None:
            return False  # nothing to tell an applied event by
        seen = {"consumer": self.name, "event_id": event.event_id}
        return await self._reader.run(lambda conn: conn.execute(_SEEN, seen).first() is not None)

    async def _dead_letter(self, msg: Msg, event: ReceivedEvent, reason: str) -> None:
        """Parks the event on the dead-letter subject with an alert; only then lets it go."""
        dead_subject = subject("deadletter", self.name)
        # Keyed by the stream message: parking it again (e.g. the alert failed) stores it once,
        # while a replayed copy that fails again is parked anew.
        parking = f"{self.name}:{event.event_id}:{event.stream_seq}"
        headers = {
            **{k: v for k, v in event.headers.items() if not k.startswith("Rogatory-")},
            "Nats-Msg-Id": f"dead:{parking}",
            "Rogatory-Dead-Letter-Consumer": self.name,
            "Rogatory-Dead-Letter-Subject": event.subject,
            "Rogatory-Dead-Letter-Reason": reason[:500],
            "Rogatory-Deliveries": str(event.delivery_count),
        }
        now = datetime.now(UTC)
        alert = alert_events_pb2.EventDeadLettered(
            consumer=self.name,
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
            event_id=alert_id, event_type=DEAD_LETTERED.type, occurred_at=now, source=f"rogatory/consumer/{self.name}",
            traceparent=event.headers.get("traceparent", ""), tracestate=event.headers.get("tracestate", ""),
        )  # fmt: skip
        try:
            await self._js.publish(dead_subject, msg.data, headers=headers)
            await self._js.publish(
                DEAD_LETTERED.subject.format(consumer=self.name), alert.SerializeToString(), headers=alert_headers
            )
        except Exception:  # noqa: BLE001 - NATS away: keep the message, it comes back
            log.exception("consumer %s could not dead-letter event %s", self.name, event.event_id)
            await msg.nak(delay=self.redelivery_delay(event.delivery_count))
            return
        log.error("consumer %s dead-lettered event %s (%s): %s", self.name, event.event_id, event.event_type, reason)
        self.dead_lettered += 1
        await msg.term()


def _unseen(conn: Connection, durable: str, events: Sequence[ReceivedEvent]) -> list[ReceivedEvent]:
    """The events not yet in `durable`'s inbox (the first copy of any repeated in the batch)."""
    ids = list(dict.fromkeys(event.event_id for event in events))
    taken = set(conn.execute(_SEEN_ANY, {"consumer": durable, "event_ids": ids}).scalars())
    fresh = []
    for event in events:
        if event.event_id not in taken:
            taken.add(event.event_id)
            fresh.append(event)
    return fresh


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


async def _quietly(closing: Awaitable[object]) -> None:
    try:
        await closing
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
