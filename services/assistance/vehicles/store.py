"""SQL for the vehicle watch list: synchronous Core statements on the sqlmodel tables.

A control is one `vehicle_control` row whose `document` holds the whole aggregate (JSON,
written out explicitly below so a renamed domain field fails the round-trip test rather than
dropping data); state, version, times, plate and VIN have columns of their own for lists,
the optimistic-concurrency guard (`UPDATE … WHERE version = :old`) and the scanner.

The control row is a versioned document aggregate (services/plumbing/aggregate.py: `TABLE`).
The functions take a `Connection`: writes run in units of the write door, reads through the
read door (services/plumbing/unit_of_work.py).
Every datetime is written in UTC (SQLite keeps only the wall-clock digits).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, or_, select
from sqlalchemy.engine import Connection, RowMapping

from assistance.vehicles import (
    ENDED,
    ON_WATCH_LIST,
    ControlScope,
    ControlState,
    PostSeizureStep,
    PostSeizureTarget,
    Seizure,
    Sighting,
    StepRecord,
    TargetStatus,
    Vehicle,
    VehicleControl,
)
from services.assistance.vehicles.tables import VehicleClosedCaseRow, VehicleControlAgencyRow, VehicleControlRow
from services.plumbing.aggregate import DocumentTable, document
from services.plumbing.times import utc

CONTROLS = VehicleControlRow.__table__  # type: ignore[attr-defined]
ADDRESSED = VehicleControlAgencyRow.__table__  # type: ignore[attr-defined]
CLOSED_CASES = VehicleClosedCaseRow.__table__  # type: ignore[attr-defined]
SCHEMA = 1
Json = dict[str, Any]

_IS_CLOSED = select(CLOSED_CASES.c.case_name).where(CLOSED_CASES.c.case_name == bindparam("case_name"))
_INSERT_CLOSED = insert(CLOSED_CASES)
_INSERT_ADDRESSED = insert(ADDRESSED)
_ENDED = [str(s) for s in ENDED]


@dataclass(frozen=True)
class StoredControl:
    seq: int
    control: VehicleControl
    traceparent: str = ""


@dataclass(frozen=True)
class ControlQuery:
    court_id: str | None = None  # None: every court (admins, agencies)
    agency_id: str | None = None  # an agency's watch list: addressed to it and on the list
    state: ControlState | None = None
    case_name: str | None = None
    plate: str | None = None
    vin: str | None = None


def _columns(control: VehicleControl) -> Json:
    target = control.target
    return {
        "name": control.name,
        "id": control.id,
        "court_id": control.court_id,
        "case_name": control.case_name,
        "plate": control.vehicle.plate,
        "vin": control.vehicle.vin,
        "state": str(control.state),
        "create_time": utc(control.created_at),
        "update_time": utc(control.updated_at),
        "expire_time": utc(control.expires_at),
        "target_due": utc(target.due) if target else None,
        "target_status": str(target.status) if target else "",
        "version": control.version,
        "document": document(control_to_json(control)),
    }


def _load(conn: Connection, rows: Sequence[RowMapping]) -> list[StoredControl]:
    return [_stored(row) for row in rows]


#: The control aggregate's table: insert with the creating call's trace, version-guarded update, reads.
TABLE: DocumentTable[VehicleControl, StoredControl] = DocumentTable(
    CONTROLS,
    kind="vehicle control",
    label="vehicle_control",
    columns=_columns,
    load=_load,
    fixed=("name", "id", "court_id", "case_name", "create_time"),
)


# --- writing ------------------------------------------------------------------------------------


def insert_control(conn: Connection, control: VehicleControl) -> int:
    seq = TABLE.insert(conn, control)
    rows = [{"agency_id": a, "control_seq": seq, "control_name": control.name} for a in control.agency_ids]
    if rows:
        conn.execute(_INSERT_ADDRESSED, rows)
    return seq


def update_control(conn: Connection, control: VehicleControl, *, expected_version: int) -> None:
    """Writes the next version; ABORTED VERSION_MISMATCH when the row is no longer at `expected_version`."""
    TABLE.update(conn, control, expected_version=expected_version)


def record_closed_case(conn: Connection, case_name: str, closed_at: datetime) -> None:
    if is_case_closed(conn, case_name):
        return
    conn.execute(_INSERT_CLOSED, {"case_name": case_name, "closed_at": utc(closed_at)})


# --- reading --------------------------------------------------------------------------------------


def control_by_name(conn: Connection, name: str) -> StoredControl | None:
    return TABLE.get(conn, name)


def is_case_closed(conn: Connection, case_name: str) -> bool:
    return conn.execute(_IS_CLOSED, {"case_name": case_name}).first() is not None


def live_controls_of_vehicle(conn: Connection, court_id: str, plate: str, vin: str) -> list[StoredControl]:
    """The court's controls of this plate or VIN that have not ended (a second one is refused)."""
    same = []
    if plate:
        same.append(CONTROLS.c.plate == plate)
    if vin:
        same.append(CONTROLS.c.vin == vin)
    if not same:
        return []
    statement = select(CONTROLS).where(CONTROLS.c.court_id == court_id, or_(*same), CONTROLS.c.state.not_in(_ENDED))
    return TABLE.select(conn, statement)


def live_controls_of_case(conn: Connection, case_name: str) -> list[StoredControl]:
    statement = select(CONTROLS).where(CONTROLS.c.case_name == case_name, CONTROLS.c.state.not_in(_ENDED))
    return TABLE.select(conn, statement.order_by(CONTROLS.c.seq))


