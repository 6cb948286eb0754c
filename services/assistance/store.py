"""SQL for assistance notices and seizures: Core statements on the sqlmodel tables.

A notice is one `assistance_notice` row whose `document` holds the whole aggregate
(notice_codec.py); state, version, asset key, queue flag and objection due time are kept
beside it for lists, the seizure queue, the scanner and the optimistic concurrency guard
(`UPDATE … WHERE version = :old`). `assistance_notice_transition` is the append-only
timeline. Seizures are one `seizure` row each, the same way.

Both rows are versioned document aggregates (services/plumbing/aggregate.py: `TABLE`,
`SEIZURE_TABLE`). The functions are synchronous SQLAlchemy Core on a `Connection`: writes run
in units of the write door, reads through the read door (services/plumbing/unit_of_work.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Connection, RowMapping

from assistance.notice_lifecycle import Transition
from assistance.notices import AssistanceNotice, NoticeKind, NoticeState
from assistance.seizures import AssetClass, Seizure, SeizureState
from registry.errors import Aborted
from services.assistance import notice_codec as codec
from services.assistance.tables import AssistanceNoticeRow, AssistanceNoticeTransitionRow, SeizureRow
from services.plumbing.aggregate import DocumentTable, document
from services.plumbing.db import BulkStatement
from services.plumbing.times import utc
from services.plumbing.unit_of_work import Tx

NOTICES = AssistanceNoticeRow.__table__  # type: ignore[attr-defined]
TRANSITIONS = AssistanceNoticeTransitionRow.__table__  # type: ignore[attr-defined]
SEIZURES = SeizureRow.__table__  # type: ignore[attr-defined]

# Built once: building and cache-keying a statement per call costs more than running it.
_INSERT_TRANSITIONS = BulkStatement(
    insert(TRANSITIONS),
    keys=["notice_name", "action", "from_state", "to_state", "actor", "at", "reason_code", "note", "trace_id"],
)


@dataclass(frozen=True)
class StoredNotice:
    """A notice with its row's `seq` (the keyset of list pages)."""

    seq: int
    notice: AssistanceNotice
    traceparent: str = ""  # of the call that sent it: later steps continue its trace


@dataclass(frozen=True)
class NoticeQuery:
    court_id: str | None = None
    agency_id: str | None = None
    kind: NoticeKind | None = None
    state: NoticeState | None = None
    case_name: str | None = None


@dataclass(frozen=True)
class TimelineEntry:
    transition: Transition
    trace_id: str = ""


# --- notices: the aggregate ----------------------------------------------------------------------


def _notice_columns(notice: AssistanceNotice) -> dict[str, Any]:
    objection = notice.objection
    due = objection.answer_due if objection is not None and objection.answer is None else None
    return {
        "name": notice.name,
        "id": notice.id,
        "court_id": notice.court_id,
        "agency_id": notice.agency_id,
        "case_name": notice.case_name,
        "kind": str(notice.kind),
        "target": notice.target,
        "create_time": utc(notice.created_at),
        "state": str(notice.state),
        "update_time": utc(notice.updated_at),
        "version": notice.version,
        "document": document(codec.notice_to_json(notice)),
        "asset_key": notice.asset_key,
        "queued": notice.waiting_in_queue,
        "objection_due_at": utc(due) if due else None,
    }


def _load_notices(conn: Connection, rows: Sequence[RowMapping]) -> list[StoredNotice]:
    return [_stored(row) for row in rows]


def _stored(row: Any) -> StoredNotice:
    data = json.loads(row["document"])
    return StoredNotice(row["seq"], codec.notice_from_json(data), row["traceparent"])


#: The notice row as a versioned document aggregate.
TABLE: DocumentTable[AssistanceNotice, StoredNotice] = DocumentTable(
    NOTICES,
    kind="assistance notice",
    label="assistance_notice",
    columns=_notice_columns,
    load=_load_notices,
    fixed=("name", "id", "court_id", "agency_id", "case_name", "kind", "target", "create_time"),
)


#: A scanner's read of the row it may annotate: a second replica reading it meanwhile waits for
#: the first one's commit and sees its mark (an annotation leaves the version guard as it was).
_NOTICE_LOCKED = select(NOTICES).where(NOTICES.c.name == bindparam("name")).with_for_update()


