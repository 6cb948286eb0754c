"""SQL for property queries: synchronous Core statements on the sqlmodel tables, built once
(the reply path is hot).

The query row is a versioned aggregate (services/plumbing/aggregate.py: `TABLE`; its columns
are the whole query, so it needs no JSON document), its agencies' rows the fan-out's record.
The functions take a `Connection`: writes run in units of the write door, reads through the
read door (services/plumbing/unit_of_work.py).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from rogatory.assistance.v1 import property_query_pb2 as pb
from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from assistance.property_categories import PropertyCategory
from assistance.queries import (
    AgencyResult,
    AgencyStatus,
    Debtor,
    PropertyQuery,
    QueryState,
    ReplyItem,
    Summary,
    summary_of_totals,
)
from services.assistance.queries.tables import PropertyQueryAgencyRow, PropertyQueryRow
from services.plumbing.aggregate import DocumentTable
from services.plumbing.db import BulkStatement, placeholders
from services.plumbing.times import utc

QUERIES = PropertyQueryRow.__table__  # type: ignore[attr-defined]
AGENCIES = PropertyQueryAgencyRow.__table__  # type: ignore[attr-defined]

# An agency's reply written to its row; bindparam names must differ from column names in an UPDATE's SET clause.
_RECORD_REPLY = update(AGENCIES).values(
    status=bindparam("b_status"),
    reply_time=bindparam("b_reply_time"),
    items=bindparam("b_items"),
    item_count=bindparam("b_item_count"),
    value_fen=bindparam("b_value_fen"),
    failure_reason=bindparam("b_failure_reason"),
)
_THE_ROW = (AGENCIES.c.query_id == bindparam("b_query"), AGENCIES.c.agency_id == bindparam("b_agency"))
_UPDATE_RESULT = BulkStatement(_RECORD_REPLY.where(*_THE_ROW))
_SAVE_PROGRESS = BulkStatement(
    update(QUERIES)
    .where(QUERIES.c.id == bindparam("b_id"))
    .values(
        pending=bindparam("b_pending"),
        state=bindparam("b_state"),
        complete_time=bindparam("b_complete"),
        version=bindparam("b_version"),
    )
)
_INSERT_AGENCIES = BulkStatement(insert(AGENCIES), keys=["query_id", "agency_id", "categories", "status"])


@dataclass(frozen=True)
class StoredQuery:
    """A query with its row's `seq` (the keyset of list pages) and the caller's trace context."""

    seq: int
    query: PropertyQuery
    traceparent: str = ""
    tracestate: str = ""


class StoredResult(NamedTuple):  # a NamedTuple: one per agency reply, built in the hot path
    """An agency's result and the typed items it sent (serialized AgencyQueryResult; b"" before a reply)."""

    result: AgencyResult
    record: bytes = b""


@dataclass(frozen=True)
class QueryFilter:
    court_id: str
    case_name: str | None = None
    state: QueryState | None = None


@functools.cache
def _categories(text: str) -> tuple[PropertyCategory, ...]:
    return tuple(PropertyCategory(c) for c in text.split(",") if c)  # few distinct values: a 1,000-agency read parses each once


_STATUSES = {str(s): s for s in AgencyStatus}
_CATEGORY_BY_NUMBER = {pb.PropertyCategory.Value(str(c)): c for c in PropertyCategory}


def _columns(query: PropertyQuery) -> dict[str, Any]:
    return {
        "name": query.name,
        "id": query.id,
        "court_id": query.court_id,
        "case_name": query.case_name,
        "debtor_name": query.debtor.display_name,
        "debtor_kind": query.debtor.kind,
        "debtor_id_masked": query.debtor.id_number_masked,
        "categories": ",".join(query.categories),
        "state": str(query.state),
        "total": query.total,
        "pending": query.pending,
        "create_time": query.created_at,
        "deadline_time": query.deadline,
        "complete_time": query.completed_at,
        "version": query.version,
    }


def _load(conn: Connection, rows: Sequence[RowMapping]) -> list[StoredQuery]:
    return [_query(row) for row in rows]


#: The query aggregate's table: insert with the creating call's trace, version-guarded update, reads.
TABLE: DocumentTable[PropertyQuery, StoredQuery] = DocumentTable(
    QUERIES,
    kind="property query",
    label="property_query",
    columns=_columns,
    load=_load,
    fixed=(
        "name",
        "id",
        "court_id",
        "case_name",
        "debtor_name",
        "debtor_kind",
        "debtor_id_masked",
        "categories",
        "total",
        "create_time",
        "deadline_time",
    ),  # fmt: skip
)


