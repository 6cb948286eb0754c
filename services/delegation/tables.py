"""The delegation service's tables (sqlmodel); migrations in services/migrations/versions/delegation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index
from sqlmodel import Field, SQLModel


class DelegationRow(SQLModel, table=True):
    __tablename__ = "delegation"
    # (court, seq): each list is a keyset scan of one court's rows, sent or received.
    __table_args__ = (
        Index("ix_delegation_requesting", "requesting_court_id", "seq"),
        Index("ix_delegation_entrusted", "entrusted_court_id", "seq"),
        Index("ix_delegation_case", "case_name"),
    )

    seq: int | None = Field(default=None, primary_key=True)  # keyset pagination order
    name: str = Field(unique=True, max_length=200)
    id: str = Field(unique=True, max_length=36)
    requesting_court_id: str = Field(max_length=32)
    entrusted_court_id: str = Field(max_length=32)
    case_name: str = Field(max_length=200)
    matter_kind: str = Field(max_length=48)
    description: str = Field(default="")
    state: str = Field(max_length=32)
    request_id: str | None = Field(default=None, unique=True, max_length=64)
    create_time: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    update_time: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    version: int = 1
    # W3C context of the call that created the task, so later deadline and escalation
    # actions join the same trace (DESIGN.md, "one task, one trace").
    traceparent: str = Field(default="", max_length=64)
    tracestate: str = Field(default="", max_length=512)