# --- notices: writing ----------------------------------------------------------------------------


def add_notice(tx: Tx, notice: AssistanceNotice, entries: Iterable[TimelineEntry]) -> None:
    """A new notice's rows, with the current trace context (its trace), written with the write
    batch's other new rows (one statement per table for every notice sent meanwhile)."""
    TABLE.add(tx, notice)
    tx.insert(TRANSITIONS, _timeline_rows((notice.name, entry) for entry in entries))


def update_notice(conn: Connection, notice: AssistanceNotice, *, expected_version: int) -> None:
    """Writes the next version; ABORTED VERSION_MISMATCH when the row is no longer at `expected_version`."""
    TABLE.update(conn, notice, expected_version=expected_version)


def save_annotation(conn: Connection, notice: AssistanceNotice) -> bool:
    """Bookkeeping that does not bump the version (the scanner's overdue mark); False when the
    notice changed since it was read (then the mark is not written over the change)."""
    try:
        TABLE.update(conn, notice, expected_version=notice.version)
    except Aborted:
        return False
    return True


def append_entries(conn: Connection, notice_name: str, entries: Iterable[TimelineEntry]) -> None:
    append_timeline(conn, [(notice_name, entry) for entry in entries])


def append_timeline(conn: Connection, entries: Iterable[tuple[str, TimelineEntry]]) -> None:
    """Appends (notice name, entry) pairs to the notices' timelines, in order, in one statement."""
    _INSERT_TRANSITIONS.execute_sync(conn, _timeline_rows(entries))


def _timeline_rows(entries: Iterable[tuple[str, TimelineEntry]]) -> list[dict[str, Any]]:
    return [
        {
            "notice_name": notice_name,
            "action": str(e.transition.action),
            "from_state": str(e.transition.from_state or ""),
            "to_state": str(e.transition.to_state),
            "actor": e.transition.actor,
            "at": utc(e.transition.at),
            "reason_code": e.transition.reason_code,
            "note": e.transition.note,
            "trace_id": e.trace_id,
        }
        for notice_name, e in entries
    ]


# --- notices: reading ----------------------------------------------------------------------------


def notice_by_name(conn: Connection, name: str) -> StoredNotice | None:
    return TABLE.get(conn, name)


def notice_for_update(conn: Connection, name: str) -> StoredNotice | None:
    """The notice, its row locked until the transaction ends (PostgreSQL; SQLite has one writer)."""
    rows = conn.execute(_NOTICE_LOCKED, {"name": name}).mappings().all()
    return TABLE.load(conn, rows)[0] if rows else None


def list_notices(conn: Connection, query: NoticeQuery, after_seq: int, limit: int) -> list[StoredNotice]:
    columns = NOTICES.c
    statement = select(NOTICES).where(columns.seq > after_seq).order_by(columns.seq).limit(limit)
    for column, value in (
        (columns.court_id, query.court_id),
        (columns.agency_id, query.agency_id),
        (columns.kind, query.kind),
        (columns.state, query.state),
        (columns.case_name, query.case_name),
    ):
        if value is not None:
            statement = statement.where(column == str(value))
    return TABLE.select(conn, statement)


def queued_notices(conn: Connection, asset_key: str) -> list[StoredNotice]:
    """Notices waiting behind a seizure of the asset, oldest reply first."""
    statement = select(NOTICES).where(NOTICES.c.asset_key == asset_key, NOTICES.c.queued.is_(True)).order_by(NOTICES.c.seq)
    return TABLE.select(conn, statement)


def overdue_objection_names(conn: Connection, now: datetime, limit: int = 500) -> list[str]:
    statement = (
        select(NOTICES.c.name, NOTICES.c.document)
        .where(NOTICES.c.state == str(NoticeState.OBJECTED), NOTICES.c.objection_due_at < utc(now))
        .order_by(NOTICES.c.objection_due_at)
        .limit(limit)
    )
    names = []
    for row in conn.execute(statement):
        objection = json.loads(row.document).get("objection") or {}
        if not objection.get("overdue_flagged_at"):
            names.append(row.name)
    return names


