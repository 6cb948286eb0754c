"""The assistance service's tables (sqlmodel); migrations in services/migrations/versions/assistance."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index
from sqlmodel import Field, SQLModel


class AssistanceNoticeRow(SQLModel, table=True):
    __tablename__ = "assistance_notice"
    # (party, seq): each list is a keyset scan of one court's or one agency's rows.
    __table_args__ = (
        Index("ix_notice_court", "court_id", "seq"),
        Index("ix_notice_agency", "agency_id", "seq"),
        Index("ix_notice_case", "case_name"),
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
    request_id: str | None = Field(default=None, unique=True, max_length=64)
    create_time: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    update_time: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    version: int = 1
    # W3C context of the call that sent the notice, so the agency's reply joins the trace.
    traceparent: str = Field(default="", max_length=64)
    tracestate: str = Field(default="", max_length=512)
