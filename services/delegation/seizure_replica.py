"""The delegation service's replica of seizures, kept from the assistance service's
`rogatory.v1.seizure.*` events (like services/contract/case_replica.py for cases), so that a
delegation handing over seized property can be refused when less than a month of the term
is left (委托执行规定 art. 6) without calling the assistance service.

Events may arrive twice or out of order: a row only moves to a higher seizure version
(the etag the event carries); reminders repeat a version and change nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from rogatory.assistance.v1 import assistance_pb2
from rogatory.events.v1 import events_pb2
from sqlalchemy import DateTime, insert, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from delegation.lifecycle import HandedOverSeizure
from services.contract.events import aggregate_filter
from services.plumbing.events import ReceivedEvent
from services.plumbing.times import utc
from services.plumbing.unit_of_work import Tx

SEIZURE_EVENTS = aggregate_filter("seizure")
CONSUMER = "delegation-seizure-replica"
_ETAG = re.compile(r'(?:W/)?"([0-9]+)"')


class SeizureReplicaRow(SQLModel, table=True):
    __tablename__ = "seizure_replica"

    name: str = Field(primary_key=True, max_length=200)
    court_id: str = Field(max_length=32)
    agency_id: str = Field(max_length=48)
    state: str = Field(max_length=16)
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    version: int


class SeizureHandoverRow(SQLModel, table=True):
    __tablename__ = "delegation_seizure_handover"

    delegation_name: str = Field(primary_key=True, max_length=200)
    seizure_name: str = Field(primary_key=True, max_length=200)
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


REPLICA = SeizureReplicaRow.__table__  # type: ignore[attr-defined]
HANDOVER = SeizureHandoverRow.__table__  # type: ignore[attr-defined]


def apply_seizure_changed(tx: Tx, event: ReceivedEvent) -> None:
    seizure = event.parse(events_pb2.SeizureChanged).seizure  # type: ignore[attr-defined]
    match = _ETAG.fullmatch(seizure.etag)
    version = int(match.group(1)) if match else 0
    values = {
        "court_id": seizure.name.split("/")[1],
        "agency_id": seizure.agency.split("/")[-1],
        "state": assistance_pb2.Seizure.State.Name(seizure.state),
        "expires_at": utc(seizure.expire_time.ToDatetime(tzinfo=UTC)),
        "version": version,
    }
    conn = tx.connection
    row = conn.execute(select(REPLICA.c.version).where(REPLICA.c.name == seizure.name)).first()
    if row is None:
        conn.execute(insert(REPLICA).values(name=seizure.name, **values))
    elif version > row.version:
        conn.execute(update(REPLICA).where(REPLICA.c.name == seizure.name).values(**values))


def known_seizures(conn: Connection, names: Iterable[str]) -> dict[str, HandedOverSeizure]:
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = conn.execute(select(REPLICA).where(REPLICA.c.name.in_(wanted)))
    return {r.name: HandedOverSeizure(r.name, r.court_id, r.state == "ACTIVE", utc(r.expires_at)) for r in rows}


def record_handover(tx: Tx, delegation_name: str, seizures: Iterable[HandedOverSeizure]) -> None:
    """With the write batch's other new rows (services/plumbing/unit_of_work.py)."""
    tx.insert(
        HANDOVER,
        [{"delegation_name": delegation_name, "seizure_name": s.name, "expires_at": utc(s.expires_at)} for s in seizures],
    )
