"""SQL for delegations: Core statements on the sqlmodel tables (the write path is hot).

A delegation is one `delegation` row whose `document` holds the whole aggregate (codec.py);
state, version and update_time are kept beside it for filtering and for the optimistic
concurrency guard (`UPDATE … WHERE version = :old`). `delegation_transition` is the
append-only timeline, `delegation_deadline` one row per (matter, step).

The delegation row is a versioned document aggregate (services/plumbing/aggregate.py: `TABLE`).
The functions are synchronous SQLAlchemy Core on a `Connection`: writes run in units of the
write door, reads through the read door (services/plumbing/unit_of_work.py).

Every datetime is written in UTC: SQLite stores the wall-clock digits only, so a deadline's
China-time instant would otherwise come back eight hours off.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, null, or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from delegation.deadlines import Step
from delegation.matters import Delegation, DelegationState, MatterKind
from services.delegation import codec
from services.delegation.schedule import DeadlineStatus, TrackedDeadline, ordered
from services.delegation.tables import DelegationDeadlineRow, DelegationRow, DelegationTransitionRow
from services.plumbing.aggregate import DocumentTable, document
from services.plumbing.db import BulkStatement
from services.plumbing.times import utc
from services.plumbing.unit_of_work import Tx

DELEGATIONS = DelegationRow.__table__  # type: ignore[attr-defined]
TRANSITIONS = DelegationTransitionRow.__table__  # type: ignore[attr-defined]
DEADLINES = DelegationDeadlineRow.__table__  # type: ignore[attr-defined]

# Built once: building and cache-keying a statement per call costs more than running it.
_INSERT_TRANSITIONS = BulkStatement(
    insert(TRANSITIONS),
    keys=[
        "delegation_name",
        "action",
        "from_state",
        "to_state",
        "actor_court_id",
        "officer",
        "at",
        "reason_code",
        "note",
        "trace_id",
    ],
)
_INSERT_DEADLINES = BulkStatement(
    insert(DEADLINES),
    keys=[
        "delegation_name",
        "step",
        "requesting_court_id",
        "entrusted_court_id",
        "status",
        "start_at",
        "due_at",
        "provisional",
        "rule",
        "extensions",
        "closed_at",
    ],
)
_DEADLINE_VALUES = ("status", "start_at", "due_at", "provisional", "rule", "extensions", "closed_at")
_SCANNER_COLUMNS = ("warned_at", "overdue_at", "last_urged_at", "escalated_at")
_THE_DEADLINE = (DEADLINES.c.delegation_name == bindparam("b_name"), DEADLINES.c.step == bindparam("b_step"))
_UPDATE_DEADLINES = BulkStatement(update(DEADLINES).where(*_THE_DEADLINE), keys=[*_DEADLINE_VALUES, "b_name", "b_step"])
#: Writing a deadline as OPEN starts the scanner's watch afresh: its bookkeeping is cleared.
_REOPEN_DEADLINES = BulkStatement(
    update(DEADLINES).where(*_THE_DEADLINE).values({column: null() for column in _SCANNER_COLUMNS}),
    keys=[*_DEADLINE_VALUES, "b_name", "b_step"],
)


@dataclass(frozen=True)
class StoredDelegation:
    """A delegation with what its rows add: `seq` (the keyset of list pages), its deadlines,
    the urge counter and the escalation time."""

    seq: int
    delegation: Delegation
    deadlines: tuple[TrackedDeadline, ...] = ()
    urge_count: int = 0
    escalated_at: datetime | None = None
    #: W3C context of the call that created the matter: later writes continue its trace.
    traceparent: str = field(default="", repr=False)
    #: The API message of this version when the write already built it (for its event):
    #: the reply reuses it instead of rendering the delegation again.
    rendered: Any = field(default=None, repr=False, compare=False)

    def deadline(self, step: Step) -> TrackedDeadline | None:
        return next((d for d in self.deadlines if d.step is step), None)


@dataclass(frozen=True)
class DelegationQuery:
    requesting_court_id: str | None = None
    entrusted_court_id: str | None = None
    matter_kind: MatterKind | None = None
    state: DelegationState | None = None
    case_name: str | None = None
    #: Only matters sent or received by one of these courts; None: every matter (an admin).
    visible_to: frozenset[str] | None = None


@dataclass(frozen=True)
class TimelineEntry:
    """One `delegation_transition` row. States are None for SUBMIT's "before"."""

    action: str  # a lifecycle Action, or SUBMIT, URGE, EXTEND_DEADLINE, ESCALATE
    from_state: DelegationState | None
    to_state: DelegationState | None
    actor_court_id: str  # "" for the system
    officer: str
    at: datetime
    reason_code: str = ""
    note: str = ""
    trace_id: str = ""