def insert_query(conn: Connection, query: PropertyQuery, results: Sequence[AgencyResult]) -> int:
    seq = TABLE.insert(conn, query)
    # One executemany for every agency: a 1,000-agency query is one statement, not 1,000.
    _INSERT_AGENCIES.execute_sync(
        conn,
        [
            {
                "query_id": r.query_id,
                "agency_id": r.agency_id,
                "categories": ",".join(r.categories),
                "status": str(r.status),  # sent_at NULL: sent with the query's creation (right after the commit)
            }
            for r in results
        ],
    )
    return seq


def _query(row: Any) -> StoredQuery:
    query = PropertyQuery(
        id=row["id"],
        court_id=row["court_id"],
        case_name=row["case_name"],
        debtor=Debtor(row["debtor_name"], row["debtor_kind"], row["debtor_id_masked"]),
        categories=_categories(row["categories"]),
        created_at=utc(row["create_time"]),
        deadline=utc(row["deadline_time"]),
        total=row["total"],
        pending=row["pending"],
        state=QueryState(row["state"]),
        completed_at=utc(row["complete_time"]) if row["complete_time"] else None,
        version=row["version"],
    )
    return StoredQuery(row["seq"], query, row["traceparent"], row["tracestate"])


def _result(row: Any) -> StoredResult:
    record = row["items"] or b""
    items: tuple[ReplyItem, ...] = ()
    if record:
        items = tuple(
            ReplyItem(_CATEGORY_BY_NUMBER[i.category], i.value_fen) for i in pb.AgencyQueryResult.FromString(record).items
        )
    result = AgencyResult(
        query_id=row["query_id"],
        agency_id=row["agency_id"],
        categories=_categories(row["categories"]),
        status=_STATUSES[row["status"]],
        reply_time=utc(row["reply_time"]) if row["reply_time"] else None,
        items=items,
        failure_reason=row["failure_reason"],
    )
    return StoredResult(result, record)


def query_by_id(conn: Connection, query_id: str, *, for_update: bool = False) -> StoredQuery | None:
    statement = select(QUERIES).where(QUERIES.c.id == query_id)
    if for_update:
        statement = statement.with_for_update()
    row = conn.execute(statement).mappings().first()
    return _query(row) if row else None


_QUERIES_FOR_UPDATE = (
    select(QUERIES).where(QUERIES.c.id.in_(bindparam("ids", expanding=True))).order_by(QUERIES.c.id).with_for_update()
)


def queries_for_update(conn: Connection, query_ids: Iterable[str]) -> dict[str, StoredQuery]:
    """Locks the queries (PostgreSQL; SQLite has one writer anyway) in id order, so concurrent appliers do not deadlock."""
    rows = conn.execute(_QUERIES_FOR_UPDATE, {"ids": sorted(set(query_ids))}).mappings()
    return {s.query.id: s for s in map(_query, rows)}


def query_by_name(conn: Connection, name: str) -> StoredQuery | None:
    return TABLE.get(conn, name)


def list_queries(conn: Connection, where: QueryFilter, after_seq: int, limit: int) -> list[StoredQuery]:
    columns = QUERIES.c
    statement = (
        select(QUERIES).where(columns.court_id == where.court_id, columns.seq > after_seq).order_by(columns.seq).limit(limit)
    )
    if where.case_name is not None:
        statement = statement.where(columns.case_name == where.case_name)
    if where.state is not None:
        statement = statement.where(columns.state == str(where.state))
    return TABLE.select(conn, statement)


def results_of(conn: Connection, query_id: str) -> list[StoredResult]:
    statement = select(AGENCIES).where(AGENCIES.c.query_id == query_id).order_by(AGENCIES.c.agency_id)
    return [_result(row) for row in conn.execute(statement).mappings()]


def unanswered_results(conn: Connection, *, now: datetime, sent_before: datetime, limit: int) -> dict[str, list[AgencyResult]]:
    """Pending agencies of running queries whose request was last sent before `sent_before`.

    Starts from the running queries (an index), so answered history is never scanned.
    """
    statement = (
        select(AGENCIES)
        .join(QUERIES, QUERIES.c.id == AGENCIES.c.query_id)
        .where(
            QUERIES.c.state == str(QueryState.RUNNING),
            QUERIES.c.deadline_time > now,
            AGENCIES.c.status == str(AgencyStatus.PENDING),
            # NULL: not sent again since the query's creation
            or_(and_(AGENCIES.c.sent_at.is_(None), QUERIES.c.create_time <= sent_before), AGENCIES.c.sent_at <= sent_before),
        )
        .order_by(AGENCIES.c.query_id, AGENCIES.c.agency_id)
        .limit(limit)
    )
    found: dict[str, list[AgencyResult]] = {}
    for row in conn.execute(statement).mappings():
        result = _result(row).result
        found.setdefault(result.query_id, []).append(result)
    return found


def mark_sent(conn: Connection, query_id: str, agency_ids: Sequence[str], at: datetime) -> None:
    conn.execute(update(AGENCIES).where(AGENCIES.c.query_id == query_id, AGENCIES.c.agency_id.in_(agency_ids)).values(sent_at=at))