def list_controls(conn: Connection, query: ControlQuery, after_seq: int, limit: int) -> list[StoredControl]:
    columns = CONTROLS.c
    statement = select(CONTROLS).where(columns.seq > after_seq).order_by(columns.seq).limit(limit)
    if query.agency_id is not None:
        # The watch list: a keyset scan of the agency's rows, joined to the controls on it.
        statement = statement.join(ADDRESSED, ADDRESSED.c.control_seq == columns.seq).where(
            ADDRESSED.c.agency_id == query.agency_id, columns.state.in_([str(s) for s in ON_WATCH_LIST])
        )
    for column, value in (
        (columns.court_id, query.court_id),
        (columns.state, query.state),
        (columns.case_name, query.case_name),
        (columns.plate, query.plate),
        (columns.vin, query.vin),
    ):
        if value is not None:
            statement = statement.where(column == str(value))
    return TABLE.select(conn, statement)


def names_to_expire(conn: Connection, now: datetime, limit: int) -> list[str]:
    statement = (
        select(CONTROLS.c.name)
        .where(CONTROLS.c.state.in_([str(s) for s in ON_WATCH_LIST]), CONTROLS.c.expire_time <= utc(now))
        .order_by(CONTROLS.c.expire_time)
        .limit(limit)
    )
    return list(conn.execute(statement).scalars())


def names_past_target(conn: Connection, now: datetime, limit: int) -> list[str]:
    statement = (
        select(CONTROLS.c.name)
        .where(
            CONTROLS.c.state == str(ControlState.SEIZED),
            CONTROLS.c.target_status == str(TargetStatus.ON_TRACK),
            CONTROLS.c.target_due < utc(now),
        )
        .order_by(CONTROLS.c.target_due)
        .limit(limit)
    )
    return list(conn.execute(statement).scalars())


def _stored(row: Any) -> StoredControl:
    data = json.loads(row["document"])
    return StoredControl(row["seq"], control_from_json(data), row["traceparent"])


# --- the document ------------------------------------------------------------------------------


def control_to_json(c: VehicleControl) -> Json:
    return {
        "schema": SCHEMA,
        "id": c.id,
        "court_id": c.court_id,
        "case_name": c.case_name,
        "debtor": c.debtor,
        "vehicle": {"plate": c.vehicle.plate, "vin": c.vehicle.vin, "description": c.vehicle.description},
        "scope": str(c.scope),
        "agency_ids": list(c.agency_ids),
        "note": c.note,
        "created_at": _t(c.created_at),
        "updated_at": _t(c.updated_at),
        "expires_at": _t(c.expires_at),
        "state": str(c.state),
        "version": c.version,
        "sightings": [
            {"agency_id": s.agency_id, "at": _t(s.at), "location": s.location, "note": s.note, "reported_at": _t(s.reported_at)}
            for s in c.sightings
        ],
        "seizure": None
        if c.seizure is None
        else {
            "agency_id": c.seizure.agency_id,
            "at": _t(c.seizure.at),
            "location": c.seizure.location,
            "custody": c.seizure.custody,
            "note": c.seizure.note,
            "reported_at": _t(c.seizure.reported_at),
        },
        "steps": [
            {
                "step": str(s.step),
                "at": _t(s.at),
                "note": s.note,
                "recorded_at": _t(s.recorded_at),
                "valuation_fen": s.valuation_fen,
            }
            for s in c.steps
        ],
        "target": None
        if c.target is None
        else {"due": _t(c.target.due), "status": str(c.target.status), "missed_at": _t(c.target.missed_at)},
        "ended_at": _t(c.ended_at),
        "end_reason": c.end_reason,
        "end_note": c.end_note,
    }


def control_from_json(d: Json) -> VehicleControl:
    seizure, target = d["seizure"], d["target"]
    return VehicleControl(
        id=d["id"],
        court_id=d["court_id"],
        case_name=d["case_name"],
        debtor=d["debtor"],
        vehicle=Vehicle(**d["vehicle"]),
        scope=ControlScope(d["scope"]),
        agency_ids=tuple(d["agency_ids"]),
        note=d["note"],
        created_at=_dt(d["created_at"]),
        updated_at=_dt(d["updated_at"]),
        expires_at=_dt(d["expires_at"]),
        state=ControlState(d["state"]),
        version=d["version"],
        sightings=tuple(
            Sighting(s["agency_id"], _dt(s["at"]), s["location"], s["note"], _dt(s["reported_at"])) for s in d["sightings"]
        ),
        seizure=None
        if seizure is None
        else Seizure(
            seizure["agency_id"],
            _dt(seizure["at"]),
            seizure["location"],
            seizure["custody"],
            seizure["note"],
            _dt(seizure["reported_at"]),
        ),
        steps=tuple(
            StepRecord(PostSeizureStep(s["step"]), _dt(s["at"]), s["note"], _dt(s["recorded_at"]), s["valuation_fen"])
            for s in d["steps"]
        ),
        target=None
        if target is None
        else PostSeizureTarget(_dt(target["due"]), TargetStatus(target["status"]), _maybe_dt(target["missed_at"])),
        ended_at=_maybe_dt(d["ended_at"]),
        end_reason=d["end_reason"],
        end_note=d["end_note"],
    )


def _t(value: datetime | None) -> str | None:
    return None if value is None else utc(value).isoformat()


def _dt(text: str) -> datetime:
    return utc(datetime.fromisoformat(text))


def _maybe_dt(text: str | None) -> datetime | None:
    return None if text is None else _dt(text)