# --- writing ---------------------------------------------------------------------------------------


def document_of(delegation: Delegation) -> str:
    return document(codec.delegation_to_json(delegation))


def _columns(delegation: Delegation) -> dict[str, Any]:
    return {
        "name": delegation.name,
        "id": delegation.id,
        "requesting_court_id": delegation.requesting_court_id,
        "entrusted_court_id": delegation.entrusted_court_id,
        "case_name": delegation.case_name,
        "matter_kind": str(delegation.matter_kind),
        "description": delegation.description,
        "state": str(delegation.state),
        "create_time": utc(delegation.created_at),
        "update_time": utc(delegation.updated_at),
        "version": delegation.version,
        "document": document_of(delegation),
    }


def _load(conn: Connection, rows: Sequence[RowMapping]) -> list[StoredDelegation]:
    deadlines = deadlines_of(conn, [r["name"] for r in rows])
    return [_stored(row, deadlines.get(row["name"], ())) for row in rows]


#: The delegation row as a versioned document aggregate.
TABLE: DocumentTable[Delegation, StoredDelegation] = DocumentTable(
    DELEGATIONS,
    kind="delegation",
    label="delegation",
    columns=_columns,
    load=_load,
    fixed=("name", "id", "requesting_court_id", "entrusted_court_id", "case_name", "matter_kind", "create_time"),
)


def add_delegation(
    tx: Tx, delegation: Delegation, entries: Iterable[TimelineEntry], deadlines: Iterable[TrackedDeadline]
) -> None:
    """A new delegation's rows, written with the write batch's other new rows (one statement
    per table for every delegation created meanwhile)."""
    TABLE.add(tx, delegation)
    tx.insert(TRANSITIONS, _entry_rows(delegation.name, entries))
    tx.insert(DEADLINES, [_deadline_row(delegation, d) for d in deadlines])


def update_delegation(conn: Connection, delegation: Delegation, *, expected_version: int, urge_count: int) -> None:
    """Writes the next version; ABORTED VERSION_MISMATCH when the row is no longer at `expected_version`."""
    TABLE.update(conn, delegation, expected_version=expected_version, urge_count=urge_count)


def append_entries(conn: Connection, delegation_name: str, entries: Iterable[TimelineEntry]) -> None:
    _INSERT_TRANSITIONS.execute_sync(conn, _entry_rows(delegation_name, entries))


def _entry_rows(delegation_name: str, entries: Iterable[TimelineEntry]) -> list[dict[str, Any]]:
    return [
        {
            "delegation_name": delegation_name,
            "action": e.action,
            "from_state": str(e.from_state or ""),
            "to_state": str(e.to_state or ""),
            "actor_court_id": e.actor_court_id,
            "officer": e.officer,
            "at": utc(e.at),
            "reason_code": e.reason_code,
            "note": e.note,
            "trace_id": e.trace_id,
        }
        for e in entries
    ]


def save_deadlines(
    conn: Connection, delegation: Delegation, deadlines: Iterable[TrackedDeadline], *, existing: Iterable[Step] = ()
) -> None:
    """Inserts the deadlines of new steps and updates those of `existing` ones.

    Writing a deadline as OPEN starts the scanner's watch afresh (a new or extended period),
    so its bookkeeping columns are cleared; other statuses leave them as the scanner set them.
    """
    known = set(existing)
    new_rows = [_deadline_row(delegation, d) for d in deadlines if d.step not in known]
    _INSERT_DEADLINES.execute_sync(conn, new_rows)
    updated = [d for d in deadlines if d.step in known]
    for statement, reopened in ((_REOPEN_DEADLINES, True), (_UPDATE_DEADLINES, False)):
        rows = [
            {**_deadline_values(d), "b_name": delegation.name, "b_step": str(d.step)}
            for d in updated
            if (d.status is DeadlineStatus.OPEN) is reopened
        ]
        statement.execute_sync(conn, rows)


def _deadline_row(delegation: Delegation, deadline: TrackedDeadline) -> dict[str, Any]:
    return {
        "delegation_name": delegation.name,
        "step": str(deadline.step),
        "requesting_court_id": delegation.requesting_court_id,
        "entrusted_court_id": delegation.entrusted_court_id,
        **_deadline_values(deadline),
    }


def _deadline_values(deadline: TrackedDeadline) -> dict[str, Any]:
    return {
        "status": str(deadline.status),
        "start_at": utc(deadline.start_at),
        "due_at": utc(deadline.due_at),
        "provisional": deadline.provisional,
        "rule": json.dumps(codec.rule_to_json(deadline.rule), ensure_ascii=False),
        "extensions": json.dumps(codec.extensions_to_json(deadline.extensions), ensure_ascii=False),
        "closed_at": utc(deadline.closed_at) if deadline.closed_at else None,
    }