def entries_of(conn: Connection, name: str) -> list[Any]:
    statement = select(TRANSITIONS).where(TRANSITIONS.c.notice_name == name).order_by(TRANSITIONS.c.seq)
    return list(conn.execute(statement).mappings())


# --- seizures -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredSeizure:
    seq: int
    seizure: Seizure


@dataclass(frozen=True)
class SeizureQuery:
    court_id: str | None = None
    agency_id: str | None = None
    state: SeizureState | None = None
    case_name: str | None = None
    asset_class: AssetClass | None = None


def _seizure_columns(s: Seizure) -> dict[str, Any]:
    assert s.updated_at is not None
    return {
        "name": s.name,
        "id": s.id,
        "court_id": s.court_id,
        "agency_id": s.agency_id,
        "case_name": s.case_name,
        "notice_name": s.notice_name,
        "asset_key": s.asset_key,
        "asset_class": str(s.asset_class),
        "state": str(s.state),
        "expires_at": utc(s.expires_at),
        "version": s.version,
        "update_time": utc(s.updated_at),
        "document": document(codec.seizure_to_json(s)),
    }


def _load_seizures(conn: Connection, rows: Sequence[RowMapping]) -> list[StoredSeizure]:
    return [StoredSeizure(row["seq"], codec.seizure_from_json(json.loads(row["document"]))) for row in rows]


#: The seizure row as a versioned document (in the trace of the notice that put it in place).
SEIZURE_TABLE: DocumentTable[Seizure, StoredSeizure] = DocumentTable(
    SEIZURES,
    kind="seizure",
    label="seizure",
    columns=_seizure_columns,
    load=_load_seizures,
    fixed=("name", "id", "court_id", "agency_id", "case_name", "notice_name", "asset_key", "asset_class"),
)


def insert_seizure(conn: Connection, s: Seizure) -> None:
    SEIZURE_TABLE.insert(conn, s)


def update_seizure(conn: Connection, s: Seizure, *, expected_version: int) -> None:
    """Writes the next version; ABORTED VERSION_MISMATCH when the row is no longer at `expected_version`."""
    SEIZURE_TABLE.update(conn, s, expected_version=expected_version)


def save_seizure_annotation(conn: Connection, s: Seizure) -> bool:
    """Bookkeeping that does not bump the version (the reminder sent); False when the seizure
    changed since it was read."""
    try:
        SEIZURE_TABLE.update(conn, s, expected_version=s.version)
    except Aborted:
        return False
    return True


def seizure_by_name(conn: Connection, name: str) -> Seizure | None:
    found = SEIZURE_TABLE.get(conn, name)
    return found.seizure if found else None


_SEIZURE_LOCKED = select(SEIZURES).where(SEIZURES.c.name == bindparam("name")).with_for_update()


def seizure_for_update(conn: Connection, name: str) -> Seizure | None:
    """The seizure, its row locked until the transaction ends: as `notice_for_update`."""
    rows = conn.execute(_SEIZURE_LOCKED, {"name": name}).mappings().all()
    return SEIZURE_TABLE.load(conn, rows)[0].seizure if rows else None


def list_seizures(conn: Connection, query: SeizureQuery, after_seq: int, limit: int) -> list[StoredSeizure]:
    columns = SEIZURES.c
    statement = select(SEIZURES).where(columns.seq > after_seq).order_by(columns.seq).limit(limit)
    for column, value in (
        (columns.court_id, query.court_id),
        (columns.agency_id, query.agency_id),
        (columns.state, query.state),
        (columns.case_name, query.case_name),
        (columns.asset_class, query.asset_class),
    ):
        if value is not None:
            statement = statement.where(column == str(value))
    return SEIZURE_TABLE.select(conn, statement)


def seizures_to_watch(conn: Connection, horizon: datetime, limit: int = 500) -> list[Seizure]:
    """Active seizures ending before `horizon` (reminders) or already ended (lapses)."""
    statement = (
        select(SEIZURES.c.document)
        .where(SEIZURES.c.state == str(SeizureState.ACTIVE), SEIZURES.c.expires_at <= utc(horizon))
        .order_by(SEIZURES.c.expires_at)
        .limit(limit)
    )
    return [codec.seizure_from_json(json.loads(row.document)) for row in conn.execute(statement)]