def summary_of(conn: Connection, query: PropertyQuery) -> Summary:
    """The query's summary summed by the database; only the replies of agencies asked for
    several categories are read item by item (their totals mix categories)."""
    statement = (
        select(
            AGENCIES.c.status,
            AGENCIES.c.categories,
            func.count(),
            func.sum(AGENCIES.c.item_count),
            func.sum(AGENCIES.c.value_fen),
        )
        .where(AGENCIES.c.query_id == query.id)
        .group_by(AGENCIES.c.status, AGENCIES.c.categories)
    )
    statuses: Counter[AgencyStatus] = Counter()
    found: list[tuple[PropertyCategory, int, int]] = []
    mixed = False
    for status, categories, agencies, items, value_fen in conn.execute(statement).all():
        statuses[_STATUSES[status]] += agencies
        asked = _categories(categories)
        if len(asked) == 1:
            found.append((asked[0], int(items or 0), int(value_fen or 0)))
        elif items:
            mixed = True
    if mixed:
        records = select(AGENCIES.c["items"]).where(
            AGENCIES.c.query_id == query.id, AGENCIES.c.item_count > 0, AGENCIES.c.categories.contains(",")
        )
        for (record,) in conn.execute(records).all():
            found += [(_CATEGORY_BY_NUMBER[i.category], 1, i.value_fen) for i in pb.AgencyQueryResult.FromString(record).items]
    return summary_of_totals(query, statuses, found)


def result_of(conn: Connection, query_id: str, agency_id: str) -> StoredResult | None:
    """One agency's part of a query, with the items it sent."""
    statement = select(AGENCIES).where(AGENCIES.c.query_id == query_id, AGENCIES.c.agency_id == agency_id)
    row = conn.execute(statement).mappings().first()
    return _result(row) if row else None


def results_for_update(conn: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], AgencyResult]:
    """The named (query id, agency id) results, locked, without their items; one statement per query.

    A reply is only ever recorded against a pending result (no items yet); for an answered
    one, the status alone refuses a second reply. Plain SQL with an IN list of the batch's
    agencies: the hot read of every reply batch (SQLAlchemy's expanding IN costs ≈ 2x).
    """
    by_query: dict[str, list[str]] = {}
    for query_id, agency_id in sorted(set(keys)):
        by_query.setdefault(query_id, []).append(agency_id)
    found: dict[tuple[str, str], AgencyResult] = {}
    lock = "" if conn.dialect.name == "sqlite" else " FOR UPDATE"
    for query_id, agency_ids in by_query.items():
        sql = (
            f"SELECT agency_id, categories, status FROM {AGENCIES.name} "
            f"WHERE query_id = {placeholders(conn.dialect, 1)} "
            f"AND agency_id IN ({placeholders(conn.dialect, len(agency_ids), first=2)}) ORDER BY agency_id{lock}"
        )
        for agency_id, categories, status in conn.exec_driver_sql(sql, (query_id, *agency_ids)).all():
            found[(query_id, agency_id)] = AgencyResult(query_id, agency_id, _categories(categories), _STATUSES[status])
    return found


def record_results(conn: Connection, answered: Sequence[tuple[AgencyResult, bytes]]) -> None:
    """Writes the answered results, one executemany for the batch."""
    if not answered:
        return
    _UPDATE_RESULT.execute_sync(
        conn,
        [
            {
                "b_query": r.query_id,
                "b_agency": r.agency_id,
                "b_status": str(r.status),
                "b_reply_time": r.reply_time,
                "b_items": record or None,
                "b_item_count": len(r.items),
                "b_value_fen": sum(i.value_fen for i in r.items),
                "b_failure_reason": r.failure_reason,
            }
            for r, record in answered
        ],
    )


def time_out_pending(conn: Connection, query_id: str) -> None:
    conn.execute(
        update(AGENCIES)
        .where(AGENCIES.c.query_id == query_id, AGENCIES.c.status == str(AgencyStatus.PENDING))
        .values(status=str(AgencyStatus.TIMED_OUT))
    )


def save_progress(conn: Connection, *queries: PropertyQuery) -> None:
    _SAVE_PROGRESS.execute_sync(
        conn,
        [
            {"b_id": q.id, "b_pending": q.pending, "b_state": str(q.state), "b_complete": q.completed_at, "b_version": q.version}
            for q in queries
        ],
    )


def due_query_ids(conn: Connection, now: datetime, limit: int) -> list[str]:
    statement = (
        select(QUERIES.c.id)
        .where(QUERIES.c.state == str(QueryState.RUNNING), QUERIES.c.deadline_time <= now)
        .order_by(QUERIES.c.deadline_time)
        .limit(limit)
    )
    return list(conn.execute(statement).scalars())
