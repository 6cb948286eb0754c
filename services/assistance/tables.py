"""The assistance service's tables (sqlmodel); migrations in services/migrations/versions/assistance."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel


class AssistanceNoticeRow(SQLModel, table=True):
    __tablename__ = "assistance_notice"
    # (party, seq): each list is a keyset scan of one court's or one agency's rows.
    __table_args__ = (
        Index("ix_notice_court", "court_id", "seq"),
        Index("ix_notice_agency", "agency_id", "seq"),
        Index("ix_notice_case", "case_name"),
        Index("ix_notice_queue", "asset_key", "queued"),
        Index("ix_notice_objection_due", "state", "objection_due_at"),
    )

    seq: int | None = Field(default=None, primary_key=True)  # keyset pagination order
    name: str = Field(unique=True, max_length=200)
    id: str = Field(unique=True, max_length=36)
    court_id: str = Field(max_length=32)
    agency_id: str = Field(max_length=48)
    case_name: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    target: str = Field(default="", max_length=500)
    state: str = Field(max_length=16)
    create_time: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    update_time: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    version: int = 1
    # W3C context of the call that sent the notice, so the agency's reply joins the trace.
    traceparent: str = Field(default="", max_length=64)
    tracestate: str = Field(default="", max_length=512)
    # The whole notice (target, documents, result, objection…) as JSON (notice_codec.py).
    document: str = Field(default="{}", sa_type=Text)  # type: ignore[call-overload]
    # The asset at its agency (assistance.notice_targets.asset_key): the seizure queue.
    asset_key: str = Field(default="", max_length=300)
    queued: bool = False  # answered QUEUED and not yet in effect
    objection_due_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class AssistanceNoticeTransitionRow(SQLModel, table=True):
    """One step of a notice's timeline, with the trace of the call or job that made it."""

    __tablename__ = "assistance_notice_transition"
    __table_args__ = (Index("ix_notice_transition_notice", "notice_name", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    notice_name: str = Field(max_length=200)
    action: str = Field(max_length=40)
    from_state: str = Field(default="", max_length=16)
    to_state: str = Field(default="", max_length=16)
    actor: str = Field(default="", max_length=100)
    at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    reason_code: str = Field(default="", max_length=64)
    note: str = Field(default="", sa_type=Text)  # type: ignore[call-overload]
    trace_id: str = Field(default="", max_length=32)


class SeizureRow(SQLModel, table=True):
    """A freeze or seal in effect, with its term (assistance/seizures.py)."""

    __tablename__ = "seizure"
    __table_args__ = (
        Index("ix_seizure_court", "court_id", "seq"),
        Index("ix_seizure_agency", "agency_id", "seq"),
        Index("ix_seizure_expiry", "state", "expires_at"),
        Index("ix_seizure_asset", "asset_key"),
    )

    seq: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    id: str = Field(unique=True, max_length=36)
    court_id: str = Field(max_length=32)
    agency_id: str = Field(max_length=48)
    case_name: str = Field(max_length=200)
    notice_name: str = Field(max_length=200)
    asset_key: str = Field(max_length=300)
    asset_class: str = Field(max_length=16)
    state: str = Field(max_length=16)
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    version: int = 1
    update_time: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    document: str = Field(default="{}", sa_type=Text)  # type: ignore[call-overload]


class AgencyTurnaroundFactRow(SQLModel, table=True):
    """Per notice: the timestamps the agency statistics are computed from, and the durations
    that were added to the aggregates (so a later change subtracts exactly those)."""

    __tablename__ = "agency_turnaround_fact"

    notice_name: str = Field(primary_key=True, max_length=200)
    agency_id: str = Field(max_length=48)
    kind: str = Field(max_length=32)
    sent_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    received_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    result_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    outcome: str = Field(default="", max_length=16)  # "", ANSWERED or OBJECTED
    ack_seconds: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    ack_working_seconds: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    result_seconds: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    result_working_seconds: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class AgencyTurnaroundAggregateRow(SQLModel, table=True):
    """Sums per (agency, notice kind, month of sending), with packed duration histograms."""

    __tablename__ = "agency_turnaround_aggregate"

    agency_id: str = Field(primary_key=True, max_length=48)
    kind: str = Field(primary_key=True, max_length=32)
    month: str = Field(primary_key=True, max_length=7)
    notices: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    answered: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    objected: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    ack_count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    ack_seconds: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    ack_working_seconds: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    result_count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    result_seconds: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    result_working_seconds: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    histograms: bytes = Field(default=b"", sa_column=Column(LargeBinary, nullable=False, default=b""))
