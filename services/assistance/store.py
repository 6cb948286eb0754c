"""SQL for assistance notices: Core statements on the sqlmodel table (the write path is hot)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from assistance.notices import AssistanceNotice, NoticeKind, NoticeState
from services.assistance.tables import AssistanceNoticeRow
from services.plumbing.events import trace_columns
from services.plumbing.times import utc

NOTICES = AssistanceNoticeRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StoredNotice:
    """A notice with its row's `seq`, the keyset of list pages."""

    seq: int
    notice: AssistanceNotice


@dataclass(frozen=True)
class NoticeQuery:
    court_id: str | None = None
    agency_id: str | None = None
    kind: NoticeKind | None = None
    state: NoticeState | None = None
    case_name: str | None = None


async def insert_notice(conn: AsyncConnection, notice: AssistanceNotice, request_id: str | None) -> int:
    result = await conn.execute(
        insert(NOTICES).values(
            name=notice.name,
            id=notice.id,
            court_id=notice.court_id,
            agency_id=notice.agency_id,
            case_name=notice.case_name,
            kind=str(notice.kind),
            target=notice.target,
            state=str(notice.state),
            request_id=request_id,
            create_time=notice.created_at,
            update_time=notice.updated_at,
            version=notice.version,
            **trace_columns(),
        )
    )
    return int(result.inserted_primary_key[0])


async def notice_by_name(conn: AsyncConnection, name: str) -> StoredNotice | None:
    row = (await conn.execute(select(NOTICES).where(NOTICES.c.name == name))).mappings().first()
    return _stored(row) if row else None


async def notice_by_request_id(conn: AsyncConnection, request_id: str) -> StoredNotice | None:
    row = (await conn.execute(select(NOTICES).where(NOTICES.c.request_id == request_id))).mappings().first()
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


def _stored(row: Any) -> StoredNotice:
    notice = AssistanceNotice(
        id=row["id"],
        court_id=row["court_id"],
        case_name=row["case_name"],
        agency_id=row["agency_id"],
        kind=NoticeKind(row["kind"]),
        target=row["target"],
        created_at=utc(row["create_time"]),
        updated_at=utc(row["update_time"]),
        state=NoticeState(row["state"]),
        version=row["version"],
    )
    return StoredNotice(row["seq"], notice)
