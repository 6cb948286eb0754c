"""SQL for assistance notices and seizures: Core statements on the sqlmodel tables.

A notice is one `assistance_notice` row whose `document` holds the whole aggregate
(notice_codec.py); state, version, asset key, queue flag and objection due time are kept
beside it for lists, the seizure queue, the scanner and the optimistic concurrency guard
(`UPDATE … WHERE version = :old`). `assistance_notice_transition` is the append-only
timeline. Seizures are one `seizure` row each, the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from assistance.notice_lifecycle import Transition
from assistance.notices import AssistanceNotice, NoticeKind, NoticeState
from assistance.seizures import AssetClass, Seizure, SeizureState
from services.assistance import notice_codec as codec
from services.assistance.tables import AssistanceNoticeRow, AssistanceNoticeTransitionRow, SeizureRow
from services.plumbing.events import trace_columns
from services.plumbing.times import utc

NOTICES = AssistanceNoticeRow.__table__  # type: ignore[attr-defined]
TRANSITIONS = AssistanceNoticeTransitionRow.__table__  # type: ignore[attr-defined]
SEIZURES = SeizureRow.__table__  # type: ignore[attr-defined]


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


# --- notices: writing ----------------------------------------------------------------------------


def _notice_values(notice: AssistanceNotice) -> dict[str, Any]:
    objection = notice.objection
    due = objection.answer_due if objection is not None and objection.answer is None else None
    return {
        "state": str(notice.state),
        "update_time": utc(notice.updated_at),
        "version": notice.version,
        "document": json.dumps(codec.notice_to_json(notice), ensure_ascii=False, separators=(",", ":")),
        "asset_key": notice.asset_key,
        "queued": notice.waiting_in_queue,
        "objection_due_at": utc(due) if due else None,
    }


async def insert_notice(conn: AsyncConnection, notice: AssistanceNotice) -> int:
    result = await conn.execute(
        insert(NOTICES).values(
            name=notice.name,
            id=notice.id,
            court_id=notice.court_id,
            agency_id=notice.agency_id,
            case_name=notice.case_name,
            kind=str(notice.kind),
            target=notice.target,
            create_time=utc(notice.created_at),
            **_notice_values(notice),
            **trace_columns(),
        )
    )
    return int(result.inserted_primary_key[0])


async def update_notice(conn: AsyncConnection, notice: AssistanceNotice, *, expected_version: int) -> bool:
    """Writes the next version; False when the row is no longer at `expected_version`."""
    result = await conn.execute(
        update(NOTICES)
        .where(NOTICES.c.name == notice.name, NOTICES.c.version == expected_version)
        .values(**_notice_values(notice))
    )
    return result.rowcount == 1


async def save_annotation(conn: AsyncConnection, notice: AssistanceNotice) -> bool:
    """Bookkeeping that does not bump the version (the scanner's overdue mark); False when the
    notice changed since it was read (then the mark is not written over the change)."""
    result = await conn.execute(
        update(NOTICES).where(NOTICES.c.name == notice.name, NOTICES.c.version == notice.version).values(**_notice_values(notice))
    )
    return result.rowcount == 1


async def append_entries(conn: AsyncConnection, notice_name: str, entries: Iterable[TimelineEntry]) -> None:
    rows = [
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
        for e in entries
    ]
    if rows:
        await conn.execute(insert(TRANSITIONS), rows)


# --- notices: reading ----------------------------------------------------------------------------


async def notice_by_name(conn: AsyncConnection, name: str) -> StoredNotice | None:
    row = (await conn.execute(select(NOTICES).where(NOTICES.c.name == name))).mappings().first()
    return _stored(row) if row else None


async def list_notices(conn: AsyncConnection, query: NoticeQuery, after_seq: int, limit: int) -> list[StoredNotice]:
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
    return [_stored(row) for row in (await conn.execute(statement)).mappings()]


async def queued_notices(conn: AsyncConnection, asset_key: str) -> list[StoredNotice]:
    """Notices waiting behind a seizure of the asset, oldest reply first."""
    statement = select(NOTICES).where(NOTICES.c.asset_key == asset_key, NOTICES.c.queued.is_(True)).order_by(NOTICES.c.seq)
    return [_stored(row) for row in (await conn.execute(statement)).mappings()]


async def overdue_objection_names(conn: AsyncConnection, now: datetime, limit: int = 500) -> list[str]:
    statement = (
        select(NOTICES.c.name, NOTICES.c.document)
        .where(NOTICES.c.state == str(NoticeState.OBJECTED), NOTICES.c.objection_due_at < utc(now))
        .order_by(NOTICES.c.objection_due_at)
        .limit(limit)
    )
    names = []
    for row in await conn.execute(statement):
        objection = json.loads(row.document).get("objection") or {}
        if not objection.get("overdue_flagged_at"):
            names.append(row.name)
    return names


async def entries_of(conn: AsyncConnection, name: str) -> list[Any]:
    statement = select(TRANSITIONS).where(TRANSITIONS.c.notice_name == name).order_by(TRANSITIONS.c.seq)
    return list((await conn.execute(statement)).mappings())


def _stored(row: Any) -> StoredNotice:
    data = json.loads(row["document"])
    return StoredNotice(row["seq"], codec.notice_from_json(data), row["traceparent"])


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


def _seizure_values(s: Seizure) -> dict[str, Any]:
    assert s.updated_at is not None
    return {
        "state": str(s.state),
        "expires_at": utc(s.expires_at),
        "version": s.version,
        "update_time": utc(s.updated_at),
        "document": json.dumps(codec.seizure_to_json(s), ensure_ascii=False, separators=(",", ":")),
    }


async def insert_seizure(conn: AsyncConnection, s: Seizure) -> None:
    await conn.execute(
        insert(SEIZURES).values(
            name=s.name,
            id=s.id,
            court_id=s.court_id,
            agency_id=s.agency_id,
            case_name=s.case_name,
            notice_name=s.notice_name,
            asset_key=s.asset_key,
            asset_class=str(s.asset_class),
            **_seizure_values(s),
        )
    )


async def update_seizure(conn: AsyncConnection, s: Seizure, *, expected_version: int) -> bool:
    result = await conn.execute(
        update(SEIZURES).where(SEIZURES.c.name == s.name, SEIZURES.c.version == expected_version).values(**_seizure_values(s))
    )
    return result.rowcount == 1


async def seizure_by_name(conn: AsyncConnection, name: str) -> Seizure | None:
    row = (await conn.execute(select(SEIZURES).where(SEIZURES.c.name == name))).mappings().first()
    return codec.seizure_from_json(json.loads(row["document"])) if row else None


async def list_seizures(conn: AsyncConnection, query: SeizureQuery, after_seq: int, limit: int) -> list[StoredSeizure]:
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
    rows = (await conn.execute(statement)).mappings()
    return [StoredSeizure(row["seq"], codec.seizure_from_json(json.loads(row["document"]))) for row in rows]


async def seizures_to_watch(conn: AsyncConnection, horizon: datetime, limit: int = 500) -> list[Seizure]:
    """Active seizures ending before `horizon` (reminders) or already ended (lapses)."""
    statement = (
        select(SEIZURES.c.document)
        .where(SEIZURES.c.state == str(SeizureState.ACTIVE), SEIZURES.c.expires_at <= utc(horizon))
        .order_by(SEIZURES.c.expires_at)
        .limit(limit)
    )
    return [codec.seizure_from_json(json.loads(row.document)) for row in await conn.execute(statement)]
