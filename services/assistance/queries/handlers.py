"""Property-query command handlers: create (fan-out rows in the outbox), read, replies in batches, timeouts.

Every write is one unit of the write door (services/plumbing/unit_of_work.py): the state
change and its events commit in one transaction (transactional outbox). The query row is a
versioned aggregate (services/plumbing/aggregate.py, `store.TABLE`): created once per request
key, in the creating call's trace. The fan-out of a query is one insert of its agency rows,
whatever the number of agencies; replies, from gRPC one at a time or from the NATS consumer a
fetched batch at a time, go through `apply_replies`, which locks the queries and results it
touches, records every valid reply, keeps each query's pending count and completes a query
when it reaches zero. A unit that fails is rolled back alone (the door gives each its own
savepoint when units share a transaction), so a batch of replies needs no retry of its own.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from rogatory.events.v1 import query_events_pb2 as events_pb2
from sqlalchemy.engine import Connection

from assistance.queries import (
    AgencyReply,
    AgencyResult,
    CaseFacts,
    CreateQuery,
    Debtor,
    PropertyQuery,
    QueryEvent,
    answer,
    check_addressed,
    check_reader,
    create_query,
    parse_query_name,
    seen_at,
    settle,
    time_out,
)
from delegation.calendar import CHINA_TZ, WorkingCalendar
from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from registry.errors import DomainError, NotFound
from services.assistance.queries import store
from services.assistance.queries.messages import query_to_proto
from services.assistance.queries.store import QueryFilter, StoredQuery, StoredResult
from services.contract.case_replica import replica_row
from services.contract.events import QUERY_COMPLETED, QUERY_CREATED, QUERY_REPLY, QUERY_REQUESTED
from services.contract.span_attributes import CASE_NAME, COURT
from services.plumbing.aggregate import Aggregates
from services.plumbing.db import Database
from services.plumbing.events import Event, trace_columns
from services.plumbing.idempotency import RequestKey
from services.plumbing.ids import new_id
from services.plumbing.unit_of_work import Reader, Tx, Writer

log = logging.getLogger(__name__)

#: The span attribute naming a property query (the dispatcher's send spans carry it too).
PROPERTY_QUERY = "rogatory.property_query"


@functools.lru_cache(maxsize=65536)  # a fan-out builds one per agency; validating tokens each time adds up
def request_subject(court_id: str, agency_id: str) -> str:
    """`rogatory.direct.v1.query.{court}.{agency}.requested`: an agency subscribes to `query.*.{agency}.requested`.

    Core NATS, not the stream: the agency rows are the requests' durable record, and the
    dispatcher sends a request again until the agency answers (docs/property-queries.md).
    """
    return QUERY_REQUESTED.subject.format(court=court_id, agency=agency_id)


@functools.lru_cache(maxsize=65536)
def reply_subject(agency_id: str, court_id: str) -> str:
    """`rogatory.direct.v1.query-reply.{agency}.{court}`: an agency may publish only under its own id."""
    return QUERY_REPLY.subject.format(agency=agency_id, court=court_id)


@dataclass(frozen=True)
class Fanout:
    """A committed query and the agencies to send its request to, with the creating call's trace context."""

    query: PropertyQuery
    results: Sequence[AgencyResult]
    traceparent: str = ""
    tracestate: str = ""


class IncomingReply(NamedTuple):  # one per agency reply, built as it arrives
    """A reply as received: the query it names, the agency (from the credential or subject) and the typed items."""

    query_name: str
    reply: AgencyReply
    record: bytes  # serialized AgencyQueryResult with the items


@dataclass(frozen=True)
class QueryView:
    stored: StoredQuery
    query: PropertyQuery  # as seen now (read-time timeout applied)
    results: list[StoredResult]


