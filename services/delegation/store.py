"""SQL for delegations: Core statements on the sqlmodel table (the write path is hot)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from delegation.matters import Delegation, DelegationState, MatterKind
from services.delegation.tables import DelegationRow
from services.plumbing.events import trace_columns
from services.plumbing.times import utc

DELEGATIONS = DelegationRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StoredDelegation:
    """A delegation with its row's `seq`, the keyset of list pages."""

    seq: int
    delegation: Delegation


@dataclass(frozen=True)
class DelegationQuery:
    requesting_court_id: str | None = None
    entrusted_court_id: str | None = None
    matter_kind: MatterKind | None = None
    state: DelegationState | None = None
    case_name: str | None = None


async def insert_delegation(conn: AsyncConnection, delegation: Delegation, request_id: str | None) -> int:
    result = await conn.execute(
        insert(DELEGATIONS).values(
            name=delegation.name,
            id=delegation.id,
            requesting_court_id=delegation.requesting_court_id,
            entrusted_court_id=delegation.entrusted_court_id,
            case_name=delegation.case_name,
            matter_kind=str(delegation.matter_kind),
            description=delegation.description,
            state=str(delegation.state),
            request_id=request_id,
            create_time=delegation.created_at,
            update_time=delegation.updated_at,
            version=delegation.version,
            **trace_columns(),
        )
    )
    return int(result.inserted_primary_key[0])


async def delegation_by_name(conn: AsyncConnection, name: str) -> StoredDelegation | None:
    row = (await conn.execute(select(DELEGATIONS).where(DELEGATIONS.c.name == name))).mappings().first()
    return _stored(row) if row else None


async def delegation_by_request_id(conn: AsyncConnection, request_id: str) -> StoredDelegation | None:
    row = (await conn.execute(select(DELEGATIONS).where(DELEGATIONS.c.request_id == request_id))).mappings().first()
    return _stored(row) if row else None


async def list_delegations(conn: AsyncConnection, query: DelegationQuery, after_seq: int, limit: int) -> list[StoredDelegation]:
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
    return [_stored(row) for row in (await conn.execute(statement)).mappings()]


def _stored(row: Any) -> StoredDelegation:
    delegation = Delegation(
        id=row["id"],
        requesting_court_id=row["requesting_court_id"],
        case_name=row["case_name"],
        entrusted_court_id=row["entrusted_court_id"],
        matter_kind=MatterKind(row["matter_kind"]),
        description=row["description"],
        created_at=utc(row["create_time"]),
        updated_at=utc(row["update_time"]),
        state=DelegationState(row["state"]),
        version=row["version"],
    )
    return StoredDelegation(row["seq"], delegation)
