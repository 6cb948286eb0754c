"""Keeps a service's replica of registered cases, from `case.registered` events.

The delegation and assistance services need to know a case's court and respondents
(a court may only delegate its own cases; measures only target debtors) without calling
the registry on every request.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from rogatory.registry.v1 import registry_pb2
from sqlalchemy import DateTime, Text, bindparam, select
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from services.contract.events import CASE_REGISTERED
from services.plumbing.events import ReceivedEvent
from services.plumbing.unit_of_work import Tx


class CaseReplica(SQLModel, table=True):
    """What the delegation and assistance services know of cases, from `case.registered`."""

    __tablename__ = "case_replica"

    name: str = Field(primary_key=True, max_length=200)  # courts/{court}/cases/{case}
    court_id: str = Field(index=True, max_length=32)
    case_number: str = Field(max_length=64)
    respondents: str = Field(default="", sa_type=Text)  # type: ignore[call-overload]  # JSON list of {display_name, kind, id_number_masked}
    registered_at: datetime = Field(sa_type=DateTime(timezone=True))


REPLICA = CaseReplica.__table__  # type: ignore[attr-defined]
CASE_REGISTERED_ALL_COURTS = CASE_REGISTERED.subject.filter()
_BY_NAME = select(REPLICA).where(REPLICA.c.name == bindparam("name"))


def apply_case_registered(tx: Tx, event: ReceivedEvent) -> None:
    case = CASE_REGISTERED.parse(event.data).case  # type: ignore[attr-defined]
    court_id = case.name.split("/")[1]
    respondents = [
        {"display_name": p.display_name, "kind": registry_pb2.Party.Kind.Name(p.kind), "id_number_masked": p.id_number}
        for p in case.parties
        if p.role == registry_pb2.Party.RESPONDENT
    ]
    if replica_row(tx.connection, case.name) is not None:
        return  # the case is already known (e.g. replayed from an older stream position)
    registered = case.create_time.ToDatetime(tzinfo=UTC) if case.HasField("create_time") else datetime.now(UTC)
    tx.connection.execute(
        REPLICA.insert().values(
            name=case.name,
            court_id=court_id,
            case_number=case.case_number,
            respondents=json.dumps(respondents, ensure_ascii=False),
            registered_at=registered,
        )
    )


def replica_row(conn: Connection, name: str) -> dict | None:  # type: ignore[type-arg]
    row = conn.execute(_BY_NAME, {"name": name}).mappings().first()
    return dict(row) if row else None