# --- reading ---------------------------------------------------------------------------------------


def delegation_by_name(conn: Connection, name: str) -> StoredDelegation | None:
    return TABLE.get(conn, name)


def list_delegations(conn: Connection, query: DelegationQuery, after_seq: int, limit: int) -> list[StoredDelegation]:
    columns = DELEGATIONS.c
    statement = select(DELEGATIONS).where(columns.seq > after_seq).order_by(columns.seq).limit(limit)
    for column, value in (
        (columns.requesting_court_id, query.requesting_court_id),
        (columns.entrusted_court_id, query.entrusted_court_id),
        (columns.matter_kind, query.matter_kind),
        (columns.state, query.state),
        (columns.case_name, query.case_name),
    ):
        if value is not None:
            statement = statement.where(column == str(value))
    if query.visible_to is not None:
        visible = sorted(query.visible_to)
        statement = statement.where(or_(columns.requesting_court_id.in_(visible), columns.entrusted_court_id.in_(visible)))
    return TABLE.select(conn, statement)


def delegations_by_names(conn: Connection, names: list[str]) -> list[StoredDelegation]:
    """In the order of `names`; unknown names are skipped."""
    return TABLE.many(conn, names)


def deadlines_of(conn: Connection, names: list[str]) -> dict[str, tuple[TrackedDeadline, ...]]:
    if not names:
        return {}
    found: dict[str, list[TrackedDeadline]] = {}
    rows = conn.execute(select(DEADLINES).where(DEADLINES.c.delegation_name.in_(names)))
    for row in rows.mappings():
        found.setdefault(row["delegation_name"], []).append(_tracked(row))
    return {name: tuple(ordered(items)) for name, items in found.items()}


def entries_of(conn: Connection, name: str) -> list[TimelineEntry]:
    statement = select(TRANSITIONS).where(TRANSITIONS.c.delegation_name == name).order_by(TRANSITIONS.c.seq)
    return [_entry(row) for row in (conn.execute(statement)).mappings()]


def overdue_delegation_names(
    conn: Connection, entrusted_court_ids: Iterable[str], now: datetime, after: tuple[datetime, str] | None, limit: int
) -> list[tuple[str, datetime]]:
    """(name, earliest missed due time) of matters with a deadline of the entrusted court
    passed and not met, longest overdue first. SUPPLEMENT is the requesting court's."""
    columns = DEADLINES.c
    first_due = func.min(columns.due_at).label("first_due")
    missed = or_(
        columns.status == str(DeadlineStatus.OVERDUE),
        and_(columns.status == str(DeadlineStatus.OPEN), columns.due_at < utc(now)),
    )
    statement = (
        select(columns.delegation_name, first_due)
        .where(columns.entrusted_court_id.in_(sorted(entrusted_court_ids)), columns.step != str(Step.SUPPLEMENT), missed)
        .group_by(columns.delegation_name)
        .order_by(first_due, columns.delegation_name)
        .limit(limit)
    )
    if after is not None:
        due, name = utc(after[0]), after[1]
        statement = statement.having(or_(first_due > due, and_(first_due == due, columns.delegation_name > name)))
    return [(row.delegation_name, utc(row.first_due)) for row in conn.execute(statement)]


def _stored(row: Any, deadlines: tuple[TrackedDeadline, ...]) -> StoredDelegation:
    data = json.loads(row["document"])
    delegation = codec.delegation_from_json(data)  # every row is written with its document
    return StoredDelegation(
        seq=row["seq"],
        delegation=delegation,
        deadlines=deadlines,
        urge_count=row["urge_count"],
        escalated_at=utc(row["escalated_at"]) if row["escalated_at"] else None,
        traceparent=row.get("traceparent") or "",
    )


def _tracked(row: Any) -> TrackedDeadline:
    return TrackedDeadline(
        step=Step(row["step"]),
        status=DeadlineStatus(row["status"]),
        start_at=utc(row["start_at"]),
        due_at=utc(row["due_at"]),
        provisional=bool(row["provisional"]),
        rule=codec.rule_from_json(json.loads(row["rule"])),
        extensions=codec.extensions_from_json(json.loads(row["extensions"])),
        closed_at=utc(row["closed_at"]) if row["closed_at"] else None,
    )


def _entry(row: Any) -> TimelineEntry:
    return TimelineEntry(
        action=row["action"],
        from_state=DelegationState(row["from_state"]) if row["from_state"] else None,
        to_state=DelegationState(row["to_state"]) if row["to_state"] else None,
        actor_court_id=row["actor_court_id"],
        officer=row["officer"],
        at=utc(row["at"]),
        reason_code=row["reason_code"],
        note=row["note"],
        trace_id=row["trace_id"],
    )
