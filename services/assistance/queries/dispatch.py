"""The fan-out of a property query: one request per agency, over core NATS, sent until answered.

The agency rows written with the query (`property_query_agency`, `sent_at` NULL) are the
fan-out's transactional outbox: they commit with the query or not at all. Right after the
commit the handlers hand the new query to this dispatcher, which publishes every request
on the agency's own subject (`rogatory.direct.v1.query.{court}.{agency}.requested`, NATS
reply-to = the agency's reply subject), flushes (a PING round trip: the server has them
all). The rows were written with `sent_at` NULL, "sent with the query", so the happy
path writes nothing more.

Why core NATS and not the stream: a 1,000-agency query would be 1,000 stored (and, with
`sync_interval: always`, fsynced) JetStream messages, and as many acks, for requests whose
durable record is already the agency rows. Delivery is made reliable here instead: every
`poll_interval` the dispatcher sends the request again to each agency of a running query
that has not answered within `resend_after` of the last send (also when the first send
never happened: a crash between commit and publish), and records when. An agency
answers each copy the same way; the first reply stored wins, a later one is refused as a
second reply. Agencies that are down for the whole query time out at its deadline.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from nats.aio.client import Client as NATS
from opentelemetry.trace import SpanKind

from assistance.queries import AgencyResult, PropertyQuery
from services.assistance.queries import store
from services.assistance.queries.handlers import PROPERTY_QUERY, Fanout, reply_subject, request_subject
from services.assistance.queries.messages import RequestPayloads
from services.contract.events import QUERY_REQUESTED
from services.plumbing.telemetry import context_from_headers, current_trace_headers, tracer
from services.plumbing.unit_of_work import Reader, Writer

log = logging.getLogger(__name__)
_tracer = tracer(__name__)


@dataclass
class RequestDispatcher:
    writer: Writer  # records a resend in the agencies' rows
    reader: Reader
    nc: NATS
    source: str = "rogatory/assistance"
    poll_interval: float = 1.0
    flush_timeout: float = 10.0
    resend_after: timedelta = timedelta(seconds=120)  # a pending agency is asked again this often
    resend_batch: int = 5000
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    sent: int = 0
    resent: int = 0
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
        next_resend = 0.0
        loop = asyncio.get_running_loop()
        while True:
            while self._queue:
                fanout = self._queue.pop(0)
                try:
                    await self.publish(fanout)
                except Exception as exc:  # noqa: BLE001 - NATS or database away: resend() sends them later
                    log.warning("fan-out of %s not confirmed (%s); will retry", fanout.query.name, exc)
            if self._stopping.is_set():
                return
            if loop.time() >= next_resend:
                try:
                    await self.resend()
                except Exception as exc:  # noqa: BLE001 - retried next poll
                    log.warning("property-query resend: %s", exc)
                next_resend = loop.time() + self.poll_interval
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
            except TimeoutError:
                pass
            self._wake.clear()

    async def publish(self, fanout: Fanout, *, record: bool = False) -> int:
        """Sends every request of the fan-out and flushes; `record` notes the time in the agencies' rows (a resend)."""
        query, results = fanout.query, fanout.results
        if not results:
            return 0
        parent = {"traceparent": fanout.traceparent, "tracestate": fanout.tracestate} if fanout.traceparent else {}
        with _tracer.start_as_current_span(
            f"send {QUERY_REQUESTED.subject.filter(court=query.court_id)}",
            context=context_from_headers(parent),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "send",
                "messaging.batch.message_count": len(results),
                PROPERTY_QUERY: query.name,
            },
        ):
            await self._send_all(query, results, current_trace_headers())  # agencies' spans become children
            await self.nc.flush(timeout=self.flush_timeout)
        if record:
            agency_ids, at = [r.agency_id for r in results], self.clock()
            await self.writer.run(lambda tx: store.mark_sent(tx.connection, query.id, agency_ids, at))
        self.sent += len(results)
        return len(results)

    async def _send_all(self, query: PropertyQuery, results: Sequence[AgencyResult], trace: dict[str, str]) -> None:
        # No envelope headers: the subject says what and to whom, the payload names the query
        # and the agency, and headers double the cost of each of the 1,000 publishes (and of
        # parsing them). The trace context rides along when the trace is sampled, so the
        # agencies' spans join the court's trace.
        headers = _sampled_trace(trace)
        payloads = RequestPayloads(query)
        for index, result in enumerate(results, start=1):
            reply_to = reply_subject(result.agency_id, query.court_id)
            await self.nc.publish(
                request_subject(query.court_id, result.agency_id),
                payloads.for_agency(result.agency_id, result.categories, reply_to),
                reply=reply_to,
                headers=headers,
            )
            if index % 64 == 0:
                await asyncio.sleep(0)  # let the NATS flusher send what is built: agencies start sooner

    async def resend(self) -> int:
        """Sends the request again to every pending agency of a running query that is due; returns how many."""
        if not self.nc.is_connected:
            return 0  # the client would only buffer each pass's copies until it reconnects, then send them all
        now = self.clock()
        due = await self.reader.run(
            lambda conn: store.unanswered_results(conn, now=now, sent_before=now - self.resend_after, limit=self.resend_batch)
        )
        total = 0
        for query_id, results in due.items():
            stored = await self.reader.run(functools.partial(store.query_by_id, query_id=query_id))
            if stored is None:
                continue
            log.info("sending %d pending requests of %s again", len(results), stored.query.name)
            total += await self.publish(Fanout(stored.query, results, stored.traceparent, stored.tracestate), record=True)
        self.resent += total
        return total


def _sampled_trace(trace: dict[str, str]) -> dict[str, str] | None:
    """W3C traceparent (and tracestate) when the trace is sampled (bit 0 of the flags); else None."""
    try:
        sampled = int(trace.get("traceparent", "")[-2:], 16) & 1
    except ValueError:  # no trace context (or not W3C)
        return None
    if not sampled:
        return None
    return {k: v for k, v in trace.items() if k in ("traceparent", "tracestate") and v}
