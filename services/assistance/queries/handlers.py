"""Property-query command handlers: create (fan-out rows in the outbox), read, replies in batches, timeouts.

Every state change and its events commit in one transaction (transactional outbox). The
fan-out of a query is one insert of its agency rows and one of its outbox rows, whatever
the number of agencies; replies, from gRPC one at a time or from the NATS consumer a
fetched batch at a time, go through `apply_replies`, which locks the queries and results
it touches, records every valid reply, keeps each query's pending count and completes a
query when it reaches zero.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from rogatory.events.v1 import query_events_pb2 as events_pb2
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from assistance.property_categories import PropertyCategory
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
from services.plumbing.db import Database
from services.plumbing.events import Event, trace_columns
from services.plumbing.idempotency import RequestKey, earlier_resource, once, record
from services.plumbing.ids import new_id
from services.plumbing.outbox import Outbox

log = logging.getLogger(__name__)


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


class StaleAssumption(Exception):
    """A reply batch applied on cached addressees met a result that was not pending (another
    instance or a gRPC reply answered it): the batch is rolled back and applied again on the rows."""


class AddresseeCache:
    """What each recent query created here asked of which agency, {query id: {agency id:
    categories}}, for the newest `size` queries: a batch of replies to them needs no read
    of its result rows (apply_replies)."""

    def __init__(self, size: int = 128):
        self.size = size
        self._queries: OrderedDict[str, dict[str, tuple[PropertyCategory, ...]]] = OrderedDict()

    def remember(self, query_id: str, results: Sequence[AgencyResult]) -> None:
        self._queries[query_id] = {r.agency_id: r.categories for r in results}
        while len(self._queries) > self.size:
            self._queries.popitem(last=False)

    def assumed_pending(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], AgencyResult] | None:
        """The batch's results as created (PENDING), agencies not asked left out; None when a query is not known here."""
        found: dict[tuple[str, str], AgencyResult] = {}
        for query_id, agency_id in keys:
            asked = self._queries.get(query_id)
            if asked is None:
                return None
            if (categories := asked.get(agency_id)) is not None:
                found[(query_id, agency_id)] = AgencyResult(query_id, agency_id, categories)
        return found


@dataclass(frozen=True)
class QueryView:
    stored: StoredQuery
    query: PropertyQuery  # as seen now (read-time timeout applied)
    results: list[StoredResult]


