"""Tables of the vehicle watch list (sqlmodel); migration services/migrations/versions/assistance/0004."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Text, text
from sqlmodel import Field, SQLModel

_LIVE = {c: text(f"{c} <> '' AND state IN ('ACTIVE', 'SIGHTED', 'SEIZED')") for c in ("plate", "vin")}


class VehicleControlRow(SQLModel, table=True):
    """One control: the aggregate as a JSON `document`, plus the columns lists, guards and
    the scanner filter on."""

    __tablename__ = "vehicle_control"
    __table_args__ = (
        Index("ix_vehicle_control_court", "court_id", "seq"),
        Index("ix_vehicle_control_case", "case_name"),
        Index("ix_vehicle_control_plate", "plate"),
        Index("ix_vehicle_control_vin", "vin"),
        # The scanner's two questions: which listed controls expire, which targets pass.
        Index("ix_vehicle_control_expiry", "state", "expire_time"),
        Index("ix_vehicle_control_target", "target_status", "target_due"),
        # One live control of a plate / VIN per court (migration 0007): the handler checks
        # first; these make a racing second insert fail.
        *(
            Index(f"ux_vehicle_control_live_{c}", "court_id", c, unique=True, sqlite_where=_LIVE[c], postgresql_where=_LIVE[c])
            for c in ("plate", "vin")
        ),
    )

    seq: int | None = Field(default=None, primary_key=True)  # keyset pagination order
    name: str = Field(unique=True, max_length=200)
    id: str = Field(unique=True, max_length=36)
    court_id: str = Field(max_length=32)
    case_name: str = Field(max_length=200)
    plate: str = Field(default="", max_length=16)
    vin: str = Field(default="", max_length=17)
    state: str = Field(max_length=16)
    create_time: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    update_time: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    expire_time: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    target_due: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    target_status: str = Field(default="", max_length=16)
    version: int = 1
    # W3C context of the call that created the control: agency reports, scanner findings and
    # case closing continue its trace (one task, one trace).
    traceparent: str = Field(default="", max_length=64)
    tracestate: str = Field(default="", max_length=512)
    document: str = Field(default="{}", sa_type=Text)  # type: ignore[call-overload]


class VehicleControlAgencyRow(SQLModel, table=True):
    """Which agencies a control addresses: an agency's watch list is a keyset scan of its rows."""

    __tablename__ = "vehicle_control_agency"

    agency_id: str = Field(primary_key=True, max_length=48)
    control_seq: int = Field(primary_key=True)
    control_name: str = Field(max_length=200)


class VehicleClosedCaseRow(SQLModel, table=True):
    """Cases closed (from `case.closed`): no new control may name them."""

    __tablename__ = "vehicle_closed_case"

    case_name: str = Field(primary_key=True, max_length=200)
    closed_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