@dataclass
class QueryHandlers:
    writer: Writer
    reader: Reader
    courts: CourtCatalog
    agencies: AgencyCatalog
    calendar: WorkingCalendar = field(default_factory=lambda: WorkingCalendar.default().with_weekend_fallback())
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    id_factory: Callable[[], str] = new_id
    # Publishes a committed query's requests (RequestDispatcher.submit); None leaves them
    # unsent in the agency rows, for a dispatcher's recovery pass to find.
    dispatch: Callable[[Fanout], None] | None = None
    #: The query aggregate's create-once and reads, through the write and read doors.
    queries: Aggregates[PropertyQuery, StoredQuery] = field(init=False)

    def __post_init__(self) -> None:
        self.queries = Aggregates(
            self.writer, self.reader, store.TABLE, "property_query", query_attributes, _query_of, _traceparent_of
        )

    @property
    def db(self) -> Database:
        """The service's database, for tests and tools that look at its rows."""
        return self.writer.db

    def default_deadline(self, now: datetime) -> datetime:
        """The same time on the next working day (China time): agencies answer within a working day."""
        local = now.astimezone(CHINA_TZ)
        day = self.calendar.next_working_day(local.date())
        return datetime.combine(day, local.timetz()).astimezone(UTC)

    # --- create ------------------------------------------------------------------------------

    async def create(self, command: CreateQuery, request: RequestKey | None = None) -> StoredQuery:
        """Starts a query; a retry of the same request returns the first answer.

        The unit writes the query, its agency rows (the fan-out's outbox) and the `created`
        event; after the commit the dispatcher publishes the requests.
        """
        fresh: list[Fanout] = []

        def write(tx: Tx) -> StoredQuery:
            conn = tx.connection
            facts = _facts(replica_row(conn, command.case))
            query, results, events = create_query(
                command,
                self.courts,
                self.agencies,
                facts,
                self.clock(),
                query_id=self.id_factory(),
                default_deadline=self.default_deadline,
            )
            seq = store.insert_query(conn, query, results)
            tx.emit(self._created_event(query))
            fresh.append(Fanout(query, results, **trace_columns()))
            return StoredQuery(seq, query)

        created = await self.queries.create(write, request=request)
        if fresh and fresh[-1].query.id == created.query.id and self.dispatch is not None:
            self.dispatch(fresh[-1])
        return created

    # --- read ----------------------------------------------------------------------------------

    async def get(self, name: str, court_id: str, *, with_results: bool = True) -> QueryView:
        check_reader(court_id, name)
        parsed = parse_query_name(name)
        assert parsed is not None

        def read(conn: Connection) -> tuple[StoredQuery, list[StoredResult]]:
            stored = store.query_by_id(conn, parsed[1])
            if stored is None or stored.query.court_id != court_id:
                raise NotFound("property query", name)
            return stored, store.results_of(conn, stored.query.id) if with_results else []

        stored, results = await self.reader.run(read)
        return self._view(stored, results)

    async def list(self, where: QueryFilter, after_seq: int, limit: int) -> list[QueryView]:
        found = await self.reader.run(lambda conn: store.list_queries(conn, where, after_seq, limit))
        return [self._view(s, []) for s in found]

    def _view(self, stored: StoredQuery, results: list[StoredResult]) -> QueryView:
        query, seen = seen_at(stored.query, [r.result for r in results], self.clock())
        if seen and any(a is not b.result for a, b in zip(seen, results, strict=True)):
            results = [StoredResult(a, b.record) for a, b in zip(seen, results, strict=True)]
        return QueryView(stored, query, results)

    # --- replies ---------------------------------------------------------------------------------

    async def reply(self, incoming: IncomingReply, request: RequestKey | None = None) -> StoredResult:
        """One agency's reply over gRPC: raises the domain error when it is refused. A retry of
        the same request gets the result as recorded."""

        def apply(tx: Tx) -> StoredResult:
            [outcome] = self.apply_replies(tx, [incoming])
            if isinstance(outcome, DomainError):
                raise outcome
            return outcome

        def recorded(conn: Connection, _resource: str) -> StoredResult:
            earlier = store.result_of(conn, _query_id(incoming.query_name), incoming.reply.agency_id)
            assert earlier is not None, f"the request log names a reply to {incoming.query_name}, which is gone"
            return earlier

        return await self.writer.run(apply, request=request, resource_of=lambda _: incoming.query_name, replay=recorded)

    async def record_replies(self, replies: Sequence[IncomingReply]) -> list[StoredResult | DomainError]:
        """Applies a batch of replies as one unit of the write door; one outcome per reply, in order."""
        return await self.writer.run(lambda tx: self.apply_replies(tx, replies))

    def apply_replies(self, tx: Tx, replies: Sequence[IncomingReply]) -> list[StoredResult | DomainError]:
        """Records every valid reply of the batch in the unit `tx`; one outcome per reply, in order.

        A refused reply (unknown query, agency not addressed, second reply, after the deadline,
        malformed) is returned as its DomainError and changes nothing.
        """
        conn = tx.connection
        now = self.clock()
        keys = [(_query_id(r.query_name), r.reply.agency_id) for r in replies]
        named = [(q, a) for q, a in keys if q]  # replies naming no query are refused below
        queries = store.queries_for_update(conn, {q for q, _ in named})
        current = store.results_for_update(conn, named)
        outcomes: list[StoredResult | DomainError] = []
        recorded: list[tuple[AgencyResult, bytes]] = []
        finished: Counter[str] = Counter()
        for incoming, key in zip(replies, keys, strict=True):
            stored = queries.get(key[0])
            try:
                result = check_addressed(
                    incoming.reply.agency_id,
                    incoming.query_name,
                    current.get(key) if stored and stored.query.name == incoming.query_name else None,
                )
                assert stored is not None
                answered = answer(stored.query, result, incoming.reply, now)
            except DomainError as refused:
                outcomes.append(refused)
                continue
            current[key] = answered  # a second reply in the same batch sees the first
            recorded.append((answered, incoming.record))
            finished[key[0]] += 1
            outcomes.append(StoredResult(answered, incoming.record))
        store.record_results(conn, recorded)
        events: list[QueryEvent] = []
        progress: list[PropertyQuery] = []
        for query_id, count in finished.items():
            settled, completed = settle(queries[query_id].query, count, now)
            progress.append(settled)
            events += completed
        store.save_progress(conn, *progress)
        self._emit_completed(tx, events)
        return outcomes

    # --- timeouts ------------------------------------------------------------------------------

    async def time_out_due(self, limit: int = 100) -> int:
        """Marks pending agencies of every query past its deadline timed out; returns the queries completed."""
        now = self.clock()
        due = await self.reader.run(lambda conn: store.due_query_ids(conn, now, limit))
        completed = 0
        for query_id in due:
            if await self.writer.run(functools.partial(self._time_out, query_id=query_id, now=now)):
                completed += 1
        return completed

    def _time_out(self, tx: Tx, *, query_id: str, now: datetime) -> bool:
        conn = tx.connection
        stored = store.query_by_id(conn, query_id, for_update=True)
        if stored is None:
            return False
        pending = [r.result for r in store.results_of(conn, query_id) if not r.result.status.final]
        query, timed_out, events = time_out(stored.query, pending, now)
        if not events:
            return False  # completed meanwhile by its last reply
        store.time_out_pending(conn, query_id)
        store.TABLE.update(conn, query, expected_version=stored.query.version)
        self._emit_completed(tx, events)
        log.info("property query %s: %d agencies timed out", query.name, len(timed_out))
        return True

    # --- events --------------------------------------------------------------------------------

    def _created_event(self, query: PropertyQuery) -> Event:
        created = events_pb2.PropertyQueryCreated(property_query=query_to_proto(query))
        return QUERY_CREATED.event(created, occurred_at=query.created_at, court=query.court_id)

    def _emit_completed(self, tx: Tx, events: Sequence[QueryEvent]) -> None:
        conn = tx.connection
        for event in events:
            query = event.query
            summary = store.summary_of(conn, query)
            payload = events_pb2.PropertyQueryCompleted(property_query=query_to_proto(query, summary))
            when = query.completed_at or self.clock()
            tx.emit(QUERY_COMPLETED.event(payload, occurred_at=when, court=query.court_id))


def query_attributes(query: PropertyQuery) -> dict[str, str]:
    """What the spans about a query carry."""
    return {PROPERTY_QUERY: query.name, CASE_NAME: query.case_name, COURT: query.court_id}


def _query_of(stored: StoredQuery) -> PropertyQuery:
    return stored.query


def _traceparent_of(stored: StoredQuery) -> str:
    return stored.traceparent


@functools.lru_cache(maxsize=1024)  # every reply of a batch names one of a few queries
def _query_id(name: str) -> str:
    parsed = parse_query_name(name)
    return parsed[1] if parsed else ""


def _facts(replica: dict | None) -> CaseFacts | None:  # type: ignore[type-arg]
    if replica is None:
        return None
    respondents = tuple(
        Debtor(r.get("display_name", ""), r.get("kind", ""), r.get("id_number_masked", ""))
        for r in json.loads(replica["respondents"] or "[]")
    )
    return CaseFacts(replica["court_id"], respondents)