@dataclass
class QueryHandlers:
    db: Database
    outbox: Outbox
    courts: CourtCatalog
    agencies: AgencyCatalog
    calendar: WorkingCalendar = field(default_factory=lambda: WorkingCalendar.default().with_weekend_fallback())
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    id_factory: Callable[[], str] = new_id
    # Publishes a committed query's requests (RequestDispatcher.submit); None leaves them
    # unsent in the agency rows, for a dispatcher's recovery pass to find.
    dispatch: Callable[[Fanout], None] | None = None
    addressees: AddresseeCache = field(default_factory=AddresseeCache)

    def default_deadline(self, now: datetime) -> datetime:
        """The same time on the next working day (China time): agencies answer within a working day."""
        local = now.astimezone(CHINA_TZ)
        day = self.calendar.next_working_day(local.date())
        return datetime.combine(day, local.timetz()).astimezone(UTC)

    # --- create ------------------------------------------------------------------------------

    async def create(self, command: CreateQuery, request: RequestKey | None = None) -> StoredQuery:
        """Starts a query; a retry of the same request returns the first answer.

        The transaction writes the query, its agency rows (the fan-out's outbox) and the
        `created` event, in one thread hop on SQLite; after the commit the dispatcher
        publishes the requests.
        """
        fresh: list[Fanout] = []

        def write(conn: Connection) -> StoredQuery:
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
            self.outbox.add_sync(conn, [self._created_event(query)])
            fresh.append(Fanout(query, results, **trace_columns()))
            return StoredQuery(seq, query)

        created = await once(self.db.run_transaction, request, write, lambda s: s.query.name, _query_named)
        self.outbox.notify()
        if fresh and fresh[-1].query.id == created.query.id:
            self.addressees.remember(created.query.id, fresh[-1].results)
            if self.dispatch is not None:
                self.dispatch(fresh[-1])
        return created

    # --- read ----------------------------------------------------------------------------------

    async def get(self, name: str, court_id: str, *, with_results: bool = True) -> QueryView:
        check_reader(court_id, name)
        parsed = parse_query_name(name)
        assert parsed is not None
        async with self.db.read() as conn:
            stored = await store.query_by_id(conn, parsed[1])
            if stored is None or stored.query.court_id != court_id:
                raise NotFound("property query", name)
            results = await store.results_of(conn, stored.query.id) if with_results else []
        return self._view(stored, results)

    async def list(self, where: QueryFilter, after_seq: int, limit: int) -> list[QueryView]:
        async with self.db.read() as conn:
            found = await store.list_queries(conn, where, after_seq, limit)
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

        def replied_before(conn: Connection) -> StoredResult | None:
            if earlier_resource(conn, request) is None:
                return None
            return store.result_of(conn, _query_id(incoming.query_name), incoming.reply.agency_id)

        if request is not None and (earlier := await self.db.run_read(replied_before)) is not None:
            return earlier
        try:
            [outcome] = await self.record_replies([incoming], [request])
        except IntegrityError:  # raced a copy of itself (replicas on PostgreSQL)
            if (earlier := await self.db.run_read(replied_before)) is not None:
                return earlier
            raise
        if isinstance(outcome, DomainError):
            raise outcome
        self.outbox.notify()
        return outcome

    async def record_replies(
        self, replies: Sequence[IncomingReply], requests: Sequence[RequestKey | None] = ()
    ) -> list[StoredResult | DomainError]:
        """Applies a batch of replies in one transaction (Database.run_transaction: one thread
        hop on SQLite); one outcome per reply, in order. Replies to a query created here are
        first applied on its cached addressees, without reading their rows. `requests`: the
        request keys of replies sent over gRPC, logged with the replies recorded."""

        def apply(conn: Connection, assume_pending: bool) -> list[StoredResult | DomainError]:
            outcomes = self.apply_replies(conn, replies, assume_pending=assume_pending)
            for outcome, incoming, request in zip(outcomes, replies, requests):  # noqa: B905 - requests may be ()
                if not isinstance(outcome, DomainError):
                    record(conn, request, incoming.query_name)
            return outcomes

        try:
            return await self.db.run_transaction(lambda conn: apply(conn, True))
        except StaleAssumption:
            return await self.db.run_transaction(lambda conn: apply(conn, False))

    def apply_replies(
        self, conn: Connection, replies: Sequence[IncomingReply], *, assume_pending: bool = False
    ) -> list[StoredResult | DomainError]:
        """Records every valid reply of the batch in the caller's transaction; one outcome per reply, in order.

        A refused reply (unknown query, agency not addressed, second reply, after the deadline,
        malformed) is returned as its DomainError and changes nothing. With `assume_pending`,
        results of queries in the addressee cache are taken as created (PENDING) instead of
        read, and the UPDATE only writes rows that still are: when one was not, it raises
        StaleAssumption to roll the batch back (only where the driver counts executemany rows).
        """
        now = self.clock()
        keys = [(_query_id(r.query_name), r.reply.agency_id) for r in replies]
        named = [(q, a) for q, a in keys if q]  # replies naming no query are refused below
        queries = store.queries_for_update(conn, {q for q, _ in named})
        assumed = None
        if assume_pending and conn.dialect.supports_sane_multi_rowcount:
            assumed = self.addressees.assumed_pending(named)
        current = assumed if assumed is not None else store.results_for_update(conn, named)
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
        if not store.record_results(conn, recorded, only_pending=assumed is not None):
            raise StaleAssumption(f"{len(recorded)} replies: a result was no longer pending")
        events: list[QueryEvent] = []
        progress: list[PropertyQuery] = []
        for query_id, count in finished.items():
            settled, completed = settle(queries[query_id].query, count, now)
            progress.append(settled)
            events += completed
        store.save_progress(conn, *progress)
        self._add_completed(conn, events)
        return outcomes

    # --- timeouts ------------------------------------------------------------------------------

    async def time_out_due(self, limit: int = 100) -> int:
        """Marks pending agencies of every query past its deadline timed out; returns the queries completed."""
        now = self.clock()
        async with self.db.read() as conn:
            due = await store.due_query_ids(conn, now, limit)
        completed = 0
        for query_id in due:
            async with self.db.transaction() as conn:
                stored = await store.query_by_id(conn, query_id, for_update=True)
                if stored is None:
                    continue
                pending = [r.result for r in await store.results_of(conn, query_id) if not r.result.status.final]
                query, timed_out, events = time_out(stored.query, pending, now)
                if not events:
                    continue  # completed meanwhile by its last reply
                await store.time_out_pending(conn, query_id)
                await conn.run_sync(store.save_progress, query)
                await conn.run_sync(self._add_completed, events)
                log.info("property query %s: %d agencies timed out", query.name, len(timed_out))
                completed += 1
        if completed:
            self.outbox.notify()
        return completed

    # --- events --------------------------------------------------------------------------------

    def _created_event(self, query: PropertyQuery) -> Event:
        created = events_pb2.PropertyQueryCreated(property_query=query_to_proto(query))
        return QUERY_CREATED.event(created, occurred_at=query.created_at, court=query.court_id)

    def _add_completed(self, conn: Connection, events: Sequence[QueryEvent]) -> None:
        out: list[Event] = []
        for event in events:
            query = event.query
            summary = store.summary_of(conn, query)
            payload = events_pb2.PropertyQueryCompleted(property_query=query_to_proto(query, summary))
            when = query.completed_at or self.clock()
            out.append(QUERY_COMPLETED.event(payload, occurred_at=when, court=query.court_id))
        self.outbox.add_sync(conn, out)


def _query_named(conn: Connection, name: str) -> StoredQuery:
    stored = store.query_by_name(conn, name)
    assert stored is not None, f"the request log names {name}, which is gone"
    return stored


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
