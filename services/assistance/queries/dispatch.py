"""The fan-out of a property query: one request per agency, published to JetStream.

The agency rows written with the query (`property_query_agency`, `sent_at` NULL) are the
fan-out's transactional outbox: they commit with the query or not at all. Right after the
commit the handlers hand the new query to this dispatcher, which publishes every request
pipelined (`publish_async`, one wait for all acks), then marks the rows sent in one
UPDATE. A crash in between leaves rows unsent; `recover` (every `poll_interval`, and at
start) publishes them again. Every request's `Nats-Msg-Id` is `{query id}.{agency id}`, so
JetStream drops a re-sent copy inside its duplicate window, as for the generic relay.

Why not the generic outbox relay: it writes, reads back and marks rows in batches of 256,
with a span per event; a 1,000-agency query then takes four sequential read / publish /
ack / mark rounds and queues behind every other writer for each mark. Here the requests
never leave memory on the happy path, one span covers the fan-out, and the only database
work after the commit is one UPDATE.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext
from opentelemetry.trace import SpanKind
from sqlalchemy import select, update

from assistance.queries import AgencyResult, PropertyQuery, QueryState
from services.assistance.queries import store
from services.assistance.queries.handlers import REQUESTED, Fanout, reply_subject, request_subject
from services.assistance.queries.messages import requested_payload
from services.assistance.queries.store import AGENCIES, QUERIES
from services.plumbing.db import Database
from services.plumbing.events import envelope_headers, subject_filter
from services.plumbing.telemetry import context_from_headers, current_trace_headers, tracer

log = logging.getLogger(__name__)
_tracer = tracer(__name__)


@dataclass
class RequestDispatcher:
    db: Database
    js: JetStreamContext
    source: str = "rogatory/assistance"
    poll_interval: float = 1.0
    publish_timeout: float = 10.0
    recover_after: timedelta = timedelta(seconds=5)  # unsent rows younger than this are still in flight here
    sent: int = 0
    _queue: list[Fanout] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def submit(self, fanout: Fanout) -> None:
        """Call after the query's transaction committed."""
        self._queue.append(fanout)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="property-query-dispatch")

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task:
            await self._task

    async def _run(self) -> None:
        next_recovery = 0.0
        loop = asyncio.get_running_loop()
        while True:
            while self._queue:
                fanout = self._queue.pop(0)
                try:
                    await self.publish(fanout)
                except Exception as exc:  # noqa: BLE001 - NATS or database away: recover() sends them later
                    log.warning("fan-out of %s not confirmed (%s); will retry", fanout.query.name, exc)
            if self._stopping.is_set():
                return
            if loop.time() >= next_recovery:
                try:
                    await self.recover()
                except Exception as exc:  # noqa: BLE001 - retried next poll
                    log.warning("fan-out recovery: %s", exc)
                next_recovery = loop.time() + self.poll_interval
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
            except TimeoutError:
                pass
            self._wake.clear()

    async def publish(self, fanout: Fanout) -> int:
        """Publishes every request of the fan-out, waits for all acks, marks the rows sent."""
        query = fanout.query
        parent = {"traceparent": fanout.traceparent, "tracestate": fanout.tracestate} if fanout.traceparent else {}
        with _tracer.start_as_current_span(
            f"send {subject_filter('query', query.court_id, '*', 'requested')}",
            context=context_from_headers(parent),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "send",
                "messaging.batch.message_count": len(fanout.results),
                "rogatory.property_query": query.name,
            },
        ):
            trace = current_trace_headers()  # agencies' spans become children of this one
            acks = []
            for index, result in enumerate(fanout.results, start=1):
                acks.append(await self._send(query, result, trace))
                if index % 64 == 0:
                    await asyncio.sleep(0)  # let the NATS flusher send what is built: agencies start sooner
            await asyncio.wait_for(asyncio.gather(*acks), timeout=self.publish_timeout)
        async with self.db.transaction() as conn:
            await conn.execute(
                update(AGENCIES)
                .where(AGENCIES.c.query_id == query.id, AGENCIES.c.sent_at.is_(None))
                .values(sent_at=datetime.now(UTC))
            )
        self.sent += len(fanout.results)
        return len(fanout.results)

    async def _send(self, query: PropertyQuery, result: AgencyResult, trace: dict[str, str]) -> asyncio.Future[object]:
        headers = envelope_headers(
            event_id=f"{query.id}.{result.agency_id}",  # deterministic: a re-send is a JetStream duplicate
            event_type=REQUESTED,
            occurred_at=query.created_at,
            source=self.source,
            traceparent=trace.get("traceparent", ""),
            tracestate=trace.get("tracestate", ""),
        )
        payload = requested_payload(query, result.agency_id, result.categories, reply_subject(result.agency_id, query.court_id))
        return await self.js.publish_async(
            request_subject(query.court_id, result.agency_id), payload.SerializeToString(), headers=headers
        )

    async def recover(self) -> int:
        """Publishes the unsent requests of queries created more than `recover_after` ago; returns how many."""
        cutoff = datetime.now(UTC) - self.recover_after
        async with self.db.read() as conn:
            statement = (
                select(AGENCIES.c.query_id)
                .join(QUERIES, QUERIES.c.id == AGENCIES.c.query_id)
                .where(AGENCIES.c.sent_at.is_(None), QUERIES.c.create_time <= cutoff)
                .distinct()
                .limit(100)
            )
            query_ids = list((await conn.execute(statement)).scalars())
        total = 0
        for query_id in query_ids:
            async with self.db.read() as conn:
                stored = await store.query_by_id(conn, query_id)
                unsent = await store.unsent_results(conn, query_id)
            if stored is None:
                continue
            if stored.query.state is QueryState.COMPLETED:
                unsent = []  # too late to ask: the rows are just marked
            log.info("re-sending %d requests of %s", len(unsent), stored.query.name)
            total += await self.publish(Fanout(stored.query, unsent, stored.traceparent, stored.tracestate))
        return total
