"""The outbox relay: publishes committed outbox rows to JetStream, then marks them sent.

At-least-once: a crash between publish and mark re-publishes the row, and JetStream drops
the copy because `Nats-Msg-Id` is the event id (inside the duplicate window). Rows are
published in `seq` order; consumers must not assume more than per-subject order.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanKind
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from services.plumbing.db import Database
from services.plumbing.events import envelope_headers
from services.plumbing.metrics import LAG_BUCKETS, meter
from services.plumbing.outbox import OUTBOX, Outbox
from services.plumbing.telemetry import context_from_headers, current_trace_headers, event_span_attributes, tracer
from services.plumbing.times import utc

log = logging.getLogger(__name__)
_tracer = tracer(__name__)
_meter = meter(__name__)
_relays: weakref.WeakSet[OutboxRelay] = weakref.WeakSet()
RELAY_LAG = _meter.create_histogram(
    "rogatory.outbox.relay_lag",
    unit="s",
    description="From an event's occurrence (its commit) to its publication acknowledged by JetStream",
    explicit_bucket_boundaries_advisory=LAG_BUCKETS,
)


def _observe_backlog(_options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(relay.backlog, {"rogatory.source": relay.source}) for relay in list(_relays)]


_meter.create_observable_gauge(
    "rogatory.outbox.backlog",
    callbacks=[_observe_backlog],
    unit="{event}",
    description="Outbox rows not yet published, as the relay last counted them",
)


class NatsAway(ConnectionError):
    """The relay does not publish while the NATS connection is down."""


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        js: JetStreamContext,
        outbox: Outbox,
        *,
        source: str,
        batch_size: int = 256,
        poll_interval: float = 1.0,
        publish_timeout: float = 5.0,
        mark_interval: float = 0.1,
        connected: Callable[[], bool] = lambda: True,
    ):
        self.db = db
        self.js = js
        self.connected = connected  # whether the NATS connection is up (the host's `nc.is_connected`)
        self.outbox = outbox
        self.source = source
        self.batch_size = batch_size
        self.poll_interval = poll_interval  # safety net; commits wake the relay at once
        self.publish_timeout = publish_timeout
        # SQLite: published rows are marked sent at most this often, in one write, so the
        # marking does not break the request writers' group commits into small batches.
        self.mark_interval = mark_interval
        self._mark_now = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.backlog = 0  # unsent rows, counted when a pass leaves some behind (or fails)
        # SQLite: rows published up to this seq; those not yet marked sent wait in _unmarked.
        self._published_through = 0
        self._unmarked: list[int] = []
        self._marker: asyncio.Task[None] | None = None
        # Built once: a select built per pass costs more CPU than SQLite takes to run it, and
        # at low rates every event is a pass of its own.
        unsent = select(OUTBOX).where(OUTBOX.c.sent_at.is_(None)).order_by(OUTBOX.c.seq).limit(batch_size)
        self._unsent_after = unsent.where(OUTBOX.c.seq > bindparam("after"))  # SQLite, one relay
        self._unsent_unlocked = unsent.with_for_update(skip_locked=True)  # PostgreSQL, replicas
        _relays.add(self)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.source}")

    async def stop(self, *, flush: bool = True) -> None:
        self._stopping.set()
        self.outbox.new_rows.set()
        if self._task:
            await self._task
        if flush:
            try:
                await asyncio.wait_for(self.drain(), timeout=10)
            except Exception as exc:  # noqa: BLE001 - shutdown must go on; rows stay for next start
                log.warning("outbox not fully flushed on shutdown: %s", exc)

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                sent = await self.publish_batch()
                backoff = 0.1
                if sent == self.batch_size:
                    await self._count_backlog()
                    continue  # more rows are waiting
                self.backlog = 0  # the pass read every unsent row there was
            except Exception as exc:  # noqa: BLE001 - NATS or DB outage: keep the rows, retry
                log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
                await self._count_backlog()
                await self._wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            await self._wait(self.poll_interval)

    async def _count_backlog(self) -> None:
        try:
            async with self.db.read() as conn:
                unsent = select(func.count()).select_from(OUTBOX).where(OUTBOX.c.sent_at.is_(None))
                self.backlog = int((await conn.execute(unsent)).scalar_one())
        except Exception:  # noqa: BLE001 - the database may be the outage; keep the last count
            log.debug("outbox backlog not counted", exc_info=True)

    async def _wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.outbox.new_rows.wait(), timeout=seconds)
        except TimeoutError:
            pass
        self.outbox.new_rows.clear()

    async def drain(self) -> int:
        """Publishes until the outbox is empty and every row is marked sent; returns how many
        rows were sent."""
        total = 0
        while sent := await self.publish_batch():
            total += sent
        await self.mark_published()
        return total

    async def publish_batch(self) -> int:
        if self.db.is_sqlite:
            return await self._publish_batch_single_writer()
        return await self._publish_batch_locked()

    async def _publish_batch_single_writer(self) -> int:
        # One relay per SQLite file: read, publish, and mark sent in the background, so that
        # request writes never wait for NATS acks and the next batch is not held up behind
        # request writers for the write lock. Rows published but not yet marked are skipped
        # by seq (SQLite commits rows in seq order); after a crash a new relay publishes them
        # again and JetStream drops the copies (Nats-Msg-Id).
        after = {"after": self._published_through}
        rows = await self.db.run_read(lambda conn: conn.execute(self._unsent_after, after).mappings().all())
        if not rows:
            return 0
        await self._publish_all(rows)
        self._published_through = rows[-1]["seq"]
        self._unmarked.extend(row["seq"] for row in rows)
        if self._marker is None or self._marker.done():
            self._marker = asyncio.create_task(self._mark_in_background(), name=f"outbox-marker-{self.source}")
        self.published += len(rows)
        return len(rows)

    async def _mark_in_background(self) -> None:
        try:
            await asyncio.wait_for(self._mark_now.wait(), timeout=self.mark_interval)
        except TimeoutError:
            pass
        try:
            await self._mark_unmarked()
        except Exception as exc:  # noqa: BLE001 - the rows stay in _unmarked; the next batch tries again
            log.warning("outbox relay: published rows not marked sent yet: %s", exc)

    async def mark_published(self) -> None:
        """Marks the rows published so far as sent (SQLite) now, without waiting for the interval."""
        if self._marker is not None and not self._marker.done():
            self._mark_now.set()
            await asyncio.wait([self._marker])
            self._mark_now.clear()
        await self._mark_unmarked()

    async def _mark_unmarked(self) -> None:
        while self._unmarked:
            seqs, self._unmarked = self._unmarked, []
            try:
                await self.db.run_transaction(functools.partial(_mark_sent, seqs=seqs))
            except BaseException:
                self._unmarked[:0] = seqs
                raise

    async def _publish_batch_locked(self) -> int:
        # Replicas share the outbox: each takes rows no other relay holds (SKIP LOCKED),
        # and keeps them locked until they are published and marked.
        async with self.db.transaction() as conn:
            rows = (await conn.execute(self._unsent_unlocked)).mappings().all()
            if not rows:
                return 0
            await self._publish_all(rows)
            await self._mark_sent(conn, rows)
        self.published += len(rows)
        return len(rows)

    async def _mark_sent(self, conn: AsyncConnection, rows: Sequence[Any]) -> None:
        await conn.run_sync(_mark_sent, seqs=[r["seq"] for r in rows])

    async def _publish_all(self, rows: Sequence[Any]) -> None:
        # Sent in seq order without waiting for each ack (pipelined); then every ack must arrive.
        # Only while connected: nats-py buffers what is published during an outage, so every retry
        # added a copy of each unsent row to the client's buffer, and once it was full each publish
        # that failed kept its ack future, and one of publish_async's 4,000 permits, for good —
        # after enough retries the relay waited for a permit for ever, publishing nothing more.
        acks: list[asyncio.Future[Any]] = []
        try:
            for row in rows:
                if not self.connected():
                    raise NatsAway("NATS is not connected: the rows stay in the outbox until it is back")
                acks.append(await self._send(row))
            await asyncio.wait_for(asyncio.gather(*acks), timeout=self.publish_timeout)
        except BaseException:
            for ack in acks:
                ack.cancel()  # hands its permit back; the row is published again on the next pass
            raise
        acknowledged = datetime.now(UTC)
        for row in rows:  # clamped: tests move the domain clock, which can put occurrence "later"
            RELAY_LAG.record(max(0.0, (acknowledged - utc(row["occurred_at"])).total_seconds()), {"rogatory.source": self.source})

    async def _send(self, row: Any) -> asyncio.Future[Any]:
        headers = envelope_headers(
            event_id=row["event_id"],
            event_type=row["event_type"],
            occurred_at=utc(row["occurred_at"]),
            source=self.source,
            traceparent=row["traceparent"],
            tracestate=row["tracestate"],
        )
        with _tracer.start_as_current_span(
            f"send {row['subject']}",
            context=context_from_headers(headers),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "send",
                "messaging.operation.name": "publish",
                "messaging.destination.name": row["subject"],
                "messaging.message.id": row["event_id"],
                "rogatory.event.type": row["event_type"],
            },
        ) as span:
            if span.is_recording():  # parsing the payload is for the trace alone
                span.set_attributes(event_span_attributes(row["event_type"], row["payload"]))
            headers.update(current_trace_headers())  # consumers become children of this send span
            return await self.js.publish_async(row["subject"], row["payload"], headers=headers)


_MARK_SENT = update(OUTBOX).where(OUTBOX.c.seq.in_(bindparam("seqs", expanding=True))).values(sent_at=bindparam("now"))


def _mark_sent(conn: Connection, *, seqs: list[int]) -> None:
    conn.execute(_MARK_SENT, {"seqs": seqs, "now": datetime.now(UTC)})
