"""The delegation service's tables (sqlmodel); migrations in services/migrations/versions/delegation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Text
from sqlmodel import Field, SQLModel


class DelegationRow(SQLModel, table=True):
    __tablename__ = "delegation"
    # (court, seq): each list is a keyset scan of one court's rows, sent or received.
    __table_args__ = (
        Index("ix_delegation_requesting", "requesting_court_id", "seq"),
        Index("ix_delegation_entrusted", "entrusted_court_id", "seq"),
        Index("ix_delegation_case", "case_name"),
        Index("ix_delegation_state", "state"),
    )

    seq: int | None = Field(default=None, primary_key=True)  # keyset pagination order
    name: str = Field(unique=True, max_length=200)
    id: str = Field(unique=True, max_length=36)
    requesting_court_id: str = Field(max_length=32)
    entrusted_court_id: str = Field(max_length=32)
    case_name: str = Field(max_length=200)
    matter_kind: str = Field(max_length=48)
    description: str = Field(default="", sa_type=Text)  # type: ignore[call-overload]
    state: str = Field(max_length=32)
    create_time: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    update_time: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    version: int = 1
    # W3C context of the call that created the task, so later deadline and escalation
    # actions join the same trace (DESIGN.md, "one task, one trace").
    traceparent: str = Field(default="", max_length=64)
    tracestate: str = Field(default="", max_length=512)
    # The whole matter (details, attachments, officers, completion…) as JSON.
    document: str = Field(default="{}", sa_type=Text)  # type: ignore[call-overload]
    urge_count: int = 0
    escalated_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class DelegationTransitionRow(SQLModel, table=True):
    """One step of a matter's timeline, with the trace of the call or action that made it."""

    __tablename__ = "delegation_transition"
    __table_args__ = (Index("ix_transition_delegation", "delegation_name", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    delegation_name: str = Field(max_length=200)
    action: str = Field(max_length=40)
    from_state: str = Field(default="", max_length=32)
    to_state: str = Field(default="", max_length=32)
    actor_court_id: str = Field(default="", max_length=32)
    officer: str = Field(default="", max_length=200)
    at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    reason_code: str = Field(default="", max_length=64)
    note: str = Field(default="", sa_type=Text)  # type: ignore[call-overload]
    trace_id: str = Field(default="", max_length=32)


class DelegationDeadlineRow(SQLModel, table=True):
    """One deadline of a matter: what the deadline scanner watches."""

    __tablename__ = "delegation_deadline"
    __table_args__ = (
        Index("ix_deadline_open_due", "status", "due_at"),
        Index("ix_deadline_entrusted", "entrusted_court_id", "status"),
    )

    delegation_name: str = Field(primary_key=True, max_length=200)
    step: str = Field(primary_key=True, max_length=24)
    requesting_court_id: str = Field(max_length=32)
    entrusted_court_id: str = Field(max_length=32)
    status: str = Field(max_length=16)  # OPEN, MET, MET_LATE, OVERDUE, CANCELLED
    start_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    due_at: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    provisional: bool = False
    rule: str = Field(sa_type=Text)  # type: ignore[call-overload]  # JSON: kind, step, amount, unit, source, province
    extensions: str = Field(default="[]", sa_type=Text)  # type: ignore[call-overload]  # JSON list
    warned_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    overdue_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    last_urged_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    escalated_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    closed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
