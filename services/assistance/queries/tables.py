"""Property-query tables (sqlmodel); migration services/migrations/versions/assistance/0005_property_queries.py."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, LargeBinary
from sqlmodel import Field, SQLModel


class PropertyQueryRow(SQLModel, table=True):
    __tablename__ = "property_query"
    __table_args__ = (
        Index("ix_property_query_court", "court_id", "seq"),  # a court's list is a keyset scan
        Index("ix_property_query_running", "state", "deadline_time"),  # the timeout scanner's look-up
    )

    seq: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    id: str = Field(unique=True, max_length=36)
    court_id: str = Field(max_length=32)
    case_name: str = Field(max_length=200)
    debtor_name: str = Field(max_length=200)
    debtor_kind: str = Field(default="", max_length=16)
    debtor_id_masked: str = Field(default="", max_length=32)
    categories: str = Field(max_length=300)  # comma-separated PropertyCategory names, in the order asked
    state: str = Field(max_length=16)
    total: int
    pending: int  # kept by every reply and timeout, so completion needs no count over the results
    create_time: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    deadline_time: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    complete_time: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    version: int = 1
    traceparent: str = Field(default="", max_length=64)
    tracestate: str = Field(default="", max_length=512)


class PropertyQueryAgencyRow(SQLModel, table=True):
    """One agency's part of a query: status and, once it replied, the typed items it sent."""

    __tablename__ = "property_query_agency"

    query_id: str = Field(primary_key=True, max_length=36)
    agency_id: str = Field(primary_key=True, max_length=48)
    categories: str = Field(max_length=300)
    status: str = Field(max_length=16)
    reply_time: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    # rogatory.assistance.v1.AgencyQueryResult with the items, as the agency sent them
    items: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    item_count: int = 0
    value_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    failure_reason: str = Field(default="", max_length=500)
    # When the request was last sent to the agency again (None: only with the query's creation,
    # right after its commit); services/assistance/queries/dispatch.py sends a pending one
    # again now and then until the agency answers or the deadline passes.
    sent_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
