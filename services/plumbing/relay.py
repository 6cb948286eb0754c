"""The outbox relay: publishes committed outbox rows to JetStream, then marks them sent.

At-least-once: a crash between publish and mark re-publishes the row, and JetStream drops
the copy because `Nats-Msg-Id` is the event id (inside the duplicate window). Rows are
published in `seq` order; consumers must not assume more than per-subject order.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext
from opentelemetry.trace import SpanKind
from sqlalchemy import select, update

from services.plumbing.db import Database
from services.plumbing.events import envelope_headers
from services.plumbing.outbox import OUTBOX, Outbox
from services.plumbing.telemetry import context_from_headers, current_trace_headers, tracer
from services.plumbing.times import utc

log = logging.getLogger(__name__)
_tracer = tracer(__name__)


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
    ):
        self.db = db
        self.js = js
        self.outbox = outbox
        self.source = source
        self.batch_size = batch_size
        self.poll_interval = poll_interval  # safety net; commits wake the relay at once
        self.publish_timeout = publish_timeout
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

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
                    continue  # more rows are waiting
            except Exception as exc:  # noqa: BLE001 - NATS or DB outage: keep the rows, retry
                log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
                await self._wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            await self._wait(self.poll_interval)

    async def _wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.outbox.new_rows.wait(), timeout=seconds)
        except TimeoutError:
            pass
        self.outbox.new_rows.clear()

    async def drain(self) -> int:
        """Publishes until the outbox is empty; returns how many rows were sent."""
        total = 0
        while sent := await self.publish_batch():
            total += sent
        return total

    async def publish_batch(self) -> int:
        async with self.db.transaction() as conn:
            query = select(OUTBOX).where(OUTBOX.c.sent_at.is_(None)).order_by(OUTBOX.c.seq).limit(self.batch_size)
            if not self.db.is_sqlite:
                query = query.with_for_update(skip_locked=True)  # replicas share the work
            rows = (await conn.execute(query)).mappings().all()
            if not rows:
                return 0
            await self._publish_all(rows)
            await conn.execute(update(OUTBOX).where(OUTBOX.c.seq.in_([r["seq"] for r in rows])).values(sent_at=datetime.now(UTC)))
        self.published += len(rows)
        return len(rows)

    async def _publish_all(self, rows: list[Any]) -> None:
        # Started in order, so they go out on the wire in seq order; acks come back together.
        results = await asyncio.gather(*(self._publish(row) for row in rows), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

    async def _publish(self, row: Any) -> None:
        headers = envelope_headers(
            event_id=row["event_id"],
            event_type=row["event_type"],
            occurred_at=utc(row["occurred_at"]),
            source=self.source,
            traceparent=row["traceparent"],
            tracestate=row["tracestate"],
        )
        parent = context_from_headers(headers)
        with _tracer.start_as_current_span(
            f"send {row['subject']}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "send",
                "messaging.destination.name": row["subject"],
                "messaging.message.id": row["event_id"],
                "rogatory.event.type": row["event_type"],
            },
        ):
            headers.update(current_trace_headers())  # consumers become children of this send span
            await self.js.publish(row["subject"], row["payload"], timeout=self.publish_timeout, headers=headers)
